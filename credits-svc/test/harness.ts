import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { createDatabase, createLogger, runMigrations, type Database, type ErasureTx } from '@mana/shared';
import { createTestDatabase, testPool, type TestDatabase } from '@mana/shared/testing';
import * as tables from '../src/db/schema';
import { creditsDb, type CreditsDb } from '../src/db/scope';
import { eraseCredits } from '../src/events/erasure';

const MIGRATIONS = fileURLToPath(new URL('../drizzle', import.meta.url));

export interface CreditsTestDb {
  testDb: TestDatabase;
  /** A superuser pool: what the test reads, and the second connection that holds locks. */
  admin: pg.Pool;
  /** The service's own connection (its roles and row-level security), as its routes and consumers use it. */
  db: CreditsDb;
  /** The user's erasure as the participant runs it: the service's own connection, one transaction. */
  erase: (userId: string) => ReturnType<ReturnType<typeof eraseCredits>>;
  stop: () => Promise<void>;
}

/** credits' schema migrated on a fresh database, for tests that call its domain functions directly. */
export async function startCreditsTestDb(name: string, pseudonymSecret: string): Promise<CreditsTestDb> {
  const testDb = await createTestDatabase(`credits_${name}`);
  const admin = testPool(testDb.url, 3);
  await runMigrations(admin, { folder: MIGRATIONS, schema: 'credits', logger: createLogger(`credits-${name}-test`, 'silent') });
  const database: Database<typeof tables> = createDatabase({ url: testDb.url, schema: tables, max: 6 });
  const db = creditsDb(database);
  return {
    testDb,
    admin,
    db,
    erase: (userId) => db.transaction((tx) => eraseCredits(pseudonymSecret)(tx as unknown as ErasureTx, userId)),
    stop: async () => {
      await database.close();
      await admin.end();
      await testDb.drop();
    },
  };
}
