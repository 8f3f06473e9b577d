import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

/**
 * Double-submit CSRF token: a random value in an HttpOnly, SameSite=Strict cookie, repeated in a
 * hidden form field. A cross-site page can neither read the cookie nor make the browser send it
 * with a POST, so it cannot produce a matching pair. The Origin header, when the browser sends one,
 * must be our own origin as well (defence in depth).
 */
export function csrfCookieName(production: boolean): string {
  return production ? '__Host-mana.csrf' : 'mana.csrf';
}

function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** The token for the form on this page; sets the cookie when there is none yet. */
export function issueCsrfToken(req: Request, res: Response, production: boolean): string {
  const name = csrfCookieName(production);
  const existing = readCookie(req, name);
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const token = randomBytes(32).toString('base64url');
  res.cookie(name, token, { httpOnly: true, sameSite: 'strict', secure: production, path: '/' });
  return token;
}

export function csrfValid(req: Request, formToken: unknown, production: boolean, publicOrigin: string): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== publicOrigin) return false;
  const cookie = readCookie(req, csrfCookieName(production));
  if (!cookie || typeof formToken !== 'string') return false;
  const a = Buffer.from(cookie);
  const b = Buffer.from(formToken);
  return a.length === b.length && timingSafeEqual(a, b);
}
