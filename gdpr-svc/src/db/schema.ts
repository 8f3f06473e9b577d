import { pgSchema } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything gdpr-svc stores lives in this schema; no other service reads or writes it. */
export const gdprSchema = pgSchema('gdpr');

export const { outbox, processedMessages } = messagingTables(gdprSchema);
