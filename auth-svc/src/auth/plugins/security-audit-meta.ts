import type { createAuthMiddleware } from 'better-auth/api';
import type { RequestMeta } from '../../domain/security-events';

/** The context a Better Auth hook handler gets. */
export type HookCtx = Parameters<Parameters<typeof createAuthMiddleware>[0]>[0];

/**
 * Client IP and user agent of a Better Auth call. The gateway appends the peer it saw to
 * X-Forwarded-For (and /api/v1 routes pass `req.ip`), so the right-most entry is the client.
 */
export function hookMeta(headers: Headers | undefined | null): RequestMeta {
  const forwarded = headers?.get('x-forwarded-for');
  const ip =
    forwarded
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .at(-1) ?? null;
  return { ipAddress: ip, userAgent: headers?.get('user-agent') ?? null };
}

/** Better Auth's error code when `returned` is one of its API errors (an after hook's view). */
export function returnedError(returned: unknown): { status: number; code: string } | undefined {
  if (typeof returned !== 'object' || returned === null || !('statusCode' in returned) || typeof returned.statusCode !== 'number')
    return undefined;
  if (!('body' in returned)) return undefined;
  const body: unknown = returned.body;
  const code = typeof body === 'object' && body !== null && 'code' in body && typeof body.code === 'string' ? body.code : 'UNKNOWN';
  return { status: returned.statusCode, code };
}

export const bodyString = (body: unknown, field: string): string | undefined => {
  if (typeof body !== 'object' || body === null) return undefined;
  const v = (body as Record<string, unknown>)[field];
  return typeof v === 'string' ? v : undefined;
};

/** The user of the sign-in waiting for its second factor, from Better Auth's signed two-factor cookie. */
export async function pendingTwoFactorUserId(ctx: HookCtx): Promise<string | undefined> {
  const identifier = await ctx.getSignedCookie(ctx.context.createAuthCookie('two_factor').name, ctx.context.secret);
  if (!identifier) return undefined;
  return (await ctx.context.internalAdapter.findVerificationValue(identifier))?.value;
}
