import { randomUUID } from 'node:crypto';
import { desc, eq, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import * as tables from '../db/schema';
import { seal, unseal } from './secrets';

type Db = NodePgDatabase<typeof tables>;

export interface ActiveKey {
  kid: string;
  privateKey: CryptoKey;
}

// Several instances may start together: one creates the first key, the others wait for it.
const KEY_LOCK = sql`select pg_advisory_xact_lock(hashtext('gdpr.signing_keys'))`;

async function createKey(db: Db | Parameters<Parameters<Db['transaction']>[0]>[0], sealKey: Buffer): Promise<string> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const kid = `gdpr-${randomUUID()}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  const privateJwk = await exportJWK(privateKey);
  await db.insert(tables.signingKeys).values({ kid, publicJwk, privateKeyEnc: seal(sealKey, JSON.stringify(privateJwk)) });
  return kid;
}

/** The active receipt key, created on first start. */
export async function ensureSigningKey(db: Db, sealKey: Buffer): Promise<ActiveKey> {
  const kid = await db.transaction(async (tx) => {
    await tx.execute(KEY_LOCK);
    const [row] = await tx
      .select({ kid: tables.signingKeys.kid })
      .from(tables.signingKeys)
      .where(eq(tables.signingKeys.active, true))
      .limit(1);
    return row?.kid ?? createKey(tx, sealKey);
  });
  return loadKey(db, sealKey, kid);
}

/** The key that signs now; read each time so a rotation by the script is picked up without a restart. */
export async function activeSigningKey(db: Db, sealKey: Buffer): Promise<ActiveKey> {
  const [row] = await db
    .select({ kid: tables.signingKeys.kid })
    .from(tables.signingKeys)
    .where(eq(tables.signingKeys.active, true))
    .orderBy(desc(tables.signingKeys.createdAt))
    .limit(1);
  if (!row) return ensureSigningKey(db, sealKey);
  return loadKey(db, sealKey, row.kid);
}

const cache = new Map<string, CryptoKey>();

async function loadKey(db: Db, sealKey: Buffer, kid: string): Promise<ActiveKey> {
  const hit = cache.get(kid);
  if (hit) return { kid, privateKey: hit };
  const [row] = await db.select().from(tables.signingKeys).where(eq(tables.signingKeys.kid, kid));
  if (!row) throw new Error(`signing key ${kid} vanished`);
  const jwk = JSON.parse(unseal(sealKey, row.privateKeyEnc)) as JWK;
  const privateKey = (await importJWK(jwk, 'EdDSA')) as CryptoKey;
  cache.set(kid, privateKey);
  return { kid, privateKey };
}

/** Makes a new key the active one; the old ones stay published (receipts they signed still verify). */
export async function rotateSigningKey(db: Db, sealKey: Buffer): Promise<{ kid: string; retired: string[] }> {
  return db.transaction(async (tx) => {
    await tx.execute(KEY_LOCK);
    const retired = await tx
      .update(tables.signingKeys)
      .set({ active: false, retiredAt: new Date() })
      .where(eq(tables.signingKeys.active, true))
      .returning({ kid: tables.signingKeys.kid });
    const kid = await createKey(tx, sealKey);
    return { kid, retired: retired.map((r) => r.kid) };
  });
}

/** Every receipt key, newest first: the JWKS. */
export async function publishedKeys(db: Db): Promise<{ keys: Record<string, unknown>[] }> {
  const rows = await db.select({ jwk: tables.signingKeys.publicJwk }).from(tables.signingKeys).orderBy(desc(tables.signingKeys.createdAt));
  return { keys: rows.map((r) => r.jwk) };
}
