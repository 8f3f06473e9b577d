import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '@mana/shared';
import { TEST_AMQP_URL, uniqueName } from '@mana/shared/testing';
import { retryExchangeName } from '../../shared/src/bus/amqp-topology';
import { BROKER_SERVICES, queuesOf } from './broker-topology';

/**
 * The permissions of infra/rabbitmq/definitions.json on a real broker: the file is imported (rabbitmqctl, as
 * .ci/run has it) into a vhost of this test's own with users of its own, then each service's user does what
 * its code does — and what it must not. The administrator `mana` is left out (nothing is made admin here).
 */
const RABBITMQCTL = process.env.TEST_RABBITMQCTL ?? 'rabbitmqctl';
const EXCHANGE = 'mana.events';
const DLX = 'mana.events.dlx';

interface Definitions {
  users: Array<{ name: string; password_hash: string; hashing_algorithm: string; tags: string[]; limits: object }>;
  permissions: Array<{ user: string; vhost: string; configure: string; write: string; read: string }>;
  topic_permissions: Array<{ user: string; vhost: string; exchange: string; write: string; read: string }>;
  exchanges: Array<{ vhost: string } & Record<string, unknown>>;
}

function ctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(RABBITMQCTL, ['-q', ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`rabbitmqctl ${args[0]}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

/** RabbitMQ's rabbit_password_hashing_sha256: base64(salt ‖ SHA-256(salt ‖ password)). */
function passwordHash(password: string): string {
  const salt = randomBytes(4);
  return Buffer.concat([salt, createHash('sha256').update(salt).update(password, 'utf8').digest()]).toString('base64');
}

describe('RabbitMQ permissions of definitions.json, on the broker', () => {
  const vhost = uniqueName('perm');
  const userOf = (service: string) => `${vhost}.${service}`;
  const passwordOf = (service: string) => `pw-${service}-${vhost}`;
  const passwordless = `${vhost}.passwordless`;
  const connections: amqp.ChannelModel[] = [];

  const connect = async (service: string, password = passwordOf(service)) => {
    const url = new URL(TEST_AMQP_URL);
    url.username = encodeURIComponent(userOf(service));
    url.password = encodeURIComponent(password);
    url.pathname = `/${encodeURIComponent(vhost)}`;
    const conn = await amqp.connect(url.toString());
    conn.on('error', () => undefined);
    connections.push(conn);
    return conn;
  };
  /** 'ok', or the AMQP reply code that closed the channel (403 = ACCESS_REFUSED). */
  const attempt = async (conn: amqp.ChannelModel, fn: (ch: amqp.ConfirmChannel) => Promise<unknown>): Promise<'ok' | number> => {
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    try {
      await fn(ch);
      await ch.close();
      return 'ok';
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  };
  /**
   * Publishes with a confirm. A refused publish closes the channel with 403 (the 'error' event carries the
   * code); a nack that closes nothing would be another failure and times out.
   */
  const publish = (ch: amqp.ConfirmChannel, exchange: string, key: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('neither confirmed nor refused')), 5_000);
      ch.once('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
      ch.publish(exchange, key, Buffer.from('{}'), {}, (err: unknown) => {
        if (err) return;
        clearTimeout(timer);
        resolve();
      });
    });

  beforeAll(async () => {
    const defs = JSON.parse(readFileSync(new URL('../../infra/rabbitmq/definitions.json', import.meta.url), 'utf8')) as Definitions;
    const services = Object.keys(BROKER_SERVICES);
    const imported = {
      users: [
        ...defs.users
          .filter((u) => services.includes(u.name))
          .map((u) => ({ ...u, name: userOf(u.name), password_hash: passwordHash(passwordOf(u.name)) })),
        // As committed: an empty hash, so no password opens it.
        { ...defs.users[0], name: passwordless, password_hash: '', tags: [] },
      ],
      vhosts: [{ name: vhost }],
      permissions: defs.permissions.filter((p) => services.includes(p.user)).map((p) => ({ ...p, user: userOf(p.user), vhost })),
      topic_permissions: defs.topic_permissions.map((t) => ({ ...t, user: userOf(t.user), vhost })),
      exchanges: defs.exchanges.map((e) => ({ ...e, vhost })),
      queues: [],
      bindings: [],
    };
    // rabbitmqctl 3.10 reads the definitions from a file only (its "-" is not implemented), and Debian's
    // wrapper runs it as the rabbitmq user: the file must be readable (throwaway passwords of this test only).
    const dir = mkdtempSync(join(tmpdir(), 'mana-perm-'));
    chmodSync(dir, 0o755);
    const file = join(dir, 'definitions.json');
    writeFileSync(file, JSON.stringify(imported), { mode: 0o644 });
    try {
      await ctl(['import_definitions', file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
  afterAll(async () => {
    for (const c of connections) await c.close().catch(() => undefined);
    await ctl(['delete_vhost', vhost]).catch(() => undefined);
    for (const name of [...Object.keys(BROKER_SERVICES).map(userOf), passwordless]) await ctl(['delete_user', name]).catch(() => undefined);
  }, 120_000);

  it('a user imported without a password cannot log in', async () => {
    const url = new URL(TEST_AMQP_URL);
    url.username = encodeURIComponent(passwordless);
    url.pathname = `/${encodeURIComponent(vhost)}`;
    for (const password of ['', 'guest', 'mana-dev-only']) {
      url.password = password;
      await expect(amqp.connect(url.toString())).rejects.toThrow(/ACCESS_REFUSED|403/);
    }
  });

  it('each service declares, binds, consumes and publishes what its code does, and is refused the rest', async () => {
    const results: Array<{ service: string; what: string; outcome: 'ok' | number }> = [];
    const record = async (service: string, what: string, conn: amqp.ChannelModel, fn: (ch: amqp.ConfirmChannel) => Promise<unknown>) =>
      results.push({ service, what, outcome: await attempt(conn, fn) });
    const expected: typeof results = [];
    const expect_ = (service: string, what: string, outcome: 'ok' | number) => expected.push({ service, what, outcome });

    for (const [service, t] of Object.entries(BROKER_SERVICES)) {
      const conn = await connect(service);
      await record(service, 'declare the exchanges', conn, async (ch) => {
        await ch.assertExchange(EXCHANGE, 'topic', { durable: true });
        await ch.assertExchange(DLX, 'direct', { durable: true });
      });
      expect_(service, 'declare the exchanges', 'ok');
      for (const q of queuesOf(t).filter((name) => !t.perInstance.includes(name))) {
        await record(service, `declare ${q}`, conn, (ch) => ch.assertQueue(q, { durable: true }));
        expect_(service, `declare ${q}`, 'ok');
      }
      for (const q of t.shared) {
        await record(service, `bind ${q}.dlq to the DLX`, conn, (ch) => ch.bindQueue(`${q}.dlq`, DLX, `${q}.dlq`));
        expect_(service, `bind ${q}.dlq to the DLX`, 'ok');
        await record(service, `consume ${q}`, conn, (ch) => ch.consume(q, () => undefined));
        expect_(service, `consume ${q}`, 'ok');
        // A retry is parked through the queue's own retry exchange, as AmqpBus does it.
        await record(service, `retry into ${q}.retry.1 through ${q}.retry`, conn, async (ch) => {
          await ch.assertExchange(retryExchangeName(q), 'direct', { durable: true });
          await ch.bindQueue(`${q}.retry.1`, retryExchangeName(q), `${q}.retry.1`);
          await publish(ch, retryExchangeName(q), `${q}.retry.1`);
        });
        expect_(service, `retry into ${q}.retry.1 through ${q}.retry`, 'ok');
      }
      const own = t.perInstance[0] ?? t.shared[0] ?? '';
      // A queue of its own, bound with each key its code binds; no other key, no wildcard.
      await record(service, `bind with its keys`, conn, async (ch) => {
        if (t.perInstance[0]) await ch.assertQueue(t.perInstance[0], { exclusive: true });
        for (const key of t.binds) await ch.bindQueue(own, EXCHANGE, key);
      });
      expect_(service, `bind with its keys`, 'ok');
      for (const key of ['#', ...EVENT_TYPES.filter((e) => !t.binds.includes(e))]) {
        await record(service, `bind ${key}`, conn, (ch) => ch.bindQueue(own, EXCHANGE, key));
        expect_(service, `bind ${key}`, 403);
      }
      for (const type of EVENT_TYPES) {
        await record(service, `publish ${type}`, conn, (ch) => publish(ch, EXCHANGE, type));
        expect_(service, `publish ${type}`, t.publishes.includes(type) ? 'ok' : 403);
      }
      await record(service, 'publish to the DLX', conn, (ch) => publish(ch, DLX, 'x.dlq'));
      expect_(service, 'publish to the DLX', 403);
      // The default exchange would deliver to any queue by name: no service may publish there.
      await record(service, 'publish through the default exchange', conn, (ch) => publish(ch, '', own));
      expect_(service, 'publish through the default exchange', 403);
    }
    // Another service's queues: neither declared, consumed, purged nor bound by anyone else.
    for (const [service] of Object.entries(BROKER_SERVICES)) {
      const conn = await connect(service);
      for (const [other, t] of Object.entries(BROKER_SERVICES)) {
        if (other === service || !t.shared[0]) continue;
        const q = t.shared[0];
        await record(service, `consume ${other}'s ${q}`, conn, (ch) => ch.consume(q, () => undefined));
        expect_(service, `consume ${other}'s ${q}`, 403);
        await record(service, `purge ${other}'s ${q}`, conn, (ch) => ch.purgeQueue(q));
        expect_(service, `purge ${other}'s ${q}`, 403);
        await record(service, `bind ${other}'s ${q}`, conn, (ch) => ch.bindQueue(q, EXCHANGE, t.binds[0] ?? 'x'));
        expect_(service, `bind ${other}'s ${q}`, 403);
        await record(service, `publish into ${other}'s retry exchange`, conn, (ch) => publish(ch, retryExchangeName(q), `${q}.retry.1`));
        expect_(service, `publish into ${other}'s retry exchange`, 403);
      }
    }
    expect(results).toEqual(expected);
  }, 120_000);
});
