import amqp from 'amqplib';
import { pino } from 'pino';
import { AmqpBus, createEvent, type AmqpBusOptions, type EventEnvelope } from '@mana/shared';
import { TEST_AMQP_URL, type testBusEnv } from '@mana/shared/testing';

export const silent = pino({ level: 'silent' });

/** A bus on this file's own exchange/queue names, with fast retries and reconnects. */
export function makeBus(names: ReturnType<typeof testBusEnv>, opts: Partial<AmqpBusOptions> = {}): AmqpBus {
  return new AmqpBus({
    url: names.AMQP_URL,
    exchange: names.AMQP_EXCHANGE,
    queuePrefix: names.AMQP_QUEUE_PREFIX,
    logger: silent,
    retryDelaysMs: [50, 100],
    reconnectMinMs: 50,
    reconnectMaxMs: 200,
    publishTimeoutMs: 2_000,
    ...opts,
  });
}

export const tierChanged = (userId = 'u-1', tier = 'pro'): EventEnvelope => createEvent('user.tier.changed.v1', { userId, tier });

/** Runs `fn` on a channel of its own, straight to the broker (inspecting queues, publishing raw bytes). */
export async function withChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(TEST_AMQP_URL);
  // a refused operation (e.g. checking a queue that is gone) closes the channel with an 'error' event
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const out = await fn(ch);
    await ch.close();
    return out;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

export async function messageCount(queue: string): Promise<number> {
  return withChannel(async (ch) => (await ch.checkQueue(queue)).messageCount);
}

/** Takes every message currently in `queue` (acknowledging them). */
export async function drainQueue(queue: string): Promise<Buffer[]> {
  return withChannel(async (ch) => {
    const out: Buffer[] = [];
    for (;;) {
      const msg = await ch.get(queue, { noAck: true });
      if (!msg) return out;
      out.push(msg.content);
    }
  });
}
