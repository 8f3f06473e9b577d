import { EventEmitter, once } from 'node:events';
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import type { Logger } from 'pino';
import { parseEnvelope, type EventEnvelope } from '../contracts/events';
import {
  assertExchanges,
  assertQueueTopology,
  deadLetterQueueName,
  deleteTopology,
  retryExchangeName,
  retryExchangesOf,
  retryQueueName,
  topologyQueues,
} from './amqp-topology';
import { BusUnavailableError, type EventBus, type QueueDepth, type Subscription } from './types';

export interface AmqpBusOptions {
  url: string;
  logger: Logger;
  exchange?: string;
  queuePrefix?: string;
  /** Backoff before each retry of a failed handler; after the last, the message is dead-lettered. */
  retryDelaysMs?: number[];
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  publishTimeoutMs?: number;
  /** Identifies this process's per-instance queues. */
  instanceId?: string;
}

interface ActiveConsumer {
  sub: Subscription;
  channel: Channel;
  tag: string;
}

const RETRY_HEADER = 'x-mana-retry';

/** amqplib types message properties as `any`: take only what has the expected type. */
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const asNumber = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export class AmqpBus extends EventEmitter implements EventBus {
  readonly kind = 'amqp' as const;
  readonly exchange: string;
  readonly dlx: string;
  private readonly opts: Required<Omit<AmqpBusOptions, 'logger' | 'url'>> & Pick<AmqpBusOptions, 'logger' | 'url'>;
  private connection?: ChannelModel;
  private publisher?: ConfirmChannel;
  private readonly subscriptions: Subscription[] = [];
  private consumers: ActiveConsumer[] = [];
  private connected = false;
  private closing = false;
  private consuming = true;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectDelay: number;
  private connecting?: Promise<void>;
  private readonly inFlight = new Set<Promise<void>>();
  /** Every queue this bus declared (tests delete them afterwards). */
  readonly declaredQueues = new Set<string>();

  constructor(options: AmqpBusOptions) {
    super();
    this.opts = {
      exchange: 'mana.events',
      queuePrefix: '',
      retryDelaysMs: [1_000, 5_000, 30_000],
      reconnectMinMs: 250,
      reconnectMaxMs: 5_000,
      publishTimeoutMs: 10_000,
      instanceId: randomUUID().slice(0, 8),
      ...(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as AmqpBusOptions),
    };
    this.exchange = this.opts.exchange;
    this.dlx = `${this.exchange}.dlx`;
    this.reconnectDelay = this.opts.reconnectMinMs;
    // An unhandled 'error' event would crash the process; errors are logged instead.
    this.on('error', () => undefined);
  }

  private get log(): Logger {
    return this.opts.logger;
  }

  queueName(sub: Pick<Subscription, 'queue' | 'perInstance'>): string {
    const base = `${this.opts.queuePrefix}${sub.queue}`;
    return sub.perInstance ? `${base}.instance.${this.opts.instanceId}` : base;
  }

  async start(): Promise<void> {
    this.closing = false;
    await this.connect();
  }

  private connect(): Promise<void> {
    this.connecting ??= this.doConnect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    if (this.closing || this.connected) return;
    let connection: ChannelModel | undefined;
    let lost = false;
    try {
      connection = await amqp.connect(this.opts.url, {
        clientProperties: { connection_name: this.opts.queuePrefix + this.opts.instanceId },
      });
      const conn = connection;
      conn.on('error', (err: Error) => this.log.warn({ err: err.message }, 'amqp connection error'));
      conn.on('close', () => {
        lost = true;
        this.onConnectionLost(conn);
      });
      // close() may have been called while connecting: declare nothing then (a test's cleanup may already
      // have deleted this exchange, and a late declaration would bring it back).
      if (this.closing) throw new Error('closed while connecting');
      const publisher = await conn.createConfirmChannel();
      if (this.closing) throw new Error('closed while connecting');
      publisher.on('error', (err: Error) => this.log.warn({ err: err.message }, 'amqp publish channel error'));
      publisher.on('close', () => {
        // A channel-level error closes only the channel: drop the whole connection and start clean.
        if (this.connection === conn && !this.closing) void conn.close().catch(() => undefined);
      });
      await assertExchanges(publisher, this.exchange, this.dlx);
      this.connection = conn;
      this.publisher = publisher;
      this.consumers = [];
      for (const sub of this.subscriptions) {
        if (this.closing) throw new Error('closed while connecting');
        await this.setupConsumer(sub, conn);
      }
      // The connection may have dropped, or close() been called, while the topology was being declared.
      if (lost || this.closing || this.connection !== conn) throw new Error('connection closed during setup');
      this.connected = true;
      this.reconnectDelay = this.opts.reconnectMinMs;
      this.log.info({ exchange: this.exchange }, 'amqp connected');
      this.emit('connected');
    } catch (err) {
      if (this.connection === connection) {
        this.connection = undefined;
        this.publisher = undefined;
        this.consumers = [];
      }
      if (connection) await connection.close().catch(() => undefined);
      if (this.closing) return;
      this.log.warn({ err: (err as Error).message }, 'amqp connect failed');
      this.scheduleReconnect();
    }
  }

  private onConnectionLost(connection: ChannelModel): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    this.publisher = undefined;
    this.consumers = [];
    const wasConnected = this.connected;
    this.connected = false;
    if (wasConnected) {
      this.log.warn('amqp connection lost');
      this.emit('disconnected');
    }
    if (!this.closing) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.opts.reconnectMaxMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  /** Declares a subscription's topology (idempotent; re-run on every reconnect) and starts consuming. */
  private async setupConsumer(sub: Subscription, conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => this.log.warn({ err: err.message, queue: sub.queue }, 'amqp consumer channel error'));
    if (this.closing) {
      await ch.close().catch(() => undefined);
      throw new Error('closed while declaring a consumer');
    }
    const queue = this.queueName(sub);
    const topology = {
      exchange: this.exchange,
      dlx: this.dlx,
      queue,
      bindings: sub.bindings,
      perInstance: sub.perInstance,
      retryDelaysMs: this.opts.retryDelaysMs,
    };
    for (const q of topologyQueues(topology)) this.declaredQueues.add(q);
    await assertQueueTopology(ch, topology);
    await ch.prefetch(sub.prefetch ?? 20);
    if (!this.consuming) return;
    const { consumerTag } = await ch.consume(queue, (msg) => {
      if (!msg) {
        this.onConsumerCancelled(sub, ch, conn);
        return;
      }
      const p = this.deliver(sub, queue, ch, msg).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    });
    this.consumers.push({ sub, channel: ch, tag: consumerTag });
  }

  /**
   * The broker cancelled a consumer (its queue was deleted or, for quorum queues, lost its leader):
   * declare the topology again on a fresh channel; if even that fails, reconnect from scratch.
   */
  private onConsumerCancelled(sub: Subscription, ch: Channel, conn: ChannelModel): void {
    this.consumers = this.consumers.filter((c) => c.channel !== ch);
    void ch.close().catch(() => undefined);
    if (this.closing || !this.consuming || this.connection !== conn) return;
    this.log.warn({ queue: sub.queue }, 'consumer cancelled by the broker, re-declaring its queue');
    this.setupConsumer(sub, conn).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message, queue: sub.queue }, 're-declaring failed, reconnecting');
      if (this.connection === conn) void conn.close().catch(() => undefined);
    });
  }

  private async deliver(sub: Subscription, queue: string, ch: Channel, msg: ConsumeMessage): Promise<void> {
    let event: EventEnvelope;
    try {
      event = parseEnvelope(JSON.parse(msg.content.toString('utf8')));
    } catch (err) {
      const messageId = asString(msg.properties.messageId);
      this.log.error({ queue, messageId, err: (err as Error).message }, 'malformed message dead-lettered');
      this.safely(() => ch.nack(msg, false, false));
      this.emit('dead-lettered', { queue: sub.queue, reason: 'malformed', messageId, type: 'malformed' });
      return;
    }
    const attempt = Number(msg.properties.headers?.[RETRY_HEADER] ?? 0) || 0;
    try {
      await sub.handler(event, { attempt, redelivered: msg.fields.redelivered });
      this.safely(() => ch.ack(msg));
      this.emit('handled', event, sub.queue);
    } catch (err) {
      this.log.warn({ queue, eventId: event.id, type: event.type, attempt, err: (err as Error).message }, 'handler failed');
      if (sub.perInstance) {
        // Per-instance consumers hold only rebuildable caches: requeue once, then drop.
        this.safely(() => ch.nack(msg, false, !msg.fields.redelivered));
        return;
      }
      if (attempt >= this.opts.retryDelaysMs.length) {
        this.safely(() => ch.nack(msg, false, false));
        this.emit('dead-lettered', { queue: sub.queue, reason: 'retries-exhausted', messageId: event.id, type: event.type });
        return;
      }
      try {
        await this.publishRaw(retryExchangeName(queue), retryQueueName(queue, attempt), msg.content, {
          ...this.propertiesOf(msg),
          headers: { ...(msg.properties.headers ?? {}), [RETRY_HEADER]: attempt + 1 },
        });
        this.safely(() => ch.ack(msg));
        this.emit('retried', event, sub.queue, attempt + 1);
      } catch {
        // Could not park it for a retry: give it back to the broker for immediate redelivery.
        this.safely(() => ch.nack(msg, false, true));
      }
    }
  }

  private propertiesOf(msg: ConsumeMessage): Options.Publish {
    const p = msg.properties;
    return {
      persistent: true,
      messageId: asString(p.messageId),
      type: asString(p.type),
      contentType: asString(p.contentType) ?? 'application/json',
      timestamp: asNumber(p.timestamp),
    };
  }

  /** ack/nack on a channel that died in the meantime throws; the broker redelivers anyway. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'ack on closed channel ignored');
    }
  }

  private async publishRaw(exchange: string, routingKey: string, body: Buffer, options: Options.Publish): Promise<void> {
    const ch = this.publisher;
    if (!ch || !this.connected) throw new BusUnavailableError();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BusUnavailableError('publish confirm timed out')), this.opts.publishTimeoutMs);
      try {
        ch.publish(exchange, routingKey, body, options, (err) => {
          clearTimeout(timer);
          if (err) reject(new BusUnavailableError(`broker refused message: ${String(err)}`));
          else resolve();
        });
      } catch (err) {
        clearTimeout(timer);
        reject(new BusUnavailableError((err as Error).message));
      }
    });
  }

  async publish(event: EventEnvelope): Promise<void> {
    const valid = parseEnvelope(event);
    await this.publishRaw(this.exchange, valid.type, Buffer.from(JSON.stringify(valid)), {
      persistent: true,
      messageId: valid.id,
      type: valid.type,
      contentType: 'application/json',
      timestamp: Math.floor(Date.parse(valid.occurredAt) / 1000),
    });
    this.emit('published', valid);
  }

  async subscribe(sub: Subscription): Promise<void> {
    this.subscriptions.push(sub);
    if (this.connected && this.connection) await this.setupConsumer(sub, this.connection);
  }

  isConnected(): boolean {
    return this.connected;
  }

  async waitForConnection(timeoutMs = 10_000): Promise<void> {
    if (this.connected) return;
    await once(this, 'connected', { signal: AbortSignal.timeout(timeoutMs) });
  }

  async ping(): Promise<void> {
    if (!this.connected) throw new BusUnavailableError();
  }

  async queueDepths(timeoutMs = 1_000): Promise<QueueDepth[]> {
    const conn = this.connection;
    const shared = this.subscriptions.filter((s) => !s.perInstance);
    if (!conn || !this.connected || shared.length === 0) return [];
    // A channel of its own: checkQueue of a missing queue closes the channel it runs on.
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const depths: QueueDepth[] = [];
    const count = async (name: string) => (await ch.checkQueue(name)).messageCount;
    const work = (async () => {
      for (const sub of shared) {
        const queue = this.queueName(sub);
        depths.push({ queue: sub.queue, messages: await count(queue), deadLetters: await count(deadLetterQueueName(queue)) });
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    try {
      await Promise.race([work.catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
      void ch.close().catch(() => undefined);
    }
    return depths;
  }

  async stopConsuming(): Promise<void> {
    this.consuming = false;
    await Promise.all(this.consumers.map((c) => c.channel.cancel(c.tag).catch(() => undefined)));
    await Promise.allSettled([...this.inFlight]);
  }

  /** Deletes every queue and exchange this bus declared (test isolation). Best effort per object. */
  async deleteTopology(): Promise<void> {
    await deleteTopology(this.opts.url, [...this.declaredQueues], [this.exchange, this.dlx, ...retryExchangesOf(this.declaredQueues)]);
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    // A connect in flight stops at its next step; once close() resolves, this bus declares nothing more.
    if (this.connecting) {
      let timer: NodeJS.Timeout | undefined;
      const bounded = new Promise<void>((r) => (timer = setTimeout(r, 5_000)));
      await Promise.race([this.connecting.catch(() => undefined), bounded]);
      clearTimeout(timer);
    }
    await this.stopConsuming();
    const conn = this.connection;
    this.connection = undefined;
    this.publisher = undefined;
    this.connected = false;
    if (conn) await conn.close().catch(() => undefined);
  }
}
