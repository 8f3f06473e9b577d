import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import * as OTPAuth from 'otpauth';
import * as oidc from 'openid-client';
import { eventually } from '@mana/shared/testing';
import { startStack, type Stack } from '../helpers/stack';
import { call, cookieFetch } from '../helpers/http';
import { SYNAPSE_SECRET, authorizationRequest, oidcEnv, registerUser } from './oidc-helpers';

/** A stand-in for Synapse's callback endpoint: records every query it receives. */
async function startRecorder() {
  const hits: URL[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(new URL(req.url ?? '/', 'http://recorder'));
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    hits,
    url: `http://127.0.0.1:${port}/_synapse/client/oidc/callback`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let s: Stack;
let browser: Browser;
let recorder: Awaited<ReturnType<typeof startRecorder>>;
let synapse: oidc.Configuration;

beforeAll(async () => {
  recorder = await startRecorder();
  s = await startStack({ env: oidcEnv({ synapse: recorder.url, webapp: 'https://webapp.test/cb', spa: 'http://127.0.0.1:9/cb' }) });
  synapse = await oidc.discovery(new URL(s.gatewayUrl), 'synapse', undefined, oidc.ClientSecretBasic(SYNAPSE_SECRET), {
    execute: [oidc.allowInsecureRequests],
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await s?.close();
  await recorder?.close();
});

/** What Synapse does: an authorization request with state, nonce and PKCE. */
const synapseAuthorizeUrl = () => authorizationRequest(synapse, recorder.url, 'openid profile email');

async function redeem(req: Awaited<ReturnType<typeof synapseAuthorizeUrl>>, callback: URL) {
  const tokens = await oidc.authorizationCodeGrant(synapse, new URL(`${recorder.url}${callback.search}`), req.checks);
  return tokens.claims();
}

/** Turns on TOTP for a user through Better Auth's two-factor endpoints; returns the authenticator. */
async function enableTotp(email: string, password: string) {
  const jar = cookieFetch(new URL(s.gatewayUrl).origin);
  const signIn = await call(`${s.gatewayUrl}/api/auth/sign-in/email`, { body: { email, password }, fetch: jar.fetch });
  expect(signIn.status).toBe(200);
  const enabled = await call<{ totpURI: string; backupCodes: string[] }>(`${s.gatewayUrl}/api/auth/two-factor/enable`, {
    body: { password },
    fetch: jar.fetch,
  });
  expect(enabled.status).toBe(200);
  const totp = OTPAuth.URI.parse(enabled.body.totpURI) as OTPAuth.TOTP;
  const verified = await call(`${s.gatewayUrl}/api/auth/two-factor/verify-totp`, { body: { code: totp.generate() }, fetch: jar.fetch });
  expect(verified.status).toBe(200);
  return { totp, backupCodes: enabled.body.backupCodes };
}

describe('Synapse-style sign-in in headless Chromium', () => {
  test('email + password on the hosted page lands on the redirect URI with a code', async () => {
    const user = await registerUser(s);
    const req = await synapseAuthorizeUrl();
    const context = await browser.newContext({ locale: 'de-DE' });
    try {
      const page = await context.newPage();
      const cspViolations: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
      });
      const styles: number[] = [];
      page.on('response', (r) => {
        if (r.url().endsWith('/auth/style.css')) styles.push(r.status());
      });
      await page.goto(req.url);
      expect(new URL(page.url()).pathname).toBe('/auth/login');
      expect(await page.locator('h1').textContent()).toBe('Bei Mana anmelden');
      // The stylesheet loaded under the page's own CSP.
      expect(styles).toEqual([200]);
      await page.fill('#email', user.email);
      await page.fill('#password', user.password);
      await Promise.all([page.waitForURL((u) => u.toString().startsWith(recorder.url)), page.click('button[type=submit]')]);
      const callback = new URL(page.url());
      expect(callback.searchParams.get('state')).toBe(req.state);
      expect(callback.searchParams.get('code')).toBeTruthy();
      expect(cspViolations).toEqual([]);
      const claims = await redeem(req, callback);
      expect(claims?.sub).toBe(user.userId);
      expect(claims?.preferred_username).toBe(user.email.split('@')[0]);

      // The SSO cookie now skips the page entirely.
      const again = await synapseAuthorizeUrl();
      await page.goto(again.url);
      expect(page.url().startsWith(recorder.url)).toBe(true);
      expect(new URL(page.url()).searchParams.get('state')).toBe(again.state);
    } finally {
      await context.close();
    }
  });

  test('with 2FA: password, then the TOTP step, then the redirect URI with a code', async () => {
    const user = await registerUser(s);
    const { totp, backupCodes } = await enableTotp(user.email, user.password);
    const req = await synapseAuthorizeUrl();
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      await page.goto(req.url);
      await page.fill('#email', user.email);
      await page.fill('#password', user.password);
      await page.click('button[type=submit]');
      await page.waitForLoadState();
      expect(new URL(page.url()).pathname, await page.content()).toBe('/auth/login/2fa');
      expect(await page.locator('h1').textContent()).toBe('Two-step verification');
      // No code reached the client before the second factor.
      expect(recorder.hits.filter((h) => h.searchParams.get('state') === req.state)).toEqual([]);
      await page.fill('#code', '000000');
      await page.click('button[type=submit]');
      expect(await page.locator('.error').textContent()).toBe('That code is not valid. Please try again.');
      // A code works once: enableTotp used this step's, so the next step's.
      await page.fill('#code', totp.generate({ timestamp: Date.now() + 30_000 }));
      await Promise.all([page.waitForURL((u) => u.toString().startsWith(recorder.url)), page.click('button[type=submit]')]);
      const callback = new URL(page.url());
      expect(callback.searchParams.get('state')).toBe(req.state);
      expect((await redeem(req, callback))?.sub).toBe(user.userId);
      await eventually(async () => expect(recorder.hits.some((h) => h.searchParams.get('state') === req.state)).toBe(true));
    } finally {
      await context.close();
    }

    // A backup code works in place of the TOTP code (fresh browser, no SSO cookie).
    const viaBackup = await synapseAuthorizeUrl();
    const second = await browser.newContext();
    try {
      const page = await second.newPage();
      await page.goto(viaBackup.url);
      await page.fill('#email', user.email);
      await page.fill('#password', user.password);
      await Promise.all([page.waitForURL((u) => u.pathname === '/auth/login/2fa'), page.click('button[type=submit]')]);
      await Promise.all([page.waitForURL((u) => u.searchParams.get('method') === 'backup'), page.click('nav.links a')]);
      await page.fill('#code', backupCodes[0] ?? '');
      await Promise.all([page.waitForURL((u) => u.toString().startsWith(recorder.url)), page.click('button[type=submit]')]);
      expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    } finally {
      await second.close();
    }
  }, 60_000);
});
