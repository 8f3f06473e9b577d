import fc from 'fast-check';

/**
 * Requests for one OpenAPI operation that are wrong in one way each (issue 16, "Bad input"): wrong types, missing
 * and extra fields, huge strings and numbers, unicode, invalid JSON, wrong content types, odd path parameters.
 * Values are drawn from the operation's own JSON Schema (zod → JSON Schema in each service's openapi.ts, Better
 * Auth's generator for `/api/auth/*`), so most of a body is plausible and one part of it is not.
 */

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  format?: string;
}

export interface Operation {
  method: string;
  /** The OpenAPI path (`/a/{id}`). */
  path: string;
  access: string;
  params: Array<{ name: string; in: 'path' | 'query' | 'header' | 'cookie'; schema?: JsonSchema }>;
  /** The request body's media type and schema, when the operation takes one. */
  body?: { type: string; schema: JsonSchema };
}

export type AuthMode = 'valid' | 'none' | 'garbage' | 'forged';

export interface FuzzRequest {
  method: string;
  /** Path and query, ready to append to the gateway's URL. */
  url: string;
  headers: Record<string, string>;
  body?: string;
  auth: AuthMode;
  /** What was done to the request (in a failure report). */
  mutation: string;
}

/** Percent-encoding that survives lone surrogates (they become U+FFFD, as any UTF-8 encoder makes them). */
const enc = (s: string) => encodeURIComponent(Buffer.from(s, 'utf8').toString('utf8'));

const HUGE = 'A'.repeat(70_000);
/** Strings that broke parsers and queries elsewhere: unicode edge cases, SQL and path tricks, control characters. */
const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\r\n\t',
  '\ud800',
  '\udfff\ud800',
  '💥🧨'.repeat(50),
  'Ω≈ç√∫˜µ≤≥÷',
  '\u202e\u200b\ufeff',
  "' or 1=1 --",
  '"; drop table auth."user"; --',
  '../../etc/passwd',
  '%00%2e%2e%2f',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'NaN',
  '-0',
  '1e309',
  '9'.repeat(400),
  'x'.repeat(5_000),
];
const ODD_NUMBERS = [0, -1, -0, 1.5, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e308, Number.MIN_VALUE, 1.2345678901234568e29];

const oddString = fc.oneof(fc.constantFrom(...ODD_STRINGS), fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 12 }));
/** Any JSON value, of any type. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  oddString,
  fc.constantFrom(...ODD_NUMBERS),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(fc.integer(), oddString), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), oddString), { maxKeys: 3 }),
);

const firstType = (s: JsonSchema): string | undefined => {
  if (Array.isArray(s.type)) return s.type.find((t) => t !== 'null');
  if (s.type) return s.type;
  if (s.properties) return 'object';
  return undefined;
};
const branches = (s: JsonSchema) => s.anyOf ?? s.oneOf ?? s.allOf;

/** A value that fits the schema's shape (not necessarily every constraint): the plausible part of a request. */
export function plausible(s: JsonSchema | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!s || depth > 4) return anyJson;
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum?.length) return fc.constantFrom(...s.enum);
  const alts = branches(s);
  if (alts?.length) return fc.oneof(...alts.map((a) => plausible(a, depth + 1)));
  switch (firstType(s)) {
    case 'string':
      if (s.format === 'email') return fc.emailAddress();
      if (s.format === 'uuid') return fc.uuid();
      if (s.format === 'date-time') return fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.max(s.minLength ?? 0, Math.min(s.maxLength ?? 24, 24)) });
    case 'integer': {
      const min = Math.ceil(Math.max(s.minimum ?? -1000, -1e9));
      return fc.integer({ min, max: Math.max(min, Math.floor(Math.min(s.maximum ?? 1000, 1e9))) });
    }
    case 'number': {
      const min = s.minimum ?? -1000;
      return fc.double({ min, max: Math.max(min, s.maximum ?? 1000), noNaN: true });
    }
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(plausible(s.items, depth + 1), { maxLength: 3 });
    case 'object': {
      const props = Object.entries(s.properties ?? {});
      if (props.length === 0) return fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 2 });
      return fc.record(Object.fromEntries(props.map(([k, v]) => [k, plausible(v, depth + 1)])), {
        requiredKeys: (s.required ?? []).filter((k) => s.properties?.[k]),
      });
    }
    default:
      return anyJson;
  }
}

/** A value of another type than the schema's, or one past its bounds. */
function wrongValue(s: JsonSchema | undefined): fc.Arbitrary<unknown> {
  const t = s ? firstType(s) : undefined;
  const bounds: unknown[] = [];
  if (s?.maxLength !== undefined) bounds.push('y'.repeat(s.maxLength + 1));
  if (s?.minLength) bounds.push('y'.repeat(s.minLength - 1));
  if (s?.maximum !== undefined) bounds.push(s.maximum + 1, s.maximum * 1e6 + 1);
  if (s?.minimum !== undefined) bounds.push(s.minimum - 1, s.minimum - 0.5);
  const other = anyJson.filter((v) => jsonType(v) !== t && !(t === 'number' && jsonType(v) === 'integer'));
  return bounds.length ? fc.oneof(other, fc.constantFrom(...bounds)) : other;
}

const jsonType = (v: unknown) =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v === 'object' ? 'object' : typeof v;

/** A JSON object body with one field broken, or a body of the wrong type altogether; `[mutation, body]`. */
function jsonBody(schema: JsonSchema): fc.Arbitrary<[string, unknown]> {
  const props = Object.entries(schema.properties ?? {});
  const base = plausible(schema).map((v) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}));
  const variants: Array<fc.Arbitrary<[string, unknown]>> = [
    anyJson.map((v): [string, unknown] => ['body of another type', v]),
    fc.constant<[string, unknown]>(['empty object', {}]),
    fc
      .tuple(base, fc.constantFrom('__proto__', 'constructor', 'extra', 'x'.repeat(300)), anyJson)
      .map(([b, k, v]): [string, unknown] => [
        `extra field ${k.slice(0, 20)}`,
        JSON.parse(
          JSON.stringify({ ...b, [k === '__proto__' ? '__proto_placeholder__' : k]: v }).replace('__proto_placeholder__', '__proto__'),
        ),
      ]),
    fc.constant<[string, unknown]>(['deeply nested', JSON.parse('['.repeat(2_000) + ']'.repeat(2_000))]),
  ];
  if (props.length) {
    const key = fc.constantFrom(...props.map(([k]) => k));
    variants.push(
      fc
        .tuple(base, key)
        .chain(([b, k]) => wrongValue(schema.properties?.[k]).map((v): [string, unknown] => [`${k}: wrong value`, { ...b, [k]: v }])),
      fc
        .tuple(base, key, fc.constantFrom(HUGE, 2 ** 64, -1e300, '💥'.repeat(20_000)))
        .map(([b, k, v]): [string, unknown] => [`${k}: huge`, { ...b, [k]: v }]),
      fc.tuple(base, key, oddString).map(([b, k, v]): [string, unknown] => [`${k}: odd string`, { ...b, [k]: v }]),
    );
  }
  const required = schema.required ?? [];
  if (required.length)
    variants.push(
      fc.tuple(base, fc.constantFrom(...required)).map(([b, k]): [string, unknown] => {
        const copy = { ...b };
        delete copy[k];
        return [`missing ${k}`, copy];
      }),
    );
  return fc.oneof(...variants);
}

/** Bodies no JSON parser accepts, sent as application/json. */
const INVALID_JSON = [
  '{',
  '{"a":',
  "{'a':1}",
  '{"a":1,}',
  '[1,2',
  'NaN',
  'undefined',
  '{"a":"\\x00"}',
  '\u0000',
  '{"a":1}{"b":2}',
  '\ufeff{}',
  '{"a":"\ud800"}',
];

const oddSegment = fc.oneof(
  fc.constantFrom(
    '%00',
    '%',
    '%zz',
    '%E0%A4%A',
    '..%2F..%2Fetc',
    '%2e%2e',
    '💥',
    '%F0%9F%92%A5',
    ' ',
    '%20%20',
    "'%20or%201=1",
    'x'.repeat(3_000),
    '-1',
    '0',
    '1e999',
    'null',
    'undefined',
    '__proto__',
    '%5B%5D',
    ';',
  ),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).map((s) => enc(s)),
);

/** A query string built from the operation's parameters, each plausible, wrong, repeated or odd. */
function query(op: Operation): fc.Arbitrary<string> {
  const qs = op.params.filter((p) => p.in === 'query');
  if (!qs.length)
    return fc.oneof(
      fc.constant(''),
      oddString.map((v) => `?x=${enc(v)}`),
    );
  const one = (p: Operation['params'][number]) =>
    fc.oneof(
      plausible(p.schema).map((v) => [enc(typeof v === 'string' ? v : JSON.stringify(v))]),
      wrongValue(p.schema).map((v) => [enc(typeof v === 'string' ? v : JSON.stringify(v))]),
      oddString.map((v) => [enc(v)]),
      fc.constant(['1', '2']),
      fc.constant(['%', '%zz']),
    );
  return fc.tuple(...qs.map((p) => fc.option(one(p), { nil: undefined }))).map((vals) => {
    const parts = vals.flatMap((v, i) => (v ? v.map((x) => `${enc(qs[i]?.name ?? '')}=${x}`) : []));
    return parts.length ? `?${parts.join('&')}` : '';
  });
}

/** The body part of a request: `[mutation, content-type header or undefined, raw body or undefined]`. */
function rawBody(op: Operation): fc.Arbitrary<[string, string | undefined, string | undefined]> {
  const schema = op.body?.schema ?? {};
  const form = op.body?.type === 'application/x-www-form-urlencoded';
  const variants: Array<fc.Arbitrary<[string, string | undefined, string | undefined]>> = [
    jsonBody(schema).map(([m, v]): [string, string, string] => [
      m,
      form ? 'application/x-www-form-urlencoded' : 'application/json',
      form ? formOf(v) : JSON.stringify(v),
    ]),
    fc.constantFrom(...INVALID_JSON).map((b): [string, string, string] => [`invalid JSON ${JSON.stringify(b)}`, 'application/json', b]),
    fc
      .tuple(
        fc.constantFrom(
          'text/plain',
          'application/xml',
          'multipart/form-data; boundary=x',
          'application/x-www-form-urlencoded',
          'application/json; charset=utf-7',
          'application/octet-stream',
          '',
          '*/*',
          'application/json; charset=klingon',
        ),
        plausible(schema),
      )
      .map(([ct, v]): [string, string, string] => [`content type ${JSON.stringify(ct)}`, ct, JSON.stringify(v)]),
    fc.constant<[string, string | undefined, string | undefined]>(['no body', undefined, undefined]),
    fc.constant<[string, string, string]>(['body over the size limit', 'application/json', JSON.stringify({ a: 'z'.repeat(150_000) })]),
  ];
  return fc.oneof(...variants);
}

const formOf = (v: unknown) =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? new URLSearchParams(
        Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)] as [string, string]),
      ).toString()
    : enc(JSON.stringify(v));

/**
 * Requests for one operation. `destructive` operations (state changes that take no input, e.g. logout) are sent
 * without valid credentials only: with them there is nothing to validate and the call would simply succeed.
 */
export function requestsFor(op: Operation, opts: { destructive: boolean }): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.params.filter((p) => p.in === 'path');
  const path = fc
    .tuple(
      ...pathParams.map((p) =>
        fc.oneof(
          oddSegment,
          plausible(p.schema).map((v) => enc(String(v))),
        ),
      ),
    )
    .map((segs) => pathParams.reduce((acc, p, i) => acc.replace(`{${p.name}}`, segs[i] ?? 'x'), op.path));
  const hasBody = op.method !== 'GET' && op.method !== 'DELETE';
  const auth: fc.Arbitrary<AuthMode> =
    op.access === 'public' || opts.destructive
      ? fc.constantFrom<AuthMode>('none', 'garbage', 'forged')
      : fc.constantFrom<AuthMode>('valid', 'valid', 'valid', 'valid', 'valid', 'none', 'garbage', 'forged');
  const headerNoise = fc.option(
    fc.constantFrom<Record<string, string>>(
      { 'idempotency-key': 'x'.repeat(600) },
      { 'idempotency-key': Buffer.from('💥 ключ').toString('latin1') },
      { 'x-request-id': 'x'.repeat(2_000) },
      { accept: 'text/html' },
      { 'content-length-ignored': '1' },
      { origin: 'https://evil.example' },
    ),
    { nil: undefined },
  );
  const body = hasBody
    ? rawBody(op)
    : fc.oneof(
        fc.constant<[string, undefined, undefined]>(['no body', undefined, undefined]),
        fc.constant<[string, string, undefined]>(['content type without a body', 'application/json', undefined]),
      );
  return fc
    .record({ path, q: query(op), auth, body, extra: headerNoise })
    .map(({ path: p, q, auth: a, body: [mutation, ct, raw], extra }) => {
      const headers: Record<string, string> = { ...extra };
      if (ct !== undefined) headers['content-type'] = ct;
      return { method: op.method, url: `${p}${q}`, headers, body: op.method === 'GET' ? undefined : raw, auth: a, mutation };
    });
}
