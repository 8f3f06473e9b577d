import { pgSchema } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything credits-svc stores lives in this schema; no other service reads or writes it. */
export const creditsSchema = pgSchema('credits');

export const { outbox, processedMessages } = messagingTables(creditsSchema);
