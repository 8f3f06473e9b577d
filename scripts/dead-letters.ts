// Operator command: dead letters of the services' consumer queues.
//   npx tsx scripts/dead-letters.ts list [queue…]
//   npx tsx scripts/dead-letters.ts peek <queue> [--limit 20]
//   npx tsx scripts/dead-letters.ts redrive <queue> [--limit N]
// Reads AMQP_URL and AMQP_QUEUE_PREFIX like the services. <queue> is a consumer's logical name (`credits`,
// `admin.user-registered`…); its dead letters sit in `<prefix><queue>.dlq`. `redrive` moves the messages
// that are there when it starts back to the consumer queue with their retry count reset (each publish
// confirmed before its dead letter is acked, so a crash duplicates at worst — consumers are idempotent).
// Fix the cause first: a message that fails again goes back to the dead-letter queue after its retries.
// `peek` prints ids, types and why the broker dead-lettered them, never the payload (it holds personal data).
import { parseArgs } from 'node:util';
import amqp, { type Channel, type ConfirmChannel, type GetMessage } from 'amqplib';
import { runMain } from '@mana/shared';

/** Every shared consumer queue of the services (revocation queues are per instance, without dead letters). */
const CONSUMER_QUEUES = [
  'auth',
  'vault',
  'credits',
  'credits.user-registered',
  'admin',
  'admin.user-registered',
  'admin.user-updated',
  'gdpr',
];
const RETRY_HEADER = 'x-mana-retry';
const USAGE = 'usage: dead-letters.ts list [queue…] | peek <queue> [--limit 20] | redrive <queue> [--limit N]';

const say = (line: string) => process.stdout.write(`${line}\n`);
const QUEUE_NAME = /^[A-Za-z0-9._-]{1,200}$/;

function summary(msg: GetMessage): string {
  const p = msg.properties;
  const headers = (p.headers ?? {}) as Record<string, unknown>;
  const death = Array.isArray(headers['x-death']) ? (headers['x-death'][0] as Record<string, unknown> | undefined) : undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '-');
  const at = typeof p.timestamp === 'number' ? new Date(p.timestamp * 1000).toISOString() : '-';
  return `${str(p.messageId)}  ${str(p.type)}  published ${at}  retries ${str(headers[RETRY_HEADER] ?? 0)}  reason ${str(death?.reason)}`;
}

async function list(ch: Channel, prefix: string, queues: string[]): Promise<void> {
  for (const q of queues) {
    const depth = async (name: string) => {
      try {
        return String((await ch.checkQueue(name)).messageCount);
      } catch {
        throw new Error(`queue ${name} does not exist (has the service started once with this AMQP_QUEUE_PREFIX?)`);
      }
    };
    say(`${q.padEnd(26)} waiting ${(await depth(prefix + q)).padStart(6)}  dead letters ${(await depth(`${prefix + q}.dlq`)).padStart(6)}`);
  }
}

/** Reads up to `limit` dead letters and gives every one back to the dead-letter queue. */
async function peek(ch: Channel, dlq: string, limit: number): Promise<void> {
  const seen: GetMessage[] = [];
  try {
    for (let i = 0; i < limit; i++) {
      const msg = await ch.get(dlq, { noAck: false });
      if (!msg) break;
      seen.push(msg);
      say(summary(msg));
    }
    say(`${seen.length} message(s) shown, all left in ${dlq}`);
  } finally {
    for (const msg of seen) ch.nack(msg, false, true);
  }
}

async function redrive(ch: ConfirmChannel, queue: string, dlq: string, limit: number): Promise<void> {
  const present = (await ch.checkQueue(dlq)).messageCount;
  const todo = Math.min(present, limit);
  let moved = 0;
  while (moved < todo) {
    const msg = await ch.get(dlq, { noAck: false });
    if (!msg) break;
    const headers = { ...(msg.properties.headers ?? {}), [RETRY_HEADER]: 0 };
    delete headers['x-death'];
    delete headers['x-first-death-exchange'];
    delete headers['x-first-death-queue'];
    delete headers['x-first-death-reason'];
    await new Promise<void>((resolve, reject) => {
      ch.publish(
        '',
        queue,
        msg.content,
        {
          persistent: true,
          messageId: msg.properties.messageId as string | undefined,
          type: msg.properties.type as string | undefined,
          contentType: (msg.properties.contentType as string | undefined) ?? 'application/json',
          timestamp: msg.properties.timestamp as number | undefined,
          headers,
        },
        (err) => (err ? reject(new Error(`broker refused the message: ${String(err)}`)) : resolve()),
      );
    });
    ch.ack(msg);
    moved += 1;
  }
  say(`moved ${moved} of ${present} dead letter(s) from ${dlq} back to ${queue}`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { limit: { type: 'string' } } });
  const [command, ...queues] = positionals;
  if (command !== 'list' && command !== 'peek' && command !== 'redrive') throw new Error(USAGE);
  if (command !== 'list' && queues.length !== 1) throw new Error(USAGE);
  for (const q of queues) if (!QUEUE_NAME.test(q)) throw new Error(`not a queue name: ${q}`);
  const limit = values.limit === undefined ? (command === 'peek' ? 20 : Number.MAX_SAFE_INTEGER) : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit must be a positive integer');
  const url = process.env.AMQP_URL;
  if (!url) throw new Error('AMQP_URL is required');
  const prefix = process.env.AMQP_QUEUE_PREFIX ?? '';
  const conn = await amqp.connect(url);
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    const [queue] = queues;
    if (command === 'list') await list(ch, prefix, queues.length > 0 ? queues : CONSUMER_QUEUES);
    else if (command === 'peek' && queue) await peek(ch, `${prefix}${queue}.dlq`, limit);
    else if (queue) await redrive(ch, `${prefix}${queue}`, `${prefix}${queue}.dlq`, limit);
    await ch.close();
  } finally {
    await conn.close().catch(() => undefined);
  }
}

void runMain(main);
