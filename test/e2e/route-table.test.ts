import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_TIER_PREFIXES, PUBLIC_V1_AUTH_PATHS, ROUTES, matchRoute, rateTierOf, type Access } from '../../gateway/src/routes';
import { call } from '../helpers/http';
import { STACK_SERVICE_KEY, startStack, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';

/**
 * Every entry of the gateway's route table (each route, each PUBLIC_V1_AUTH_PATHS path, each
 * AUTH_TIER prefix) reaches a real handler: through the full stack with suitable credentials, a
 * sample request never gets the upstream's generic 404 (`NOT_FOUND`, "Route … not found"). A
 * handler-level 404 (`VAULT_NOT_FOUND`, `SESSION_NOT_FOUND`) is fine: the handler was reached.
 */

interface Sample {
  method?: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
}

const USER = '00000000-0000-4000-8000-000000000001';

/** Sample requests per route name; a route missing here fails the test. */
const SAMPLES: Record<string, Sample[]> = {
  'internal-vault': [{ path: `/api/v1/internal/vault/users/${USER}` }],
  'internal-credits': [{ path: `/api/v1/internal/credits/users/${USER}/data` }],
  'internal-gdpr': [{ path: `/api/v1/internal/gdpr/users/${USER}/data` }],
  'internal-admin': [{ path: `/api/v1/internal/admin/users/${USER}/data` }],
  'internal-auth': [
    { path: '/api/v1/internal/sessions/revoked' },
    { path: `/api/v1/internal/users/${USER}/data` },
    { path: `/api/v1/internal/org/org-1/member/${USER}` },
    { method: 'POST', path: '/api/v1/internal/lockout/unlock', body: { email: 'nobody@example.com' } },
    { path: '/api/v1/internal/sessions/no-such-session/auth-time' },
    { method: 'POST', path: '/api/v1/internal/api-keys/exchange', body: {} },
  ],
  admin: [{ path: '/api/v1/admin/users' }],
  'credits-webhook': [{ method: 'POST', path: '/api/v1/credits/webhook', body: {} }],
  credits: [{ path: '/api/v1/credits/balance' }],
  'gdpr-public': [{ path: '/api/v1/gdpr/jwks.json' }, { path: `/api/v1/gdpr/erasures/${USER}` }],
  vault: [{ path: '/api/v1/me/encryption-vault/status' }, { path: '/api/v1/me/encryption-vault/key' }],
  me: [{ path: '/api/v1/me/data' }],
  'v1-auth-public': PUBLIC_V1_AUTH_PATHS.map((path) => ({ method: 'POST', path, body: {} })),
  'v1-auth': [
    { path: '/api/v1/auth/session' },
    { path: '/api/v1/auth/sessions' },
    { method: 'DELETE', path: '/api/v1/auth/sessions/no-such-session' },
    { path: '/api/v1/auth/security-events' },
    { method: 'POST', path: '/api/v1/auth/2fa/enable', body: {} },
    { method: 'POST', path: '/api/v1/auth/2fa/verify', body: {} },
    { method: 'POST', path: '/api/v1/auth/2fa/backup-codes', body: {} },
    { method: 'POST', path: '/api/v1/auth/2fa/disable', body: {} },
    { method: 'POST', path: '/api/v1/auth/reauth', body: {} },
    { path: '/api/v1/auth/api-keys' },
    { method: 'POST', path: '/api/v1/auth/api-keys', body: {} },
    { method: 'DELETE', path: '/api/v1/auth/api-keys/00000000-0000-4000-8000-000000000000' },
  ],
  'better-auth': [{ path: '/api/auth/ok' }, { path: '/api/auth/get-session' }, { path: '/api/auth/passkey/list-user-passkeys' }],
  'well-known': [
    { path: '/.well-known/jwks.json' },
    { path: '/.well-known/openid-configuration' },
    { path: '/.well-known/oauth-authorization-server' },
  ],
  'hosted-auth': [
    { path: '/auth/style.css' },
    { path: '/auth/login' },
    { path: '/auth/login/2fa' },
    { path: '/auth/consent' },
    { path: '/auth/login/continue' },
    { method: 'POST', path: '/auth/login/magic-link', body: {} },
    { path: '/auth/sign-up' },
    { path: '/auth/forgot-password' },
    { path: '/auth/reset-password' },
    { path: '/auth/passkey.js' },
    { method: 'POST', path: '/auth/login/passkey', body: {} },
  ],
};

/** One request per AUTH_TIER prefix (a path under it that a handler serves). */
const AUTH_TIER_SAMPLES: Record<string, Sample> = {
  '/api/auth/sign-in': { method: 'POST', path: '/api/auth/sign-in/email', body: {} },
  '/api/auth/sign-up': { method: 'POST', path: '/api/auth/sign-up/email', body: {} },
  '/api/auth/magic-link': { path: '/api/auth/magic-link/verify?token=nope' },
  '/api/auth/request-password-reset': { method: 'POST', path: '/api/auth/request-password-reset', body: {} },
  '/api/auth/reset-password': { method: 'POST', path: '/api/auth/reset-password', body: {} },
  '/api/auth/two-factor/verify': { method: 'POST', path: '/api/auth/two-factor/verify-totp', body: {} },
  '/api/auth/token': { path: '/api/auth/token' },
  '/api/auth/oauth2/token': { method: 'POST', path: '/api/auth/oauth2/token', body: {} },
  '/auth/login': { method: 'POST', path: '/auth/login', body: {} },
  '/auth/sign-up': { method: 'POST', path: '/auth/sign-up', body: {} },
  '/auth/forgot-password': { method: 'POST', path: '/auth/forgot-password', body: {} },
  '/auth/reset-password': { method: 'POST', path: '/auth/reset-password', body: {} },
  '/api/v1/auth/register': { method: 'POST', path: '/api/v1/auth/register', body: {} },
  '/api/v1/auth/login': { method: 'POST', path: '/api/v1/auth/login', body: {} },
  '/api/v1/auth/refresh': { method: 'POST', path: '/api/v1/auth/refresh', body: {} },
  '/api/v1/auth/reauth': { method: 'POST', path: '/api/v1/auth/reauth', body: {} },
  '/api/v1/auth/2fa/': { method: 'POST', path: '/api/v1/auth/2fa/enable', body: {} },
  '/api/auth/change-password': { method: 'POST', path: '/api/auth/change-password', body: {} },
  '/api/auth/two-factor/': { method: 'POST', path: '/api/auth/two-factor/enable', body: {} },
  '/api/auth/passkey/verify-': { method: 'POST', path: '/api/auth/passkey/verify-authentication', body: {} },
  '/api/auth/passkey/generate-authenticate-options': { path: '/api/auth/passkey/generate-authenticate-options' },
};

const label = (s: Sample) => `${s.method ?? 'GET'} ${s.path}`;
const routeSamples = Object.entries(SAMPLES).flatMap(([name, samples]) =>
  samples.map((s): [string, string, Sample] => [label(s), name, s]),
);
const tierSamples = Object.entries(AUTH_TIER_SAMPLES).map(([prefix, s]): [string, string, Sample] => [label(s), prefix, s]);

describe('gateway route table → a real handler', () => {
  let s: Stack;
  const credentials: Partial<Record<Access, Record<string, string>>> = {};

  beforeAll(async () => {
    s = await startStack({ services: ['vault', 'credits', 'gdpr', 'admin'] });
    const user = await registerVerified(s);
    const admin = await registerVerified(s);
    await s.sql.query(`update auth."user" set role = 'admin' where id = $1`, [admin.userId]);
    credentials.public = {};
    credentials.bearer = { authorization: `Bearer ${(await login(s, user.email, user.password)).accessToken}` };
    credentials.admin = { authorization: `Bearer ${(await login(s, admin.email, admin.password)).accessToken}` };
    credentials.service = { 'x-service-key': STACK_SERVICE_KEY };
  }, 60_000);

  afterAll(async () => {
    await s?.close();
  });

  /** Through the gateway with the credentials the matched route asks for. */
  async function reach(sample: Sample) {
    const route = matchRoute(sample.path.split('?')[0] ?? sample.path);
    if (!route) throw new Error(`${sample.path} matches no route`);
    const res = await call(`${s.gatewayUrl}${sample.path}`, {
      method: sample.method,
      body: sample.body,
      headers: credentials[route.access],
    });
    return { route, res };
  }

  /** The upstream's (or the gateway's) 404 for a path no handler serves; Better Auth's is bodiless. */
  const genericNotFound = (res: { status: number; body: unknown }) =>
    res.status === 404 && (typeof res.body !== 'object' || res.body === null || !('error' in res.body) || res.body.error === 'NOT_FOUND');

  it('has samples for every route, and each sample matches its route', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(ROUTES.map((r) => r.name).sort());
    for (const [, name, sample] of routeSamples) expect(matchRoute(sample.path.split('?')[0] ?? '')?.name, sample.path).toBe(name);
    expect(Object.keys(AUTH_TIER_SAMPLES).sort()).toEqual([...AUTH_TIER_PREFIXES].sort());
    for (const [, prefix, sample] of tierSamples) {
      expect(sample.path.startsWith(prefix), sample.path).toBe(true);
      expect(rateTierOf(sample.path)).toBe('auth');
    }
  });

  it.each(routeSamples)('%s (%s) reaches a handler', async (_label, _name, sample) => {
    const { res } = await reach(sample);
    expect(genericNotFound(res), `${res.status} ${JSON.stringify(res.body)}`).toBe(false);
    // Suitable credentials: never refused by an access check on the way.
    expect(String((res.body as { error?: unknown } | null)?.error)).not.toMatch(/^(TOKEN_\w+|SERVICE_KEY_\w+|FORBIDDEN)$/);
    expect(res.status).toBeLessThan(500);
  });

  it.each(tierSamples)('%s (auth tier %s) reaches a handler', async (_label, _prefix, sample) => {
    const { res } = await reach(sample);
    expect(genericNotFound(res), `${res.status} ${JSON.stringify(res.body)}`).toBe(false);
    expect(res.status).toBeLessThan(500);
  });
});
