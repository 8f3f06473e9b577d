import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, parseEnvelope } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { STACK_SERVICE_KEY, startStack, type Stack } from '../helpers/stack';
import { login, registerVerified, strongPassword, uniqueEmail } from '../helpers/users';
import { runScript } from '../helpers/scripts';

describe('auth-svc events, operator commands and erasure (broker behind a proxy)', () => {
  let s: Stack;
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/auth${path}`;

  beforeAll(async () => {
    s = await startStack({ proxyAuthBroker: true });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('publishes user.registered.v1 even when RabbitMQ was down at sign-up and came back later', async () => {
    const proxy = s.authBrokerProxy;
    if (!proxy) throw new Error('proxy expected');
    proxy.cut();
    const email = uniqueEmail('outage');
    try {
      const reg = await call<{ user: { id: string } }>(v1('/register'), { body: { email, password: strongPassword(), name: 'Offline' } });
      expect(reg.status).toBe(201);
      // The event waits in the outbox, written with the user row.
      const pending = await s.sql.query<{ envelope: unknown }>(
        `select envelope from auth.outbox where type = 'user.registered.v1' and published_at is null and envelope->'data'->>'email' = $1`,
        [email],
      );
      expect(pending.rowCount).toBe(1);
      expect(() => parseEnvelope(pending.rows[0].envelope)).not.toThrow();
      expect(s.events.some((e) => (e.data as { email?: string }).email === email)).toBe(false);
    } finally {
      proxy.restore();
    }
    const event = await s.waitForEvent('user.registered.v1', (e) => (e.data as { email: string }).email === email, 20_000);
    expect(event.data).toMatchObject({ email, name: 'Offline' });
    await eventually(async () => {
      const r = await s.sql.query(`select 1 from auth.outbox where envelope->'data'->>'email' = $1 and published_at is null`, [email]);
      return r.rowCount === 0;
    });
  });

  it('set-role grants admin (user.updated.v1, role claim) and removing it ends the sessions', async () => {
    const { email, password, userId } = await registerVerified(s);
    const before = await login(s, email, password);
    const env = { ...process.env, ...s.env, LOG_LEVEL: 'silent' };
    const script = 'auth-svc/scripts/set-role.ts';
    const granted = await runScript(script, [email.toUpperCase(), 'admin'], env);
    expect(granted.stdout).toContain('user → admin');
    const updated = await s.waitForEvent(
      'user.updated.v1',
      (e) => e.type === 'user.updated.v1' && e.data.userId === userId && 'role' in e.data.changes,
    );
    expect(updated.data).toEqual({ userId, changes: { role: 'admin' } });
    const admin = await login(s, email, password);
    expect(admin.user.role).toBe('admin');
    expect((JSON.parse(Buffer.from(admin.accessToken.split('.')[1] ?? '', 'base64url').toString()) as { role: string }).role).toBe('admin');

    const revoked = await runScript(script, [email, 'user'], env);
    expect(revoked.stdout).toContain('admin → user (2 sessions ended)');
    await eventually(async () => (await call(v1('/session'), { token: admin.accessToken })).status === 401, 5_000);
    expect((await call(v1('/session'), { token: before.accessToken })).status).toBe(401);
    await expect(runScript(script, ['nobody@example.com', 'admin'], env)).rejects.toMatchObject({ code: 1 });
    await expect(runScript(script, [email, 'root'], env)).rejects.toMatchObject({ code: 2 });
  });

  it('rotates the signing key: the new key is published before it signs, old tokens keep verifying', async () => {
    const { email, password } = await registerVerified(s);
    const old = await login(s, email, password);
    const oldKid = decodeProtectedHeader(old.accessToken).kid;
    const env = { ...process.env, ...s.env, LOG_LEVEL: 'silent' };
    const out = await runScript('auth-svc/scripts/rotate-signing-key.ts', ['--wait', '0'], env);
    const newKid = /new signing key (\S+)/.exec(out.stdout)?.[1];
    expect(newKid).toBeDefined();
    expect(newKid).not.toBe(oldKid);
    const fresh = await login(s, email, password);
    expect(decodeProtectedHeader(fresh.accessToken).kid).toBe(newKid);
    const jwks = await call<{ keys: Array<{ kid: string }> }>(`${s.gatewayUrl}/.well-known/jwks.json`);
    expect(jwks.body.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    const keys = createRemoteJWKSet(new URL(`${s.gatewayUrl}/.well-known/jwks.json`));
    for (const t of [old.accessToken, fresh.accessToken])
      await jwtVerify(t, keys, { algorithms: ['EdDSA'], issuer: s.gatewayUrl, audience: 'mana' });
    // auth-svc itself (no JWKS refetch cooldown to wait for) accepts both; the old one also at the gateway.
    const direct = s.services.auth[0]?.url ?? '';
    await eventually(async () => (await call(`${direct}/api/v1/auth/session`, { token: fresh.accessToken })).status === 200, 3_000);
    expect((await call(`${direct}/api/v1/auth/session`, { token: old.accessToken })).status).toBe(200);
    expect((await call(v1('/session'), { token: old.accessToken })).status).toBe(200);
    // Once the grace period has passed the retired key leaves the JWKS.
    await s.sql.query(`update auth.jwks set expires_at = now() - interval '1 day' where id = $1`, [oldKid]);
    const later = await call<{ keys: Array<{ kid: string }> }>(`${direct}/api/auth/jwks`);
    expect(later.body.keys.map((k) => k.kid)).not.toContain(oldKid);
    expect(later.body.keys.map((k) => k.kid)).toContain(newKid);
  });

  it('erases a user on user.erasure.requested.v1 and reports what it deleted', async () => {
    const { email, password, userId } = await registerVerified(s);
    const a = await login(s, email, password);
    await login(s, email, password);
    const request = createEvent('user.erasure.requested.v1', { requestId: crypto.randomUUID(), userId });
    // The second one is a redelivery: it changes nothing.
    await s.publish(request, request);
    const done = await s.waitForEvent('user.erasure.completed.v1', (e) => (e.data as { userId: string }).userId === userId);
    expect(done.data).toMatchObject({
      requestId: request.data.requestId,
      service: 'auth',
      deleted: { users: 1, sessions: 2, accounts: 1, refreshTokens: 2 },
    });
    const revokedIds = await eventually(() => {
      const ids = s.events.filter((e) => e.type === 'session.revoked.v1' && (e.data as { userId: string }).userId === userId);
      return ids.length === 2 ? ids : undefined;
    });
    expect(revokedIds).toHaveLength(2);
    await eventually(async () => (await call(v1('/session'), { token: a.accessToken })).status === 401, 3_000);
    const data = await call(`${s.gatewayUrl}/api/v1/internal/users/${userId}/data`, { headers: { 'x-service-key': STACK_SERVICE_KEY } });
    expect(data.status).toBe(404);
    const left = await s.sql.query<{ n: string }>(
      `select (select count(*) from auth."user" where id = $1) + (select count(*) from auth.session where user_id = $1)
            + (select count(*) from auth.account where user_id = $1) + (select count(*) from auth.refresh_tokens where user_id = $1)
            + (select count(*) from auth.security_events where user_id = $1) as n`,
      [userId],
    );
    expect(Number(left.rows[0].n)).toBe(0);
    expect(s.events.filter((e) => e.type === 'user.erasure.completed.v1' && (e.data as { userId: string }).userId === userId)).toHaveLength(
      1,
    );
  });
});
