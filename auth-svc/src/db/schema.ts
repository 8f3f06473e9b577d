import { pgSchema } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything auth-svc stores lives in this schema; no other service reads or writes it. */
export const authSchema = pgSchema('auth');

export const { outbox, processedMessages } = messagingTables(authSchema);
