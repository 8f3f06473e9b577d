import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '@mana/shared';
import { BROKER_SERVICES, exchangesOf, queuesOf } from './broker-topology';

/**
 * infra/rabbitmq/definitions.json: one user per service, no committed password, each allowed to declare,
 * bind and read only its own queues (the names the code gives them), to publish on `mana.events` only the
 * event types it emits, and to bind only the keys it consumes.
 */
interface Definitions {
  users: Array<{ name: string; password_hash: string; tags: string[] }>;
  permissions: Array<{ user: string; vhost: string; configure: string; write: string; read: string }>;
  topic_permissions: Array<{ user: string; vhost: string; exchange: string; write: string; read: string }>;
}
const defs = JSON.parse(readFileSync(new URL('../../infra/rabbitmq/definitions.json', import.meta.url), 'utf8')) as Definitions;

const SERVICES = Object.fromEntries(
  Object.entries(BROKER_SERVICES).map(([name, t]) => [
    name,
    { queues: [...queuesOf(t), ...exchangesOf(t)], publishes: t.publishes, binds: t.binds },
  ]),
);
const EXCHANGE = 'mana.events';
const DLX = 'mana.events.dlx';
const re = (pattern: string) => new RegExp(pattern);

describe('RabbitMQ definitions: one user per service, least privilege', () => {
  it('has a user per service and an administrator, none with a committed password', () => {
    expect(defs.users.map((u) => u.name).sort()).toEqual(['mana', ...Object.keys(SERVICES)].sort());
    for (const u of defs.users) expect({ user: u.name, hash: u.password_hash }).toEqual({ user: u.name, hash: '' });
    expect(defs.users.filter((u) => u.tags.includes('administrator')).map((u) => u.name)).toEqual(['mana']);
  });

  it("each service may declare, bind and read its own queues (the code's names) and no other service's", () => {
    for (const [user, svc] of Object.entries(SERVICES)) {
      const p = defs.permissions.find((x) => x.user === user && x.vhost === '/');
      expect(p, user).toBeDefined();
      if (!p) continue;
      for (const q of svc.queues)
        for (const kind of ['configure', 'write', 'read'] as const)
          expect({ user, q, kind, ok: re(p[kind]).test(q) }).toMatchObject({ ok: true });
      const others = Object.entries(SERVICES)
        .filter(([name]) => name !== user)
        .flatMap(([, o]) => o.queues);
      for (const q of others)
        for (const kind of ['configure', 'write', 'read'] as const)
          expect({ user, q, kind, ok: re(p[kind]).test(q) }).toMatchObject({ ok: false });
      // It (re)declares the exchanges on every connect and binds its queues to them: configure and read there.
      expect([re(p.configure).test(EXCHANGE), re(p.configure).test(DLX), re(p.read).test(EXCHANGE), re(p.read).test(DLX)]).toEqual([
        true,
        true,
        true,
        true,
      ]);
      // Only publishers write to the exchange (retries go through each queue's own `.retry` exchange).
      expect({ user, write: re(p.write).test(EXCHANGE) }).toEqual({ user, write: svc.publishes.length > 0 });
      expect(re(p.write).test(DLX)).toBe(false);
      // No right on the default exchange: it would let a service drop a message into any queue by name.
      expect({ user, amqDefault: ['configure', 'write', 'read'].some((k) => re(p[k as 'write']).test('amq.default')) }).toEqual({
        user,
        amqDefault: false,
      });
    }
  });

  it('each service publishes only its own event types and binds only the keys it consumes (topic permissions)', () => {
    for (const [user, svc] of Object.entries(SERVICES)) {
      const t = defs.topic_permissions.find((x) => x.user === user && x.exchange === EXCHANGE);
      expect(t, user).toBeDefined();
      if (!t) continue;
      for (const type of [...EVENT_TYPES, 'user.registered.v2', 'x', '#'])
        expect({ user, type, write: re(t.write).test(type), read: re(t.read).test(type) }).toEqual({
          user,
          type,
          write: svc.publishes.includes(type),
          read: svc.binds.includes(type),
        });
    }
    // Every event of the contract has a publisher and someone allowed to consume it, or a reason not to.
    for (const type of EVENT_TYPES)
      expect({ type, publishers: defs.topic_permissions.some((t) => re(t.write).test(type)) }).toEqual({ type, publishers: true });
  });
});
