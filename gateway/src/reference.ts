import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { AppError, openApiFragment, SECURITY_SCHEMES, type ApiOperation, type OpenApiDocument } from '@mana/shared';
import { setRoute } from './front';
import type { UpstreamName } from './routes';
import type { UpstreamPool } from './upstream';

/**
 * The API reference: every service serves its part at `GET /openapi.json` (built from the zod schemas its
 * routes parse, not routed through the gateway); the gateway merges them with its own endpoints into
 * `/openapi.json` and renders it at `/docs` with Redoc's standalone bundle from node_modules (no CDN).
 */

const SERVICES: ReadonlyArray<[UpstreamName, string]> = [
  ['auth', 'auth-svc'],
  ['vault', 'vault-svc'],
  ['gdpr', 'gdpr-svc'],
  ['admin', 'admin-svc'],
  ['credits', 'credits-svc'],
];
/** A part older than this is fetched again (a rolling upgrade changes it); a failed fetch keeps the old one. */
const FRESH_MS = 60_000;
const FETCH_TIMEOUT_MS = 5_000;
const RETRY_MS = 10_000;
const REDOC_PATH = '/docs/redoc.standalone.js';

/** The gateway's own endpoints. */
export const gatewayApi: readonly ApiOperation[] = [
  { method: 'get', path: '/healthz', access: 'public', summary: 'The gateway process is alive', responses: { 200: '`{ status: "ok" }`' } },
  {
    method: 'get',
    path: '/readyz',
    access: 'public',
    summary: 'Ready: bus, rate-limit store and revocation list reachable (503 while draining)',
    responses: { 200: '`{ status: "ready", checks }`', 503: '`{ status: "not_ready" | "shutting_down", checks }`' },
  },
  {
    method: 'get',
    path: '/metrics',
    access: 'public',
    summary: 'Prometheus metrics (`Authorization: Bearer <METRICS_TOKEN>` when it is set)',
    responses: { 200: { description: 'Prometheus text format', contentType: 'text/plain' } },
    errors: { 401: ['TOKEN_INVALID'] },
  },
  {
    method: 'get',
    path: '/openapi.json',
    access: 'public',
    summary: 'This document (OpenAPI 3.1)',
    responses: { 200: 'OpenAPI document' },
    errors: { 503: ['REFERENCE_UNAVAILABLE'] },
  },
  {
    method: 'get',
    path: '/docs',
    access: 'public',
    summary: 'This document, rendered (Redoc)',
    responses: { 200: { description: 'HTML page', contentType: 'text/html' } },
  },
  {
    method: 'get',
    path: REDOC_PATH,
    access: 'public',
    summary: 'The renderer of /docs (Redoc standalone bundle)',
    responses: { 200: { description: 'JavaScript', contentType: 'application/javascript' } },
  },
];

/** /docs only: Redoc's script from here, its styles inline (styled-components), its search worker from a blob. */
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mana Auth API</title>
</head>
<body>
<redoc spec-url="/openapi.json" hide-hostname="true" required-props-first="true" sort-required-props-first="true"></redoc>
<script src="${REDOC_PATH}"></script>
</body>
</html>
`;

interface Part {
  doc: OpenApiDocument;
  at: number;
}

/** The merged document, kept while every part is the same object (most requests: no merge, no fetch). */
interface Merged {
  parts: readonly OpenApiDocument[];
  doc: OpenApiDocument;
}

export interface ApiReference {
  document: () => Promise<OpenApiDocument>;
}

/** Collects and merges the services' parts, each cached for a minute. */
export function createApiReference(opts: { pools: Record<UpstreamName, UpstreamPool>; baseUrl: string; logger: Logger }): ApiReference {
  const parts = new Map<UpstreamName, Part>();
  // One fetch per service at a time: requests arriving while a part is being refreshed wait for it.
  const inflight = new Map<UpstreamName, Promise<OpenApiDocument>>();
  const own = openApiFragment({
    service: 'gateway',
    description: 'The public entry point: health, metrics and this reference.',
    operations: gatewayApi,
  });
  let merged: Merged | undefined;

  const fetchPart = async (name: UpstreamName): Promise<OpenApiDocument> => {
    let last: unknown;
    for (const instance of opts.pools[name].order()) {
      try {
        const res = await fetch(`${instance.url.replace(/\/+$/, '')}/openapi.json`, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
        if (!res.ok) throw new Error(`status ${res.status}`);
        return (await res.json()) as OpenApiDocument;
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof Error ? last : new Error('no instance');
  };

  const part = (name: UpstreamName, service: string): Promise<OpenApiDocument> => {
    const cached = parts.get(name);
    if (cached && Date.now() - cached.at < FRESH_MS) return Promise.resolve(cached.doc);
    let pending = inflight.get(name);
    if (!pending) {
      pending = refresh(name, service, cached).finally(() => inflight.delete(name));
      inflight.set(name, pending);
    }
    return pending;
  };

  const refresh = async (name: UpstreamName, service: string, cached: Part | undefined): Promise<OpenApiDocument> => {
    try {
      const doc = await fetchPart(name);
      parts.set(name, { doc, at: Date.now() });
      return doc;
    } catch (err) {
      opts.logger.warn({ service, err: (err as Error).message }, 'API reference: could not fetch a service’s part');
      if (cached) {
        // Keep serving the last part; ask again in a little while, not on every request.
        parts.set(name, { doc: cached.doc, at: Date.now() - FRESH_MS + RETRY_MS });
        return cached.doc;
      }
      throw new AppError('REFERENCE_UNAVAILABLE', 503, `The API reference of ${service} is unavailable; try again shortly`, {
        expose: true,
      });
    }
  };

  return {
    document: async () => {
      const docs = [own, ...(await Promise.all(SERVICES.map(([name, service]) => part(name, service))))];
      if (!merged || merged.parts.some((p, i) => p !== docs[i])) merged = { parts: docs, doc: mergeDocuments(docs, opts.baseUrl) };
      return merged.doc;
    },
  };
}

/** One OpenAPI 3.1 document from the parts; a path two parts both describe is a bug the test reports. */
export function mergeDocuments(parts: readonly OpenApiDocument[], baseUrl: string): OpenApiDocument {
  const doc: OpenApiDocument = {
    openapi: '3.1.1',
    info: {
      title: 'Mana Auth API',
      version: '1',
      description:
        'Every public and internal route of the Mana Auth gateway and its services, generated from the zod schemas the routes validate with. ' +
        'Errors are `{ error, message, requestId }` with a stable UPPER_SNAKE `error` code. Internal routes (`/api/v1/internal/*`) need `X-Service-Key` and are for backends only.',
    },
    servers: [{ url: baseUrl }],
    tags: [],
    paths: {},
    components: { schemas: {}, securitySchemes: { ...SECURITY_SCHEMES } },
  };
  for (const part of parts) {
    for (const tag of part.tags ?? []) if (!doc.tags?.some((t) => t.name === tag.name)) doc.tags?.push(tag);
    for (const [path, item] of Object.entries(part.paths)) doc.paths[path] = { ...doc.paths[path], ...item };
    Object.assign(doc.components.schemas, part.components.schemas);
    Object.assign(doc.components.securitySchemes ?? {}, part.components.securitySchemes);
  }
  return doc;
}

/** `/openapi.json`, `/docs` and the renderer's script on the gateway's Express app. */
export function mountReference(app: Express, reference: ApiReference): void {
  const redoc = readFileSync(createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js'));
  app.get('/openapi.json', async (_req, res) => {
    setRoute(res, 'gateway');
    res.set('Cache-Control', 'no-cache').json(await reference.document());
  });
  app.get('/docs', (_req, res) => {
    setRoute(res, 'gateway');
    res.set('Content-Security-Policy', DOCS_CSP).set('Cache-Control', 'no-cache').type('html').send(DOCS_HTML);
  });
  app.get(REDOC_PATH, (_req, res) => {
    setRoute(res, 'gateway');
    res.set('Cache-Control', 'public, max-age=86400').type('application/javascript').send(redoc);
  });
}
