import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { consumeOnce, createDatabase, runMigrations, type AmqpBus, type Database } from '@mana/shared';
import { createTestDatabase, eventually, testBusEnv, type TestDatabase } from '@mana/shared/testing';
import * as tables from './fixtures/bus-schema';
import { makeBus, silent, tierChanged } from './helpers/bus';

describe('idempotent consumption (consumeOnce)', () => {
  const names = testBusEnv();
  let bus: AmqpBus;
  let testDb: TestDatabase;
  let database: Database<typeof tables>;
  const deliveries = new Map<string, number>();
  /** Per message id: what consumeOnce returned for each delivery that finished (true = the work ran). */
  const outcomes = new Map<string, boolean[]>();
  const crashOnce = new Set<string>();

  beforeAll(async () => {
    testDb = await createTestDatabase();
    database = createDatabase({ url: testDb.url, schema: tables, logger: silent });
    await runMigrations(database.pool, { folder: tables.busMigrations, schema: 'bus_test', logger: silent });
    bus = makeBus(names);
    await bus.start();
    await bus.subscribe({
      queue: 'tiers',
      bindings: ['user.tier.changed.v1'],
      handler: async (event) => {
        deliveries.set(event.id, (deliveries.get(event.id) ?? 0) + 1);
        const { userId, tier } = event.data as { userId: string; tier: string };
        const ran = await consumeOnce(database.db, tables.processedMessages, 'tiers', event.id, async (tx) => {
          await tx
            .insert(tables.tiers)
            .values({ userId, tier, applied: 1 })
            .onConflictDoUpdate({ target: tables.tiers.userId, set: { tier, applied: sql`${tables.tiers.applied} + 1` } });
          // fails after its write: the marker and the write must roll back together
          if (crashOnce.delete(event.id)) throw new Error('crash after writing');
        });
        outcomes.set(event.id, [...(outcomes.get(event.id) ?? []), ran]);
      },
    });
  });

  afterAll(async () => {
    await bus?.close();
    await bus?.deleteTopology();
    await database?.close();
    await testDb?.drop();
  });

  const applied = async (userId: string) => {
    const [row] = await database.db.select().from(tables.tiers).where(eq(tables.tiers.userId, userId));
    return row?.applied ?? 0;
  };

  it('applies a message delivered twice only once, even when both deliveries run at the same time', async () => {
    const event = tierChanged('u-dup', 'pro');
    await Promise.all([bus.publish(event), bus.publish(event)]);
    await eventually(() => outcomes.get(event.id)?.length === 2);
    expect(deliveries.get(event.id)).toBe(2);
    expect(outcomes.get(event.id)?.slice().sort()).toEqual([false, true]);
    expect(await applied('u-dup')).toBe(1);
    const [marker] = await database.db
      .select({ n: sql<number>`count(*)::int` })
      .from(tables.processedMessages)
      .where(eq(tables.processedMessages.messageId, event.id));
    expect(marker?.n).toBe(1);
  });

  it('a handler that crashes mid-way leaves no marker, so the retry applies it exactly once', async () => {
    const event = tierChanged('u-crash', 'team');
    crashOnce.add(event.id);
    await bus.publish(event);
    await eventually(() => deliveries.get(event.id) === 2);
    await eventually(async () => (await applied('u-crash')) === 1);
    expect(crashOnce.has(event.id)).toBe(false);
  });

  it('returns whether the work ran', async () => {
    const id = tierChanged().id;
    const run = () => consumeOnce(database.db, tables.processedMessages, 'direct', id, async () => undefined);
    expect(await run()).toBe(true);
    expect(await run()).toBe(false);
    // another consumer of the same message is independent
    expect(await consumeOnce(database.db, tables.processedMessages, 'other', id, async () => undefined)).toBe(true);
  });
});
