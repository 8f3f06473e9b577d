import type { EventEmitter } from 'node:events';
import type { EventEnvelope } from '../contracts/events';

export interface DeliveryMeta {
  /** 0 on first delivery, then the number of retries so far. */
  attempt: number;
  redelivered: boolean;
}

export type EventHandler = (event: EventEnvelope, meta: DeliveryMeta) => Promise<void>;

export interface Subscription {
  /** Logical consumer name; the queue is `${queuePrefix}${queue}`. One per service (`credits`, `admin`…). */
  queue: string;
  /** Routing keys (event types or topic patterns) the queue is bound to. */
  bindings: string[];
  handler: EventHandler;
  /**
   * Every process instance gets every message (the gateway's denylist): an exclusive, auto-delete
   * queue per instance instead of the shared durable quorum queue.
   */
  perInstance?: boolean;
  prefetch?: number;
}

/**
 * Events a test (or an operator hook) can await:
 *  connected, disconnected, published(event), handled(event, queue), retried(event, queue, attempt),
 *  dead-lettered({ queue, reason, messageId, type })
 */
export interface EventBus extends EventEmitter {
  readonly kind: 'amqp' | 'memory';
  /** Connects (or keeps trying in the background); resolves after the first attempt either way. */
  start(): Promise<void>;
  /** Resolves when the broker confirmed the message; rejects when it cannot (the outbox retries). */
  publish(event: EventEnvelope): Promise<void>;
  /** Declares the consumer; it is (re)established on every (re)connect. */
  subscribe(sub: Subscription): Promise<void>;
  isConnected(): boolean;
  /** Resolves once connected, rejects after `timeoutMs`. */
  waitForConnection(timeoutMs?: number): Promise<void>;
  /** For /readyz: throws unless connected. */
  ping(): Promise<void>;
  /**
   * Messages waiting in each shared consumer queue of this bus and in its dead-letter queue (metrics:
   * consumer lag). Resolves within `timeoutMs`, leaving out what the broker did not answer by then.
   */
  queueDepths?(timeoutMs?: number): Promise<QueueDepth[]>;
  /** Stops taking new deliveries and waits for in-flight handlers. */
  stopConsuming(): Promise<void>;
  close(): Promise<void>;
}

export interface QueueDepth {
  /** Logical consumer name (`credits`), without the queue prefix. */
  queue: string;
  messages: number;
  deadLetters: number;
}

export class BusUnavailableError extends Error {
  readonly code = 'BUS_UNAVAILABLE';
  constructor(message = 'message bus is not connected') {
    super(message);
    this.name = 'BusUnavailableError';
  }
}

/** AMQP topic matching: `*` one word, `#` zero or more words. */
export function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') return match(i + 1, j) || (j < k.length && match(i, j + 1));
    if (j === k.length) return false;
    return (p[i] === '*' || p[i] === k[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}
