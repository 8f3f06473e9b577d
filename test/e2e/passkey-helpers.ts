import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, CDPSession, Page } from 'playwright-core';

/** Chromium as the other browser tests launch it (Debian's build, headless). */
export const CHROMIUM_LAUNCH = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

/** Re-exported for the passkey tests (the one helper lives in `@mana/shared/testing`). */
export { freePort } from '@mana/shared/testing';

/** A plain page on another origin of the same host (same RP ID, foreign origin). */
export async function startForeignOrigin() {
  const server: Server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title><p>elsewhere</p>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://localhost:${port}/`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * A platform authenticator that holds resident keys and verifies the user (as Touch ID or Windows Hello
 * would), through the DevTools protocol. It belongs to the page: navigations keep it and its credentials.
 */
export async function addVirtualAuthenticator(context: BrowserContext, page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

export interface PageResult<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/**
 * What a web app on the page's origin does with Better Auth's passkey endpoints (registration, API
 * sign-in), installed into every page of a context. Page code, so it is a string: the test's TypeScript
 * has no DOM library. The CSP of the hosted pages does not apply to scripts injected this way.
 */
export const PAGE_HELPERS = `
window.passkeyTest = {
  async json(path, init) {
    const res = await fetch(path, { credentials: 'same-origin', ...init, headers: { accept: 'application/json', ...(init && init.body ? { 'content-type': 'application/json' } : {}) } });
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = text; }
    return { status: res.status, body };
  },
  async create(options) {
    const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
    return credential.toJSON();
  },
  async get(options) {
    const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
    return credential.toJSON();
  },
  async register(name) {
    const options = await this.json('/api/auth/passkey/generate-register-options');
    if (options.status !== 200) return options;
    const response = await this.create(options.body);
    return this.json('/api/auth/passkey/verify-registration', { method: 'POST', body: JSON.stringify({ name, response }) });
  },
  async signIn(email) {
    const query = email ? '?email=' + encodeURIComponent(email) : '';
    const options = await this.json('/api/auth/passkey/generate-authenticate-options' + query);
    const response = await this.get(options.body);
    const result = await this.json('/api/auth/passkey/verify-authentication', { method: 'POST', body: JSON.stringify({ response }) });
    return { ...result, options: options.body };
  },
};
`;

/** Runs `passkeyTest.<call>` in the page and returns its (JSON) result. */
export async function inPage<T = PageResult>(page: Page, expression: string): Promise<T> {
  return await page.evaluate(`window.passkeyTest.${expression}`);
}
