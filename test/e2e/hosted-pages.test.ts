import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import * as oidc from 'openid-client';
import { call, type CookieFetch } from '../helpers/http';
import type { CapturedMail } from '../helpers/smtp';
import { startStack, type Stack } from '../helpers/stack';
import { registerVerified, strongPassword, uniqueEmail } from '../helpers/users';
import {
  SYNAPSE_SECRET,
  authorizationRequest,
  authorizeViaLoginForm,
  hiddenField,
  locationOf,
  navigate,
  newBrowser,
  oidcEnv,
  postForm,
} from './oidc-helpers';

const SYNAPSE_CB = 'https://matrix.test/_synapse/client/oidc/callback';

let s: Stack;
let origin: string;
let synapse: oidc.Configuration;
const used = new Set<string>();

const start = (extra: Record<string, string> = {}) => authorizationRequest(synapse, SYNAPSE_CB, 'openid profile email', extra);

/** authorize → the hosted login page (HTML and its form fields). */
async function openLogin(browser: CookieFetch, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
  const req = await start(extra);
  const toLogin = await navigate(browser, req.url);
  const loginUrl = locationOf(toLogin, s.gatewayUrl);
  expect(new URL(loginUrl).pathname).toBe('/auth/login');
  const res = await browser.fetch(loginUrl, { headers });
  const html = await res.text();
  return { req, res, html, fields: { csrf: hiddenField(html, 'csrf'), oauth_query: hiddenField(html, 'oauth_query') } };
}

/** Follows redirects like a browser until one goes to the client; fails on any page on the way. */
async function followTo(browser: CookieFetch, url: string): Promise<URL> {
  let next = url;
  for (let hop = 0; hop < 10; hop++) {
    if (next.startsWith(SYNAPSE_CB)) return new URL(next);
    const res = await navigate(browser, next);
    if (res.status < 300 || res.status >= 400) throw new Error(`stopped at ${next}: ${res.status} ${(await res.text()).slice(0, 300)}`);
    next = locationOf(res, s.gatewayUrl);
  }
  throw new Error('too many hops');
}

async function nextMail(to: string, filter: (m: CapturedMail) => boolean): Promise<CapturedMail> {
  const mail = await s.smtp.waitFor(to, (m) => filter(m) && !used.has(m.raw));
  used.add(mail.raw);
  return mail;
}

const hrefOf = (html: string, text: string) => {
  const m = new RegExp(`<a href="([^"]*)">${text}</a>`).exec(html);
  if (!m?.[1]) throw new Error(`no link "${text}"`);
  return new URL(m[1].replace(/&amp;/g, '&'), s.gatewayUrl).toString();
};
const mailsTo = (email: string) => s.smtp.messages.filter((m) => m.to.includes(email.toLowerCase())).length;

beforeAll(async () => {
  // The hosted pages by default (no OIDC_SIGNUP_URL / OIDC_PASSWORD_RESET_URL), email verification on.
  const {
    OIDC_SIGNUP_URL: _signup,
    OIDC_PASSWORD_RESET_URL: _reset,
    ...env
  } = oidcEnv({ synapse: SYNAPSE_CB, webapp: 'https://webapp.test/cb', spa: 'http://127.0.0.1:9/cb' });
  s = await startStack({ env: { ...env, REQUIRE_EMAIL_VERIFICATION: 'true' } });
  origin = new URL(s.gatewayUrl).origin;
  synapse = await oidc.discovery(new URL(s.gatewayUrl), 'synapse', undefined, oidc.ClientSecretBasic(SYNAPSE_SECRET), {
    execute: [oidc.allowInsecureRequests],
  });
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('login page', () => {
  test('offers a magic link and links to the hosted sign-up and reset pages with the pending authorization', async () => {
    const { html, fields } = await openLogin(newBrowser(s));
    // One same-origin script (passkey sign-in), no inline script and no handler attributes.
    expect(html.match(/<script[^>]*>/gi)).toEqual(['<script src="/auth/passkey.js" defer>']);
    expect(html).not.toMatch(/<script[^>]*>[^<]/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).toContain('formaction="/auth/login/magic-link"');
    for (const [text, path] of [
      ['No account yet\\? Sign up', '/auth/sign-up'],
      ['Forgot your password\\?', '/auth/forgot-password'],
    ] as const) {
      const link = new URL(hrefOf(html, text));
      expect(link.pathname).toBe(path);
      expect(link.searchParams.get('sig')).toBe(new URLSearchParams(fields.oauth_query).get('sig'));
    }
  });

  test('a login page left open longer than the code lifetime (60 s) still signs in and lands on the client', async () => {
    const user = await registerVerified(s);
    const browser = newBrowser(s);
    const { req, fields } = await openLogin(browser, { prompt: 'login' });
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 5 * 60_000);
      const res = await postForm(browser, `${s.gatewayUrl}/auth/login`, { ...fields, email: user.email, password: user.password }, origin);
      expect(res.status, await res.clone().text()).toBe(303);
      const tokens = await oidc.authorizationCodeGrant(synapse, await followTo(browser, locationOf(res, s.gatewayUrl)), req.checks);
      expect(tokens.claims()?.sub).toBe(user.userId);
    } finally {
      vi.useRealTimers();
    }
    // A forged query is not resumed: the provider refuses it as before.
    const forged = new URLSearchParams(fields.oauth_query);
    forged.set('scope', 'openid email');
    const refused = await postForm(
      browser,
      `${s.gatewayUrl}/auth/login`,
      { ...fields, oauth_query: forged.toString(), email: user.email, password: user.password },
      origin,
    );
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('This sign-in request has expired');
  });
});

describe('magic link from the login page', () => {
  test('the mailed link signs in and lands on the client with a code; an unknown email gets the same page', async () => {
    const user = await registerVerified(s);
    const browser = newBrowser(s);
    const { req, fields } = await openLogin(browser);
    const sent = await postForm(browser, `${s.gatewayUrl}/auth/login/magic-link`, { ...fields, email: user.email }, origin);
    const ghost = uniqueEmail('ghost');
    const unknown = await postForm(browser, `${s.gatewayUrl}/auth/login/magic-link`, { ...fields, email: ghost }, origin);
    expect(sent.status).toBe(200);
    expect(unknown.status).toBe(200);
    const page = await sent.text();
    expect(page).toContain('Check your inbox');
    expect(await unknown.text()).toBe(page);

    const link = s.smtp.linkIn(await nextMail(user.email, (m) => m.subject === 'Your sign-in link for Mana'));
    expect(new URL(link).searchParams.get('callbackURL')?.startsWith(`${s.gatewayUrl}/auth/login/continue?`)).toBe(true);
    const callback = await followTo(browser, link);
    const tokens = await oidc.authorizationCodeGrant(synapse, callback, req.checks);
    expect(tokens.claims()?.sub).toBe(user.userId);
    expect(mailsTo(ghost)).toBe(0);

    // Spent: the same link again is refused on a page of its own, with no session and no code.
    const stranger = newBrowser(s);
    const again = await navigate(stranger, link);
    const landing = await navigate(stranger, locationOf(again, s.gatewayUrl));
    expect(landing.status).toBe(400);
    expect(await landing.text()).toContain('This link is no longer valid');
    expect(stranger.cookies.has('mana.session_token')).toBe(false);
  });

  test('satisfies prompt=login: a browser that already has a session signs in again by link and gets a code', async () => {
    const user = await registerVerified(s);
    const browser = newBrowser(s);
    const first = await start();
    await authorizeViaLoginForm(s, browser, first.url, user, SYNAPSE_CB);
    const { req, fields } = await openLogin(browser, { prompt: 'login' });
    const sent = await postForm(browser, `${s.gatewayUrl}/auth/login/magic-link`, { ...fields, email: user.email, lang: 'de' }, origin);
    expect(await sent.text()).toContain('Schau in dein Postfach');
    const link = s.smtp.linkIn(await nextMail(user.email, (m) => m.subject === 'Dein Anmeldelink für Mana'));
    const tokens = await oidc.authorizationCodeGrant(synapse, await followTo(browser, link), req.checks);
    expect(tokens.claims()?.sub).toBe(user.userId);
  });
});

describe('hosted sign-up', () => {
  test('password rules by name, nothing created; then an account with a verification mail that resumes the flow', async () => {
    const browser = newBrowser(s);
    const { req, html: login } = await openLogin(browser);
    const signUpUrl = new URL(hrefOf(login, 'No account yet\\? Sign up'));
    signUpUrl.searchParams.set('lang', 'de');
    const pageRes = await browser.fetch(signUpUrl);
    const html = await pageRes.text();
    expect(html).toContain('Mana-Konto erstellen');
    expect(html).not.toMatch(/<script/i);
    expect(pageRes.headers.get('content-security-policy')).toContain("default-src 'none'");
    const fields = { csrf: hiddenField(html, 'csrf'), oauth_query: hiddenField(html, 'oauth_query'), lang: 'de' };
    const email = uniqueEmail('signup');
    const post = (password: string, to = email) =>
      postForm(browser, `${s.gatewayUrl}/auth/sign-up`, { ...fields, name: 'Grace Hopper', email: to, password }, origin);

    for (const [password, code, text] of [
      ['kurz', 'PASSWORD_TOO_SHORT', 'Dein Passwort ist zu kurz'],
      ['password123', 'PASSWORD_TOO_COMMON', 'Dieses Passwort ist zu verbreitet'],
      ['x'.repeat(129), 'PASSWORD_TOO_LONG', 'Dein Passwort ist zu lang'],
    ] as const) {
      const res = await post(password);
      expect(res.status, code).toBe(400);
      const body = await res.text();
      expect(body).toContain(`data-code="${code}"`);
      expect(body).toContain(text);
      expect(body).toContain(`value="${email}"`);
    }
    expect((await s.sql.query('select 1 from auth.user where email = $1', [email])).rowCount).toBe(0);

    const password = strongPassword();
    const created = await post(password);
    expect(created.status).toBe(200);
    const done = await created.text();
    expect(done).toContain('Bestätige deine E-Mail-Adresse');
    const row = await s.sql.query('select email_verified, locale from auth.user where email = $1', [email]);
    expect(row.rows).toEqual([{ email_verified: false, locale: 'de' }]);
    // An address that already has an account: the very same answer.
    const existing = await registerVerified(s);
    const dup = await post(strongPassword(), existing.email);
    expect(dup.status).toBe(200);
    expect(await dup.text()).toBe(done);

    const verify = s.smtp.linkIn(await nextMail(email, (m) => m.subject === 'Bestätige deine E-Mail-Adresse'));
    const { url } = await authorizeViaLoginForm(s, browser, verify, { email, password }, SYNAPSE_CB);
    const tokens = await oidc.authorizationCodeGrant(synapse, url, req.checks);
    expect(tokens.claims()?.email).toBe(email);
    expect(tokens.claims()?.email_verified).toBe(true);
  });
});

describe('hosted password reset', () => {
  test('forgot → mail → hosted reset page → the new password works, the old one not; unknown email answered the same', async () => {
    const user = await registerVerified(s);
    const browser = newBrowser(s);
    const { req, html: login } = await openLogin(browser);
    const forgot = await browser.fetch(hrefOf(login, 'Forgot your password\\?'));
    const html = await forgot.text();
    expect(html).toContain('Reset your password');
    const fields = { csrf: hiddenField(html, 'csrf'), oauth_query: hiddenField(html, 'oauth_query') };
    const known = await postForm(browser, `${s.gatewayUrl}/auth/forgot-password`, { ...fields, email: user.email }, origin);
    const ghost = uniqueEmail('ghost');
    const unknown = await postForm(browser, `${s.gatewayUrl}/auth/forgot-password`, { ...fields, email: ghost }, origin);
    expect(known.status).toBe(200);
    expect(unknown.status).toBe(200);
    const sent = await known.text();
    expect(sent).toContain('we have sent it a link to choose a new password');
    expect(await unknown.text()).toBe(sent);

    const link = s.smtp.linkIn(await nextMail(user.email, (m) => m.subject === 'Reset your password'));
    const toPage = await navigate(browser, link);
    const pageUrl = new URL(locationOf(toPage, s.gatewayUrl));
    expect(pageUrl.origin + pageUrl.pathname).toBe(`${s.gatewayUrl}/auth/reset-password`);
    const resetHtml = await (await browser.fetch(pageUrl)).text();
    expect(resetHtml).toContain('Choose a new password');
    const resetFields = {
      csrf: hiddenField(resetHtml, 'csrf'),
      oauth_query: hiddenField(resetHtml, 'oauth_query'),
      token: hiddenField(resetHtml, 'token'),
    };
    const weak = await postForm(browser, `${s.gatewayUrl}/auth/reset-password`, { ...resetFields, password: 'password123' }, origin);
    expect(weak.status).toBe(400);
    expect(await weak.text()).toContain('data-code="PASSWORD_TOO_COMMON"');

    const fresh = strongPassword();
    const changed = await postForm(browser, `${s.gatewayUrl}/auth/reset-password`, { ...resetFields, password: fresh }, origin);
    expect(changed.status).toBe(200);
    const changedHtml = await changed.text();
    expect(changedHtml).toContain('Password changed');
    expect((await call(`${s.gatewayUrl}/api/v1/auth/login`, { body: { email: user.email, password: user.password } })).status).toBe(401);
    expect((await call(`${s.gatewayUrl}/api/v1/auth/login`, { body: { email: user.email, password: fresh } })).status).toBe(200);
    expect(mailsTo(ghost)).toBe(0);
    // The token is spent.
    const reused = await postForm(browser, `${s.gatewayUrl}/auth/reset-password`, { ...resetFields, password: strongPassword() }, origin);
    expect(reused.status).toBe(400);
    expect(await reused.text()).toContain('This link is no longer valid');

    // "Continue to sign in" resumes the client's authorization.
    const { url } = await authorizeViaLoginForm(
      s,
      browser,
      hrefOf(changedHtml, 'Continue to sign in'),
      { email: user.email, password: fresh },
      SYNAPSE_CB,
    );
    expect((await oidc.authorizationCodeGrant(synapse, url, req.checks)).claims()?.sub).toBe(user.userId);
  });
});

describe('CSRF', () => {
  test('every new form refuses a post without the token or from another origin, and does nothing', async () => {
    const user = await registerVerified(s);
    const browser = newBrowser(s);
    const { fields } = await openLogin(browser);
    const email = uniqueEmail('csrf');
    const before = mailsTo(user.email);
    const forms: Array<[string, Record<string, string>]> = [
      ['/auth/login/magic-link', { email: user.email }],
      ['/auth/forgot-password', { email: user.email }],
      ['/auth/sign-up', { name: 'Eve', email, password: strongPassword() }],
      ['/auth/reset-password', { token: 'a'.repeat(24), password: strongPassword() }],
    ];
    for (const [path, body] of forms) {
      const missing = await postForm(browser, `${s.gatewayUrl}${path}`, { oauth_query: fields.oauth_query, ...body }, origin);
      expect(missing.status, `${path} without token`).toBe(403);
      const crossSite = await postForm(browser, `${s.gatewayUrl}${path}`, { ...fields, ...body }, 'https://evil.test');
      expect(crossSite.status, `${path} from another origin`).toBe(403);
    }
    // Give a wrongly sent mail the time to arrive before checking that none did.
    await registerVerified(s);
    expect(mailsTo(user.email)).toBe(before);
    expect((await s.sql.query('select 1 from auth.user where email = $1', [email])).rowCount).toBe(0);
  });
});
