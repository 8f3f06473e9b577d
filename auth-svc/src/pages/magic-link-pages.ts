import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { authSecret, sessionOfCookie } from '../auth/better-auth-adapter';
import type { AuthContext } from '../context';
import { callBetterAuth } from './better-auth-call';
import { genuineSignedQuery, resumeAuthorizeUrl } from './continuation';
import { csrfValid } from './csrf';
import { searchOf, signedOAuthQuery } from './oauth-query';
import { loginRenderer } from './login-form';
import { formField, formParser, pageKit, pageUrl } from './page-kit';
import { messageBody } from './render';

export const magicLinkForm = z.object({
  email: z.string().trim().max(254).pipe(z.email()),
  oauth_query: z.string().max(8192).default(''),
  csrf: z.string().max(128).default(''),
});

/** The session of the browser's cookie, if any (Better Auth checks the signed cookie). */
export async function browserSession(ctx: AuthContext, req: Request) {
  return sessionOfCookie(ctx.auth, req.headers.cookie);
}

/**
 * /auth/login/magic-link and /auth/login/continue: "email me a sign-in link" on the login page,
 * and the page the mailed link lands on: Better Auth's magic-link endpoint mails a link whose
 * callback is `/auth/login/continue` with the pending authorization, which sends the now
 * signed-in browser on to the authorization endpoint.
 */
export function magicLinkPages(ctx: AuthContext): Router {
  const router = Router();
  const kit = pageKit(ctx);
  const renderLogin = loginRenderer(ctx, kit);
  router.use(formParser());
  const secret = () => authSecret(ctx.auth);

  router.post('/login/magic-link', async (req: Request, res: Response) => {
    const { loc, t } = kit.strings(req);
    const oauthQuery = kit.postedOAuthQuery(req);
    const typed = formField(req, 'email')?.trim().slice(0, 254);
    const form = magicLinkForm.safeParse(req.body);
    if (!form.success) return renderLogin(req, res, oauthQuery, 400, t.enterEmail, typed);
    if (!csrfValid(req, form.data.csrf, kit.production, kit.publicOrigin))
      return renderLogin(req, res, oauthQuery, 403, t.csrf, form.data.email);
    if (oauthQuery && !(await genuineSignedQuery(oauthQuery, await secret())))
      return renderLogin(req, res, oauthQuery, 400, t.expired, form.data.email);
    const result = await callBetterAuth(
      ctx,
      req,
      res,
      '/sign-in/magic-link',
      { email: form.data.email, callbackURL: `${kit.base}${pageUrl('/auth/login/continue', oauthQuery, loc)}` },
      { acceptLanguage: loc },
    );
    // The same page for every address: whether it has an account is never shown.
    if (result.status === 200)
      return kit.send(
        res,
        200,
        loc,
        t.magicLinkSentTitle,
        messageBody(t.magicLinkSentTitle, t.magicLinkSentLead, {
          href: pageUrl('/auth/login/continue', oauthQuery, loc),
          text: t.backToSignIn,
        }),
      );
    if (result.status === 429) return renderLogin(req, res, oauthQuery, 429, t.tooMany, form.data.email);
    if (result.status === 400) return renderLogin(req, res, oauthQuery, 400, t.enterEmail, form.data.email);
    return renderLogin(req, res, oauthQuery, 502, t.failed, form.data.email);
  });

  // Where the magic link (and the verification mail of a hosted sign-up) lands.
  router.get('/login/continue', async (req: Request, res: Response) => {
    const { loc, t } = kit.strings(req);
    const search = searchOf(req.originalUrl);
    const oauthQuery = signedOAuthQuery(search);
    res.set('Cache-Control', 'no-store');
    // Better Auth appends `error` when the link was expired, already used or tampered with.
    if (search.has('error'))
      return kit.send(
        res,
        400,
        loc,
        t.linkInvalidTitle,
        messageBody(t.linkInvalidTitle, t.linkInvalidLead, {
          href: pageUrl('/auth/login/continue', oauthQuery, loc),
          text: t.backToSignIn,
        }),
      );
    const session = await browserSession(ctx, req);
    if (!oauthQuery) {
      if (session) return kit.send(res, 200, loc, t.signedInTitle, messageBody(t.signedInTitle, t.signedInLead));
      return res.redirect(303, `/auth/login?lang=${loc}`);
    }
    res.redirect(
      303,
      await resumeAuthorizeUrl(kit.base, oauthQuery, await secret(), session ? new Date(session.session.createdAt) : undefined),
    );
  });

  return router;
}
