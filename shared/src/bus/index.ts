import type { Logger } from 'pino';
import { AmqpBus } from './amqp-bus';
import { MemoryBus, createMemoryRegistry, type MemoryRegistry } from './memory-bus';
import type { EventBus } from './types';

export * from './types';
export { AmqpBus, type AmqpBusOptions } from './amqp-bus';
export { MemoryBus, createMemoryRegistry, type MemoryRegistry } from './memory-bus';
export * from './outbox';
export * from './erasure';

let sharedRegistry: MemoryRegistry | undefined;

/**
 * RabbitMQ when AMQP_URL is set; otherwise the in-process bus, shared by every service in this
 * process (the embedded `npm start`): an event published by one service reaches the others.
 */
export function createBus(opts: {
  url?: string;
  exchange?: string;
  queuePrefix?: string;
  logger: Logger;
  retryDelaysMs?: number[];
}): EventBus {
  if (opts.url)
    return new AmqpBus({
      url: opts.url,
      exchange: opts.exchange,
      queuePrefix: opts.queuePrefix,
      logger: opts.logger,
      retryDelaysMs: opts.retryDelaysMs,
    });
  // One in-process "broker" per process; each caller gets its own client so closing one service's bus
  // does not stop the consumers of the others.
  sharedRegistry ??= createMemoryRegistry();
  return new MemoryBus(opts.logger, opts.retryDelaysMs, sharedRegistry);
}

/** The bus a service's configuration names (AMQP_URL, AMQP_EXCHANGE, AMQP_QUEUE_PREFIX). */
export function createBusFromConfig(
  config: { AMQP_URL?: string; AMQP_EXCHANGE: string; AMQP_QUEUE_PREFIX: string },
  logger: Logger,
): EventBus {
  return createBus({ url: config.AMQP_URL, exchange: config.AMQP_EXCHANGE, queuePrefix: config.AMQP_QUEUE_PREFIX, logger });
}
