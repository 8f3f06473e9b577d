import { pgSchema } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything admin-svc stores lives in this schema; no other service reads or writes it. */
export const adminSchema = pgSchema('admin');

export const { outbox, processedMessages } = messagingTables(adminSchema);
