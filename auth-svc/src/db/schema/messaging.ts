import { messagingTables } from '@mana/shared';
import { authSchema } from './base';

/** Transactional outbox and consumer idempotency (shared shape, this service's schema). */
export const { outbox, processedMessages } = messagingTables(authSchema);
