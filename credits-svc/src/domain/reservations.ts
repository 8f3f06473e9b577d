import { randomUUID } from 'node:crypto';
import { and, asc, eq } from 'drizzle-orm';
import { reservationAllocations, reservations, type ReservationStatus } from '../db/schema';
import type { Owner, Tx } from '../db/scope';
import { CREDITS_ERRORS } from './errors';
import {
  adjustLots,
  burn,
  claimActor,
  expireLots,
  lockWallet,
  maintain,
  openWallet,
  post,
  saveWallet,
  type LedgerPolicy,
  type Wallet,
} from './ledger';
import { reclaimRefunded } from './purchases';
import { requestHash } from './request-hash';
import type { Insufficient } from './spend';

export interface HoldInput {
  owner: Owner;
  actor: string;
  amount: number;
  appId: string;
  description?: string;
  ttlSeconds: number;
  idempotencyKey: string;
}

type Reservation = typeof reservations.$inferSelect;

export interface ReservationView {
  id: string;
  amount: number;
  status: ReservationStatus;
  captured: number | null;
  appId: string;
  description: string | null;
  expiresAt: string;
  createdAt: string;
  resolvedAt: string | null;
}

export function reservationView(r: Reservation): ReservationView {
  return {
    id: r.id,
    amount: r.amount,
    status: r.status,
    captured: r.captured,
    appId: r.appId,
    description: r.description,
    expiresAt: r.expiresAt.toISOString(),
    createdAt: r.createdAt.toISOString(),
    resolvedAt: r.resolvedAt?.toISOString() ?? null,
  };
}

/**
 * Moves `amount` from available to held (burning lots now, remembered per lot so a release gives them
 * back). Idempotent by key like a spend: the same request again answers the same hold.
 */
export async function hold(
  tx: Tx,
  input: HoldInput,
  policy: LedgerPolicy,
): Promise<{ reservation: ReservationView; replayed: boolean } | Insufficient> {
  const hash = requestHash({
    amount: input.amount,
    appId: input.appId,
    description: input.description,
    ttlSeconds: input.ttlSeconds,
    owner: input.owner,
  });
  await claimActor(tx, input.owner, input.actor, policy);
  const w = await lockWallet(tx, input.owner, policy);
  const [prior] = await tx
    .select()
    .from(reservations)
    .where(and(eq(reservations.owner, input.owner), eq(reservations.idempotencyKey, input.idempotencyKey)));
  if (prior) {
    if (prior.requestHash !== hash) throw CREDITS_ERRORS.idempotencyKeyReused();
    return { reservation: reservationView(prior), replayed: true };
  }
  const changed = await maintain(tx, w, policy);
  if (w.available < input.amount) {
    if (changed) await saveWallet(tx, w);
    return { insufficient: w.available };
  }
  const id = randomUUID();
  const [row] = await tx
    .insert(reservations)
    .values({
      id,
      owner: input.owner,
      amount: input.amount,
      status: 'held',
      appId: input.appId,
      description: input.description ?? null,
      idempotencyKey: input.idempotencyKey,
      requestHash: hash,
      expiresAt: new Date(policy.now.getTime() + input.ttlSeconds * 1000),
    })
    .returning();
  const allocations = await burn(tx, w, input.amount, policy.now);
  await tx
    .insert(reservationAllocations)
    .values(allocations.map((a, position) => ({ reservationId: id, grantId: a.grantId, owner: input.owner, position, amount: a.amount })));
  w.available -= input.amount;
  w.held += input.amount;
  await post(
    tx,
    w,
    {
      kind: 'hold',
      amount: -input.amount,
      appId: input.appId,
      description: input.description ?? null,
      actor: input.actor,
      reservationId: id,
    },
    [
      ...allocations.map((a) => ({ account: 'available' as const, amount: -a.amount, grantId: a.grantId })),
      { account: 'held', amount: input.amount },
    ],
  );
  await saveWallet(tx, w);
  return { reservation: reservationView(row), replayed: false };
}

async function lockReservation(tx: Tx, owner: Owner, id: string): Promise<Reservation | undefined> {
  const [row] = await tx
    .select()
    .from(reservations)
    .where(and(eq(reservations.owner, owner), eq(reservations.id, id)))
    .for('update');
  return row;
}

/**
 * Resolves a hold: `captured` goes to revenue (taken from the lots in the order they were burned), the
 * rest goes back to available and to its lots. Lots that expired meanwhile go straight on to breakage;
 * lots refunded meanwhile go on to the refund (`system:payments`).
 */
async function resolve(
  tx: Tx,
  w: Wallet,
  r: Reservation,
  captured: number,
  status: Exclude<ReservationStatus, 'held'>,
  actor: string | null,
  policy: LedgerPolicy,
) {
  const allocations = await tx
    .select()
    .from(reservationAllocations)
    .where(eq(reservationAllocations.reservationId, r.id))
    .orderBy(asc(reservationAllocations.position));
  let toCapture = captured;
  const giveBack: Array<{ grantId: string; delta: number }> = [];
  for (const a of allocations) {
    const kept = Math.min(toCapture, a.amount);
    toCapture -= kept;
    if (a.amount - kept > 0) giveBack.push({ grantId: a.grantId, delta: a.amount - kept });
  }
  await adjustLots(tx, giveBack);
  const released = r.amount - captured;
  w.held -= r.amount;
  w.available += released;
  w.totalSpent += captured;
  await post(
    tx,
    w,
    {
      kind: captured > 0 ? 'capture' : 'release',
      amount: released,
      appId: r.appId,
      description: r.description,
      actor,
      reservationId: r.id,
    },
    [
      { account: 'held', amount: -r.amount },
      { account: 'system:revenue', amount: captured },
      ...giveBack.map((g) => ({ account: 'available' as const, amount: g.delta, grantId: g.grantId })),
    ],
  );
  // Credits of a lot whose purchase was refunded while they were held go to the refund, not the wallet.
  await reclaimRefunded(tx, w, giveBack);
  const [row] = await tx
    .update(reservations)
    .set({ status, captured, resolvedAt: policy.now })
    .where(eq(reservations.id, r.id))
    .returning();
  await expireLots(tx, w, policy.now);
  await saveWallet(tx, w);
  return reservationView(row);
}

function assertHeld(r: Reservation | undefined, now: Date): Reservation {
  if (!r) throw CREDITS_ERRORS.reservationNotFound();
  if (r.status !== 'held' || r.expiresAt <= now) throw CREDITS_ERRORS.reservationNotHeld();
  return r;
}

/** Posts `amount` (≤ the hold) and releases the rest; a resolved or expired hold answers 409. */
export async function capture(
  tx: Tx,
  owner: Owner,
  actor: string,
  id: string,
  amount: number,
  policy: LedgerPolicy,
): Promise<ReservationView> {
  await claimActor(tx, owner, actor, policy);
  const w = await lockWallet(tx, owner, policy);
  const r = assertHeld(await lockReservation(tx, owner, id), policy.now);
  if (amount > r.amount) throw CREDITS_ERRORS.captureExceedsHold(r.amount);
  return resolve(tx, w, r, amount, 'captured', actor, policy);
}

export async function release(tx: Tx, owner: Owner, actor: string, id: string, policy: LedgerPolicy): Promise<ReservationView> {
  await claimActor(tx, owner, actor, policy);
  const w = await lockWallet(tx, owner, policy);
  const r = assertHeld(await lockReservation(tx, owner, id), policy.now);
  return resolve(tx, w, r, 0, 'released', actor, policy);
}

/** The sweeper's step for one hold: released as `expired` if it is still held and past its expiry. */
export async function expireHold(tx: Tx, owner: Owner, id: string, policy: LedgerPolicy): Promise<boolean> {
  // Erased since the sweeper listed it: the hold went with the wallet.
  const w = await openWallet(tx, owner, policy);
  if (!w) return false;
  const r = await lockReservation(tx, owner, id);
  if (!r || r.status !== 'held' || r.expiresAt > policy.now) return false;
  await resolve(tx, w, r, 0, 'expired', null, policy);
  return true;
}

export async function getReservation(tx: Tx, owner: Owner, id: string): Promise<ReservationView> {
  const [row] = await tx
    .select()
    .from(reservations)
    .where(and(eq(reservations.owner, owner), eq(reservations.id, id)));
  if (!row) throw CREDITS_ERRORS.reservationNotFound();
  return reservationView(row);
}
