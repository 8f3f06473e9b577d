import { readFileSync } from 'node:fs';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { authSecret } from '../auth/better-auth-adapter';
import type { AuthContext } from '../context';
import { callBetterAuth, redirectTarget } from './better-auth-call';
import { pendingAuthorization, resumeAuthorizeUrl } from './continuation';
import { csrfValid } from './csrf';
import { STRINGS, type PageStrings } from './i18n';
import { loginRenderer } from './login-form';
import { requestingClient, searchOf, signedOAuthQuery } from './oauth-query';
import { formField, formParser, pageKit } from './page-kit';
import { consentBody, messageBody, twoFactorBody } from './render';

const STYLESHEET = readFileSync(new URL('./style.css', import.meta.url));

export const loginForm = z.object({
  email: z.string().trim().min(3).max(254),
  password: z.string().min(1).max(128),
  oauth_query: z.string().max(8192).default(''),
  csrf: z.string().max(128).default(''),
});
export const codeForm = z.object({
  code: z.string().trim().min(6).max(32),
  method: z.enum(['totp', 'backup']).default('totp'),
  oauth_query: z.string().max(8192).default(''),
  csrf: z.string().max(128).default(''),
});
export const consentForm = z.object({
  accept: z.enum(['true', 'false']),
  oauth_query: z.string().min(1).max(8192),
  csrf: z.string().max(128).default(''),
});

/**
 * /auth: the hosted login, two-factor and consent pages the OIDC provider sends browsers to (the
 * magic-link pages are `magic-link-pages.ts`, sign-up and password reset `account-pages.ts`, all
 * mounted at /auth in app.ts). Server-rendered, no script but the login page's passkey.js (`passkey-pages.ts`), a strict CSP of their own; form
 * posts are checked with a double-submit token.
 */
export function hostedPages(ctx: AuthContext): Router {
  const router = Router();
  const kit = pageKit(ctx);
  const { production, publicOrigin, locale, send } = kit;
  router.use(formParser());

  router.get('/style.css', (_req, res) => {
    res.type('text/css').set('Cache-Control', 'public, max-age=3600').send(STYLESHEET);
  });

  const base = kit.form;
  const renderLogin = loginRenderer(ctx, kit);
  const renderCode = async (req: Request, res: Response, oauthQuery: string, method: 'totp' | 'backup', status = 200, error?: string) => {
    const loc = locale(req);
    const t = STRINGS[loc];
    send(
      res,
      status,
      loc,
      t.twoFactorTitle,
      twoFactorBody({ ...base(req, res, t, oauthQuery, loc), method, error }),
      await requestingClient(ctx.db, oauthQuery),
    );
  };
  const signedIn = (req: Request, res: Response) => {
    const loc = locale(req);
    send(res, 200, loc, STRINGS[loc].signedInTitle, messageBody(STRINGS[loc].signedInTitle, STRINGS[loc].signedInLead));
  };

  const secret = () => authSecret(ctx.auth);
  // After a complete sign-in: the provider's continuation, or our own when the query had expired.
  const finish = async (req: Request, res: Response, body: Record<string, unknown>, oauthQuery: string, resume: boolean) => {
    const target = redirectTarget(body);
    if (target) return res.redirect(303, target);
    if (resume) return res.redirect(303, await resumeAuthorizeUrl(kit.base, oauthQuery, await secret(), new Date()));
    signedIn(req, res);
  };

  router.get('/login', async (req, res) => {
    await renderLogin(req, res, signedOAuthQuery(searchOf(req.originalUrl)));
  });

  router.post('/login', async (req, res) => {
    const t = STRINGS[locale(req)];
    const form = loginForm.safeParse(req.body);
    const oauthQuery = signedOAuthQuery(new URLSearchParams(formField(req, 'oauth_query') ?? ''));
    if (!form.success) return renderLogin(req, res, oauthQuery, 400, t.badRequest);
    if (!csrfValid(req, form.data.csrf, production, publicOrigin)) return renderLogin(req, res, oauthQuery, 403, t.csrf, form.data.email);
    const pending = await pendingAuthorization(oauthQuery, await secret());
    const result = await callBetterAuth(ctx, req, res, '/sign-in/email', {
      email: form.data.email,
      password: form.data.password,
      rememberMe: true,
      ...pending.body,
    });
    if (result.status === 200) {
      if (result.body.twoFactorRedirect === true) {
        const next = new URLSearchParams(oauthQuery);
        next.set('lang', locale(req));
        return res.redirect(303, `/auth/login/2fa?${next.toString()}`);
      }
      return finish(req, res, result.body, oauthQuery, pending.resume);
    }
    return renderLogin(req, res, oauthQuery, result.status, signInError(t, result), form.data.email);
  });

  router.get('/login/2fa', async (req, res) => {
    const search = searchOf(req.originalUrl);
    await renderCode(req, res, signedOAuthQuery(search), search.get('method') === 'backup' ? 'backup' : 'totp');
  });

  router.post('/login/2fa', async (req, res) => {
    const t = STRINGS[locale(req)];
    const form = codeForm.safeParse(req.body);
    const oauthQuery = signedOAuthQuery(new URLSearchParams(formField(req, 'oauth_query') ?? ''));
    const method = formField(req, 'method') === 'backup' ? 'backup' : 'totp';
    if (!form.success) return renderCode(req, res, oauthQuery, method, 400, t.invalidCode);
    if (!csrfValid(req, form.data.csrf, production, publicOrigin)) return renderCode(req, res, oauthQuery, method, 403, t.csrf);
    const path = form.data.method === 'backup' ? '/two-factor/verify-backup-code' : '/two-factor/verify-totp';
    const pending = await pendingAuthorization(oauthQuery, await secret());
    const result = await callBetterAuth(ctx, req, res, path, { code: form.data.code, ...pending.body });
    if (result.status === 200) return finish(req, res, result.body, oauthQuery, pending.resume);
    // No two-factor cookie (expired or never signed in): back to the password step.
    if (result.body.code === 'INVALID_TWO_FACTOR_COOKIE') return renderLogin(req, res, oauthQuery, 401, t.expired);
    return renderCode(req, res, oauthQuery, method, result.status === 429 ? 429 : 401, result.status === 429 ? t.tooMany : t.invalidCode);
  });

  router.get('/consent', async (req, res) => {
    const oauthQuery = signedOAuthQuery(searchOf(req.originalUrl));
    const loc = locale(req);
    const t = STRINGS[loc];
    const client = await requestingClient(ctx.db, oauthQuery);
    if (!client) return send(res, 400, loc, t.consentTitle, messageBody(t.consentTitle, t.expired));
    send(
      res,
      200,
      loc,
      t.consentTitle,
      consentBody({ ...base(req, res, t, oauthQuery, loc), clientName: client.name, scopes: client.scopes }),
      client,
    );
  });

  router.post('/consent', async (req, res) => {
    const loc = locale(req);
    const t = STRINGS[loc];
    const form = consentForm.safeParse(req.body);
    const oauthQuery = form.success ? signedOAuthQuery(new URLSearchParams(form.data.oauth_query)) : '';
    if (!form.success || !oauthQuery) return send(res, 400, loc, t.consentTitle, messageBody(t.consentTitle, t.expired));
    if (!csrfValid(req, form.data.csrf, production, publicOrigin))
      return send(res, 403, loc, t.consentTitle, messageBody(t.consentTitle, t.csrf));
    const result = await callBetterAuth(ctx, req, res, '/oauth2/consent', { accept: form.data.accept === 'true', oauth_query: oauthQuery });
    const target = result.status === 200 ? redirectTarget(result.body) : undefined;
    if (target) return res.redirect(303, target);
    // No session any more (signed out in another tab): sign in again, then the provider asks again.
    if (result.status === 401) return renderLogin(req, res, oauthQuery, 401);
    return send(res, 400, loc, t.consentTitle, messageBody(t.consentTitle, t.expired));
  });

  return router;
}

function signInError(t: PageStrings, result: { status: number; body: Record<string, unknown> }): string {
  if (result.body.error === 'invalid_signature') return t.expired;
  if (result.status === 401) return t.invalidCredentials;
  if (result.status === 403 && result.body.code === 'EMAIL_NOT_VERIFIED') return t.emailNotVerified;
  if (result.status === 429) return t.tooMany;
  if (result.status === 400) return t.badRequest;
  return t.failed;
}
