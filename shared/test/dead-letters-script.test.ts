import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AmqpBus, EventEnvelope } from '@mana/shared';
import { eventually, testBusEnv } from '@mana/shared/testing';
import { runScript } from '../../test/helpers/scripts';
import { makeBus, tierChanged } from './helpers/bus';

describe('scripts/dead-letters.ts against the real RabbitMQ', () => {
  const names = testBusEnv();
  const env = { ...process.env, AMQP_URL: names.AMQP_URL, AMQP_QUEUE_PREFIX: names.AMQP_QUEUE_PREFIX };
  let bus: AmqpBus;
  let publisher: AmqpBus;
  let broken = true;
  const handled: EventEnvelope[] = [];

  beforeAll(async () => {
    // No retries: a failing handler dead-letters at once.
    bus = makeBus(names, { retryDelaysMs: [] });
    publisher = makeBus(names);
    await bus.start();
    await publisher.start();
    await bus.subscribe({
      queue: 'dlq-demo',
      bindings: ['user.tier.changed.v1'],
      handler: async (event) => {
        if (broken) throw new Error('handler bug');
        handled.push(event);
      },
    });
  });

  afterAll(async () => {
    await bus?.close();
    await publisher?.close();
    await bus?.deleteTopology();
  });

  it('lists, peeks and re-drives the dead letters of a queue once the cause is fixed', async () => {
    const dead = [tierChanged('u-1'), tierChanged('u-2')];
    for (const e of dead) await publisher.publish(e);
    await eventually(async () => {
      const { stdout } = await runScript('scripts/dead-letters.ts', ['list', 'dlq-demo'], env);
      return /dead letters\s+2$/m.test(stdout) ? stdout : undefined;
    });

    const peek = await runScript('scripts/dead-letters.ts', ['peek', 'dlq-demo'], env);
    for (const e of dead) expect(peek.stdout).toContain(`${e.id}  user.tier.changed.v1`);
    expect(peek.stdout).not.toContain('u-1'); // no payload: it may hold personal data
    expect(peek.stdout).toContain('2 message(s) shown, all left in');

    broken = false;
    const redrive = await runScript('scripts/dead-letters.ts', ['redrive', 'dlq-demo'], env);
    expect(redrive.stdout).toMatch(/moved 2 of 2 dead letter\(s\)/);
    await eventually(() => (handled.length === 2 ? true : undefined));
    expect(handled.map((e) => e.id).sort()).toEqual(dead.map((e) => e.id).sort());
    const after = await runScript('scripts/dead-letters.ts', ['list', 'dlq-demo'], env);
    expect(after.stdout).toMatch(/waiting\s+0\s+dead letters\s+0$/m);
  });

  it('refuses bad usage and names a queue that does not exist', async () => {
    await expect(runScript('scripts/dead-letters.ts', ['redrive'], env)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('usage:'),
    });
    await expect(runScript('scripts/dead-letters.ts', ['list', 'no-such-queue'], env)).rejects.toMatchObject({
      stderr: expect.stringContaining(`queue ${names.AMQP_QUEUE_PREFIX}no-such-queue does not exist`),
    });
  });
});
