import type { Request } from 'express';
import { z } from 'zod';
import { ERRORS } from '@mana/shared';

/** A user id as the services issue them (no control characters, bounded). */
export const userId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'a user id (printable ASCII, no spaces)');

export const userIdParams = z.object({ id: userId });

/** The body DELETE /me/data needs: the word itself, so a stray request never erases an account. */
export const confirmBody = z
  .object({ confirm: z.string().max(32).optional() })
  .loose()
  .optional();

export const adminErasureBody = z.object({
  userId,
  actorId: userId,
  reason: z.string().trim().min(1).max(500),
});

export const erasureParams = z.object({ requestId: z.uuid() });
export const erasureQuery = z.object({ token: z.string().min(1).max(128) });

/** The caller is the verified token's subject; nothing else in a request names the user. */
export function callerId(req: Request): string {
  const sub = req.auth?.sub;
  if (!sub) throw ERRORS.tokenMissing();
  if (!userId.safeParse(sub).success) throw ERRORS.tokenInvalid();
  return sub;
}
