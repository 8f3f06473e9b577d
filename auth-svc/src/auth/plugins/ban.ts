import { APIError } from 'better-auth/api';
import { causeChain } from '@mana/shared';

export const ACCOUNT_BANNED = { code: 'ACCOUNT_BANNED', message: 'This account is banned' };

/** The constraint the session insert's trigger names when it refuses a banned user (drizzle/0015). */
const BAN_CONSTRAINT = 'session_user_not_banned';

/**
 * Admin bans (table auth.user_bans, set through admin-svc): every sign-in path ends in a new session —
 * password (native and /api/v1), magic link, the OIDC hosted login, a second factor — so refusing the
 * session's creation refuses them all, and only after the credential was checked.
 *
 * The session INSERT refuses it itself: a BEFORE INSERT trigger (`session_user_not_banned`,
 * drizzle/0015_session_ban_guard.sql) takes the user row `FOR SHARE`, which orders it with `banUser`'s `FOR
 * UPDATE` (taken before the ban is written and held until its commit, which also deletes the user's sessions),
 * then reads the ban with a fresh snapshot:
 * - `banUser` holds the lock first: the insert waits for its commit, sees the ban and fails — no session row;
 * - the insert holds the lock first: `banUser` waits, and its session DELETE starts after the new session
 *   committed, so it sees and ends it (session.revoked.v1).
 * Either way no session of a banned user survives, and a sign-in costs no round trip for the ban. Refresh needs no
 * check: the ban ended the sessions, and their refresh tokens went with them.
 *
 * This turns the trigger's refusal (SQLSTATE P0001 naming that constraint, possibly wrapped by drizzle) into
 * Better Auth's answer, 403 ACCOUNT_BANNED; the adapter wrapper (database-outage.ts) calls it for every error.
 */
export function banRefusal(err: unknown): APIError | undefined {
  for (const { code, constraint } of causeChain(err)) {
    if (code === 'P0001' && constraint === BAN_CONSTRAINT) return APIError.from('FORBIDDEN', ACCOUNT_BANNED);
  }
  return undefined;
}
