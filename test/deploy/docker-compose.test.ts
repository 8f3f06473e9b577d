import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { loadServiceConfig as adminConfig } from '../../admin-svc/src/config';
import { loadServiceConfig as authConfig } from '../../auth-svc/src/config';
import { loadServiceConfig as creditsConfig } from '../../credits-svc/src/config';
import { loadGatewayConfig } from '../../gateway/src/config';
import { loadServiceConfig as gdprConfig } from '../../gdpr-svc/src/config';
import { loadServiceConfig as vaultConfig } from '../../vault-svc/src/config';

/**
 * docker-compose.yml, checked: `docker-compose config` (Debian's docker-compose, installed by .ci/run) when
 * it is on the PATH, and always what the file must mean — every process with a readiness healthcheck, a
 * restart policy and resource limits, and an environment its own config accepts in production.
 */

const FILE = new URL('../../docker-compose.yml', import.meta.url);
const source = readFileSync(FILE, 'utf8');

/** A value for each variable the file requires (`${NAME:?…}`), shaped like the real one. */
function dummyEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [, name] of source.matchAll(/\$\{([A-Z0-9_]+):\?/g))
    env[name] = name.includes('KEK')
      ? Buffer.alloc(32, 7).toString('base64')
      : `dummy-${name.toLowerCase().replace(/_/g, '-')}-0123456789abcdef0123456789`;
  return env;
}

/** Compose's interpolation: `${X}`, `${X:-default}`, `${X-default}`, `${X:?error}`, `$$`. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(
    /\$\$|\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g,
    (whole, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (whole === '$$') return '$';
      const value = env[name ?? ''];
      const set = op?.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
      if (set) return value ?? '';
      if (op?.endsWith('?')) throw new Error(`${name}: ${arg}`);
      return op?.endsWith('-') ? (arg ?? '') : '';
    },
  );
}

interface ComposeService {
  image?: string;
  restart?: string;
  environment?: Record<string, string | number | boolean | null>;
  healthcheck?: { test: string[] | string; disable?: boolean };
  deploy?: { resources?: { limits?: { cpus?: string; memory?: string } } };
}
const compose = YAML.parse(interpolate(source, dummyEnv()), { merge: true }) as { services: Record<string, ComposeService> };

const APPS: Record<string, (env: Record<string, string | undefined>) => unknown> = {
  gateway: loadGatewayConfig,
  'auth-svc': authConfig,
  'vault-svc': vaultConfig,
  'gdpr-svc': gdprConfig,
  'admin-svc': adminConfig,
  'credits-svc': creditsConfig,
};

const hasCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;

test.skipIf(!hasCompose)('`docker-compose config` accepts the file (with every required variable set)', () => {
  const env = { ...process.env, ...dummyEnv() };
  execFileSync('docker-compose', ['-f', FILE.pathname, 'config', '-q'], { env, stdio: 'pipe' });
  // …and refuses it when a required secret is missing.
  const missing = { ...env, MANA_SERVICE_KEY: '' };
  const refused = spawnSync('docker-compose', ['-f', FILE.pathname, 'config', '-q'], { env: missing, encoding: 'utf8' });
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toContain('MANA_SERVICE_KEY');
});

test('every container restarts on failure and has resource limits', () => {
  const problems: string[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    if (!['always', 'unless-stopped', 'on-failure'].includes(svc.restart ?? '')) problems.push(`${name}: restart policy`);
    if (!svc.deploy?.resources?.limits?.memory || !svc.deploy.resources.limits.cpus)
      problems.push(`${name}: deploy.resources.limits (cpus, memory)`);
  }
  expect(problems).toEqual([]);
});

describe.each(Object.entries(APPS))('%s', (name, loadConfig) => {
  const svc = () => {
    const s = compose.services[name];
    if (!s) throw new Error(`no service ${name} in docker-compose.yml`);
    return s;
  };
  const environment = () =>
    Object.fromEntries(Object.entries(svc().environment ?? {}).map(([k, v]) => [k, v === null || v === undefined ? undefined : String(v)]));

  test('healthcheck is readiness (/readyz) on its own port', () => {
    const check = svc().healthcheck;
    expect(check?.disable).not.toBe(true);
    const cmd = Array.isArray(check?.test) ? check.test.join(' ') : (check?.test ?? '');
    expect(cmd).toContain('/readyz');
    // The probe finds the port from SERVICE and the port variable: both must be set.
    const env = environment();
    expect(env.SERVICE).toBe(name);
    const portVar = name === 'gateway' ? 'PORT' : `${name.replace(/-svc$/, '').toUpperCase()}_SVC_PORT`;
    expect(env[portVar], portVar).toMatch(/^\d+$/);
    expect(cmd).toContain(portVar);
  });

  test('its environment passes its own configuration check in production', () => {
    const env = environment();
    expect(env.NODE_ENV).toBe('production');
    expect(() => loadConfig(env)).not.toThrow();
  });
});
