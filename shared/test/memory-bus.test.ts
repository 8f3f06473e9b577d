import { describe, expect, it } from 'vitest';
import { MemoryBus, createBus, createEvent, createMemoryRegistry, topicMatches, type EventEnvelope } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import { silent, tierChanged } from './helpers/bus';

describe('topicMatches (AMQP topic rules)', () => {
  it.each([
    ['user.registered.v1', 'user.registered.v1', true],
    ['user.*.v1', 'user.registered.v1', true],
    ['user.*', 'user.registered.v1', false],
    ['user.#', 'user.registered.v1', true],
    ['user.#', 'user', true],
    ['#', 'anything.at.all', true],
    ['#.v1', 'session.revoked.v1', true],
    ['*.revoked.*', 'session.revoked.v1', true],
    ['session.revoked.v1', 'session.revoked.v2', false],
    ['user.erasure.#', 'user.registered.v1', false],
  ])('%s vs %s → %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });
});

describe('MemoryBus', () => {
  it('shares a queue between two instances of a service (each event to one of them) and copies per-instance queues', async () => {
    // `INSTANCES=2 npm start` with the in-process bus: two credits-svc subscribe the same queue, as on RabbitMQ.
    const registry = createMemoryRegistry();
    const [one, two] = [new MemoryBus(silent, undefined, registry), new MemoryBus(silent, undefined, registry)];
    const shared: Array<[number, string]> = [];
    const own: Array<[number, string]> = [];
    for (const [i, bus] of [one, two].entries()) {
      await bus.subscribe({ queue: 'credits.user', bindings: ['user.#'], handler: async (e) => void shared.push([i, e.id]) });
      await bus.subscribe({
        queue: 'revocations',
        bindings: ['user.#'],
        perInstance: true,
        handler: async (e) => void own.push([i, e.id]),
      });
    }
    const events = Array.from({ length: 6 }, () => tierChanged());
    for (const e of events) await one.publish(e);
    await eventually(() => shared.length === 6 && own.length === 12);
    expect(shared.map(([, id]) => id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(shared.filter(([i]) => i === 0)).toHaveLength(3);
    // A stopped instance gets nothing more; the other takes every message of the shared queue.
    await two.close();
    for (const e of events.slice(0, 2)) await one.publish({ ...e, id: crypto.randomUUID() });
    await eventually(() => shared.length === 8);
    expect(shared.slice(6).every(([i]) => i === 0)).toBe(true);
    await one.close();
  });

  it('delivers to every matching subscription, validated and copied', async () => {
    const bus = new MemoryBus(silent);
    const a: EventEnvelope[] = [];
    const b: EventEnvelope[] = [];
    await bus.subscribe({ queue: 'a', bindings: ['user.#'], handler: async (e) => void a.push(e) });
    await bus.subscribe({ queue: 'b', bindings: ['session.revoked.v1'], handler: async (e) => void b.push(e) });
    const event = tierChanged();
    await bus.publish(event);
    await eventually(() => a.length === 1);
    expect(a[0]).toEqual(event);
    expect(a[0]).not.toBe(event);
    expect(b).toHaveLength(0);
    await expect(bus.publish({ ...event, data: { userId: '' } } as EventEnvelope)).rejects.toThrow(/invalid/);
    await expect(bus.publish({ ...event, data: { userId: '' } } as EventEnvelope)).rejects.toMatchObject({ code: 'EVENT_INVALID' });
    await bus.close();
  });

  it('retries a failing handler with backoff, then dead-letters it', async () => {
    const bus = new MemoryBus(silent, [5, 10]);
    const attempts: number[] = [];
    await bus.subscribe({
      queue: 'broken',
      bindings: ['#'],
      handler: async (_e, meta) => {
        attempts.push(meta.attempt);
        throw new Error('nope');
      },
    });
    const event = tierChanged();
    await bus.publish(event);
    await eventually(() => bus.deadLetters.length === 1);
    expect(attempts).toEqual([0, 1, 2]);
    expect(bus.deadLetters[0]).toMatchObject({ queue: 'broken', reason: 'retries-exhausted', event: { id: event.id } });
    await bus.close();
  });

  it('recovers when a retry succeeds, and handled() resolves for tests', async () => {
    const bus = new MemoryBus(silent, [5]);
    let calls = 0;
    await bus.subscribe({
      queue: 'flaky',
      bindings: ['user.tier.changed.v1'],
      handler: async () => {
        calls += 1;
        if (calls === 1) throw new Error('transient');
      },
    });
    const done = bus.handled('user.tier.changed.v1', 'flaky');
    await bus.publish(tierChanged());
    await done;
    expect(calls).toBe(2);
    expect(bus.deadLetters).toHaveLength(0);
    await bus.close();
  });

  it('stops delivering after stopConsuming and waits for in-flight handlers', async () => {
    const bus = new MemoryBus(silent);
    let finished = 0;
    await bus.subscribe({
      queue: 'slow',
      bindings: ['#'],
      handler: async () => {
        await new Promise((r) => setTimeout(r, 20));
        finished += 1;
      },
    });
    await bus.publish(tierChanged());
    await new Promise((r) => setImmediate(r));
    await bus.stopConsuming();
    expect(finished).toBe(1);
    await bus.publish(tierChanged());
    await new Promise((r) => setTimeout(r, 30));
    expect(finished).toBe(1);
  });

  it('createBus without a URL shares one in-process bus, and each service closes only its own consumers', async () => {
    const one = createBus({ logger: silent });
    const two = createBus({ logger: silent });
    expect(one.kind).toBe('memory');
    const got: string[] = [];
    await two.subscribe({ queue: 'two', bindings: ['session.#'], handler: async (e) => void got.push(e.id) });
    await one.start();
    await two.start();
    const first = createEvent('session.revoked.v1', { sessionId: 's', userId: 'u', expiresAt: new Date().toISOString() });
    await one.publish(first);
    await eventually(() => got.includes(first.id));
    // the first service shutting down must not silence the second one
    await one.close();
    const second = createEvent('session.revoked.v1', { sessionId: 's2', userId: 'u', expiresAt: new Date().toISOString() });
    await two.publish(second);
    await eventually(() => got.includes(second.id));
    await two.close();
  });
});
