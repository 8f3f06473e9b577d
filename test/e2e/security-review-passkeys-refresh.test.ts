import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, cookieFetch } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified, type TokenPair } from '../helpers/users';
import { hiddenField, newBrowser, postForm } from './oidc-helpers';

/**
 * Security review (2026-12-02) of passkey ownership, the email-first decoy and the refresh-token grace
 * window, through the gateway. Passkey rows are written straight into the database: the checks here are
 * about who may touch a row, not about the WebAuthn ceremony (test/e2e/passkeys.test.ts covers that).
 */
describe('security review: passkey ownership, email-first decoy, refresh grace bound', () => {
  let s: Stack;
  const auth = (path: string) => `${s.gatewayUrl}/api/auth${path}`;
  const refresh = (refreshToken: string) =>
    call<TokenPair & { error?: string }>(`${s.gatewayUrl}/api/v1/auth/refresh`, { body: { refreshToken } });
  const sidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sid: string }).sid;
  const sessionExists = async (sid: string) => ((await s.sql.query('select 1 from auth.session where id = $1', [sid])).rowCount ?? 0) > 0;

  /** A passkey row for the user, as the plugin stores one (transports as the browser reported them). */
  const insertPasskey = async (userId: string, transports: string | null) => {
    const id = randomUUID();
    const credentialID = randomBytes(16).toString('base64url');
    await s.sql.query(
      `insert into auth.passkey (id, name, public_key, user_id, credential_id, counter, device_type, backed_up, transports)
       values ($1, 'Laptop', 'cHVibGlj', $2, $3, 0, 'multiDevice', true, $4)`,
      [id, userId, credentialID, transports],
    );
    return { id, credentialID };
  };

  beforeAll(async () => {
    s = await startStack({ env: { REAUTH_MAX_AGE_SECONDS: '300' } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it("a fresh session of one user can neither rename nor delete another user's passkey", async () => {
    const owner = await registerVerified(s);
    const other = await registerVerified(s);
    const key = await insertPasskey(owner.userId, 'hybrid,internal');
    const jar = cookieFetch(s.gatewayUrl);
    expect((await call(auth('/sign-in/email'), { body: { email: other.email, password: other.password }, fetch: jar.fetch })).status).toBe(
      200,
    );

    const rename = await call<{ code?: string }>(auth('/passkey/update-passkey'), {
      body: { id: key.id, name: 'Mine now' },
      fetch: jar.fetch,
    });
    const remove = await call<{ code?: string }>(auth('/passkey/delete-passkey'), { body: { id: key.id }, fetch: jar.fetch });
    expect(rename.status).toBe(401);
    expect(remove.status).toBe(401);
    const row = await s.sql.query<{ name: string; user_id: string }>('select name, user_id from auth.passkey where id = $1', [key.id]);
    expect(row.rows).toEqual([{ name: 'Laptop', user_id: owner.userId }]);
    // The other user's own list does not show it.
    const listed = await call<Array<{ id: string }>>(auth('/passkey/list-user-passkeys'), { fetch: jar.fetch });
    expect(listed.status).toBe(200);
    expect(listed.body.map((p) => p.id)).not.toContain(key.id);
  });

  it('Better Auth /update-session cannot rewrite a session: no fresher sign-in time, no longer expiry, no device fields', async () => {
    const { email, password, userId } = await registerVerified(s);
    const jar = cookieFetch(s.gatewayUrl);
    expect((await call(auth('/sign-in/email'), { body: { email, password }, fetch: jar.fetch })).status).toBe(200);
    // Signed in an hour ago: too old for step-up (REAUTH_MAX_AGE_SECONDS=300).
    await s.sql.query(`update auth.session set created_at = now() - interval '1 hour' where user_id = $1`, [userId]);
    const before = await s.sql.query('select * from auth.session where user_id = $1', [userId]);
    const future = new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString();
    const attempts = [
      { createdAt: new Date().toISOString() },
      { expiresAt: future },
      { createdAt: new Date().toISOString(), expiresAt: future, deviceName: 'spoofed', deviceId: 'spoofed', userId: 'someone' },
    ];
    for (const body of attempts) {
      const r = await call<{ code?: string }>(auth('/update-session'), { body, fetch: jar.fetch });
      expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    const after = await s.sql.query('select * from auth.session where user_id = $1', [userId]);
    expect(after.rows).toEqual(before.rows);
    const stepUp = await call<{ code?: string }>(auth('/passkey/generate-register-options'), { fetch: jar.fetch });
    expect(stepUp).toMatchObject({ status: 401, body: { code: 'REAUTH_REQUIRED' } });
  });

  it('email first: a known account without passkeys and an unknown email get the same shape (one stable decoy); an owner gets its credentials', async () => {
    const withKey = await registerVerified(s);
    const withoutKey = await registerVerified(s);
    const key = await insertPasskey(withKey.userId, 'hybrid,internal');
    type Options = {
      challenge: string;
      userVerification: string;
      allowCredentials: Array<{ id: string; type: string; transports?: string[] }>;
    };
    const options = (email: string) => call<Options>(auth(`/passkey/generate-authenticate-options?email=${encodeURIComponent(email)}`));

    const owner = await options(withKey.email);
    expect(owner.status).toBe(200);
    expect(owner.body.userVerification).toBe('required');
    expect(owner.body.allowCredentials).toEqual([{ id: key.credentialID, type: 'public-key', transports: ['hybrid', 'internal'] }]);

    const known = await options(withoutKey.email);
    const knownAgain = await options(withoutKey.email.toUpperCase());
    const unknown = await options(`nobody-${randomBytes(4).toString('hex')}@example.com`);
    for (const r of [known, knownAgain, unknown]) {
      expect(r.status).toBe(200);
      expect(Object.keys(r.body).sort()).toEqual(Object.keys(owner.body).sort());
      expect(r.body.allowCredentials).toHaveLength(1);
      expect(Object.keys(r.body.allowCredentials[0] ?? {}).sort()).toEqual(['id', 'transports', 'type']);
      // A browser reports a credential's transports without duplicates in lexicographical order (WebAuthn
      // [[transports]]), so a decoy in any other order is one no registered passkey can have: a tell.
      const transports = r.body.allowCredentials[0]?.transports ?? [];
      expect(transports).toEqual([...new Set(transports)].sort());
    }
    // Stable per email (case-insensitive), different between emails, and never a registered credential.
    expect(knownAgain.body.allowCredentials[0]?.id).toBe(known.body.allowCredentials[0]?.id);
    expect(unknown.body.allowCredentials[0]?.id).not.toBe(known.body.allowCredentials[0]?.id);
    const decoyIds = [known, unknown].map((r) => r.body.allowCredentials[0]?.id ?? '');
    expect((await s.sql.query('select 1 from auth.passkey where credential_id = any($1)', [decoyIds])).rowCount).toBe(0);
    // Every answer carries its own challenge.
    expect(new Set([owner, known, knownAgain, unknown].map((r) => r.body.challenge)).size).toBe(4);
  });

  it("the hosted passkey sign-in needs the page's CSRF pair and our origin, and a registered credential ID alone signs nobody in", async () => {
    const owner = await registerVerified(s);
    const key = await insertPasskey(owner.userId, 'hybrid,internal');
    const browser = newBrowser(s);
    const origin = new URL(s.gatewayUrl).origin;
    const page = await browser.fetch(`${s.gatewayUrl}/auth/login`, { headers: { accept: 'text/html' } });
    const csrf = hiddenField(await page.text(), 'csrf');
    // A challenge for this browser, as passkey.js fetches it first.
    expect(
      (await call(auth(`/passkey/generate-authenticate-options?email=${encodeURIComponent(owner.email)}`), { fetch: browser.fetch }))
        .status,
    ).toBe(200);
    const b64 = (v: string) => Buffer.from(v).toString('base64url');
    const clientData = b64(JSON.stringify({ type: 'webauthn.get', challenge: 'AAAA', origin }));
    const assertion = JSON.stringify({
      id: key.credentialID,
      rawId: key.credentialID,
      type: 'public-key',
      clientExtensionResults: {},
      response: {
        clientDataJSON: clientData,
        authenticatorData: b64('x'.repeat(37)),
        signature: b64('forged'),
        userHandle: b64(owner.userId),
      },
    });
    const post = (fields: Record<string, string>, from = origin) => postForm(browser, `${s.gatewayUrl}/auth/login/passkey`, fields, from);

    expect((await post({ response: assertion, oauth_query: '' })).status).toBe(403);
    expect((await post({ response: assertion, oauth_query: '', csrf: 'x'.repeat(43) })).status).toBe(403);
    expect((await post({ response: assertion, oauth_query: '', csrf }, 'https://evil.test')).status).toBe(403);
    const forged = await post({ response: assertion, oauth_query: '', csrf });
    expect(forged.status).toBe(401);
    expect(forged.headers.getSetCookie().some((c) => c.includes('session_token=') && !/max-age=0/i.test(c))).toBe(false);
    expect((await s.sql.query('select 1 from auth.session where user_id = $1', [owner.userId])).rowCount).toBe(0);
  });

  it('the grace window answers a spent token once: a third exchange inside the window ends the session', async () => {
    const { email, password } = await registerVerified(s);
    const pair = await login(s, email, password);
    const sid = sidOf(pair.accessToken);
    const first = await refresh(pair.refreshToken);
    const second = await refresh(pair.refreshToken);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body.refreshToken).toBe(first.body.refreshToken);

    const third = await refresh(pair.refreshToken);
    expect(third.status).toBe(401);
    expect(third.body.error).toBe('REFRESH_TOKEN_REUSED');
    expect(await sessionExists(sid)).toBe(false);
    expect((await refresh(first.body.refreshToken)).body.error).toBe('INVALID_REFRESH_TOKEN');
  });

  it('a refresh that fails before its answer is ready leaves the token unspent: the retry rotates it normally', async () => {
    const { email, password } = await registerVerified(s);
    const pair = await login(s, email, password);
    const sid = sidOf(pair.accessToken);
    const spent = async () =>
      (await s.sql.query<{ used: boolean }>('select used_at is not null as used from auth.refresh_tokens where session_id = $1', [sid]))
        .rows[0]?.used;
    // The last statement of an exchange fails as if the connection dropped (SQLSTATE 08006), for this session only.
    await s.sql.query(`create function auth.test_fail_refresh() returns trigger language plpgsql as $$
      begin
        if new.type = 'token_refreshed' and new.context->>'sessionId' = '${sid}' then
          raise exception 'connection lost' using errcode = '08006';
        end if;
        return new;
      end $$`);
    await s.sql.query(
      'create trigger test_fail_refresh before insert on auth.security_events for each row execute function auth.test_fail_refresh()',
    );
    try {
      const failed = await refresh(pair.refreshToken);
      expect(failed.status).toBe(503);
      expect(failed.body.error).toBe('SERVICE_UNAVAILABLE');
      expect(await spent()).toBe(false);
    } finally {
      await s.sql.query('drop trigger test_fail_refresh on auth.security_events');
      await s.sql.query('drop function auth.test_fail_refresh()');
    }
    const retried = await refresh(pair.refreshToken);
    expect(retried.status).toBe(200);
    const grace = await s.sql.query<{ n: number }>(
      'select grace_exchanges as n from auth.refresh_tokens where session_id = $1 and used_at is not null',
      [sid],
    );
    expect(grace.rows.map((r) => r.n)).toEqual([0]);
    expect((await refresh(retried.body.refreshToken)).status).toBe(200);
    expect(await sessionExists(sid)).toBe(true);
  });

  it('three concurrent exchanges of one token: at most one extra answer, always the same successor, and the session ends', async () => {
    const { email, password } = await registerVerified(s);
    const pair = await login(s, email, password);
    const sid = sidOf(pair.accessToken);
    const answers = await Promise.all([1, 2, 3].map(() => refresh(pair.refreshToken)));
    const ok = answers.filter((r) => r.status === 200);
    expect(ok).toHaveLength(2);
    expect(new Set(ok.map((r) => r.body.refreshToken)).size).toBe(1);
    expect(answers.filter((r) => r.status === 401).map((r) => r.body.error)).toEqual(['REFRESH_TOKEN_REUSED']);
    expect(await sessionExists(sid)).toBe(false);
    const chain = await s.sql.query('select 1 from auth.refresh_tokens where session_id = $1', [sid]);
    expect(chain.rowCount).toBe(0);
  });
});
