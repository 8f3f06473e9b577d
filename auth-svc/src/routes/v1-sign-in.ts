import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { eq, lt, sql } from 'drizzle-orm';
import { mintAccessToken } from '../auth/tokens';
import type { AuthContext } from '../context';
import * as tables from '../db/schema';
import { findLiveSession, issueRefreshToken } from '../domain/sessions';
import { ACCESS_TOKEN_TTL_SECONDS } from '../domain/tokens';
import { AUTH_ERRORS } from '../domain/errors';
import { publicUser } from '../domain/views';

/** As long as Better Auth's two-factor cookie (its default `twoFactorCookieMaxAge`). */
export const CHALLENGE_TTL_SECONDS = 600;

export interface Device {
  deviceId?: string | null;
  deviceName?: string | null;
}

/** Name of one of Better Auth's cookies (prefix and `__Secure-` as configured). */
export async function authCookieName(ctx: AuthContext, name: 'two_factor' | 'trust_device'): Promise<string> {
  return (await ctx.auth.$context).createAuthCookie(name).name;
}

/** The `name=value` pair of a cookie in Set-Cookie lines, unless it is being cleared. */
export function cookiePair(setCookies: string[], name: string): string | undefined {
  const line = setCookies.find((c) => c.startsWith(`${name}=`) && !/max-age=0/i.test(c));
  const pair = line?.split(';')[0];
  return pair && pair.length > name.length + 1 ? pair : undefined;
}

export async function tokenPair(ctx: AuthContext, sessionId: string, refreshToken: string) {
  const live = await findLiveSession(ctx.db, sessionId);
  if (!live) throw AUTH_ERRORS.invalidRefreshToken();
  const accessToken = await mintAccessToken(ctx.auth, live);
  return { user: publicUser(live.user), accessToken, refreshToken, expiresIn: ACCESS_TOKEN_TTL_SECONDS, tokenType: 'Bearer' as const };
}

/**
 * Turns the session Better Auth just made (password sign-in, or its second factor) into the
 * /api/v1 answer: device fields, a refresh-token family, the token pair, and the SSO cookie.
 */
export async function completeSignIn(ctx: AuthContext, res: Response, sessionToken: string, device: Device, setCookies: string[]) {
  const started = await ctx.db.transaction(async (tx) => {
    const [s] = await tx
      .update(tables.session)
      .set({ deviceId: device.deviceId ?? null, deviceName: device.deviceName ?? null })
      .where(eq(tables.session.token, sessionToken))
      .returning({ id: tables.session.id, userId: tables.session.userId });
    if (!s) throw AUTH_ERRORS.sessionNotCreated();
    return { sessionId: s.id, token: await issueRefreshToken(tx, s.id, s.userId) };
  });
  const pair = await tokenPair(ctx, started.sessionId, started.token);
  for (const cookie of setCookies) res.append('Set-Cookie', cookie);
  // Clients without a cookie jar keep "trust this device" as a token and send it with the next login.
  const trusted = cookiePair(setCookies, await authCookieName(ctx, 'trust_device'));
  return trusted ? { ...pair, trustDeviceToken: trusted.slice(trusted.indexOf('=') + 1) } : pair;
}

// The challenge is stored as SHA-256; the Better Auth cookie it stands for is sealed with a key
// derived from the challenge, so the table alone lets nobody finish a sign-in.
const challengeId = (challenge: string) => createHash('sha256').update(`id:${challenge}`).digest('base64url');
const challengeKey = (challenge: string) => createHash('sha256').update(`key:${challenge}`).digest();

function seal(challenge: string, plain: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', challengeKey(challenge), iv);
  const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return [iv, ct, cipher.getAuthTag()].map((b) => b.toString('base64url')).join('.');
}

function unseal(challenge: string, sealed: string): string | undefined {
  const [iv, ct, tag] = sealed.split('.').map((p) => Buffer.from(p, 'base64url'));
  if (!iv || !ct || !tag) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', challengeKey(challenge), iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Stores a pending second factor of POST /login; returns the opaque challenge for the client. */
export async function startChallenge(ctx: AuthContext, req: Request, userId: string, twoFactorCookie: string, device: Device): Promise<string> {
  const challenge = randomBytes(32).toString('base64url');
  await ctx.db.delete(tables.twoFactorChallenges).where(lt(tables.twoFactorChallenges.expiresAt, sql`now()`));
  await ctx.db.insert(tables.twoFactorChallenges).values({
    challengeHash: challengeId(challenge),
    userId,
    sealed: seal(challenge, twoFactorCookie),
    deviceId: device.deviceId ?? null,
    deviceName: device.deviceName ?? null,
    userAgent: req.get('user-agent') ?? null,
    ipAddress: req.ip ?? null,
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
export async function openChallenge(ctx: AuthContext, req: Request, challenge: string): Promise<OpenChallenge | undefined> {
  const t = tables.twoFactorChallenges;
  const [row] = await ctx.db.select().from(t).where(eq(t.challengeHash, challengeId(challenge))).limit(1);
  if (!row || row.expiresAt.getTime() <= Date.now()) return undefined;
  if ((row.userAgent ?? '') !== (req.get('user-agent') ?? '')) return undefined;
  const cookie = unseal(challenge, row.sealed);
  if (!cookie) return undefined;
  return { challengeHash: row.challengeHash, userId: row.userId, cookie, device: { deviceId: row.deviceId, deviceName: row.deviceName } };
}

/** Single use: gone after success or once Better Auth refuses the pending sign-in. */
export async function dropChallenge(ctx: AuthContext, challengeHash: string): Promise<boolean> {
  const t = tables.twoFactorChallenges;
  const gone = await ctx.db.delete(t).where(eq(t.challengeHash, challengeHash)).returning({ h: t.challengeHash });
  return gone.length > 0;
}
