import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, createEvent, createLogger, MemoryBus, runMigrations, type Database } from '@mana/shared';
import { createTestDatabase, eventually, testPool, type TestDatabase, lockWaiters as lockWaitersOf } from '@mana/shared/testing';
import type { UpstreamCall } from '../src/clients/upstream';
import * as tables from '../src/db/schema';
import { eraseUser } from '../src/domain/actions';
import { resyncDirectory } from '../src/domain/resync';
import { pseudonymOf } from '../src/domain/pseudonym';
import type { ConsumerDeps } from '../src/events/deps';
import { ERASURE_QUEUE, subscribeErasure } from '../src/events/erasure';
import { CONSUMER as REGISTERED, subscribeUserRegistered } from '../src/events/user-registered';

const SECRET = 'admin-directory-erasure-test-secret-0123456789';
const logger = createLogger('admin-directory-erasure-test', 'silent');

/**
 * An erased user's directory row (email, name) must never come back: not from a registration or update whose
 * consumer checked the tombstone just before the erasure committed, nor from a resync that read auth-svc's user
 * list before admin-svc's part of the erasure ran. The interleavings are forced with locks held by a second
 * connection, not with timing.
 */
describe('admin-svc: the directory and the erasure', () => {
  let tdb: TestDatabase;
  let database: Database<typeof tables>;
  let sql: pg.Pool;
  let bus: MemoryBus;

  beforeAll(async () => {
    tdb = await createTestDatabase('admin_erasure');
    database = createDatabase({ url: tdb.url, schema: tables, max: 6 });
    await runMigrations(database.pool, {
      folder: fileURLToPath(new URL('../drizzle', import.meta.url)),
      schema: 'admin',
      logger,
    });
    sql = testPool(tdb.url, 4);
    bus = new MemoryBus(logger);
    const deps: ConsumerDeps = { db: database.db, bus, logger, defaultTier: 'public', pseudonymSecret: SECRET };
    await subscribeUserRegistered(deps);
    await subscribeErasure(deps);
    await bus.start();
  });
  afterAll(async () => {
    await bus?.close();
    await sql?.end();
    await database?.close();
    await tdb?.drop();
  });

  const row = async (userId: string) =>
    (await sql.query<Record<string, unknown>>('select * from admin.directory_users where id = $1', [userId])).rows[0];
  const tombstoned = async (userId: string) =>
    (await sql.query('select 1 from admin.erased_users where pseudonym = $1', [pseudonymOf(SECRET, userId)])).rowCount === 1;
  const lockWaiters = () => lockWaitersOf(sql);
  const erase = async (userId: string) => {
    const handled = bus.handled('user.erasure.requested.v1', ERASURE_QUEUE);
    await bus.publish(createEvent('user.erasure.requested.v1', { requestId: crypto.randomUUID(), userId }));
    return handled;
  };
  const register = async (userId: string) => {
    const handled = bus.handled('user.registered.v1', REGISTERED);
    await bus.publish(createEvent('user.registered.v1', { userId, email: `${userId}@example.test`, name: 'Erin', locale: 'en' }));
    return handled;
  };

  it('an erasure committing between the consumer tombstone check and its upsert leaves no directory row', async () => {
    const userId = `u_race_${crypto.randomUUID()}`;
    // A second connection holds an uncommitted row under the user's id: the consumer checks the tombstone
    // (none yet) and its upsert then waits for this transaction.
    const blocker = await sql.connect();
    try {
      await blocker.query('begin');
      await blocker.query(`insert into admin.directory_users (id, tier, created_at) values ($1, 'public', now())`, [userId]);
      const registered = register(userId);
      await eventually(async () => ((await lockWaiters()) >= 1 ? true : undefined));
      // The erasure now either commits at once (nothing orders it with the consumer) or waits for the
      // consumer's transaction (the per-user lock both take).
      let erasureDone = false;
      const erased = erase(userId).then(() => void (erasureDone = true));
      await eventually(async () => (erasureDone || (await lockWaiters()) >= 2 ? true : undefined));
      await blocker.query('rollback');
      await Promise.all([registered, erased]);
    } finally {
      blocker.release();
    }
    expect(await tombstoned(userId)).toBe(true);
    expect(await row(userId)).toBeUndefined();
  });

  it('a resync whose auth-svc pages still list an erased user does not bring the row back', async () => {
    const [erased, kept] = [`u_gone_${crypto.randomUUID()}`, `u_kept_${crypto.randomUUID()}`];
    await register(erased);
    await register(kept);
    const user = (id: string) => ({
      id,
      email: `${id}@example.test`,
      name: 'Erin',
      role: 'user',
      emailVerified: true,
      createdAt: new Date().toISOString(),
      banned: false,
      banReason: null,
      banExpiresAt: null,
    });
    // auth-svc's page still has the user (its part of the saga has not run yet); admin-svc's erasure commits
    // while the resync reads the page, inside the resync's transaction and before its writes.
    const auth = (async (_method: string, path: string) => {
      expect(path).toMatch(/^\/api\/v1\/internal\/users\?/);
      await erase(erased);
      return { users: [user(erased), user(kept)], nextCursor: null };
    }) as UpstreamCall;
    const report = await resyncDirectory(database.db, auth, { defaultTier: 'public', actorId: 'operator', pseudonymSecret: SECRET });
    expect(await row(erased)).toBeUndefined();
    expect(await tombstoned(erased)).toBe(true);
    expect(await row(kept)).toMatchObject({ email: `${kept}@example.test` });
    expect(report).toMatchObject({ added: 0, removed: 0 });

    // And the next resync, with the erasure long committed, skips the user as well.
    const again = await resyncDirectory(
      database.db,
      (async () => ({ users: [user(erased), user(kept)], nextCursor: null })) as UpstreamCall,
      { defaultTier: 'public', actorId: 'operator', pseudonymSecret: SECRET },
    );
    expect(again).toMatchObject({ added: 0, removed: 0 });
    expect(await row(erased)).toBeUndefined();
  });
  it("an admin's erase request audited after the erasure it started ran here names the user by pseudonym", async () => {
    const userId = `u_erase_${crypto.randomUUID()}`;
    await register(userId);
    // gdpr-svc starts the saga and answers; admin-svc's participant has erased the user before that answer arrives.
    const gdpr = (async () => {
      await erase(userId);
      return { requestId: crypto.randomUUID(), statusUrl: '/api/v1/gdpr/erasures/x' };
    }) as UpstreamCall;
    const unused = (() => Promise.reject(new Error('not called'))) as UpstreamCall;
    const deps = { db: database.db, auth: unused, gdpr, tiers: ['public'], pseudonymSecret: SECRET, logger };
    await eraseUser(deps, { id: 'admin-1', requestId: null, ipAddress: null }, userId, 'support ticket');
    const { rows } = await sql.query<{ target_id: string }>("select target_id from admin.audit_log where action = 'data.erase'");
    expect(rows).toEqual([{ target_id: pseudonymOf(SECRET, userId) }]);
  });
});
