import { createHash } from 'node:crypto';
import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware } from 'better-auth/api';
import { magicLink } from 'better-auth/plugins/magic-link';
import { eq } from 'drizzle-orm';
import type { Config } from '../../config';
import * as tables from '../../db/schema';
import type { Db } from '../../db/types';
import { recordSecurityEvent } from '../../domain/security-events';
import { findUserByEmail } from '../../domain/users';
import type { MailRequest } from '../../mail/mailer';
import { hookMeta } from './security-audit-meta';

export const MAGIC_LINK_TTL_SECONDS = 600;
const CALLBACK_FIELDS = ['callbackURL', 'newUserCallbackURL', 'errorCallbackURL'] as const;

export const CALLBACK_ERROR = { code: 'INVALID_CALLBACK_URL', message: 'The callback URL is not on the allowlist' };

/**
 * Whether a magic link may redirect to `value`: a same-site path ("/app", never "//host" or "/\host"),
 * or an absolute http(s) URL on an allowlisted origin. Backslashes and control characters are
 * refused outright, since browsers read "\" as "/".
 */
export function isAllowedCallback(value: string, allowedOrigins: ReadonlySet<string>): boolean {
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point of this test
  if (value.length > 2048 || /[\\\u0000-\u001f\u007f]/.test(value)) return false;
  if (value.startsWith('/')) return !value.startsWith('//');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '' && allowedOrigins.has(url.origin)
  );
}

function callbackOrigins(config: Config): Set<string> {
  const origins = [config.BASE_URL, ...config.CORS_ORIGINS, ...config.MAGIC_LINK_CALLBACK_ALLOWLIST];
  return new Set(origins.flatMap((o) => (URL.canParse(o) ? [new URL(o).origin] : [])));
}

/** Refuses magic-link requests, link verifications and email verifications whose redirect targets are not allowlisted. */
function callbackGuard(allowed: ReadonlySet<string>) {
  return {
    id: 'mana-magic-link-callbacks',
    $ERROR_CODES: { INVALID_CALLBACK_URL: CALLBACK_ERROR },
    hooks: {
      before: [
        {
          // The verification link's callbackURL too: Better Auth's failure redirect parses it and throws (a 500) on a non-URL.
          matcher: (ctx) => ctx.path === '/sign-in/magic-link' || ctx.path === '/magic-link/verify' || ctx.path === '/verify-email',
          handler: createAuthMiddleware(async (ctx) => {
            const source: unknown = ctx.path === '/sign-in/magic-link' ? ctx.body : ctx.query;
            if (typeof source !== 'object' || source === null) return;
            for (const field of CALLBACK_FIELDS) {
              const value = (source as Record<string, unknown>)[field];
              if (value === undefined) continue;
              if (typeof value !== 'string' || !isAllowedCallback(value, allowed)) throw APIError.from('BAD_REQUEST', CALLBACK_ERROR);
            }
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}

/** How a link's token is stored (our own hasher, so the guard below can find the pending record). */
const hashLinkToken = (token: string) => createHash('sha256').update(token).digest('base64url');
/** The verification identifier Better Auth's magic-link plugin files a stored token under. */
const linkIdentifier = (token: string) => `magic-link:${hashLinkToken(token)}`;

const TWO_FACTOR_ERROR = 'TWO_FACTOR_REQUIRED';

/**
 * A mailbox is one factor: an account with two-factor on must not be signed in by a link alone. No link is
 * mailed to such an account (the request still answers the same), and a link requested before 2FA was
 * turned on is spent and refused here, before the plugin would create a session.
 */
function twoFactorGuard(db: Db) {
  return {
    id: 'mana-magic-link-two-factor',
    hooks: {
      before: [
        {
          matcher: (ctx) => ctx.path === '/magic-link/verify',
          handler: createAuthMiddleware(async (ctx) => {
            const token = typeof ctx.query?.token === 'string' ? ctx.query.token : undefined;
            if (!token) return;
            const identifier = linkIdentifier(token);
            const pending = await ctx.context.internalAdapter.findVerificationValue(identifier);
            if (!pending) return;
            let email: unknown;
            try {
              email = (JSON.parse(pending.value) as { email?: unknown }).email;
            } catch {
              return;
            }
            if (typeof email !== 'string') return;
            const [user] = await db.select().from(tables.user).where(eq(tables.user.email, email.toLowerCase())).limit(1);
            if (!user?.twoFactorEnabled) return;
            await ctx.context.internalAdapter.deleteVerificationByIdentifier(identifier);
            await recordSecurityEvent(db, {
              userId: user.id,
              type: 'magic_link_refused',
              meta: hookMeta(ctx.headers),
              context: { reason: 'two_factor_enabled' },
            });
            const query: Record<string, unknown> | undefined = ctx.query;
            const target = query?.errorCallbackURL ?? query?.callbackURL;
            if (typeof target !== 'string')
              throw APIError.from('FORBIDDEN', { code: TWO_FACTOR_ERROR, message: 'Sign in with your password and second factor' });
            const url = new URL(target, ctx.context.baseURL);
            url.searchParams.set('error', TWO_FACTOR_ERROR);
            throw ctx.redirect(url.toString());
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}

/**
 * Passwordless sign-in for existing accounts: a single-use link (stored hashed) valid for 10
 * minutes. The request answers the same for any email; only a registered one gets a mail.
 */
export function magicLinkPlugins(config: Config, db: Db, sendMail: (req: MailRequest) => void) {
  return [
    callbackGuard(callbackOrigins(config)),
    twoFactorGuard(db),
    magicLink({
      expiresIn: MAGIC_LINK_TTL_SECONDS,
      storeToken: { type: 'custom-hasher', hash: async (token: string) => hashLinkToken(token) },
      disableSignUp: true,
      sendMagicLink: async ({ email, url }, ctx) => {
        const user = await findUserByEmail(db, email);
        if (!user) return;
        const meta = hookMeta(ctx?.headers);
        if (user.twoFactorEnabled) {
          await recordSecurityEvent(db, { userId: user.id, type: 'magic_link_refused', meta, context: { reason: 'two_factor_enabled' } });
          return;
        }
        await recordSecurityEvent(db, { userId: user.id, type: 'magic_link_sent', meta });
        sendMail({
          kind: 'magic-link',
          to: user.email,
          locale: user.locale,
          acceptLanguage: ctx?.headers?.get('accept-language'),
          vars: { name: user.name, url },
        });
      },
    }),
  ];
}
