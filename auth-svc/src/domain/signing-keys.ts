import { randomBytes } from 'node:crypto';
import { and, gt, isNull, lt, min, ne, or, sql } from 'drizzle-orm';
import { generateExportedKeyPair } from 'better-auth/plugins/jwt';
import type { Auth } from '../auth/auth';
import { jwtOptions } from '../auth/auth';
import { sealJwkPrivateKey } from '../auth/better-auth-adapter';
import type { Config } from '../config';
import * as tables from '../db/schema';
import type { Db } from '../db/types';
import { JWKS_GRACE_SECONDS } from './tokens';

// Better Auth signs with the newest live key (by created_at) and publishes every key until
// expires_at + gracePeriod. Rotation uses exactly that, in two steps:
//  1. stage: a new key is added with a created_at older than every other key, so it is published
//     in the JWKS but does not sign yet;
//  2. activate (after verifiers had time to be able to refetch their JWKS cache): the other keys get
//     expires_at = now, so the staged key is the only live one and signs from now on, while the old
//     keys stay published for the grace period, longer than any token they signed can live.

/** Adds a new Ed25519 key that is published but not yet used for signing; returns its id. */
export async function stageSigningKey(auth: Auth, db: Db, config: Config): Promise<string> {
  const { publicWebKey, privateWebKey, alg } = await generateExportedKeyPair(jwtOptions(config));
  const id = randomBytes(16).toString('base64url');
  const privateKey = await sealJwkPrivateKey(auth, privateWebKey);
  const [oldest] = await db.select({ at: min(tables.jwks.createdAt) }).from(tables.jwks);
  const createdAt = new Date((oldest?.at ?? new Date()).getTime() - 1_000);
  await db.insert(tables.jwks).values({ id, publicKey: JSON.stringify(publicWebKey), privateKey, alg, crv: 'Ed25519', createdAt });
  return id;
}

export interface ActivationResult {
  /** Keys that stopped signing now; they stay in the JWKS for JWKS_GRACE_SECONDS. */
  retiredKeyIds: string[];
  /** Keys whose grace period had ended, deleted from the table. */
  prunedKeyIds: string[];
}

/** Makes `keyId` the signing key: every other live key stops signing now. */
export async function activateSigningKey(db: Db, keyId: string): Promise<ActivationResult> {
  return db.transaction(async (tx) => {
    const retired = await tx
      .update(tables.jwks)
      .set({ expiresAt: sql`now()` })
      .where(and(ne(tables.jwks.id, keyId), or(isNull(tables.jwks.expiresAt), gt(tables.jwks.expiresAt, sql`now()`))))
      .returning({ id: tables.jwks.id });
    const pruned = await tx
      .delete(tables.jwks)
      .where(lt(tables.jwks.expiresAt, sql`now() - make_interval(secs => ${JWKS_GRACE_SECONDS})`))
      .returning({ id: tables.jwks.id });
    return { retiredKeyIds: retired.map((r) => r.id), prunedKeyIds: pruned.map((r) => r.id) };
  });
}
