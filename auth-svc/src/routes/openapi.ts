import { openAPI } from 'better-auth/plugins';
import { z } from 'zod';
import { openApiFragment, type ApiOperation, type OpenApiDocument, type OpenApiOperation, type OpenApiPaths } from '@mana/shared';
import type { Auth } from '../auth/auth';
import { forgotForm, resetForm, signUpForm } from '../pages/account-pages';
import { magicLinkForm } from '../pages/magic-link-pages';
import { passkeyLoginForm } from '../pages/passkey-pages';
import { codeForm, consentForm, loginForm } from '../pages/router';
import { exchangeBody } from './internal-api-keys';
import { banBody, pageQuery, params as internalUserParams, roleBody, actorBody } from './internal-admin';
import { sessionParams as authTimeParams } from './internal-auth-time';
import { unlockBody } from './internal-lockout';
import { memberParams } from './internal-org';
import { userParams } from './internal';
import { createBody as apiKeyBody, keyParams as apiKeyParams } from './v1-api-keys';
import { loginBody, refreshBody, registerBody, validateBody } from './v1-auth';
import { reauthBody } from './v1-reauth';
import { listQuery as securityEventsQuery } from './v1-security-events';
import { sessionParams } from './v1-sessions';
import { codeBody, disableBody, passwordBody, secondFactorBody } from './v1-two-factor';

/**
 * What the token API answers, as documented. The routes build these shapes in `domain/views.ts` and
 * `v1-sign-in.ts`; test/e2e/openapi.test.ts parses real answers with them, so the reference cannot drift.
 */
const iso = z.iso.datetime({ offset: true });
export const userView = z.strictObject({
  id: z.string(),
  email: z.email(),
  name: z.string(),
  emailVerified: z.boolean(),
  image: z.string().nullable(),
  role: z.string(),
  locale: z.string().nullable(),
  createdAt: iso,
  updatedAt: iso,
});
export const sessionView = z.strictObject({
  id: z.string(),
  deviceId: z.string().nullable(),
  deviceName: z.string().nullable(),
  ipAddress: z.string().nullable(),
  userAgent: z.string().nullable(),
  createdAt: iso,
  lastUsedAt: iso,
  expiresAt: iso,
  current: z.boolean().describe('this is the session of the token that asked'),
});
export const tokenPairResponse = z.strictObject({
  user: userView,
  accessToken: z.string().describe('EdDSA JWT, 15 minutes: `Authorization: Bearer …` on every bearer route'),
  refreshToken: z.string().describe('opaque, single use: POST /api/v1/auth/refresh'),
  expiresIn: z.number().int().describe('seconds the access token lives'),
  tokenType: z.literal('Bearer'),
  trustDeviceToken: z.string().optional().describe('after a second factor with `trustDevice`: send it with the next login'),
});
export const twoFactorChallengeResponse = z.strictObject({
  twoFactorRequired: z.literal(true),
  challenge: z.string().describe('for POST /api/v1/auth/login/2fa'),
  expiresIn: z.number().int(),
});
export const sessionResponse = z.strictObject({ user: userView, session: sessionView });
export const sessionsResponse = z.strictObject({ sessions: z.array(sessionView) });

const A = '/api/v1/auth';
const I = '/api/v1/internal';
const PAIR = { description: 'a token pair', schema: tokenPairResponse };
const FORM = 'application/x-www-form-urlencoded';
const html = (description: string) => ({ description, contentType: 'text/html' });
const page = (path: string, summary: string): ApiOperation => ({
  method: 'get',
  path,
  access: 'public',
  summary,
  tags: ['hosted pages'],
  responses: { 200: html('the page') },
});
const form = (path: string, summary: string, body: ApiOperation['body']): ApiOperation => ({
  method: 'post',
  path,
  access: 'public',
  summary,
  tags: ['hosted pages'],
  body,
  bodyType: FORM,
  responses: { 200: html('the page again, with the outcome'), 303: 'on to the next step (the relying party, consent, second factor)' },
});

/** Every Express route of auth-svc, with the schemas the routes parse; Better Auth's own come from its openAPI generator. */
export const authApi: readonly ApiOperation[] = [
  // The simple token API (mobile apps, CLIs, backends acting for a user).
  {
    method: 'post',
    path: `${A}/register`,
    access: 'public',
    summary: 'Create an account (a verification mail goes out)',
    body: registerBody,
    responses: {
      201: {
        description: 'the account (the same shape when the email is already taken: no enumeration)',
        schema: z.strictObject({ user: userView }),
      },
    },
    errors: { 400: ['PASSWORD_TOO_SHORT', 'PASSWORD_TOO_LONG', 'PASSWORD_TOO_COMMON'] },
  },
  {
    method: 'post',
    path: `${A}/login`,
    access: 'public',
    summary: 'Sign in with email and password: a token pair, or a second-factor challenge',
    body: loginBody,
    responses: {
      200: {
        description: 'a token pair, or a second-factor challenge (then POST /login/2fa)',
        schema: z.union([tokenPairResponse, twoFactorChallengeResponse]),
      },
    },
    errors: { 401: ['INVALID_CREDENTIALS'], 403: ['ACCOUNT_BANNED', 'EMAIL_NOT_VERIFIED'] },
  },
  {
    method: 'post',
    path: `${A}/login/2fa`,
    access: 'public',
    summary: 'Second step of a login: a TOTP or backup code for the challenge',
    body: secondFactorBody,
    responses: { 200: PAIR },
    errors: { 401: ['INVALID_CHALLENGE', 'INVALID_TWO_FACTOR_CODE'] },
  },
  {
    method: 'post',
    path: `${A}/refresh`,
    access: 'public',
    summary: 'Trade a refresh token for a new pair (single use; reuse ends the session)',
    body: refreshBody,
    responses: { 200: PAIR },
    errors: { 401: ['INVALID_REFRESH_TOKEN', 'REFRESH_TOKEN_REUSED'] },
  },
  {
    method: 'post',
    path: `${A}/validate`,
    access: 'public',
    summary: 'Check an access token (signature, expiry, live session)',
    body: validateBody,
    responses: { 200: '`{ valid: true, payload }` or `{ valid: false, error }`' },
  },
  {
    method: 'post',
    path: `${A}/logout`,
    access: 'bearer',
    summary: 'End this session (every gateway refuses its tokens at once)',
    responses: { 200: '`{ success: true }`' },
  },
  {
    method: 'get',
    path: `${A}/session`,
    access: 'bearer',
    summary: 'The caller and this session',
    responses: { 200: { description: 'the caller and this session', schema: sessionResponse } },
  },
  {
    method: 'get',
    path: `${A}/sessions`,
    access: 'bearer',
    summary: 'The caller’s live sessions (devices)',
    responses: { 200: { description: 'the live sessions', schema: sessionsResponse } },
  },
  {
    method: 'delete',
    path: `${A}/sessions/:id`,
    access: 'bearer',
    summary: 'End one of the caller’s sessions',
    params: sessionParams,
    responses: { 200: '`{ success: true }`' },
    errors: { 404: ['SESSION_NOT_FOUND'] },
  },
  {
    method: 'delete',
    path: `${A}/sessions`,
    access: 'bearer',
    summary: 'End every other session of the caller',
    responses: { 200: '`{ success: true, revoked }`' },
  },
  {
    method: 'post',
    path: `${A}/reauth`,
    access: 'bearer',
    summary: 'Step-up: confirm the password or a second-factor code',
    body: reauthBody,
    responses: { 200: '`{ reauthenticatedAt }`' },
    errors: { 400: ['TWO_FACTOR_NOT_ENABLED'], 401: ['REAUTH_FAILED'] },
  },
  {
    method: 'get',
    path: `${A}/security-events`,
    access: 'bearer',
    summary: 'The caller’s own audit trail, newest first',
    query: securityEventsQuery,
    responses: { 200: '`{ events, nextCursor }`' },
    errors: { 400: ['INVALID_CURSOR'] },
  },
  {
    method: 'post',
    path: `${A}/2fa/enable`,
    access: 'bearer',
    summary: 'Start TOTP enrolment (then /2fa/verify)',
    body: passwordBody,
    responses: { 200: '`{ totpURI, backupCodes }`' },
  },
  {
    method: 'post',
    path: `${A}/2fa/verify`,
    access: 'bearer',
    summary: 'Confirm enrolment with a first code',
    body: codeBody,
    responses: { 200: '`{ status: true, tokens? }` (a pair for the successor session)' },
  },
  {
    method: 'post',
    path: `${A}/2fa/backup-codes`,
    access: 'bearer',
    summary: 'New backup codes (the old ones stop working)',
    body: passwordBody,
    responses: { 200: '`{ status: true, backupCodes }`' },
  },
  {
    method: 'post',
    path: `${A}/2fa/disable`,
    access: 'bearer',
    stepUp: true,
    summary: 'Turn two-factor off with the password or a code',
    body: disableBody,
    responses: { 200: '`{ status: true, tokens? }`' },
  },

  {
    method: 'post',
    path: `${A}/api-keys`,
    access: 'bearer',
    stepUp: true,
    summary: 'Create a personal API key (`mana_…`, shown once) with route-prefix scopes',
    body: apiKeyBody,
    responses: { 201: 'the key, its id, name, scopes and expiry' },
    errors: { 403: ['FORBIDDEN', 'ACCOUNT_BANNED'], 409: ['API_KEY_LIMIT'] },
  },
  {
    method: 'get',
    path: `${A}/api-keys`,
    access: 'bearer',
    summary: 'The caller’s API keys (never the key itself)',
    responses: { 200: '`{ apiKeys }`' },
  },
  {
    method: 'delete',
    path: `${A}/api-keys/:id`,
    access: 'bearer',
    summary: 'Revoke an API key (refused everywhere at once)',
    params: apiKeyParams,
    responses: { 200: '`{ success: true }`' },
    errors: { 404: ['API_KEY_NOT_FOUND'] },
  },

  // Discovery and keys.
  {
    method: 'get',
    path: '/.well-known/jwks.json',
    access: 'public',
    summary: 'Public keys of the access tokens (JWKS)',
    tags: ['OIDC'],
    responses: { 200: 'JWKS' },
  },
  {
    method: 'get',
    path: '/.well-known/openid-configuration',
    access: 'public',
    summary: 'OpenID Connect discovery',
    tags: ['OIDC'],
    responses: { 200: 'provider metadata' },
  },
  {
    method: 'get',
    path: '/.well-known/oauth-authorization-server',
    access: 'public',
    summary: 'OAuth 2.0 authorization server metadata',
    tags: ['OIDC'],
    responses: { 200: 'server metadata' },
  },

  // Hosted pages of the OIDC provider (browsers; forms carry a CSRF token).
  page('/auth/style.css', 'Stylesheet of the hosted pages'),
  page('/auth/login', 'Sign-in page (OIDC authorize sends browsers here)'),
  form('/auth/login', 'Sign in', loginForm),
  page('/auth/login/2fa', 'Second-factor page'),
  form('/auth/login/2fa', 'Submit a TOTP or backup code', codeForm),
  page('/auth/consent', 'Consent page of a third-party relying party'),
  form('/auth/consent', 'Grant or deny consent', consentForm),
  form('/auth/login/magic-link', 'Mail a sign-in link', magicLinkForm),
  page('/auth/login/continue', 'Where a magic link lands; continues the OIDC flow'),
  {
    method: 'get',
    path: '/auth/passkey.js',
    access: 'public',
    summary: "Script of the passkey sign-in on the login page (served under script-src 'self')",
    tags: ['hosted pages'],
    responses: { 200: { description: 'JavaScript', contentType: 'text/javascript' } },
  },
  form('/auth/login/passkey', 'Finish a passkey sign-in (the WebAuthn assertion from passkey.js)', passkeyLoginForm),
  page('/auth/sign-up', 'Sign-up page'),
  form('/auth/sign-up', 'Create an account', signUpForm),
  page('/auth/forgot-password', 'Password-reset request page'),
  form('/auth/forgot-password', 'Mail a reset link', forgotForm),
  page('/auth/reset-password', 'New-password page (from the reset mail)'),
  form('/auth/reset-password', 'Set a new password', resetForm),

  // Internal API (X-Service-Key).
  {
    method: 'get',
    path: `${I}/sessions/revoked`,
    access: 'service',
    summary: 'Revocations whose last access token has not expired (the gateways’ denylist)',
    responses: { 200: '`{ revocations: [{ sessionId, userId, expiresAt }] }`' },
  },
  {
    method: 'get',
    path: `${I}/sessions/:sid/auth-time`,
    access: 'service',
    summary: 'When a session last authenticated (step-up checks)',
    params: authTimeParams,
    responses: { 200: '`{ sessionId, userId, authenticatedAt }`' },
    errors: { 404: ['SESSION_NOT_FOUND'] },
  },
  {
    method: 'get',
    path: `${I}/users/:id/data`,
    access: 'service',
    summary: 'What auth-svc holds about a user (GDPR view, never a secret)',
    params: userParams,
    responses: { 200: 'auth’s section' },
    errors: { 404: ['USER_NOT_FOUND'] },
  },
  {
    method: 'get',
    path: `${I}/org/:orgId/member/:userId`,
    access: 'service',
    summary: 'Whether a user is a member of an organization, and the role',
    params: memberParams,
    responses: { 200: '`{ member, role }`' },
  },
  {
    method: 'post',
    path: `${I}/lockout/unlock`,
    access: 'service',
    summary: 'Lift a sign-in lockout (admin-svc)',
    body: unlockBody,
    responses: { 200: '`{ unlocked }`' },
  },
  {
    method: 'post',
    path: `${I}/api-keys/exchange`,
    access: 'service',
    summary: 'The gateway trades a personal API key for a short-lived access token and its scopes',
    body: exchangeBody,
    responses: { 200: '`{ accessToken, expiresAt, keyId, sessionId, scopes }`' },
    errors: { 401: ['TOKEN_INVALID'] },
  },
  {
    method: 'get',
    path: `${I}/users`,
    access: 'service',
    summary: 'Every user, in keyset pages (admin-svc’s directory resync)',
    query: pageQuery,
    responses: { 200: '`{ users, nextCursor }`' },
  },
  {
    method: 'get',
    path: `${I}/users/:id/activity`,
    access: 'service',
    summary: 'A user’s sign-in activity',
    params: internalUserParams,
    responses: { 200: 'activity' },
    errors: { 404: ['USER_NOT_FOUND'] },
  },
  {
    method: 'post',
    path: `${I}/users/:id/ban`,
    access: 'service',
    summary: 'Ban a user and end their sessions',
    params: internalUserParams,
    body: banBody,
    responses: { 200: '`{ userId, banned, expiresAt, sessionsEnded }`' },
    errors: { 404: ['USER_NOT_FOUND'] },
  },
  {
    method: 'delete',
    path: `${I}/users/:id/ban`,
    access: 'service',
    summary: 'Lift a ban',
    params: internalUserParams,
    responses: { 200: '`{ userId, banned: false, wasBanned }`' },
  },
  {
    method: 'post',
    path: `${I}/users/:id/sessions/revoke`,
    access: 'service',
    summary: 'End every session of a user',
    params: internalUserParams,
    body: actorBody,
    responses: { 200: '`{ userId, sessionsEnded }`' },
    errors: { 404: ['USER_NOT_FOUND'] },
  },
  {
    method: 'put',
    path: `${I}/users/:id/role`,
    access: 'service',
    summary: 'Change a user’s role (ends their sessions)',
    params: internalUserParams,
    body: roleBody,
    responses: { 200: '`{ userId, role, changed, sessionsEnded }`' },
    errors: { 404: ['USER_NOT_FOUND'], 409: ['LAST_ADMIN'] },
  },
];

const BETTER_AUTH_TAG = 'Better Auth';
const JSON_TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

/**
 * Better Auth's generator writes some OpenAPI 3.0 (`nullable`) and its own field types (`json`) into a
 * document it labels 3.1: rewritten into JSON Schema 2020-12 (`type: [t, 'null']`; an unknown type is any JSON).
 */
export function toOpenApi31<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => toOpenApi31(v)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = toOpenApi31(v);
  if (typeof out.type === 'string' && !JSON_TYPES.has(out.type)) delete out.type;
  if (out.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (typeof out.nullable === 'boolean') delete out.nullable;
  return out as T;
}

/**
 * Better Auth's native endpoints (`/api/auth/*`) as its own openAPI generator describes them. The plugin
 * is not registered (no public `/api/auth/reference` page, no second public schema endpoint): its
 * generator runs here on the live auth context, so every plugin of `createAuth` is included.
 */
export async function betterAuthPaths(auth: Auth): Promise<{ paths: OpenApiPaths; schemas: Record<string, Record<string, unknown>> }> {
  const generate = openAPI({ disableDefaultReference: true }).endpoints.generateOpenAPISchema as unknown as (input: {
    context: unknown;
  }) => Promise<{
    paths: Record<string, Record<string, OpenApiOperation>>;
    components: { schemas: Record<string, Record<string, unknown>> };
  }>;
  const doc = toOpenApi31(await generate({ context: await auth.$context }));
  const paths: OpenApiPaths = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    const ops: OpenApiPaths[string] = {};
    for (const [method, op] of Object.entries(item))
      ops[method as keyof typeof ops] = {
        ...op,
        tags: [BETTER_AUTH_TAG, ...(op.tags ?? []).filter((t) => t !== 'Default')],
        // Better Auth accepts its session cookie (browsers) or the bearer session token.
        security: [{ betterAuthCookie: [] }, { bearerAuth: [] }],
        'x-mana-service': 'auth-svc',
        'x-mana-access': 'public',
      };
    paths[`/api/auth${path}`] = ops;
  }
  return { paths, schemas: doc.components.schemas };
}

export async function authOpenApi(auth: Auth): Promise<OpenApiDocument> {
  const native = await betterAuthPaths(auth);
  const doc = openApiFragment(
    { service: 'auth-svc', description: 'Accounts, sessions, tokens, two-factor, OIDC provider and hosted pages.', operations: authApi },
    native.paths,
  );
  doc.tags = [
    ...(doc.tags ?? []),
    {
      name: BETTER_AUTH_TAG,
      description: 'Better Auth’s own API, for browser apps with its client (session cookie, `credentials: "include"`).',
    },
    { name: 'OIDC', description: 'OpenID Connect provider (Synapse and other relying parties).' },
    { name: 'hosted pages', description: 'The sign-in, consent, sign-up and reset pages the OIDC provider sends browsers to.' },
  ];
  doc.components.schemas = { ...native.schemas, ...doc.components.schemas };
  doc.components.securitySchemes = {
    ...doc.components.securitySchemes,
    betterAuthCookie: {
      type: 'apiKey',
      in: 'cookie',
      name: 'mana.session_token',
      description: 'Better Auth’s session cookie (`__Secure-mana.session_token` over HTTPS), set by sign-in',
    },
  };
  return doc;
}
