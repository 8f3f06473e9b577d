import type { Request } from 'express';
import type { RequestMeta } from '../domain/security-events';

export function requestMeta(req: Request): RequestMeta {
  return { ipAddress: req.ip ?? null, userAgent: req.get('user-agent') ?? null };
}

/** Headers for in-process Better Auth calls: the caller's IP, agent and language, never its cookies. */
export function forwardedHeaders(req: Request): Headers {
  const h = new Headers();
  const ua = req.get('user-agent');
  const lang = req.get('accept-language');
  if (ua) h.set('user-agent', ua);
  if (lang) h.set('accept-language', lang);
  if (req.ip) h.set('x-forwarded-for', req.ip);
  return h;
}
