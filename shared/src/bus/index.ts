import type { Logger } from 'pino';
import { AmqpBus } from './amqp-bus';
import { MemoryBus } from './memory-bus';
import type { EventBus } from './types';

export * from './types';
export { AmqpBus, type AmqpBusOptions } from './amqp-bus';
export { MemoryBus } from './memory-bus';
export * from './outbox';

let sharedMemoryBus: MemoryBus | undefined;

/**
 * RabbitMQ when AMQP_URL is set; otherwise the in-process bus, shared by every service in this
 * process (the embedded `npm start`).
 */
export function createBus(opts: {
  url?: string;
  exchange?: string;
  queuePrefix?: string;
  logger: Logger;
  retryDelaysMs?: number[];
}): EventBus {
  if (opts.url) return new AmqpBus({ url: opts.url, exchange: opts.exchange, queuePrefix: opts.queuePrefix, logger: opts.logger, retryDelaysMs: opts.retryDelaysMs });
  sharedMemoryBus ??= new MemoryBus(opts.logger);
  return sharedMemoryBus;
}
