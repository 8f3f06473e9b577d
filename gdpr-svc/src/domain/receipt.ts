import { SignJWT } from 'jose';
import type { Counts } from '../db/schema';
import type { ActiveKey } from './keys';

export const RECEIPT_TYPE = 'erasure-receipt+jwt';

export interface ReceiptClaims {
  requestId: string;
  /** Keyed hash of the user id: whoever holds the id and the service can match it, nobody else. */
  sub: string;
  requestedAt: string;
  completedAt: string;
  services: Record<string, { deleted: Counts; pseudonymized: Counts; retained: Counts }>;
}

/** A compact JWS (EdDSA) over the receipt: verifiable with the public keys at /api/v1/gdpr/jwks.json. */
export async function signReceipt(key: ActiveKey, claims: ReceiptClaims, issuer: string): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: RECEIPT_TYPE, kid: key.kid })
    .setIssuer(issuer)
    .setIssuedAt()
    .sign(key.privateKey);
}
