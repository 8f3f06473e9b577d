import type { BetterAuthPlugin } from 'better-auth';
import { APIError } from 'better-auth/api';
import type { Db } from '../../db/types';
import { endSessionIfBanned, isBanned } from '../../domain/bans';

export const ACCOUNT_BANNED = { code: 'ACCOUNT_BANNED', message: 'This account is banned' };

/**
 * Admin bans (table auth.user_bans, set through admin-svc): every sign-in path ends in a new session —
 * password (native and /api/v1), magic link, the OIDC hosted login, a second factor — so refusing the
 * session's creation refuses them all, and only after the credential was checked. Refresh needs no check:
 * the ban ended the sessions, and their refresh tokens went with them.
 *
 * A ban committing between the `before` check and the session insert (a sign-in racing `banUser`) is
 * caught by the `after` hook, which Better Auth runs once the insert has committed. It takes `FOR SHARE`
 * on the user row, which orders it with `banUser`'s `FOR UPDATE` (taken before the ban is written and
 * held until its commit, which also deletes the user's sessions):
 * - `banUser` holds the lock first: the check waits for its commit, then (READ COMMITTED, a new
 *   statement) sees the ban and deletes the new session (its trigger publishes the revocation) and refuses;
 * - the check holds the lock first: `banUser` waits, and its session DELETE starts after the new session
 *   committed, so it sees and ends it.
 * Either way no session of a banned user survives. The session was already visible for that instant; any
 * token minted from it dies with the row (session.revoked.v1). The lock and the check are one statement, the
 * function `auth.end_session_if_banned` (each statement in it takes a fresh snapshot, so the order above holds).
 */
export function banPlugin(db: Db) {
  return {
    id: 'mana-ban',
    init() {
      return {
        options: {
          databaseHooks: {
            session: {
              create: {
                async before(session: { userId: string }) {
                  if (await isBanned(db, session.userId)) throw APIError.from('FORBIDDEN', ACCOUNT_BANNED);
                },
                async after(session: { id: string; userId: string } | null) {
                  if (!session) return;
                  if (await endSessionIfBanned(db, session.id, session.userId)) throw APIError.from('FORBIDDEN', ACCOUNT_BANNED);
                },
              },
            },
          },
        },
      };
    },
  } satisfies BetterAuthPlugin;
}
