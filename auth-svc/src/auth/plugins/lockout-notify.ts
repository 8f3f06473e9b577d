import type { Config } from '../../config';
import type { Db } from '../../db/types';
import type { LockoutPolicy } from '../../domain/lockout';
import { recordSecurityEvent } from '../../domain/security-events';
import { findUserByEmail } from '../../domain/users';
import type { MailRequest } from '../../mail/mailer';
import { lockout } from './lockout';

export const lockoutPolicy = (config: Config): LockoutPolicy => ({
  maxAttempts: config.LOCKOUT_MAX_ATTEMPTS,
  windowMinutes: config.LOCKOUT_WINDOW_MINUTES,
  durationMinutes: config.LOCKOUT_DURATION_MINUTES,
});

/** The lockout plugin, wired to the audit log and the "account locked" mail (only when an account exists). */
export function lockoutPlugin(config: Config, db: Db, sendMail: (req: MailRequest) => void) {
  const policy = lockoutPolicy(config);
  return lockout({
    db,
    policy,
    onLocked: async (email, meta) => {
      const user = await findUserByEmail(db, email);
      await recordSecurityEvent(db, {
        userId: user?.id ?? null,
        type: 'account_locked',
        meta,
        context: { minutes: policy.durationMinutes },
      });
      if (!user) return;
      sendMail({
        kind: 'account-locked',
        to: user.email,
        locale: user.locale,
        vars: { name: user.name, url: config.BASE_URL, minutes: policy.durationMinutes },
      });
    },
  });
}
