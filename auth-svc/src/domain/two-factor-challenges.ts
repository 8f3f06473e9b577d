import { createHash, randomBytes } from 'node:crypto';
import { eq, lt, sql } from 'drizzle-orm';
import { seal, unseal } from '@mana/shared';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';

/** As long as Better Auth's two-factor cookie (its default `twoFactorCookieMaxAge`). */
export const CHALLENGE_TTL_SECONDS = 600;

export interface Device {
  deviceId?: string | null;
  deviceName?: string | null;
}

// The challenge is stored as SHA-256; the Better Auth cookie it stands for is sealed with a key
// derived from the challenge, so the table alone lets nobody finish a sign-in.
const challengeId = (challenge: string) => createHash('sha256').update(`id:${challenge}`).digest('base64url');
const challengeKey = (challenge: string) => createHash('sha256').update(`key:${challenge}`).digest();

/** Better Auth's pending two-factor cookie, sealed under a key only the challenge gives. */
export const sealCookie = (challenge: string, plain: string) => seal(challengeKey(challenge), plain);

/** The cookie `sealCookie` sealed, or undefined for another challenge or a tampered value. */
export function unsealCookie(challenge: string, sealed: string): string | undefined {
  // Sealed before the shared format (`iv.ct.tag`, no version; at most CHALLENGE_TTL_SECONDS old during an upgrade):
  // the same AES-256-GCM parts in another order. Remove once no instance of the previous release runs.
  const parts = sealed.split('.');
  const value = parts.length === 3 ? ['v1', parts[0], parts[2], parts[1]].join('.') : sealed;
  try {
    return unseal(challengeKey(challenge), value);
  } catch {
    return undefined;
  }
}

export interface ChallengeStart {
  userId: string;
  /** Better Auth's pending two-factor cookie (`name=value`). */
  twoFactorCookie: string;
  device: Device;
  userAgent: string | null;
  ipAddress: string | null;
}

/** Stores a pending second factor of POST /login; returns the opaque challenge for the client. */
export async function startChallenge(conn: Conn, start: ChallengeStart): Promise<string> {
  const challenge = randomBytes(32).toString('base64url');
  await conn.delete(tables.twoFactorChallenges).where(lt(tables.twoFactorChallenges.expiresAt, sql`now()`));
  await conn.insert(tables.twoFactorChallenges).values({
    challengeHash: challengeId(challenge),
    userId: start.userId,
    sealed: sealCookie(challenge, start.twoFactorCookie),
    deviceId: start.device.deviceId ?? null,
    deviceName: start.device.deviceName ?? null,
    userAgent: start.userAgent,
    ipAddress: start.ipAddress,
    expiresAt: new Date(Date.now() + CHALLENGE_TTL_SECONDS * 1000),
  });
  return challenge;
}

export interface OpenChallenge {
  challengeHash: string;
  userId: string;
  cookie: string;
  device: Device;
}

/**
 * The pending sign-in of a challenge, if it is live and presented by the same client (user agent)
 * that started it.
 */
export async function openChallenge(conn: Conn, challenge: string, userAgent: string | null): Promise<OpenChallenge | undefined> {
  const t = tables.twoFactorChallenges;
  const [row] = await conn
    .select()
    .from(t)
    .where(eq(t.challengeHash, challengeId(challenge)))
    .limit(1);
  if (!row || row.expiresAt.getTime() <= Date.now()) return undefined;
  if ((row.userAgent ?? '') !== (userAgent ?? '')) return undefined;
  const cookie = unsealCookie(challenge, row.sealed);
  if (!cookie) return undefined;
  return { challengeHash: row.challengeHash, userId: row.userId, cookie, device: { deviceId: row.deviceId, deviceName: row.deviceName } };
}

/** Single use: gone after success or once Better Auth refuses the pending sign-in. */
export async function dropChallenge(conn: Conn, challengeHash: string): Promise<boolean> {
  const t = tables.twoFactorChallenges;
  const gone = await conn.delete(t).where(eq(t.challengeHash, challengeHash)).returning({ h: t.challengeHash });
  return gone.length > 0;
}
