import type { AuthContext } from '../context';
import { STRINGS, type PageLocale } from './i18n';
import { requestingClient } from './oauth-query';
import { pageUrl, type PageKit, type RenderLogin } from './page-kit';
import { loginBody } from './render';

/** The login page's only script: passkey sign-in (served by passkey-pages.ts). */
export const PASSKEY_SCRIPT = '/auth/passkey.js';

/**
 * The hosted login form (password, magic link, passkey, links to sign-up and reset), rendered by the login
 * pages and again by the magic-link page when its form is refused.
 */
export function loginRenderer(ctx: AuthContext, kit: PageKit): RenderLogin {
  // Links to the hosted sign-up and reset pages unless the deployment points elsewhere.
  const links = (oauthQuery: string, loc: PageLocale) => ({
    signupUrl: ctx.config.OIDC_SIGNUP_URL ?? pageUrl('/auth/sign-up', oauthQuery, loc),
    resetUrl: ctx.config.OIDC_PASSWORD_RESET_URL ?? pageUrl('/auth/forgot-password', oauthQuery, loc),
  });
  return async (req, res, oauthQuery, status = 200, error, email) => {
    const loc = kit.locale(req);
    const t = STRINGS[loc];
    const client = await requestingClient(ctx.db, oauthQuery);
    kit.send(
      res,
      status,
      loc,
      t.signInTitle,
      loginBody({ ...kit.form(req, res, t, oauthQuery, loc), clientName: client?.name, error, email, ...links(oauthQuery, loc) }),
      client,
      PASSKEY_SCRIPT,
    );
  };
}
