import { describe, expect, it } from 'vitest';
import { deleteTestBus, testBusEnv } from '@mana/shared/testing';
import { makeBus, withChannel } from './helpers/bus';

describe('deleteTestBus', () => {
  it("removes a service's queues (main, dead-letter, retries) and both exchanges", async () => {
    const names = testBusEnv();
    const bus = makeBus(names, { retryDelaysMs: [10, 20, 30] });
    await bus.start();
    await bus.subscribe({ queue: 'credits', bindings: ['user.#'], handler: async () => undefined });
    await bus.close();
    const declared = [...bus.declaredQueues];
    expect(declared).toHaveLength(5);
    for (const q of declared) await withChannel((ch) => ch.checkQueue(q));

    await deleteTestBus(names, ['credits']);

    for (const q of declared) await expect(withChannel((ch) => ch.checkQueue(q))).rejects.toThrow(/NOT_FOUND/);
    for (const e of [names.AMQP_EXCHANGE, `${names.AMQP_EXCHANGE}.dlx`])
      await expect(withChannel((ch) => ch.checkExchange(e))).rejects.toThrow(/NOT_FOUND/);
  });

  it('also removes queues the caller did not list (a consumer added later cannot leak quorum queues)', async () => {
    const names = testBusEnv();
    const bus = makeBus(names, { retryDelaysMs: [10] });
    await bus.start();
    await bus.subscribe({ queue: 'admin.user-registered', bindings: ['user.registered.v1'], handler: async () => undefined });
    await bus.subscribe({ queue: 'admin.user-updated', bindings: ['user.updated.v1'], handler: async () => undefined });
    await bus.close();
    const declared = [...bus.declaredQueues];
    expect(declared).toHaveLength(6);

    await deleteTestBus(names, ['admin']);

    for (const q of declared) await expect(withChannel((ch) => ch.checkQueue(q))).rejects.toThrow(/NOT_FOUND/);
  });
});
