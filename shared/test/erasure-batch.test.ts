import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, inArray } from 'drizzle-orm';
import {
  createDatabase,
  createEvent,
  handleErasureRequests,
  runMigrations,
  type Database,
  type ErasureParticipantOptions,
} from '@mana/shared';
import { createTestDatabase, type TestDatabase } from '@mana/shared/testing';
import * as tables from './fixtures/bus-schema';
import { silent } from './helpers/bus';

/**
 * The erasure participant helper with several requests in one transaction (a burst): each request erased once,
 * redeliveries and re-asks inside the batch and after it answered as one at a time would be, one rollback for all.
 */
describe('erasure participant: requests handled in one batch', () => {
  let testDb: TestDatabase;
  let database: Database<typeof tables>;
  const erased: string[] = [];
  let failFor: string | undefined;

  const opts = (): ErasureParticipantOptions => ({
    service: 'tiers',
    bus: undefined as never, // not used by handleErasureRequests
    db: database.db,
    outbox: tables.outbox,
    processedMessages: tables.processedMessages,
    logger: silent,
    erase: async (tx, userId) => {
      if (userId === failFor) throw new Error('erase failed');
      erased.push(userId);
      const gone = await tx.delete(tables.tiers).where(eq(tables.tiers.userId, userId)).returning({ id: tables.tiers.userId });
      return { deleted: { tiers: gone.length } };
    },
  });
  const delivery = (requestId: string, userId: string, eventId = randomUUID()) => ({ eventId, requestId, userId });
  const answersIn = async (requestIds: string[]) =>
    (
      await database.db
        .select()
        .from(tables.outbox)
        .where(inArray(tables.outbox.type, ['user.erasure.completed.v1']))
    ).filter((r) => requestIds.includes((r.envelope.data as { requestId: string }).requestId));

  beforeAll(async () => {
    testDb = await createTestDatabase();
    database = createDatabase({ url: testDb.url, schema: tables, logger: silent });
    await runMigrations(database.pool, { folder: tables.busMigrations, schema: 'bus_test', logger: silent });
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  it('erases each request once; a redelivery in the batch is ignored, a re-ask repeats the answer; the same after it', async () => {
    const [u1, u2] = [`u-${randomUUID()}`, `u-${randomUUID()}`];
    const [r1, r2] = [randomUUID(), randomUUID()];
    await database.db.insert(tables.tiers).values([
      { userId: u1, tier: 'pro' },
      { userId: u2, tier: 'free' },
    ]);
    // The user's relayed event goes; a revocation still waiting to be relayed stays (it must reach the gateways).
    const relayed = createEvent('user.tier.changed.v1', { userId: u1, tier: 'pro' });
    const revocation = createEvent('session.revoked.v1', { sessionId: 's-1', userId: u1, expiresAt: new Date().toISOString() });
    await database.db.insert(tables.outbox).values([
      { id: relayed.id, type: relayed.type, envelope: relayed, publishedAt: new Date() },
      { id: revocation.id, type: revocation.type, envelope: revocation },
    ]);

    const first = delivery(r1, u1);
    const outcomes = await handleErasureRequests(opts(), [first, delivery(r2, u2), { ...first }, delivery(r1, u1)]);
    expect(erased.filter((u) => u === u1 || u === u2).sort()).toEqual([u1, u2].sort());
    expect(outcomes).toEqual([
      { counts: { deleted: { tiers: 1 }, pseudonymized: {}, retained: {} }, repeated: false },
      { counts: { deleted: { tiers: 1 }, pseudonymized: {}, retained: {} }, repeated: false },
      undefined, // the same message twice: answered once
      { counts: { deleted: { tiers: 1 }, pseudonymized: {}, retained: {} }, repeated: true },
    ]);
    expect(await answersIn([r1, r2])).toHaveLength(3);
    const left = await database.db
      .select({ id: tables.outbox.id })
      .from(tables.outbox)
      .where(inArray(tables.outbox.id, [relayed.id, revocation.id]));
    expect(left).toEqual([{ id: revocation.id }]);

    // Later: a redelivery changes nothing; the coordinator asking again gets the stored answer.
    const later = await handleErasureRequests(opts(), [{ ...first }, delivery(r2, u2)]);
    expect(later).toEqual([undefined, { counts: { deleted: { tiers: 1 }, pseudonymized: {}, retained: {} }, repeated: true }]);
    expect(erased.filter((u) => u === u1 || u === u2)).toHaveLength(2);
    expect(await answersIn([r1, r2])).toHaveLength(4);
  });

  it('one failing erase rolls the whole batch back (no marker stays), so each request can be retried alone', async () => {
    const [ok, bad] = [`u-${randomUUID()}`, `u-${randomUUID()}`];
    await database.db.insert(tables.tiers).values({ userId: ok, tier: 'pro' });
    const good = delivery(randomUUID(), ok);
    failFor = bad;
    try {
      await expect(handleErasureRequests(opts(), [good, delivery(randomUUID(), bad)])).rejects.toThrow('erase failed');
    } finally {
      failFor = undefined;
    }
    expect(await database.db.select().from(tables.tiers).where(eq(tables.tiers.userId, ok))).toHaveLength(1);
    expect(await database.db.select().from(tables.processedMessages).where(eq(tables.processedMessages.messageId, good.eventId))).toEqual(
      [],
    );
    const [again] = await handleErasureRequests(opts(), [good]);
    expect(again).toMatchObject({ repeated: false, counts: { deleted: { tiers: 1 } } });
  });
});
