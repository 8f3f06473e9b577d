import type { Logger } from 'pino';
import type { EventBus, OutboxRelay } from '@mana/shared';
import type { AdminDb } from '../db/scope';

/** What the consumers are built from. */
export interface ConsumerDeps {
  db: AdminDb;
  bus: EventBus;
  relay?: OutboxRelay;
  logger: Logger;
  /** Every new user's tier (the first of ACCESS_TIERS). */
  defaultTier: string;
  pseudonymSecret: string;
}
