import type { RequestHandler } from 'express';
import { z } from 'zod';

/**
 * The API reference is generated from the zod schemas the routes validate with: each service lists its
 * routes once (`<svc>/src/routes/openapi.ts`, reusing the route files' schemas), serves the fragment at
 * `GET /openapi.json` (service-local, not routed by the gateway), and the gateway merges the fragments
 * into the public document (`/openapi.json`, rendered at `/docs`). `test/e2e/openapi.test.ts` fails when
 * a route has no entry or an entry no route.
 */

/** Who may call, as the gateway's route table enforces it (public, bearer JWT, admin JWT, X-Service-Key). */
export type ApiAccess = 'public' | 'bearer' | 'admin' | 'service';
export type ApiMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ApiResponse {
  description: string;
  schema?: z.ZodType;
  /** Default `application/json` (with `schema`: its JSON Schema; without: any JSON). */
  contentType?: string;
}

export interface ApiOperation {
  method: ApiMethod;
  /** The Express path as mounted, `/api/v1/auth/sessions/:id`. */
  path: string;
  summary: string;
  description?: string;
  access: ApiAccess;
  /** Needs a recent sign-in or `POST /api/v1/auth/reauth` (401 `REAUTH_REQUIRED`). */
  stepUp?: boolean;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Default `application/json`. */
  bodyType?: string;
  /** Request headers the route reads (`Idempotency-Key`, `Stripe-Signature`…). */
  headers?: Record<string, { description: string; required?: boolean }>;
  /** Success answers by status. */
  responses: Record<number, string | ApiResponse>;
  /** Error codes (the service README's) by status, besides the ones `access`, `stepUp` and the schemas imply. */
  errors?: Record<number, string[]>;
  tags?: string[];
}

export interface ApiFragment {
  /** `auth-svc`, `vault-svc`…, the tag of every operation unless it names its own. */
  service: string;
  description: string;
  operations: readonly ApiOperation[];
}

/** The JSON shapes of an OpenAPI 3.1 document this project writes and reads (a subset). */
export type JsonSchema = Record<string, unknown>;
export interface OpenApiOperation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  parameters?: JsonSchema[];
  requestBody?: JsonSchema;
  responses: Record<string, JsonSchema>;
  'x-mana-service'?: string;
  'x-mana-access'?: ApiAccess;
  [extension: `x-${string}`]: unknown;
}
export type OpenApiPaths = Record<string, Partial<Record<ApiMethod, OpenApiOperation>>>;
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  servers?: Array<{ url: string; description?: string }>;
  tags?: Array<{ name: string; description?: string }>;
  paths: OpenApiPaths;
  components: { schemas: Record<string, JsonSchema>; securitySchemes?: Record<string, JsonSchema> };
  [key: string]: unknown;
}

/** `{ error, message, requestId, details? }`: every error answer of every service and the gateway. */
export const errorResponseSchema = z.object({
  error: z.string().describe('stable UPPER_SNAKE code to switch on'),
  message: z.string().describe('human-readable; never internal detail on a 5xx'),
  requestId: z.string().describe('the X-Request-Id of the request'),
  details: z
    .array(z.object({ path: z.string(), message: z.string() }))
    .optional()
    .describe('the failing fields (VALIDATION_FAILED)'),
});

export const SECURITY_SCHEMES: Record<string, JsonSchema> = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      'EdDSA access token from `/api/v1/auth/login` or `/refresh` (15 minutes), or a personal API key `mana_…` that the gateway exchanges for one.',
  },
  serviceKey: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Service-Key',
    description: '`MANA_SERVICE_KEY`: backends only, never a browser.',
  },
};

const SECURITY: Record<ApiAccess, Array<Record<string, string[]>>> = {
  public: [],
  bearer: [{ bearerAuth: [] }],
  admin: [{ bearerAuth: [] }],
  service: [{ serviceKey: [] }],
};

/** zod → JSON Schema 2020-12 (what OpenAPI 3.1 uses) of what a client sends: transforms and refinements drop out. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'input'): JsonSchema {
  const json = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    override: (ctx) => {
      // Dates travel as ISO-8601 strings (`z.coerce.date()` accepts them).
      if (ctx.zodSchema._zod.def.type === 'date') Object.assign(ctx.jsonSchema, { type: 'string', format: 'date-time' });
    },
  }) as JsonSchema;
  delete json.$schema;
  return json;
}

/** `/a/:id/b` → `/a/{id}/b`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parametersOf(op: ApiOperation): JsonSchema[] {
  const out: JsonSchema[] = [];
  const params = op.params ? jsonSchemaOf(op.params) : undefined;
  const paramProps = (params?.properties ?? {}) as Record<string, JsonSchema>;
  for (const [, name] of op.path.matchAll(/:([A-Za-z0-9_]+)/g))
    out.push({ name, in: 'path', required: true, schema: paramProps[name] ?? { type: 'string' } });
  if (op.query) {
    const query = jsonSchemaOf(op.query);
    const required = new Set((query.required ?? []) as string[]);
    for (const [name, schema] of Object.entries((query.properties ?? {}) as Record<string, JsonSchema>))
      out.push({ name, in: 'query', required: required.has(name), schema });
  }
  for (const [name, h] of Object.entries(op.headers ?? {}))
    out.push({ name, in: 'header', required: h.required ?? false, description: h.description, schema: { type: 'string' } });
  return out;
}

/** The error answers an operation can give, by status. */
function errorCodes(op: ApiOperation): Map<number, Set<string>> {
  const codes = new Map<number, Set<string>>();
  const add = (status: number, ...list: string[]) => {
    const set = codes.get(status) ?? new Set<string>();
    for (const c of list) set.add(c);
    codes.set(status, set);
  };
  if (op.params || op.query || op.body) add(400, 'VALIDATION_FAILED');
  if (op.access === 'bearer' || op.access === 'admin') add(401, 'TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'TOKEN_REVOKED');
  if (op.access === 'admin') add(403, 'FORBIDDEN');
  if (op.access === 'service') {
    add(401, 'SERVICE_KEY_MISSING');
    add(403, 'SERVICE_KEY_INVALID');
  }
  if (op.stepUp) add(401, 'REAUTH_REQUIRED');
  for (const [status, list] of Object.entries(op.errors ?? {})) add(Number(status), ...list);
  return codes;
}

function responseOf(r: string | ApiResponse): JsonSchema {
  const { description, schema, contentType = 'application/json' } = typeof r === 'string' ? { description: r } : r;
  return { description, content: { [contentType]: { schema: schema ? jsonSchemaOf(schema, 'output') : {} } } };
}

function operationOf(fragment: ApiFragment, op: ApiOperation): OpenApiOperation {
  const responses: Record<string, JsonSchema> = {};
  for (const [status, r] of Object.entries(op.responses)) responses[status] = responseOf(r);
  for (const [status, codes] of [...errorCodes(op)].sort(([a], [b]) => a - b)) {
    const list = [...codes];
    responses[String(status)] = {
      description: list.join(', '),
      content: {
        'application/json': {
          schema: { allOf: [{ $ref: '#/components/schemas/Error' }, { properties: { error: { enum: list } } }] },
        },
      },
    };
  }
  const stepUp = op.stepUp ? ' Needs a recent sign-in (`POST /api/v1/auth/reauth`).' : '';
  const admin = op.access === 'admin' ? ' The token must carry `role: admin`.' : '';
  const description = `${op.description ?? ''}${admin}${stepUp}`.trim();
  return {
    operationId: `${op.method}${openApiPath(op.path)
      .split(/[^A-Za-z0-9]+/)
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('')}`,
    summary: op.summary,
    ...(description ? { description } : {}),
    tags: op.tags ?? [fragment.service],
    security: SECURITY[op.access],
    parameters: parametersOf(op),
    ...(op.body
      ? { requestBody: { required: true, content: { [op.bodyType ?? 'application/json']: { schema: jsonSchemaOf(op.body) } } } }
      : {}),
    responses,
    'x-mana-service': fragment.service,
    'x-mana-access': op.access,
  };
}

/** One service's part of the reference: an OpenAPI 3.1 document with only its paths. */
export function openApiFragment(fragment: ApiFragment, extraPaths: OpenApiPaths = {}): OpenApiDocument {
  const paths: OpenApiPaths = {};
  for (const op of fragment.operations) {
    const path = openApiPath(op.path);
    const item = (paths[path] ??= {});
    if (item[op.method]) throw new Error(`${fragment.service}: ${op.method.toUpperCase()} ${op.path} is listed twice`);
    item[op.method] = operationOf(fragment, op);
  }
  for (const [path, item] of Object.entries(extraPaths)) paths[path] = { ...paths[path], ...item };
  return {
    openapi: '3.1.1',
    info: { title: fragment.service, version: '1', description: fragment.description },
    tags: [{ name: fragment.service, description: fragment.description }],
    paths,
    components: { schemas: { Error: jsonSchemaOf(errorResponseSchema, 'output') }, securitySchemes: SECURITY_SCHEMES },
  };
}

/** `GET /openapi.json` of a service: its fragment, built once on first use (auth-svc's needs Better Auth started). */
export function openApiHandler(build: () => OpenApiDocument | Promise<OpenApiDocument>): RequestHandler {
  let doc: Promise<OpenApiDocument> | undefined;
  return async (_req, res) => {
    doc ??= Promise.resolve(build()).catch((err: unknown) => {
      doc = undefined;
      throw err;
    });
    res.set('Cache-Control', 'no-cache').json(await doc);
  };
}
