import express, { type Request, type RequestHandler, type Response } from 'express';
import type { AuthContext } from '../context';
import { issueCsrfToken } from './csrf';
import { STRINGS, pageLocale, type PageLocale, type PageStrings } from './i18n';
import { signedOAuthQuery } from './oauth-query';
import { layout, type Html } from './render';
import type { RequestingClient } from './oauth-query';

export type RenderLogin = (
  req: Request,
  res: Response,
  oauthQuery: string,
  status?: number,
  error?: string,
  email?: string,
) => Promise<void>;

/** The form posts of the hosted pages (each page router parses its own; a parsed body is not read twice). */
export const formParser = (): RequestHandler => express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

/** A string field of a posted form, if the body has one. */
export function formField(req: Request, name: string): string | undefined {
  const value: unknown = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** A hosted page's URL carrying the pending authorization (signed query) and the page language. */
export function pageUrl(path: string, oauthQuery: string, loc: PageLocale): string {
  const q = new URLSearchParams(oauthQuery);
  q.set('lang', loc);
  return `${path}?${q.toString()}`;
}

/** What every hosted page handler needs: locale, CSRF token, the page response with its headers. */
export interface PageKit {
  production: boolean;
  publicOrigin: string;
  /** BASE_URL without a trailing slash. */
  base: string;
  locale: (req: Request) => PageLocale;
  strings: (req: Request) => { loc: PageLocale; t: PageStrings };
  /** `script`: a same-origin script the page loads (the CSP then allows scripts and fetches from 'self'). */
  send: (res: Response, status: number, loc: PageLocale, title: string, body: Html, client?: RequestingClient, script?: string) => void;
  form: (
    req: Request,
    res: Response,
    t: PageStrings,
    oauthQuery: string,
    loc: PageLocale,
  ) => { t: PageStrings; csrf: string; oauthQuery: string; locale: PageLocale };
  /** The signed OAuth query a form posted back (only its signed parameters), or ''. */
  postedOAuthQuery: (req: Request) => string;
}

export function pageKit(ctx: AuthContext): PageKit {
  const production = ctx.config.NODE_ENV === 'production';
  const locale = (req: Request): PageLocale =>
    pageLocale(req.query.lang ?? (req.body as Record<string, unknown> | undefined)?.lang, req.headers['accept-language']);
  return {
    production,
    publicOrigin: new URL(ctx.config.BASE_URL).origin,
    base: ctx.config.BASE_URL.replace(/\/$/, ''),
    locale,
    strings: (req) => {
      const loc = locale(req);
      return { loc, t: STRINGS[loc] };
    },
    send: (res, status, loc, title, body, client, script) => {
      // form-action must also allow the client's registered redirect origin: browsers apply it to the
      // redirects that follow a form post, and the last one goes to the client with the code.
      const formAction = ["'self'", ...(client?.redirectOrigin ? [client.redirectOrigin] : [])].join(' ');
      const scripts = script ? "script-src 'self'; connect-src 'self'; " : '';
      res
        .status(status)
        .set({
          'Content-Security-Policy': `default-src 'none'; ${scripts}style-src 'self'; img-src 'self'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
          'Cache-Control': 'no-store',
          // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the form posts.
          'Referrer-Policy': 'same-origin',
          'X-Frame-Options': 'DENY',
        })
        .type('html')
        .send(layout(loc, title, body, script));
    },
    form: (req, res, t, oauthQuery, loc) => ({ t, csrf: issueCsrfToken(req, res, production), oauthQuery, locale: loc }),
    postedOAuthQuery: (req) => {
      const posted: unknown = (req.body as Record<string, unknown> | undefined)?.oauth_query;
      return signedOAuthQuery(new URLSearchParams(typeof posted === 'string' && posted.length <= 8192 ? posted : ''));
    },
  };
}
