import { asc, eq } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';
import { normalizeEmail } from './users';

/** A user's passkeys as the user may see them anywhere outside Better Auth's own endpoints (no key material). */
export interface PasskeySummary {
  id: string;
  name: string | null;
  createdAt: Date | null;
  deviceType: string;
  backedUp: boolean;
}

export async function passkeySummaries(conn: Conn, userId: string): Promise<PasskeySummary[]> {
  const p = tables.passkey;
  return conn
    .select({ id: p.id, name: p.name, createdAt: p.createdAt, deviceType: p.deviceType, backedUp: p.backedUp })
    .from(p)
    .where(eq(p.userId, userId))
    .orderBy(asc(p.createdAt), asc(p.id));
}

/**
 * Credential IDs and transports of the passkeys of the account with this email (none for an unknown
 * email), in one round trip whether or not the account exists: the email-first sign-in answers an unknown
 * email with a decoy, and a second query only for known accounts made them measurably slower.
 */
export async function passkeyCredentialsByEmail(conn: Conn, email: string): Promise<Array<{ id: string; transports: string[] }>> {
  const p = tables.passkey;
  const rows = await conn
    .select({ id: p.credentialID, transports: p.transports })
    .from(p)
    .innerJoin(tables.user, eq(tables.user.id, p.userId))
    .where(eq(tables.user.email, normalizeEmail(email)));
  return rows.map((r) => ({ id: r.id, transports: r.transports ? r.transports.split(',').filter(Boolean) : [] }));
}

/** The owner of a credential ID, if it is registered. */
export async function passkeyOwner(conn: Conn, credentialId: string): Promise<string | undefined> {
  const p = tables.passkey;
  const [row] = await conn.select({ userId: p.userId }).from(p).where(eq(p.credentialID, credentialId)).limit(1);
  return row?.userId;
}

/** The owner and name of a passkey by its row id. */
export async function passkeyById(conn: Conn, id: string): Promise<{ userId: string; name: string | null } | undefined> {
  const p = tables.passkey;
  const [row] = await conn.select({ userId: p.userId, name: p.name }).from(p).where(eq(p.id, id)).limit(1);
  return row;
}
