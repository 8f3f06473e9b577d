import { readFileSync } from 'node:fs';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { authSecret } from '../auth/better-auth-adapter';
import type { AuthContext } from '../context';
import { callBetterAuth, redirectTarget } from './better-auth-call';
import { pendingAuthorization, resumeAuthorizeUrl } from './continuation';
import { csrfValid } from './csrf';
import { loginRenderer } from './login-form';
import { formParser, pageKit } from './page-kit';
import { messageBody } from './render';

const SCRIPT = readFileSync(new URL('./passkey.js', import.meta.url));

export const passkeyLoginForm = z.object({
  /** The WebAuthn assertion as JSON (base64url fields), as passkey.js serializes it. */
  response: z.string().min(2).max(12_000),
  oauth_query: z.string().max(8192).default(''),
  csrf: z.string().max(128).default(''),
});
const assertion = z.looseObject({ id: z.string().min(1).max(1024), response: z.looseObject({}) });

/**
 * /auth/passkey.js and /auth/login/passkey: passkey sign-in on the hosted login page. The script gets
 * options from Better Auth (`/api/auth/passkey/generate-authenticate-options`, which sets the challenge
 * cookie), runs the ceremony and posts the assertion here; this page hands it to Better Auth's
 * verify-authentication with the pending authorization, like the password form, so OIDC relying parties
 * get their code. No second factor follows: the passkey (with user verification) is both.
 */
export function passkeyPages(ctx: AuthContext): Router {
  const router = Router();
  const kit = pageKit(ctx);
  const renderLogin = loginRenderer(ctx, kit);
  router.use('/login/passkey', formParser());
  const secret = () => authSecret(ctx.auth);

  router.get('/passkey.js', (_req, res) => {
    res.type('text/javascript').set({ 'Cache-Control': 'public, max-age=3600', 'X-Content-Type-Options': 'nosniff' }).send(SCRIPT);
  });

  router.post('/login/passkey', async (req: Request, res: Response) => {
    const { loc, t } = kit.strings(req);
    const oauthQuery = kit.postedOAuthQuery(req);
    const form = passkeyLoginForm.safeParse(req.body);
    if (!form.success) return renderLogin(req, res, oauthQuery, 400, t.passkeyFailed);
    if (!csrfValid(req, form.data.csrf, kit.production, kit.publicOrigin)) return renderLogin(req, res, oauthQuery, 403, t.csrf);
    const parsed = assertion.safeParse(parseJson(form.data.response));
    if (!parsed.success) return renderLogin(req, res, oauthQuery, 400, t.passkeyFailed);
    const pending = await pendingAuthorization(oauthQuery, await secret());
    const result = await callBetterAuth(ctx, req, res, '/passkey/verify-authentication', { response: parsed.data, ...pending.body });
    if (result.status === 200) {
      const target = redirectTarget(result.body);
      if (target) return res.redirect(303, target);
      if (pending.resume) return res.redirect(303, await resumeAuthorizeUrl(kit.base, oauthQuery, await secret(), new Date()));
      return kit.send(res, 200, loc, t.signedInTitle, messageBody(t.signedInTitle, t.signedInLead));
    }
    if (result.body.error === 'invalid_signature') return renderLogin(req, res, oauthQuery, 400, t.expired);
    if (result.status === 429) return renderLogin(req, res, oauthQuery, 429, t.tooMany);
    if (result.status === 403) return renderLogin(req, res, oauthQuery, 403, t.failed);
    return renderLogin(req, res, oauthQuery, result.status >= 500 ? 502 : 401, t.passkeyFailed);
  });

  return router;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
