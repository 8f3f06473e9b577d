import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AmqpBus, EventEnvelope } from '@mana/shared';
import { eventually, testBusEnv } from '@mana/shared/testing';
import { drainQueue, makeBus, messageCount, tierChanged, withChannel } from './helpers/bus';

describe('AmqpBus against the real RabbitMQ', () => {
  const names = testBusEnv();
  let bus: AmqpBus;
  let publisher: AmqpBus;
  const received: EventEnvelope[] = [];
  const attempts = new Map<string, number>();
  let failNext = new Set<string>();

  beforeAll(async () => {
    bus = makeBus(names);
    publisher = makeBus(names);
    await bus.start();
    await publisher.start();
    await bus.subscribe({
      queue: 'main',
      bindings: ['user.tier.changed.v1'],
      handler: async (event, meta) => {
        attempts.set(event.id, meta.attempt + 1);
        const data = event.data as { userId: string };
        if (data.userId === 'always-fails') throw new Error('handler bug');
        if (failNext.has(event.id)) {
          failNext.delete(event.id);
          throw new Error('transient');
        }
        received.push(event);
      },
    });
  });

  afterAll(async () => {
    await bus?.close();
    await publisher?.close();
    await bus?.deleteTopology();
  });

  const queue = () => bus.queueName({ queue: 'main' });

  it('round-trips a validated event through the exchange, messageId = event id', async () => {
    const event = tierChanged('u-round-trip');
    await publisher.publish(event);
    const got = await eventually(() => received.find((e) => e.id === event.id));
    expect(got).toEqual(event);
  });

  it('refuses to publish an invalid event', async () => {
    const bad = { ...tierChanged(), data: { userId: '' } } as EventEnvelope;
    await expect(publisher.publish(bad)).rejects.toThrow(/invalid/);
    await expect(publisher.publish(bad)).rejects.toMatchObject({ code: 'EVENT_INVALID' });
  });

  it('dead-letters malformed messages and keeps consuming', async () => {
    const dead: unknown[] = [];
    bus.on('dead-lettered', (d) => dead.push(d));
    const good = tierChanged('u-after-garbage');
    await withChannel(async (ch) => {
      const key = 'user.tier.changed.v1';
      ch.publish(names.AMQP_EXCHANGE, key, Buffer.from('{not json'), { persistent: true });
      ch.publish(names.AMQP_EXCHANGE, key, Buffer.from(JSON.stringify({ hello: 'world' })), { persistent: true });
      const wrongData = { ...tierChanged(), data: { userId: 'u', tier: 42 } };
      ch.publish(names.AMQP_EXCHANGE, key, Buffer.from(JSON.stringify(wrongData)), { persistent: true });
    });
    await publisher.publish(good);
    await eventually(() => received.find((e) => e.id === good.id));
    await eventually(async () => (await messageCount(`${queue()}.dlq`)) === 3);
    const bodies = (await drainQueue(`${queue()}.dlq`)).map((b) => b.toString());
    expect(bodies).toContain('{not json');
    expect(bodies).toContain(JSON.stringify({ hello: 'world' }));
    expect(dead).toHaveLength(3);
    expect(dead.every((d) => (d as { reason: string }).reason === 'malformed')).toBe(true);
  });

  it('retries a failing handler with backoff, then succeeds without dead-lettering', async () => {
    const event = tierChanged('u-transient');
    failNext = new Set([event.id]);
    await publisher.publish(event);
    await eventually(() => received.find((e) => e.id === event.id));
    expect(attempts.get(event.id)).toBe(2);
  });

  it('dead-letters a message whose handler keeps failing, after every retry', async () => {
    const retried: number[] = [];
    bus.on('retried', (e: EventEnvelope, _q: string, attempt: number) => {
      if ((e.data as { userId: string }).userId === 'always-fails') retried.push(attempt);
    });
    const event = tierChanged('always-fails');
    await publisher.publish(event);
    await eventually(async () => (await messageCount(`${queue()}.dlq`)) === 1);
    expect(attempts.get(event.id)).toBe(3);
    expect(retried).toEqual([1, 2]);
    const [body] = await drainQueue(`${queue()}.dlq`);
    expect((JSON.parse(body.toString()) as { id: string }).id).toBe(event.id);
    // retry queues are empty again: nothing parked forever
    expect(await messageCount(`${queue()}.retry.1`)).toBe(0);
    expect(await messageCount(`${queue()}.retry.2`)).toBe(0);
  });

  it('re-asserts its queue when it is deleted out from under the consumer', async () => {
    await withChannel((ch) => ch.deleteQueue(queue()));
    const event = tierChanged('u-after-delete');
    // The consumer re-declares and re-binds the queue; publish until the binding is back.
    await eventually(
      async () => {
        if (received.some((e) => e.id === event.id)) return true;
        await publisher.publish(event);
        return false;
      },
      15_000,
      200,
    );
    const args = await withChannel((ch) => ch.checkQueue(queue()));
    expect(args.queue).toBe(queue());
  });

  it('gives every per-instance subscriber its own copy', async () => {
    const a: string[] = [];
    const b: string[] = [];
    const other = makeBus(names);
    await other.start();
    try {
      await bus.subscribe({ queue: 'fanout', perInstance: true, bindings: ['session.#'], handler: async (e) => void a.push(e.id) });
      await other.subscribe({ queue: 'fanout', perInstance: true, bindings: ['session.#'], handler: async (e) => void b.push(e.id) });
      const { createEvent } = await import('@mana/shared');
      const event = createEvent('session.revoked.v1', { sessionId: 's-1', userId: 'u-1', expiresAt: new Date().toISOString() });
      await publisher.publish(event);
      await eventually(() => a.includes(event.id) && b.includes(event.id));
    } finally {
      await other.close();
    }
  });
});
