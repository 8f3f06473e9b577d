import type { Logger } from 'pino';
import type { OutboxRelay } from '@mana/shared';
import { upstream } from './clients/upstream';
import type { Config } from './config';
import type { AdminDb } from './db/scope';
import type { AdminDeps } from './domain/context';

/** The admin domain's dependencies from config (also used by the resync script). */
export function adminDeps(config: Config, db: AdminDb, logger: Logger, relay?: OutboxRelay): AdminDeps {
  const call = (name: string, url: string) =>
    upstream({ name, urls: url, serviceKey: config.MANA_SERVICE_KEY, timeoutMs: config.ADMIN_UPSTREAM_TIMEOUT_MS });
  return {
    db,
    auth: call('auth-svc', config.AUTH_SVC_URL),
    gdpr: call('gdpr-svc', config.GDPR_SVC_URL),
    tiers: config.ACCESS_TIERS,
    pseudonymSecret: config.ADMIN_PSEUDONYM_SECRET,
    relay,
    logger,
  };
}
