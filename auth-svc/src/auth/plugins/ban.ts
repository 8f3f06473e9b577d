import type { BetterAuthPlugin } from 'better-auth';
import { APIError } from 'better-auth/api';
import { eq } from 'drizzle-orm';
import * as tables from '../../db/schema';
import type { Db } from '../../db/types';
import { activeBan } from '../../domain/bans';

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
 * Either way no session of a banned user survives. The session was already visible for that instant;
 * any token minted from it dies with the row (session.revoked.v1).
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
                  if (await activeBan(db, session.userId)) throw APIError.from('FORBIDDEN', ACCOUNT_BANNED);
                },
                async after(session: { id: string; userId: string } | null) {
                  if (!session) return;
                  const banned = await db.transaction(async (tx) => {
                    await tx.select({ id: tables.user.id }).from(tables.user).where(eq(tables.user.id, session.userId)).for('share');
                    if (!(await activeBan(tx, session.userId))) return false;
                    await tx.delete(tables.session).where(eq(tables.session.id, session.id));
                    return true;
                  });
                  if (banned) throw APIError.from('FORBIDDEN', ACCOUNT_BANNED);
                },
              },
            },
          },
        },
      };
    },
  } satisfies BetterAuthPlugin;
}
