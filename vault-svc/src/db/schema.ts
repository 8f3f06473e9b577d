import { pgSchema } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything vault-svc stores lives in this schema; no other service reads or writes it. */
export const vaultSchema = pgSchema('vault');

export const { outbox, processedMessages } = messagingTables(vaultSchema);
