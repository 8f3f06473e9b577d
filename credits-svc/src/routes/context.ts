import type { Request } from 'express';
import type Stripe from 'stripe';
import { ERRORS, parse } from '@mana/shared';
import type { CreditPackage } from '../config';
import { isId, orgOwner, userOwner, type CreditsDb, type Owner } from '../db/scope';
import { CREDITS_ERRORS } from '../domain/errors';
import type { LedgerPolicy } from '../domain/ledger';
import type { MembershipClient } from '../domain/membership';
import { idempotencyKey } from './schemas';

/** What the routers are built from. */
export interface CreditsContext {
  db: CreditsDb;
  /** The time and the free-credit policy of one request (tests inject the clock). */
  policy: () => LedgerPolicy;
  membership: MembershipClient;
  packages: readonly CreditPackage[];
  stripe: Stripe | undefined;
  webhookSecret: string | undefined;
  /** Public URL Stripe sends buyers back to. */
  returnUrl: string;
  /** The service keys internal routes accept. */
  serviceKey: readonly string[];
}

/** The user is the verified token's subject; nothing else in the request can name a user. */
export function callerId(req: Request): string {
  const sub = req.auth?.sub;
  if (!sub) throw ERRORS.tokenMissing();
  if (!isId(sub)) throw ERRORS.tokenInvalid();
  return sub;
}

/** The wallet a request acts on: the caller's own, or an organization's the caller is a member of. */
export async function walletOf(ctx: CreditsContext, userId: string, organizationId: string | undefined): Promise<Owner> {
  if (organizationId === undefined) return userOwner(userId);
  await ctx.membership.roleOf(organizationId, userId);
  return orgOwner(organizationId);
}

/** The idempotency key from the body or the `Idempotency-Key` header (both given: they must agree). */
export function idempotencyKeyOf(req: Request, fromBody: string | undefined): string | undefined {
  const raw = req.get('idempotency-key');
  const header = raw === undefined ? undefined : parse(idempotencyKey, raw, 'Idempotency-Key header');
  if (header !== undefined && fromBody !== undefined && header !== fromBody) throw CREDITS_ERRORS.idempotencyKeyConflict();
  return fromBody ?? header;
}
