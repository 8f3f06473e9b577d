import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, createLogger, runMigrations, type Database } from '@mana/shared';
import { createTestDatabase, eventually, testPool, type TestDatabase, lockWaiters } from '@mana/shared/testing';
import * as tables from '../src/db/schema';
import { creditsDb, withOwnerScope, type CreditsDb, type Owner } from '../src/db/scope';
import { balanceOf } from '../src/domain/balance';
import { expireLots, lockWallet, saveWallet } from '../src/domain/ledger';
import { pseudonymFor } from '../src/events/erasure';

const MIGRATIONS = fileURLToPath(new URL('../drizzle', import.meta.url));
const pseudonymOf = (userId: string) => pseudonymFor('balance-race-test-secret-0123456789abcdef', userId);

/**
 * A balance read that finds an expired lot while a sweeper expires it (the e2e test "expired lots go to breakage"
 * failed once this way): the sweeper's commit is forced into the read's path at the worst moment — right after the
 * read's first look at the wallet row, or, when the read waits for the wallet's lock, as soon as it waits. Before the
 * fix the read paired the wallet from before the expiry (45) with the lots from after it (20) and answered 45.
 */
describe('balance read racing a sweeper', () => {
  let testDb: TestDatabase;
  let admin: pg.Pool;
  const databases: Array<Database<typeof tables>> = [];
  let reader: CreditsDb;
  let sweeper: CreditsDb;
  /** Called after every statement of the reader's connections. */
  let afterStatement: ((text: string) => Promise<void> | undefined) | undefined;

  beforeAll(async () => {
    testDb = await createTestDatabase('credits_balance_race');
    admin = testPool(testDb.url, 2);
    await runMigrations(admin, { folder: MIGRATIONS, schema: 'credits', logger: createLogger('balance-race-test', 'silent') });
    const a = createDatabase({ url: testDb.url, schema: tables, max: 2 });
    const b = createDatabase({ url: testDb.url, schema: tables, max: 2 });
    databases.push(a, b);
    a.pool.on('connect', (client: pg.PoolClient) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
        const text = typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string } | undefined)?.text ?? '');
        const result = query(...args);
        const hook = afterStatement;
        if (!hook || !(result instanceof Promise)) return result;
        return result.then(async (r: unknown) => {
          await hook(text);
          return r;
        });
      };
    });
    reader = creditsDb(a);
    sweeper = creditsDb(b);
  });
  afterAll(async () => {
    for (const d of databases) await d.close();
    await admin?.end();
    await testDb?.drop();
  });

  /** 20 that never expire and 25 left of a lot that expired a second ago: 45 in the wallet row until it is swept. */
  async function walletWithExpiredLot(): Promise<Owner> {
    const owner: Owner = `user:${randomUUID()}`;
    await admin.query(`insert into credits.wallets (owner, available, total_earned) values ($1, 45, 45)`, [owner]);
    await admin.query(
      `insert into credits.grants (id, owner, category, amount, remaining, expires_at, source_key)
       values (gen_random_uuid(), $1, 'promo', 20, 20, null, $1 || ':keep'),
              (gen_random_uuid(), $1, 'promo', 25, 25, now() - interval '1 second', $1 || ':expired')`,
      [owner],
    );
    return owner;
  }

  /** Resolves once a connection of this database waits for a lock. */
  const someoneWaitsForALock = () => eventually(() => lockWaiters(admin), 10_000, 10);

  it('answers the balance after the expiry, whichever of the two commits first', async () => {
    const owner = await walletWithExpiredLot();
    // One step of the sweeper (sweeper.ts): lock, expire, save — committed only when let go.
    let letGo!: () => void;
    const gate = new Promise<void>((r) => (letGo = r));
    let holding!: () => void;
    const locked = new Promise<void>((r) => (holding = r));
    const swept = withOwnerScope(sweeper, owner, async (tx) => {
      const w = await lockWallet(tx, owner, { now: new Date(), dailyFree: 0, pseudonymOf });
      const expired = await expireLots(tx, w, new Date());
      await saveWallet(tx, w);
      holding();
      await gate;
      return expired;
    });
    await locked;
    let fired = false;
    afterStatement = (text) => {
      // The reader's own look at the wallet row without its lock: let the sweeper commit before its next statement.
      if (fired || !/from "credits"\."wallets"/.test(text) || /for update/i.test(text)) return undefined;
      fired = true;
      letGo();
      return swept.then(() => undefined);
    };
    // Nobody may wait (the statement hook lets the sweeper go first): then this gives up quietly.
    void someoneWaitsForALock().then(letGo, () => undefined);
    try {
      const balance = await balanceOf(reader, owner, { now: new Date(), dailyFree: 0, pseudonymOf });
      expect(await swept).toBe(25);
      expect(balance.available).toBe(20);
      expect(balance.byCategory.promo).toBe(20);
    } finally {
      afterStatement = undefined;
      letGo();
    }
  });
});
