import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { authSecret } from '../auth/better-auth-adapter';
import type { AuthContext } from '../context';
import { PASSWORD_ERROR_CODES } from '../auth/plugins/password-policy';
import { callBetterAuth, type AuthCallResult } from './better-auth-call';
import { genuineSignedQuery } from './continuation';
import { csrfValid } from './csrf';
import type { PageLocale, PageStrings } from './i18n';
import { searchOf, signedOAuthQuery } from './oauth-query';
import { formField, formParser, pageKit, pageUrl } from './page-kit';
import { messageBody } from './render';
import { forgotBody, resetBody, signUpBody } from './render-account';

const email = z.string().trim().max(254).pipe(z.email());
// Longer than the policy's 128 on purpose: an over-long password is reported by its rule, not as a bad form.
const password = z.string().min(1).max(1024);
const common = { oauth_query: z.string().max(8192).default(''), csrf: z.string().max(128).default('') };
export const signUpForm = z.object({ name: z.string().trim().min(1).max(256), email, password, ...common });
export const forgotForm = z.object({ email, ...common });
export const resetForm = z.object({ token: z.string().regex(/^[A-Za-z0-9_-]{1,256}$/), password, ...common });

type PasswordRuleCode = keyof typeof PASSWORD_ERROR_CODES;
const isPasswordRule = (code: unknown): code is PasswordRuleCode => typeof code === 'string' && code in PASSWORD_ERROR_CODES;
const text = (value: unknown) => (typeof value === 'string' ? value.trim().slice(0, 256) : undefined);

/**
 * /auth/sign-up, /auth/forgot-password, /auth/reset-password: hosted sign-up, "forgot password"
 * and "choose a new password" pages, on Better Auth's own endpoints (so the password policy,
 * audit and mails are the same as everywhere). A pending authorization travels along as the
 * signed query and is resumed through `/auth/login/continue` from the verification mail or after
 * the reset.
 */
export function accountPages(ctx: AuthContext): Router {
  const router = Router();
  const kit = pageKit(ctx);
  router.use(formParser());
  const minLength = ctx.config.PASSWORD_MIN_LENGTH;
  const { production, publicOrigin } = kit;
  /** A signed query from the provider, or '' (a forged one is dropped, never resumed). */
  const pendingQuery = async (oauthQuery: string) =>
    oauthQuery && (await genuineSignedQuery(oauthQuery, await authSecret(ctx.auth))) ? oauthQuery : '';
  const resume = (oauthQuery: string, loc: PageLocale) => pageUrl('/auth/login/continue', oauthQuery, loc);
  const ruleError = (t: PageStrings, result: AuthCallResult) =>
    isPasswordRule(result.body.code) ? { error: t.passwordRules[result.body.code](minLength), errorCode: result.body.code } : undefined;

  const renderSignUp = (req: Request, res: Response, oauthQuery: string, status = 200, error?: { error: string; errorCode?: string }) => {
    const { loc, t } = kit.strings(req);
    const body = req.method === 'POST' ? ((req.body ?? {}) as Record<string, unknown>) : {};
    const form = kit.form(req, res, t, oauthQuery, loc);
    kit.send(
      res,
      status,
      loc,
      t.signUpTitle,
      signUpBody({ ...form, ...error, name: text(body.name), email: text(body.email), minLength, signInUrl: resume(oauthQuery, loc) }),
    );
  };
  const renderForgot = (req: Request, res: Response, oauthQuery: string, status = 200, error?: string) => {
    const { loc, t } = kit.strings(req);
    const typed = req.method === 'POST' ? text((req.body as Record<string, unknown> | undefined)?.email) : undefined;
    kit.send(
      res,
      status,
      loc,
      t.forgotTitle,
      forgotBody({ ...kit.form(req, res, t, oauthQuery, loc), error, email: typed, signInUrl: resume(oauthQuery, loc) }),
    );
  };
  const renderReset = (
    req: Request,
    res: Response,
    oauthQuery: string,
    token: string,
    status = 200,
    error?: { error: string; errorCode?: string },
  ) => {
    const { loc, t } = kit.strings(req);
    kit.send(res, status, loc, t.resetTitle, resetBody({ ...kit.form(req, res, t, oauthQuery, loc), ...error, token, minLength }));
  };
  const linkInvalid = (req: Request, res: Response, oauthQuery: string) => {
    const { loc, t } = kit.strings(req);
    kit.send(
      res,
      400,
      loc,
      t.linkInvalidTitle,
      messageBody(t.linkInvalidTitle, t.linkInvalidLead, {
        href: pageUrl('/auth/forgot-password', oauthQuery, loc),
        text: t.requestNewLink,
      }),
    );
  };

  router.get('/sign-up', (req, res) => renderSignUp(req, res, signedOAuthQuery(searchOf(req.originalUrl))));

  router.post('/sign-up', async (req, res) => {
    const { loc, t } = kit.strings(req);
    const oauthQuery = await pendingQuery(kit.postedOAuthQuery(req));
    const form = signUpForm.safeParse(req.body);
    if (!form.success) return renderSignUp(req, res, oauthQuery, 400, { error: t.badRequest });
    if (!csrfValid(req, form.data.csrf, production, publicOrigin)) return renderSignUp(req, res, oauthQuery, 403, { error: t.csrf });
    const result = await callBetterAuth(
      ctx,
      req,
      res,
      '/sign-up/email',
      {
        name: form.data.name,
        email: form.data.email,
        password: form.data.password,
        locale: loc,
        callbackURL: `${kit.base}${resume(oauthQuery, loc)}`,
      },
      { acceptLanguage: loc },
    );
    // 422 (address taken) never comes with autoSignIn off; answered like success all the same.
    if (result.status === 200 || result.status === 422) {
      const [title, lead] = ctx.config.REQUIRE_EMAIL_VERIFICATION
        ? [t.signUpDoneTitle, t.signUpDoneLead]
        : [t.signUpReadyTitle, t.signUpReadyLead];
      return kit.send(res, 200, loc, title, messageBody(title, lead, { href: resume(oauthQuery, loc), text: t.continueToSignIn }));
    }
    if (result.status === 429) return renderSignUp(req, res, oauthQuery, 429, { error: t.tooMany });
    if (result.status === 400)
      return renderSignUp(
        req,
        res,
        oauthQuery,
        400,
        ruleError(t, result) ?? { error: result.body.code === 'INVALID_EMAIL' ? t.enterEmail : t.badRequest },
      );
    return renderSignUp(req, res, oauthQuery, 502, { error: t.failed });
  });

  router.get('/forgot-password', (req, res) => renderForgot(req, res, signedOAuthQuery(searchOf(req.originalUrl))));

  router.post('/forgot-password', async (req, res) => {
    const { loc, t } = kit.strings(req);
    const oauthQuery = await pendingQuery(kit.postedOAuthQuery(req));
    const form = forgotForm.safeParse(req.body);
    if (!form.success) return renderForgot(req, res, oauthQuery, 400, t.enterEmail);
    if (!csrfValid(req, form.data.csrf, production, publicOrigin)) return renderForgot(req, res, oauthQuery, 403, t.csrf);
    // The mailed link lands on the hosted reset page (Better Auth appends the token).
    const redirectTo = `${kit.base}${pageUrl('/auth/reset-password', oauthQuery, loc)}`;
    const result = await callBetterAuth(
      ctx,
      req,
      res,
      '/request-password-reset',
      { email: form.data.email, redirectTo },
      { acceptLanguage: loc },
    );
    // Better Auth answers 200 for every address; so does this page.
    if (result.status === 200)
      return kit.send(
        res,
        200,
        loc,
        t.forgotSentTitle,
        messageBody(t.forgotSentTitle, t.forgotSentLead, { href: resume(oauthQuery, loc), text: t.backToSignIn }),
      );
    if (result.status === 429) return renderForgot(req, res, oauthQuery, 429, t.tooMany);
    if (result.status === 400) return renderForgot(req, res, oauthQuery, 400, t.enterEmail);
    return renderForgot(req, res, oauthQuery, 502, t.failed);
  });

  router.get('/reset-password', (req, res) => {
    const search = searchOf(req.originalUrl);
    const oauthQuery = signedOAuthQuery(search);
    const token = search.get('token') ?? '';
    // Better Auth sends `error=INVALID_TOKEN` here for an unknown or expired link.
    if (search.has('error') || !/^[A-Za-z0-9_-]{1,256}$/.test(token)) return linkInvalid(req, res, oauthQuery);
    renderReset(req, res, oauthQuery, token);
  });

  router.post('/reset-password', async (req, res) => {
    const { loc, t } = kit.strings(req);
    const oauthQuery = await pendingQuery(kit.postedOAuthQuery(req));
    const form = resetForm.safeParse(req.body);
    if (!form.success)
      return form.error.issues.some((i) => i.path[0] === 'token')
        ? linkInvalid(req, res, oauthQuery)
        : renderReset(req, res, oauthQuery, text(formField(req, 'token')) ?? '', 400, { error: t.badRequest });
    if (!csrfValid(req, form.data.csrf, production, publicOrigin))
      return renderReset(req, res, oauthQuery, form.data.token, 403, { error: t.csrf });
    const result = await callBetterAuth(ctx, req, res, '/reset-password', { token: form.data.token, newPassword: form.data.password });
    if (result.status === 200)
      return kit.send(
        res,
        200,
        loc,
        t.resetDoneTitle,
        messageBody(t.resetDoneTitle, t.resetDoneLead, { href: resume(oauthQuery, loc), text: t.continueToSignIn }),
      );
    const rule = result.status === 400 ? ruleError(t, result) : undefined;
    if (rule) return renderReset(req, res, oauthQuery, form.data.token, 400, rule);
    if (result.status === 429) return renderReset(req, res, oauthQuery, form.data.token, 429, { error: t.tooMany });
    if (result.status === 400) return linkInvalid(req, res, oauthQuery);
    return renderReset(req, res, oauthQuery, form.data.token, 502, { error: t.failed });
  });

  return router;
}
