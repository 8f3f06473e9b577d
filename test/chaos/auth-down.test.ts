import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceHandle } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import { startGateway } from '../../gateway/src/server';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login } from '../helpers/users';
import { ALL_SERVICES, INSTANCES, newUser, type ChaosUser } from './helpers';

/**
 * Every auth-svc instance is down. Tokens already issued keep working at the gateway and at every service
 * (each verifies locally against the JWKS it cached); what needs auth-svc — signing in, registering,
 * refreshing — answers 503, never 500; a gateway that starts during the outage (no JWKS yet) answers 503
 * for bearer routes and recovers the JWKS by itself once auth-svc is back.
 */
describe('chaos: auth-svc down', () => {
  let s: Stack;
  let late: ServiceHandle | undefined;
  beforeAll(async () => {
    s = await startStack({ services: [...ALL_SERVICES], instances: INSTANCES });
  });
  afterAll(async () => {
    await late?.close();
    await s?.close();
  });

  /** The bearer routes of every service, and the statuses that prove the token was verified there. */
  const touchEveryService = async (u: ChaosUser, base = s.gatewayUrl) => ({
    credits: (await call(`${base}/api/v1/credits/balance`, { token: u.token })).status,
    vault: (await call(`${base}/api/v1/me/encryption-vault/status`, { token: u.token })).status,
    gdpr: (await call(`${base}/api/v1/me/data`, { token: u.token })).status,
    // A verified token of a plain user: 403 FORBIDDEN (role), not 401 or 503.
    admin: (await call(`${base}/api/v1/admin/users`, { token: u.token })).status,
  });
  const verified = { credits: 200, vault: 200, gdpr: 200, admin: 403 };

  it('keeps issued tokens working, answers 503 for sign-ins, and a new gateway recovers the JWKS', async () => {
    const u = await newUser(s);
    const refreshToken = (await login(s, u.email, u.password)).refreshToken;
    // Every instance of every service has seen a token once (round robin: two rounds reach both instances).
    for (let i = 0; i < INSTANCES; i++) expect(await touchEveryService(u)).toEqual(verified);

    await s.stopService('auth');
    try {
      // Issued tokens: every instance of every service still verifies them locally.
      for (let i = 0; i < INSTANCES; i++) expect(await touchEveryService(u)).toEqual(verified);
      // Directly at each service instance too (no gateway in between).
      for (const h of s.instances.credits) expect((await call(`${h.url}/api/v1/credits/balance`, { token: u.token })).status).toBe(200);

      // What needs auth-svc: 503 with the JSON error shape, never 500.
      for (const [path, body] of [
        ['/api/v1/auth/login', { email: u.email, password: u.password }],
        ['/api/v1/auth/register', { email: `late-${u.email}`, password: u.password }],
        ['/api/v1/auth/refresh', { refreshToken }],
        ['/api/auth/sign-in/email', { email: u.email, password: u.password }],
      ] as const) {
        const res = await call(`${s.gatewayUrl}${path}`, { body });
        expect(res.status, path).toBe(503);
        expect(res.body, path).toMatchObject({ error: 'UPSTREAM_UNAVAILABLE', requestId: expect.any(String) });
      }

      // A gateway started now has no JWKS: bearer routes answer 503 (a key outage is not a bad token).
      late = await startGateway({ env: { ...s.gatewayEnv, PORT: '0' } });
      const early = await call(`${late.url}/api/v1/credits/balance`, { token: u.token });
      expect(early.status).toBe(503);
      expect(early.body).toMatchObject({ error: 'AUTH_UNAVAILABLE' });
    } finally {
      await s.startService('auth');
    }

    // auth-svc is back: sign-ins work again, and the late gateway fetches the JWKS on its own (no restart).
    const again = await login(s, u.email, u.password);
    expect(again.accessToken).toEqual(expect.any(String));
    const lateGateway = late;
    const recovered = await eventually(
      async () => {
        const res = await call(`${lateGateway.url}/api/v1/credits/balance`, { token: u.token });
        return res.status === 200 ? res : undefined;
      },
      20_000,
      200,
    );
    expect(recovered.status).toBe(200);
  });
});
