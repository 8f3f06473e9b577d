import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import * as OTPAuth from 'otpauth';
import * as oidc from 'openid-client';
import { createEvent } from '@mana/shared';
import { scanForIdentifiers } from '../helpers/erasure-scan';
import { call, cookieFetch } from '../helpers/http';
import { STACK_SERVICE_KEY, startStack, type Stack } from '../helpers/stack';
import { SYNAPSE_SECRET, authorizationRequest, oidcEnv, registerUser } from './oidc-helpers';
import {
  CHROMIUM_LAUNCH,
  PAGE_HELPERS,
  addVirtualAuthenticator,
  freePort,
  inPage,
  startForeignOrigin,
  type PageResult,
} from './passkey-helpers';

/** A stand-in for Synapse's callback endpoint. */
async function startRecorder() {
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/_synapse/client/oidc/callback`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

// WebAuthn needs a domain as relying party ID (never an IP address) and a secure context: the stack's
// public URL is http://localhost:<port> (BASE_URL and the gateway's PORT chosen here), so RP_ID is `localhost`.
let s: Stack;
let base: string;
let browser: Browser;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let foreign: Awaited<ReturnType<typeof startForeignOrigin>>;
let synapse: oidc.Configuration;

beforeAll(async () => {
  recorder = await startRecorder();
  foreign = await startForeignOrigin();
  const port = await freePort();
  base = `http://localhost:${port}`;
  const started = await startStack({
    env: {
      ...oidcEnv({ synapse: recorder.url, webapp: 'https://webapp.test/cb', spa: 'http://127.0.0.1:9/cb' }),
      PORT: String(port),
      BASE_URL: base,
      REAUTH_MAX_AGE_SECONDS: '300',
    },
  });
  s = { ...started, gatewayUrl: base };
  synapse = await oidc.discovery(new URL(base), 'synapse', undefined, oidc.ClientSecretBasic(SYNAPSE_SECRET), {
    execute: [oidc.allowInsecureRequests],
  });
  browser = await chromium.launch(CHROMIUM_LAUNCH);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await s?.close();
  await recorder?.close();
  await foreign?.close();
});

interface Passkey {
  id: string;
  name: string | null;
  credentialID: string;
  deviceType: string;
  backedUp: boolean;
}

const eventsOf = async (userId: string, type: string) =>
  (
    await s.sql.query<{ context: Record<string, unknown> }>(
      `select context from auth.security_events where user_id = $1 and type = $2 order by created_at, id`,
      [userId, type],
    )
  ).rows.map((r) => r.context);

/** Moves the user's sessions' sign-in back (no re-authentication since): step-up routes refuse them. */
const ageSessions = (userId: string, seconds: number) =>
  s.sql.query(`update auth.session set created_at = now() - make_interval(secs => $2) where user_id = $1`, [userId, seconds]);

/** A browser with a virtual authenticator, signed in with the user's password on the public origin (on a page without passkey.js). */
async function signedInBrowser(user: { email: string; password: string }) {
  const context = await browser.newContext();
  await context.addInitScript(PAGE_HELPERS);
  const page = await context.newPage();
  const authenticator = await addVirtualAuthenticator(context, page);
  await page.goto(`${base}/api/auth/ok`);
  const signIn = await inPage(page, `json('/api/auth/sign-in/email', { method: 'POST', body: ${JSON.stringify(JSON.stringify(user))} })`);
  expect(signIn.status).toBe(200);
  return { context, page, ...authenticator };
}

/** A user with one passkey, registered from a fresh password session in the browser. */
async function userWithPasskey(name = 'Laptop') {
  const user = await registerUser(s);
  const b = await signedInBrowser(user);
  const registered = await inPage<PageResult<Passkey>>(b.page, `register(${JSON.stringify(name)})`);
  expect(registered.status, JSON.stringify(registered.body)).toBe(200);
  return { user, ...b, passkey: registered.body };
}

const close = async (context: BrowserContext) => context.close();

/** A browser without conditional mediation (passkeys in autofill): the page falls back to its button. */
const NO_CONDITIONAL_UI = 'PublicKeyCredential.isConditionalMediationAvailable = async () => false;';

/** The hosted login page of a Synapse authorization request, in a browser without a session. */
async function synapseLoginPage(page: Page) {
  const req = await authorizationRequest(synapse, recorder.url, 'openid profile email');
  await page.goto(req.url);
  expect(new URL(page.url()).pathname).toBe('/auth/login');
  return req;
}

async function redeem(req: Awaited<ReturnType<typeof authorizationRequest>>, callback: URL) {
  const tokens = await oidc.authorizationCodeGrant(synapse, new URL(`${recorder.url}${callback.search}`), req.checks);
  return tokens.claims();
}

describe('passkeys (WebAuthn) in headless Chromium with a virtual authenticator', () => {
  test('register from a fresh session, list, rename; delete needs step-up; events recorded', async () => {
    const { user, context, page, passkey } = await userWithPasskey();
    try {
      expect(passkey).toMatchObject({ name: 'Laptop', userId: user.userId, backedUp: false, deviceType: 'singleDevice' });
      expect(await eventsOf(user.userId, 'passkey_added')).toEqual([{ passkeyId: passkey.id, name: 'Laptop' }]);

      const listed = await inPage<PageResult<Passkey[]>>(page, `json('/api/auth/passkey/list-user-passkeys')`);
      expect(listed.body.map((p) => [p.id, p.name])).toEqual([[passkey.id, 'Laptop']]);
      const renamed = await inPage<PageResult<{ passkey: Passkey }>>(
        page,
        `json('/api/auth/passkey/update-passkey', { method: 'POST', body: ${JSON.stringify(JSON.stringify({ id: passkey.id, name: 'Work laptop' }))} })`,
      );
      expect(renamed.status).toBe(200);
      expect(renamed.body.passkey.name).toBe('Work laptop');

      // The same authenticator cannot register twice for the account (excludeCredentials).
      const again = await page.evaluate(`window.passkeyTest.register('again').then((r) => r.status, (e) => e.name)`);
      expect(again).toBe('InvalidStateError');

      // Deleting is a sensitive operation: a session that signed in 10 minutes ago must re-authenticate.
      await ageSessions(user.userId, 600);
      const deleteBody = JSON.stringify(JSON.stringify({ id: passkey.id }));
      const refused = await inPage(page, `json('/api/auth/passkey/delete-passkey', { method: 'POST', body: ${deleteBody} })`);
      expect(refused).toMatchObject({ status: 401, body: { code: 'REAUTH_REQUIRED' } });
      expect((await s.sql.query(`select 1 from auth.passkey where id = $1`, [passkey.id])).rowCount).toBe(1);
      expect(await eventsOf(user.userId, 'passkey_removed')).toEqual([]);

      // A fresh sign-in (the password again) satisfies it.
      await ageSessions(user.userId, 0);
      const deleted = await inPage(page, `json('/api/auth/passkey/delete-passkey', { method: 'POST', body: ${deleteBody} })`);
      expect(deleted).toMatchObject({ status: 200, body: { status: true } });
      expect((await s.sql.query(`select 1 from auth.passkey where id = $1`, [passkey.id])).rowCount).toBe(0);
      expect(await eventsOf(user.userId, 'passkey_removed')).toEqual([{ passkeyId: passkey.id, name: 'Work laptop' }]);
    } finally {
      await close(context);
    }
  }, 60_000);

  test('registration without recent authentication is 401 REAUTH_REQUIRED until POST /api/v1/auth/reauth', async () => {
    const user = await registerUser(s);
    const jar = cookieFetch(base);
    expect(
      (await call(`${base}/api/auth/sign-in/email`, { body: { email: user.email, password: user.password }, fetch: jar.fetch })).status,
    ).toBe(200);
    const options = `${base}/api/auth/passkey/generate-register-options`;
    expect((await call(options, { fetch: jar.fetch })).status).toBe(200);

    await ageSessions(user.userId, 301);
    const refused = await call(options, { fetch: jar.fetch });
    expect(refused).toMatchObject({ status: 401, body: { code: 'REAUTH_REQUIRED' } });
    const verify = await call(`${base}/api/auth/passkey/verify-registration`, { body: { response: {} }, fetch: jar.fetch });
    expect(verify).toMatchObject({ status: 401, body: { code: 'REAUTH_REQUIRED' } });

    // Step-up for the same session: its access token (sid) re-authenticates with the password.
    const token = await call<{ token: string }>(`${base}/api/auth/token`, { fetch: jar.fetch });
    expect(token.status).toBe(200);
    const reauth = await call(`${base}/api/v1/auth/reauth`, { body: { password: user.password }, token: token.body.token });
    expect(reauth.status).toBe(200);
    expect((await call(options, { fetch: jar.fetch })).status).toBe(200);
  });

  test('the hosted login page signs in with a passkey (no email typed) and continues the OIDC flow', async () => {
    const { user, context, page } = await userWithPasskey();
    try {
      await context.clearCookies();
      const cspViolations: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
      });
      // Conditional UI: the page offers passkeys in the email field's autofill as soon as it loads; the
      // virtual authenticator (user present and verified) answers at once, so no click is needed.
      const req = await authorizationRequest(synapse, recorder.url, 'openid profile email');
      const loginPage = page.waitForResponse((r) => new URL(r.url()).pathname === '/auth/login');
      await Promise.all([page.waitForURL((u) => u.toString().startsWith(recorder.url)), page.goto(req.url)]);
      const csp = (await loginPage).headers()['content-security-policy'] ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
      const callback = new URL(page.url());
      expect(callback.searchParams.get('state')).toBe(req.state);
      expect((await redeem(req, callback))?.sub).toBe(user.userId);

      // A browser without conditional UI: the button, no email typed (a discoverable credential).
      await context.clearCookies();
      await context.addInitScript(NO_CONDITIONAL_UI);
      const second = await synapseLoginPage(page);
      await page.waitForSelector('#passkey-button', { state: 'visible' });
      await Promise.all([page.waitForURL((u) => u.toString().startsWith(recorder.url)), page.click('#passkey-button')]);
      const again = new URL(page.url());
      expect(again.searchParams.get('state')).toBe(second.state);
      expect((await redeem(second, again))?.sub).toBe(user.userId);
      expect(cspViolations).toEqual([]);
      expect(await eventsOf(user.userId, 'sign_in_success')).toEqual(expect.arrayContaining([{ method: 'passkey' }]));
      expect((await eventsOf(user.userId, 'sign_in_success')).filter((c) => c.method === 'passkey')).toHaveLength(2);
    } finally {
      await close(context);
    }
  }, 60_000);

  test('email first on the hosted page; a passkey satisfies two-factor (no code asked)', async () => {
    const { user, context, page } = await userWithPasskey('Phone');
    try {
      // Turn on TOTP from another session.
      const jar = cookieFetch(base);
      expect(
        (await call(`${base}/api/auth/sign-in/email`, { body: { email: user.email, password: user.password }, fetch: jar.fetch })).status,
      ).toBe(200);
      const enabled = await call<{ totpURI: string }>(`${base}/api/auth/two-factor/enable`, {
        body: { password: user.password },
        fetch: jar.fetch,
      });
      const totp = OTPAuth.URI.parse(enabled.body.totpURI) as OTPAuth.TOTP;
      expect((await call(`${base}/api/auth/two-factor/verify-totp`, { body: { code: totp.generate() }, fetch: jar.fetch })).status).toBe(
        200,
      );

      await context.clearCookies();
      await context.addInitScript(NO_CONDITIONAL_UI);
      const req = await synapseLoginPage(page);
      await page.fill('#email', user.email);
      let options: { allowCredentials: Array<{ id: string }>; userVerification: string } | undefined;
      await page.route('**/api/auth/passkey/generate-authenticate-options?email=*', async (route) => {
        const response = await route.fetch();
        options = (await response.json()) as typeof options;
        await route.fulfill({ response });
      });
      await Promise.all([page.waitForURL((u) => u.toString().startsWith(recorder.url)), page.click('#passkey-button')]);
      const [stored] = (await s.sql.query<{ id: string }>(`select credential_id as id from auth.passkey where user_id = $1`, [user.userId]))
        .rows;
      expect(options?.allowCredentials.map((c) => c.id)).toEqual([stored?.id]);
      expect(options?.userVerification).toBe('required');
      const callback = new URL(page.url());
      expect((await redeem(req, callback))?.sub).toBe(user.userId);
    } finally {
      await close(context);
    }
  }, 60_000);

  test('sign in through the API (Better Auth endpoints via the gateway), discoverable and email first', async () => {
    const { user, context, page } = await userWithPasskey();
    try {
      await context.clearCookies();
      const discoverable = await inPage<PageResult<{ user: { id: string } }> & { options: { allowCredentials?: unknown[] } }>(
        page,
        'signIn()',
      );
      expect(discoverable.status).toBe(200);
      expect(discoverable.body.user.id).toBe(user.userId);
      expect(discoverable.options.allowCredentials ?? []).toEqual([]);
      const session = await inPage<PageResult<{ user: { id: string } }>>(page, `json('/api/auth/get-session')`);
      expect(session.body.user.id).toBe(user.userId);

      await context.clearCookies();
      const emailFirst = await inPage<PageResult<{ user: { id: string } }>>(page, `signIn(${JSON.stringify(user.email.toUpperCase())})`);
      expect(emailFirst.status).toBe(200);
      expect(emailFirst.body.user.id).toBe(user.userId);

      // An unknown email gets options that look alike: one (stable) decoy credential, no hint it does not exist.
      const unknown = async () =>
        call<{ allowCredentials: Array<{ id: string }> }>(
          `${base}/api/auth/passkey/generate-authenticate-options?email=nobody-${Date.now()}@x.test`,
        );
      const decoy = (await unknown()).body.allowCredentials;
      expect(decoy).toHaveLength(1);
      expect(decoy[0]?.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect((await s.sql.query(`select 1 from auth.passkey where credential_id = $1`, [decoy[0]?.id])).rowCount).toBe(0);
      expect(await eventsOf(user.userId, 'sign_in_success')).toEqual(expect.arrayContaining([{ method: 'passkey' }]));

      // A banned account gets no session from a passkey either.
      await context.clearCookies();
      await s.sql.query(`insert into auth.user_bans (user_id, reason) values ($1, 'test')`, [user.userId]);
      const banned = await inPage(page, 'signIn()');
      expect(banned).toMatchObject({ status: 403, body: { code: 'ACCOUNT_BANNED' } });
      expect((await inPage<PageResult<unknown>>(page, `json('/api/auth/get-session')`)).body).toBeNull();
    } finally {
      await close(context);
    }
  }, 60_000);

  test('a response signed for another origin is refused (sign-in and registration)', async () => {
    const { user, context, page } = await userWithPasskey();
    try {
      // Options from the real origin (Node, with the challenge cookie); the ceremony runs on a foreign page.
      const ceremony = async (origin: string) => {
        const jar = cookieFetch(base);
        const options = await call(`${base}/api/auth/passkey/generate-authenticate-options`, { fetch: jar.fetch });
        await page.goto(origin);
        const assertion = await inPage<Record<string, unknown>>(page, `get(${JSON.stringify(options.body)})`);
        return {
          jar,
          verified: await call(`${base}/api/auth/passkey/verify-authentication`, { body: { response: assertion }, fetch: jar.fetch }),
        };
      };
      // Control: the same steps on the public origin sign in.
      expect((await ceremony(`${base}/api/auth/ok`)).verified.status).toBe(200);
      const { jar, verified: refused } = await ceremony(foreign.url);
      expect(refused).toMatchObject({ status: 400, body: { code: 'AUTHENTICATION_FAILED' } });
      expect(jar.cookies.has('mana.session_token')).toBe(false);
      expect(await eventsOf(user.userId, 'sign_in_failure')).toContainEqual({ method: 'passkey', reason: 'authentication_failed' });

      // The same for registration: the attestation names the foreign origin.
      const owner = cookieFetch(base);
      expect(
        (await call(`${base}/api/auth/sign-in/email`, { body: { email: user.email, password: user.password }, fetch: owner.fetch })).status,
      ).toBe(200);
      const creation = await call(`${base}/api/auth/passkey/generate-register-options`, { fetch: owner.fetch });
      // The authenticator holds this account's passkey already: let it make a second one.
      const attestation = await inPage<Record<string, unknown>>(
        page,
        `create(${JSON.stringify({ ...creation.body, excludeCredentials: [] })})`,
      );
      const notRegistered = await call(`${base}/api/auth/passkey/verify-registration`, {
        body: { response: attestation },
        fetch: owner.fetch,
      });
      expect(notRegistered).toMatchObject({ status: 400, body: { code: 'FAILED_TO_VERIFY_REGISTRATION' } });
      expect((await s.sql.query(`select 1 from auth.passkey where user_id = $1`, [user.userId])).rowCount).toBe(1);
    } finally {
      await close(context);
    }
  }, 60_000);

  test('passkeys appear in the GDPR view without key material and are erased with the user', async () => {
    const { user, context, passkey } = await userWithPasskey('Desk');
    await close(context);
    const data = await call<{ passkeys: unknown[] }>(`${base}/api/v1/internal/users/${user.userId}/data`, {
      headers: { 'x-service-key': STACK_SERVICE_KEY },
    });
    expect(data.status).toBe(200);
    expect(data.body.passkeys).toEqual([
      { id: passkey.id, name: 'Desk', createdAt: expect.any(String), deviceType: 'singleDevice', backedUp: false },
    ]);
    const [row] = (
      await s.sql.query<{ public_key: string; credential_id: string }>(`select public_key, credential_id from auth.passkey where id = $1`, [
        passkey.id,
      ])
    ).rows;
    expect(JSON.stringify(data.body)).not.toContain(row?.public_key);
    expect(JSON.stringify(data.body)).not.toContain(row?.credential_id);

    const request = createEvent('user.erasure.requested.v1', { requestId: crypto.randomUUID(), userId: user.userId });
    await s.publish(request);
    const done = await s.waitForEvent('user.erasure.completed.v1', (e) => (e.data as { userId: string }).userId === user.userId);
    expect(done.data).toMatchObject({ service: 'auth', deleted: { users: 1, passkeys: 1 } });
    expect((await s.sql.query(`select 1 from auth.passkey where user_id = $1`, [user.userId])).rowCount).toBe(0);
    expect((await scanForIdentifiers(s.sql, [user.userId, user.email])).filter((h) => h.table.startsWith('auth.'))).toEqual([]);
  }, 60_000);
});
