import { createHmac } from 'node:crypto';
import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware, getSessionFromCtx } from 'better-auth/api';
import { z } from 'zod';
import type { Config } from '../../../config';
import type { Db } from '../../../db/types';
import { passkeyCredentialsByEmail } from '../../../domain/passkeys';
import { isRecentlyAuthenticated } from '../../../domain/reauth';
import { normalizeEmail } from '../../../domain/users';
import type { HookCtx } from '../security-audit-meta';
import { REAUTH_REQUIRED } from '../step-up';
import { relyingParty } from './config';
import { checkRegistrationResponse } from './registration-check';

/** Adding and removing a passkey change how the account signs in: step-up, as for turning two-factor off. */
const STEP_UP = new Set(['/passkey/generate-register-options', '/passkey/verify-registration', '/passkey/delete-passkey']);

/**
 * A synced platform passkey's transports as browsers report them: unique and in lexicographical order
 * (WebAuthn `[[transports]]`), so the decoy is a shape a registered passkey has.
 */
const DECOY_TRANSPORTS = ['hybrid', 'internal'];

const emailQuery = z.object({ email: z.string().trim().min(3).max(254) });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * Mana's rules on top of Better Auth's passkey endpoints:
 * - registering (both steps) and deleting a passkey need a session that authenticated within
 *   REAUTH_MAX_AGE_SECONDS (401 REAUTH_REQUIRED), like the other sensitive operations;
 * - `GET /passkey/generate-authenticate-options?email=…` (email first, no session) lists that user's
 *   credentials in `allowCredentials`; an unknown email, or one without passkeys, gets a stable decoy
 *   credential derived from the email, so the answer does not tell whether the account exists;
 * - sign-in options ask for user verification (`required`), which the sign-in then checks;
 * - a malformed registration response, or one made on an origin that is not accepted, is the client's
 *   error: 400 FAILED_TO_VERIFY_REGISTRATION (the plugin answers 500 for those).
 */
export function passkeyPolicy(db: Db, config: Config) {
  const { origins } = relyingParty(config);
  const decoy = (email: string) =>
    createHmac('sha256', config.BETTER_AUTH_SECRET)
      .update(`passkey-decoy:${normalizeEmail(email)}`)
      .digest('base64url');

  const authenticateOptions = async (ctx: HookCtx) => {
    const returned: unknown = ctx.context.returned;
    if (!isObject(returned) || typeof returned.challenge !== 'string') return;
    const options: Record<string, unknown> = { ...returned, userVerification: 'required' };
    const query = emailQuery.safeParse(ctx.query);
    if (query.success && !Array.isArray(returned.allowCredentials)) {
      const credentials = await passkeyCredentialsByEmail(db, query.data.email);
      options.allowCredentials = (credentials.length ? credentials : [{ id: decoy(query.data.email), transports: DECOY_TRANSPORTS }]).map(
        (c) => ({ id: c.id, type: 'public-key', ...(c.transports.length ? { transports: c.transports } : {}) }),
      );
    }
    return ctx.json(options);
  };

  return {
    id: 'mana-passkey-policy',
    hooks: {
      before: [
        {
          matcher: (ctx) => ctx.path !== undefined && STEP_UP.has(ctx.path),
          handler: createAuthMiddleware(async (ctx) => {
            const session = await getSessionFromCtx(ctx).catch(() => null);
            // Without a session the endpoint answers 401 itself.
            if (!session) return;
            if (!(await isRecentlyAuthenticated(db, session.session.id, config.REAUTH_MAX_AGE_SECONDS)))
              throw APIError.from('UNAUTHORIZED', REAUTH_REQUIRED);
            if (ctx.path === '/passkey/verify-registration') checkRegistrationResponse(ctx.body, origins);
          }),
        },
      ],
      after: [
        {
          matcher: (ctx) => ctx.path === '/passkey/generate-authenticate-options',
          handler: createAuthMiddleware(authenticateOptions),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
