import amqp from 'amqplib';
import type { Channel } from 'amqplib';

export interface QueueTopology {
  exchange: string;
  dlx: string;
  queue: string;
  bindings: string[];
  perInstance?: boolean;
  retryDelaysMs: number[];
}

export const retryQueueName = (queue: string, index: number): string => `${queue}.retry.${index + 1}`;
export const deadLetterQueueName = (queue: string): string => `${queue}.dlq`;
/**
 * A shared queue's own retry exchange (direct): a failed message is parked in a retry queue through it, not
 * through the default exchange, so a service's broker user needs no write permission on `amq.default`, which
 * would let it drop a message into any queue by name (least privilege, infra/rabbitmq/definitions.json).
 */
export const retryExchangeName = (queue: string): string => `${queue}.retry`;

/** The retry exchanges behind a list of queue names (those with `.retry.<n>` queues). */
export function retryExchangesOf(queues: Iterable<string>): string[] {
  return [...new Set([...queues].filter((q) => /\.retry\.\d+$/.test(q)).map((q) => q.replace(/\.\d+$/, '')))];
}

/** Every queue name a subscription's topology consists of (tests delete them afterwards). */
export function topologyQueues(t: Pick<QueueTopology, 'queue' | 'perInstance' | 'retryDelaysMs'>): string[] {
  if (t.perInstance) return [t.queue];
  return [t.queue, deadLetterQueueName(t.queue), ...t.retryDelaysMs.map((_, i) => retryQueueName(t.queue, i))];
}

/**
 * Every durable queue this process declared, by exchange. Test cleanup reads it (`deleteTestBus`), so a
 * consumer added to a service cannot leave its quorum queues behind on a developer's broker because a
 * test's hand-written list of queue names missed it (leftover queues pile up run after run).
 */
const declaredByExchange = new Map<string, Set<string>>();

export function declaredQueues(exchange: string): string[] {
  return [...(declaredByExchange.get(exchange) ?? [])];
}

export async function assertExchanges(ch: Channel, exchange: string, dlx: string): Promise<void> {
  await ch.assertExchange(exchange, 'topic', { durable: true });
  await ch.assertExchange(dlx, 'direct', { durable: true });
}

/**
 * Declares one subscription's queues and bindings. Idempotent: run on every (re)connect and whenever the
 * broker cancels the consumer (its queue was deleted), so the topology always comes back.
 */
export async function assertQueueTopology(ch: Channel, t: QueueTopology): Promise<void> {
  await assertExchanges(ch, t.exchange, t.dlx);
  if (!t.perInstance) {
    const names = declaredByExchange.get(t.exchange) ?? new Set<string>();
    for (const q of topologyQueues(t)) names.add(q);
    declaredByExchange.set(t.exchange, names);
  }
  if (t.perInstance) {
    await ch.assertQueue(t.queue, { exclusive: true, autoDelete: true, durable: false });
  } else {
    const dlq = deadLetterQueueName(t.queue);
    await ch.assertQueue(dlq, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.bindQueue(dlq, t.dlx, dlq);
    await ch.assertQueue(t.queue, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': t.dlx,
        'x-dead-letter-routing-key': dlq,
      },
    });
    // Retry queues hold a failed message for their TTL, then dead-letter it back to the main queue. The
    // consumer parks a message in one through the queue's own retry exchange (routing key = its name).
    if (t.retryDelaysMs.length > 0) await ch.assertExchange(retryExchangeName(t.queue), 'direct', { durable: true });
    for (const [i, delay] of t.retryDelaysMs.entries()) {
      const retryQueue = retryQueueName(t.queue, i);
      await ch.assertQueue(retryQueue, {
        durable: true,
        arguments: {
          'x-message-ttl': delay,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': t.queue,
        },
      });
      await ch.bindQueue(retryQueue, retryExchangeName(t.queue), retryQueue);
    }
  }
  for (const key of t.bindings) await ch.bindQueue(t.queue, t.exchange, key);
}

/** Deletes queues and exchanges on a connection of its own; a refused delete does not stop the others. */
export async function deleteTopology(url: string, queues: string[], exchanges: string[]): Promise<void> {
  const conn = await amqp.connect(url);
  conn.on('error', () => undefined);
  try {
    let ch = await conn.createChannel();
    const attempt = async (fn: (c: Channel) => Promise<unknown>) => {
      try {
        await fn(ch);
      } catch {
        // A refused delete (e.g. another connection's exclusive queue) closes the channel: take a new one.
        ch = await conn.createChannel();
      }
    };
    for (const q of queues) await attempt((c) => c.deleteQueue(q));
    for (const e of exchanges) await attempt((c) => c.deleteExchange(e));
    await ch.close().catch(() => undefined);
  } finally {
    await conn.close().catch(() => undefined);
  }
}
