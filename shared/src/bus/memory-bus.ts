import { EventEmitter, once } from 'node:events';
import type { Logger } from 'pino';
import { parseEnvelope, type EventEnvelope } from '../contracts/events';
import { topicMatches, type EventBus, type QueueDepth, type Subscription } from './types';

/** Subscriptions of every MemoryBus attached to one in-process "broker". */
export interface MemoryRegistry {
  subs: Array<{ sub: Subscription; owner: MemoryBus }>;
  /** Per shared queue: which of its consumers gets the next message (round robin). */
  turns?: Map<string, number>;
}

export const createMemoryRegistry = (): MemoryRegistry => ({ subs: [], turns: new Map() });

/**
 * The in-process bus for the embedded mode (`npm start` with no AMQP_URL): same interface, same
 * validation, retries with backoff and a dead-letter list, but it lives and dies with the process.
 */
export class MemoryBus extends EventEmitter implements EventBus {
  readonly kind = 'memory' as const;
  readonly deadLetters: Array<{ queue: string; event: unknown; reason: string }> = [];
  private readonly inFlight = new Set<Promise<void>>();
  private consuming = true;

  constructor(
    private readonly logger: Logger,
    private readonly retryDelaysMs: number[] = [100, 500, 2_000],
    /**
     * Shared by every service of one process (see createBus): each service gets its own MemoryBus, so
     * stopping one service's consumers does not silence the others.
     */
    private readonly registry: MemoryRegistry = createMemoryRegistry(),
  ) {
    super();
    this.on('error', () => undefined);
  }

  async start(): Promise<void> {
    this.emit('connected');
  }

  async publish(event: EventEnvelope): Promise<void> {
    const valid = parseEnvelope(JSON.parse(JSON.stringify(event)));
    // Like RabbitMQ: every per-instance queue gets a copy; a shared queue (two instances of one service
    // subscribed to `credits.user-registered`) hands each message to one of its consumers.
    const shared = new Map<string, Array<{ sub: Subscription; owner: MemoryBus }>>();
    for (const entry of this.registry.subs) {
      if (!entry.sub.bindings.some((b) => topicMatches(b, valid.type))) continue;
      if (entry.sub.perInstance) entry.owner.dispatch(entry.sub, valid);
      else if (entry.owner.consuming) shared.set(entry.sub.queue, [...(shared.get(entry.sub.queue) ?? []), entry]);
    }
    const turns = (this.registry.turns ??= new Map<string, number>());
    for (const [queue, consumers] of shared) {
      const turn = turns.get(queue) ?? 0;
      turns.set(queue, turn + 1);
      const { sub, owner } = consumers[turn % consumers.length];
      owner.dispatch(sub, valid);
    }
    this.emit('published', valid);
  }

  private dispatch(sub: Subscription, event: EventEnvelope): void {
    if (!this.consuming) return;
    const p = this.deliver(sub, event, 0).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async deliver(sub: Subscription, event: EventEnvelope, attempt: number): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (!this.consuming) return;
    try {
      await sub.handler(event, { attempt, redelivered: attempt > 0 });
      this.emit('handled', event, sub.queue);
    } catch (err) {
      this.logger.warn({ queue: sub.queue, eventId: event.id, attempt, err: (err as Error).message }, 'handler failed');
      if (attempt >= this.retryDelaysMs.length) {
        this.deadLetters.push({ queue: sub.queue, event, reason: 'retries-exhausted' });
        this.emit('dead-lettered', { queue: sub.queue, reason: 'retries-exhausted', messageId: event.id, type: event.type });
        return;
      }
      this.emit('retried', event, sub.queue, attempt + 1);
      await new Promise((r) => setTimeout(r, this.retryDelaysMs[attempt]).unref());
      await this.deliver(sub, event, attempt + 1);
    }
  }

  /** In process nothing waits in a queue; dead letters are the ones this bus kept. */
  async queueDepths(): Promise<QueueDepth[]> {
    const queues = new Set(this.registry.subs.filter((s) => s.owner === this && !s.sub.perInstance).map((s) => s.sub.queue));
    return [...queues].map((queue) => ({ queue, messages: 0, deadLetters: this.deadLetters.filter((d) => d.queue === queue).length }));
  }

  async subscribe(sub: Subscription): Promise<void> {
    this.registry.subs.push({ sub, owner: this });
  }

  isConnected(): boolean {
    return true;
  }

  async waitForConnection(): Promise<void> {}

  async ping(): Promise<void> {}

  async stopConsuming(): Promise<void> {
    this.consuming = false;
    await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.stopConsuming();
    this.registry.subs = this.registry.subs.filter((s) => s.owner !== this);
  }

  /** Resolves when an event of `type` was handled by `queue` (tests). */
  async handled(type: string, queue?: string): Promise<EventEnvelope> {
    for (;;) {
      const [event, q] = (await once(this, 'handled')) as [EventEnvelope, string];
      if (event.type === type && (!queue || q === queue)) return event;
    }
  }
}
