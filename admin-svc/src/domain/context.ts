import type { Logger } from 'pino';
import type { OutboxRelay } from '@mana/shared';
import type { UpstreamCall } from '../clients/upstream';
import type { AdminDb } from '../db/scope';

/** What the admin domain is built from. */
export interface AdminDeps {
  db: AdminDb;
  auth: UpstreamCall;
  gdpr: UpstreamCall;
  tiers: readonly string[];
  /** Keys the erased users' tombstones (ADMIN_PSEUDONYM_SECRET): the resync skips them. */
  pseudonymSecret: string;
  relay?: OutboxRelay;
  logger: Logger;
}

/** Who asks, from where: every admin write's audit entry carries it. */
export interface Actor {
  id: string;
  requestId: string | null;
  ipAddress: string | null;
}
