import type { Config } from '../../config';
import type { Db } from '../../db/types';
import type { MailRequest } from '../../mail/mailer';
import { securityAudit } from './security-audit';

/** The audit plugin, wired to the "new sign-in" mail. */
export function securityAuditPlugin(config: Config, db: Db, sendMail: (req: MailRequest) => void) {
  return securityAudit({
    db,
    onNewDevice: (user, meta) =>
      sendMail({
        kind: 'new-device',
        to: user.email,
        locale: user.locale,
        vars: {
          name: user.name,
          url: config.BASE_URL,
          device: `${meta.userAgent ?? 'unknown browser'}, IP ${meta.ipAddress ?? 'unknown'}`,
        },
      }),
  });
}
