import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { SERVICE_NODE_FLAGS } from '@mana/shared';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { loadServiceConfig as adminConfig } from '../../admin-svc/src/config';
import { loadServiceConfig as authConfig } from '../../auth-svc/src/config';
import { loadServiceConfig as creditsConfig } from '../../credits-svc/src/config';
import { loadGatewayConfig } from '../../gateway/src/config';
import { loadServiceConfig as gdprConfig } from '../../gdpr-svc/src/config';
import { loadServiceConfig as vaultConfig } from '../../vault-svc/src/config';

/**
 * infra/k8s/ checked offline against the Kubernetes schemas (kubernetes-models: the OpenAPI schemas of
 * every kind, validated with ajv), and for what the manifests must mean: probes, autoscaling and
 * disruption budgets per Deployment, and NetworkPolicies that let each service reach only what it needs.
 */

const DIR = new URL('../../infra/k8s/', import.meta.url);
const NS = 'mana-auth';

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
} & Record<string, unknown>;
const KINDS: Record<string, new (data: never) => { validate: () => void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
const manifests: Array<Manifest & { file: string }> = files.flatMap((file) =>
  YAML.parseAllDocuments(readFileSync(new URL(file, DIR), 'utf8'), { merge: true })
    .map((d) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJSON() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null)
    .map((m) => ({ ...m, file })),
);
const ofKind = <T>(kind: string) => manifests.filter((m) => m.kind === kind) as unknown as Array<T & Manifest & { file: string }>;

interface Container {
  name: string;
  command?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; configMapKeyRef?: { name: string; key: string } };
  }>;
  envFrom?: Array<{ configMapRef?: { name: string } }>;
}
interface DeploymentSpec {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: { containers: Container[] } };
  };
}
const deployments = ofKind<DeploymentSpec>('Deployment');
const SERVICES = ['gateway', 'auth-svc', 'vault-svc', 'gdpr-svc', 'admin-svc', 'credits-svc'];
const PORTS: Record<string, number> = {
  gateway: 3001,
  'auth-svc': 3101,
  'vault-svc': 3102,
  'gdpr-svc': 3103,
  'admin-svc': 3104,
  'credits-svc': 3105,
};

test('every manifest is a known kind and valid against its Kubernetes schema', () => {
  expect(manifests.length).toBeGreaterThan(20);
  const problems: string[] = [];
  for (const m of manifests) {
    const Model = KINDS[`${m.apiVersion}/${m.kind}`];
    if (!Model) {
      problems.push(`${m.file}: ${m.apiVersion} ${m.kind} ${m.metadata?.name}: no schema in this test (add it to KINDS)`);
      continue;
    }
    try {
      new Model(m as never).validate();
    } catch (err) {
      problems.push(`${m.file}: ${m.kind} ${m.metadata.name}: ${(err as Error).message}`);
    }
    if (m.kind !== 'Namespace' && m.metadata.namespace !== NS) problems.push(`${m.file}: ${m.kind} ${m.metadata.name} is not in ${NS}`);
  }
  expect(problems).toEqual([]);
});

test('the schema check is real: a broken manifest is refused', () => {
  const broken = structuredClone(deployments[0]) as unknown as DeploymentSpec;
  (broken.spec.template.spec.containers[0].ports as unknown as Array<{ containerPort: string }>)[0].containerPort = 'http';
  expect(() => new Deployment(broken as never).validate()).toThrow(/containerPort/);
  expect(() => new HorizontalPodAutoscaler({ metadata: { name: 'x' }, spec: { minReplicas: 2 } } as never).validate()).toThrow(
    /scaleTargetRef|maxReplicas/,
  );
});

describe.each(SERVICES)('%s', (name) => {
  const dep = deployments.find((d) => d.metadata.name === name);
  const container = () => {
    if (!dep) throw new Error(`no Deployment ${name}`);
    return dep.spec.template.spec.containers[0];
  };

  test('has a Deployment and a Service on its port', () => {
    expect(dep, `Deployment ${name}`).toBeDefined();
    expect(container().ports?.map((p) => p.containerPort)).toContain(PORTS[name]);
    const svc = ofKind<{ spec: { selector: Record<string, string>; ports: Array<{ port: number }> } }>('Service').find(
      (s) => s.metadata.name === name,
    );
    expect(svc?.spec.ports.map((p) => p.port)).toContain(PORTS[name]);
    expect(svc?.spec.selector).toEqual(dep?.spec.selector.matchLabels);
  });

  test('runs its server with the V8 flags every service process runs with (SERVICE_NODE_FLAGS), as the image does', () => {
    expect(container().command).toEqual(['node_modules/.bin/tsx', ...SERVICE_NODE_FLAGS, `${name}/src/server.ts`]);
    const dockerfile = readFileSync(new URL('../../infra/Dockerfile', import.meta.url), 'utf8');
    expect(dockerfile).toContain(`exec npx --no-install tsx ${SERVICE_NODE_FLAGS.join(' ')} \${SERVICE}/src/server.ts`);
  });

  test('probes: readiness on /readyz, liveness on /healthz, on the container’s port', () => {
    const c = container();
    const portNames = new Set([...(c.ports ?? []).map((p) => p.name), ...(c.ports ?? []).map((p) => p.containerPort)]);
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(portNames.has(c.readinessProbe?.httpGet?.port)).toBe(true);
    expect(portNames.has(c.livenessProbe?.httpGet?.port)).toBe(true);
  });

  test('a HorizontalPodAutoscaler on CPU (the container requests CPU) and a PodDisruptionBudget that lets a drain proceed', () => {
    const hpa = ofKind<{ spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number } }>(
      'HorizontalPodAutoscaler',
    ).find((h) => h.spec.scaleTargetRef.kind === 'Deployment' && h.spec.scaleTargetRef.name === name);
    expect(hpa, `HorizontalPodAutoscaler for ${name}`).toBeDefined();
    expect(hpa?.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa?.spec.maxReplicas).toBeGreaterThan(hpa?.spec.minReplicas ?? 0);
    expect(container().resources?.requests?.cpu, 'the HPA measures CPU against the request').toBeTruthy();
    expect((dep?.spec as { replicas?: number }).replicas, 'replicas is the HPA’s: a fixed count resets it on every apply').toBeUndefined();
    expect(container().resources?.limits?.memory).toBeTruthy();

    const labels = dep?.spec.template.metadata.labels ?? {};
    const pdb = ofKind<{ spec: { minAvailable?: number; maxUnavailable?: number; selector: { matchLabels: Record<string, string> } } }>(
      'PodDisruptionBudget',
    ).find((p) => Object.entries(p.spec.selector.matchLabels).every(([k, v]) => labels[k] === v));
    expect(pdb, `PodDisruptionBudget for ${name}`).toBeDefined();
    // minAvailable as high as the minimum replica count would block every node drain.
    if (pdb?.spec.minAvailable !== undefined) expect(pdb.spec.minAvailable).toBeLessThan(hpa?.spec.minReplicas ?? 0);
    // The rollout never takes a pod away before its successor is ready.
    expect((dep?.spec as { strategy?: { rollingUpdate?: { maxUnavailable?: number } } }).strategy?.rollingUpdate?.maxUnavailable).toBe(0);
  });
});

describe('NetworkPolicies', () => {
  type Labels = Record<string, string>;
  interface Endpoint {
    namespace?: string;
    nsLabels?: Labels;
    pod?: Labels;
  }
  interface Peer {
    podSelector?: { matchLabels?: Labels; matchExpressions?: unknown[] };
    namespaceSelector?: { matchLabels?: Labels; matchExpressions?: unknown[] };
    ipBlock?: { cidr: string };
  }
  interface Rule {
    from?: Peer[];
    to?: Peer[];
    ports?: Array<{ protocol?: string; port?: number | string }>;
  }
  interface Policy {
    metadata: { name: string };
    spec: { podSelector: { matchLabels?: Labels; matchExpressions?: unknown[] }; policyTypes: string[]; ingress?: Rule[]; egress?: Rule[] };
  }
  const policies = ofKind<Policy>('NetworkPolicy');
  const matches = (sel: { matchLabels?: Labels; matchExpressions?: unknown[] } | undefined, labels: Labels | undefined) => {
    if (sel?.matchExpressions?.length) throw new Error('matchExpressions: teach this test');
    return Object.entries(sel?.matchLabels ?? {}).every(([k, v]) => labels?.[k] === v);
  };
  const peerMatches = (peer: Peer, other: Endpoint) => {
    if (peer.ipBlock) return other.namespace === undefined;
    if (other.namespace === undefined) return false;
    if (peer.namespaceSelector)
      return matches(peer.namespaceSelector, other.nsLabels) && (!peer.podSelector || matches(peer.podSelector, other.pod));
    return other.namespace === NS && matches(peer.podSelector, other.pod);
  };
  const portMatches = (rule: Rule, port: number, protocol: string) =>
    !rule.ports?.length || rule.ports.some((p) => (p.protocol ?? 'TCP') === protocol && (p.port === undefined || p.port === port));
  /** Whether `direction` policies of `self` let the connection through (no policy selecting it: allowed). */
  const side = (self: Endpoint, other: Endpoint, direction: 'Ingress' | 'Egress', port: number, protocol: string) => {
    if (self.namespace !== NS) return true;
    const selecting = policies.filter((p) => p.spec.policyTypes.includes(direction) && matches(p.spec.podSelector, self.pod));
    if (selecting.length === 0) return true;
    return selecting.some((p) =>
      (direction === 'Ingress' ? (p.spec.ingress ?? []) : (p.spec.egress ?? [])).some((rule) => {
        const peers = direction === 'Ingress' ? rule.from : rule.to;
        return (!peers?.length || peers.some((peer) => peerMatches(peer, other))) && portMatches(rule, port, protocol);
      }),
    );
  };
  const allowed = (from: Endpoint, to: Endpoint, port: number, protocol = 'TCP') =>
    side(from, to, 'Egress', port, protocol) && side(to, from, 'Ingress', port, protocol);

  const ns = (name: string) => ({ 'kubernetes.io/metadata.name': name });
  const pod = (name: string): Endpoint => ({
    namespace: NS,
    nsLabels: ns(NS),
    pod: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'mana-auth' },
  });
  const ingressController: Endpoint = {
    namespace: 'ingress-nginx',
    nsLabels: ns('ingress-nginx'),
    pod: { 'app.kubernetes.io/name': 'ingress-nginx' },
  };
  const prometheus: Endpoint = { namespace: 'monitoring', nsLabels: ns('monitoring'), pod: { 'app.kubernetes.io/name': 'prometheus' } };
  const otherApp: Endpoint = { namespace: 'default', nsLabels: ns('default'), pod: { app: 'something-else' } };
  const kubeDns: Endpoint = { namespace: 'kube-system', nsLabels: ns('kube-system'), pod: { 'k8s-app': 'kube-dns' } };
  const outside: Endpoint = {};

  /** Who may call whom inside the namespace: the *_SVC_URL settings of each process. */
  const CALLS: Record<string, string[]> = {
    gateway: ['auth-svc', 'vault-svc', 'gdpr-svc', 'admin-svc', 'credits-svc'],
    'auth-svc': [],
    'vault-svc': ['auth-svc'],
    'gdpr-svc': ['auth-svc', 'vault-svc', 'credits-svc', 'admin-svc'],
    'admin-svc': ['auth-svc', 'gdpr-svc'],
    'credits-svc': ['auth-svc'],
  };

  test('default deny in both directions for every pod of the namespace', () => {
    const deny = policies.find(
      (p) =>
        Object.keys(p.spec.podSelector.matchLabels ?? {}).length === 0 &&
        p.spec.policyTypes.includes('Ingress') &&
        p.spec.policyTypes.includes('Egress'),
    );
    expect(deny?.spec.ingress ?? []).toEqual([]);
    expect(deny?.spec.egress ?? []).toEqual([]);
    // A pod nobody wrote a rule for reaches nothing and is reached by nothing.
    const stray = pod('stray');
    expect(allowed(stray, pod('auth-svc'), 3101)).toBe(false);
    expect(allowed(pod('gateway'), stray, 8080)).toBe(false);
    expect(allowed(stray, outside, 5432)).toBe(false);
  });

  test('service to service: exactly the calls the services make, on the callee’s port', () => {
    const wrong: string[] = [];
    for (const from of SERVICES)
      for (const to of SERVICES) {
        if (from === to) continue;
        const expected = CALLS[from].includes(to);
        if (allowed(pod(from), pod(to), PORTS[to]) !== expected) wrong.push(`${from} → ${to}: ${expected ? 'blocked' : 'allowed'}`);
        // never on another port
        if (allowed(pod(from), pod(to), 5432)) wrong.push(`${from} → ${to}:5432 allowed`);
      }
    expect(wrong).toEqual([]);
    // The ones the issue names.
    for (const s of ['gdpr-svc', 'admin-svc', 'credits-svc']) expect(allowed(pod(s), pod('auth-svc'), 3101), `${s} → auth`).toBe(true);
  });

  test('only the ingress controller reaches the gateway from outside, and nothing else from outside reaches a service', () => {
    expect(allowed(ingressController, pod('gateway'), 3001)).toBe(true);
    for (const s of SERVICES.filter((x) => x !== 'gateway')) expect(allowed(ingressController, pod(s), PORTS[s]), s).toBe(false);
    for (const s of SERVICES) expect(allowed(otherApp, pod(s), PORTS[s]), s).toBe(false);
    for (const s of SERVICES) expect(allowed(prometheus, pod(s), PORTS[s]), `Prometheus → ${s}`).toBe(true);
  });

  test('services reach PostgreSQL and RabbitMQ, the gateway Redis, and everyone DNS; nothing else leaves', () => {
    for (const s of SERVICES) {
      expect(allowed(pod(s), outside, 5432), `${s} → PostgreSQL`).toBe(true);
      expect(allowed(pod(s), outside, 5672), `${s} → RabbitMQ`).toBe(true);
      expect(allowed(pod(s), kubeDns, 53, 'UDP'), `${s} → DNS`).toBe(true);
      expect(allowed(pod(s), outside, 22), `${s} → ssh`).toBe(false);
      expect(allowed(pod(s), outside, 6379), `${s} → Redis`).toBe(s === 'gateway');
      expect(allowed(pod(s), outside, 443), `${s} → HTTPS`).toBe(s === 'credits-svc');
      expect(allowed(pod(s), outside, 587), `${s} → SMTP`).toBe(s === 'auth-svc');
    }
  });
});

test('the ConfigMap’s service URLs name the Services and their ports', () => {
  const config = ofKind<{ data: Record<string, string> }>('ConfigMap').find((c) => c.metadata.name === 'mana-auth-config');
  const urls: Record<string, string> = {
    AUTH_SVC_URL: 'auth-svc',
    VAULT_SVC_URL: 'vault-svc',
    GDPR_SVC_URL: 'gdpr-svc',
    ADMIN_SVC_URL: 'admin-svc',
    CREDITS_SVC_URL: 'credits-svc',
  };
  for (const [key, svc] of Object.entries(urls)) expect(config?.data[key], key).toBe(`http://${svc}.${NS}.svc:${PORTS[svc]}`);
});

describe('each Deployment’s environment passes its service’s own configuration check in production', () => {
  const LOADERS: Record<string, (env: Record<string, string | undefined>) => unknown> = {
    gateway: loadGatewayConfig,
    'auth-svc': authConfig,
    'vault-svc': vaultConfig,
    'gdpr-svc': gdprConfig,
    'admin-svc': adminConfig,
    'credits-svc': creditsConfig,
  };
  /** A value shaped like the real secret (the operator creates the Secret; see infra/k8s/README.md). */
  const secretValue = (key: string) => {
    if (key.endsWith('DATABASE_URL')) return 'postgres://role:pw@db.example.internal:5432/mana';
    if (key.endsWith('AMQP_URL')) return 'amqps://user:pw@mq.example.internal:5671';
    if (key === 'REDIS_URL') return 'redis://redis.example.internal:6379';
    if (key.includes('KEK')) return Buffer.alloc(32, 7).toString('base64');
    if (key === 'OIDC_CLIENTS') return '[]';
    return `secret-${key.toLowerCase()}-0123456789abcdef0123456789abcdef`;
  };
  const configMaps = ofKind<{ data: Record<string, string> }>('ConfigMap');

  test.each(SERVICES)('%s', (name) => {
    const dep = deployments.find((d) => d.metadata.name === name);
    const container = dep?.spec.template.spec.containers[0];
    const env: Record<string, string | undefined> = {};
    for (const from of container?.envFrom ?? [])
      Object.assign(env, configMaps.find((c) => c.metadata.name === from.configMapRef?.name)?.data);
    for (const v of container?.env ?? []) {
      const ref = v.valueFrom?.secretKeyRef;
      // An optional secret key may be absent: the service must start without it.
      env[v.name] = v.value ?? (ref ? (ref.optional ? undefined : secretValue(ref.key)) : undefined);
    }
    expect(env.NODE_ENV).toBe('production');
    expect(() => LOADERS[name](env)).not.toThrow();
  });
});
