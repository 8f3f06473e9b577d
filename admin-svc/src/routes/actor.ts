import type { Request } from 'express';
import { ERRORS } from '@mana/shared';
import type { Actor } from '../domain/context';

/** The admin is always the verified token's subject (requireAuth + requireRole ran before). */
export function actorOf(req: Request): Actor {
  const sub = req.auth?.sub;
  if (!sub) throw ERRORS.tokenMissing();
  return { id: sub, requestId: req.id ?? null, ipAddress: req.ip ?? null };
}
