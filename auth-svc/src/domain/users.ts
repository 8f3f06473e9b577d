import { eq } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';
import type { UserRow } from './sessions';

/** Emails are stored trimmed and lower-case; every lookup by email normalizes the same way. */
export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

export async function findUserById(conn: Conn, id: string): Promise<UserRow | undefined> {
  const [user] = await conn.select().from(tables.user).where(eq(tables.user.id, id)).limit(1);
  return user;
}

export async function findUserByEmail(conn: Conn, email: string): Promise<UserRow | undefined> {
  const [user] = await conn
    .select()
    .from(tables.user)
    .where(eq(tables.user.email, normalizeEmail(email)))
    .limit(1);
  return user;
}
