import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { OutboxRelay, createDatabase, enqueueEvent, runMigrations, type AmqpBus, type Database, type EventEnvelope } from '@mana/shared';
import { createTestDatabase, eventually, startTcpProxy, testBusEnv, type TcpProxy, type TestDatabase } from '@mana/shared/testing';
import * as tables from './fixtures/bus-schema';
import { makeBus, silent, tierChanged, withChannel } from './helpers/bus';

/** Broker outages are simulated per client with a TCP proxy: RabbitMQ itself keeps serving other tests. */
describe('broker outage', () => {
  const names = testBusEnv();
  let proxy: TcpProxy;
  let publisher: AmqpBus;
  let consumer: AmqpBus;
  let testDb: TestDatabase;
  let database: Database<typeof tables>;
  let relay: OutboxRelay;
  const received = new Map<string, EventEnvelope>();
  const events: string[] = [];

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(names.AMQP_URL).port || 5672) });
    const viaProxy = { ...names, AMQP_URL: proxy.urlFor(names.AMQP_URL) };
    publisher = makeBus(viaProxy);
    consumer = makeBus(viaProxy);
    for (const e of ['connected', 'disconnected'] as const) consumer.on(e, () => events.push(e));
    await publisher.start();
    await consumer.start();
    await consumer.subscribe({
      queue: 'outage',
      bindings: ['user.#'],
      handler: async (event) => void received.set(event.id, event),
    });
    testDb = await createTestDatabase();
    database = createDatabase({ url: testDb.url, schema: tables, logger: silent });
    await runMigrations(database.pool, { folder: tables.busMigrations, schema: 'bus_test', logger: silent });
    relay = new OutboxRelay({ db: database.db, outbox: tables.outbox, bus: publisher, logger: silent, intervalMs: 100 });
    relay.start();
  });

  afterAll(async () => {
    await relay?.stop();
    await publisher?.close();
    await consumer?.close();
    await proxy?.close();
    // straight to the broker: the proxy is gone
    const direct = makeBus(names);
    for (const q of consumer?.declaredQueues ?? []) direct.declaredQueues.add(q);
    await direct.deleteTopology();
    await database?.close();
    await testDb?.drop();
  });

  const cutAndWait = async () => {
    proxy.cut();
    await eventually(() => !publisher.isConnected() && !consumer.isConnected());
  };
  const restoreAndWait = async () => {
    proxy.restore();
    await eventually(() => publisher.isConnected() && consumer.isConnected());
  };

  it('loses no confirmed message across an outage, and the consumer resumes by itself', async () => {
    const confirmed: string[] = [];
    const refused: string[] = [];
    const publishOne = async () => {
      const e = tierChanged(`u-${confirmed.length + refused.length}`);
      try {
        await publisher.publish(e);
        confirmed.push(e.id);
      } catch {
        refused.push(e.id);
      }
    };
    for (let i = 0; i < 10; i++) await publishOne();
    // cut in the middle of a burst: whatever resolved before must survive
    const burst = Promise.all(Array.from({ length: 20 }, publishOne));
    await cutAndWait();
    await burst;
    for (let i = 0; i < 3; i++) await publishOne();
    expect(refused.length).toBeGreaterThan(0);
    await restoreAndWait();
    for (let i = 0; i < 5; i++) await publishOne();
    await eventually(() => confirmed.every((id) => received.has(id)), 15_000);
    expect(events).toContain('disconnected');
    expect(events.at(-1)).toBe('connected');
  });

  it('publishes an event committed with its state change while the broker was down, once it is back', async () => {
    await cutAndWait();
    const event = tierChanged('u-outboxed', 'gold');
    await database.db.transaction(async (tx) => {
      await tx.insert(tables.tiers).values({ userId: 'u-outboxed', tier: 'gold' });
      await enqueueEvent(tx, tables.outbox, event);
    });
    relay.kick();
    // several relay passes run while the broker is away: the row stays pending
    await relay.drain();
    expect(await relay.pending()).toBe(1);
    expect(received.has(event.id)).toBe(false);
    await restoreAndWait();
    await eventually(() => received.has(event.id), 15_000);
    expect(received.get(event.id)).toEqual(event);
    await eventually(async () => (await relay.pending()) === 0);
    const [row] = await database.db.select().from(tables.outbox).where(eq(tables.outbox.id, event.id));
    expect(row?.publishedAt).toBeInstanceOf(Date);
  });

  it('re-declares exchange, queue and bindings after reconnecting to a broker that lost them', async () => {
    await cutAndWait();
    const queue = consumer.queueName({ queue: 'outage' });
    await withChannel(async (ch) => {
      await ch.deleteQueue(queue);
      await ch.deleteExchange(names.AMQP_EXCHANGE);
    });
    await restoreAndWait();
    const event = tierChanged('u-after-topology-loss');
    await publisher.publish(event);
    await eventually(() => received.has(event.id));
  });

  it('does not publish an event whose transaction rolled back', async () => {
    const event = tierChanged('u-rolled-back');
    await expect(
      database.db.transaction(async (tx) => {
        await enqueueEvent(tx, tables.outbox, event);
        throw new Error('state change failed');
      }),
    ).rejects.toThrow('state change failed');
    const [row] = await database.db
      .select({ n: sql<number>`count(*)::int` })
      .from(tables.outbox)
      .where(eq(tables.outbox.id, event.id));
    expect(row?.n).toBe(0);
  });
});
