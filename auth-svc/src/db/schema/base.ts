import { pgSchema, timestamp } from 'drizzle-orm/pg-core';

/** Everything auth-svc stores lives in this schema; no other service reads or writes it. */
export const authSchema = pgSchema('auth');

export const ts = (name: string) => timestamp(name, { withTimezone: true });
