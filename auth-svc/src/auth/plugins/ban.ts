import type { BetterAuthPlugin } from 'better-auth';
import { APIError } from 'better-auth/api';
import type { Db } from '../../db/types';
import { activeBan } from '../../domain/bans';

export const ACCOUNT_BANNED = { code: 'ACCOUNT_BANNED', message: 'This account is banned' };

/**
 * Admin bans (table auth.user_bans, set through admin-svc): every sign-in path ends in a new session —
 * password (native and /api/v1), magic link, the OIDC hosted login, a second factor — so refusing the
 * session's creation refuses them all, and only after the credential was checked. Refresh needs no check:
 * the ban ended the sessions, and their refresh tokens went with them.
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
              },
            },
          },
        },
      };
    },
  } satisfies BetterAuthPlugin;
}
