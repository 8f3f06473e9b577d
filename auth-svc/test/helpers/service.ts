import type pg from 'pg';
import { createDatabase, type Database, type ServiceHandle } from '@mana/shared';
import { createTestDatabase, deleteTestBus, testBusEnv, testPool, uniqueName, type TestDatabase } from '@mana/shared/testing';
import * as tables from '../../src/db/schema';
import { startAuthService } from '../../src/server';

/** The public address the test services answer for (their BASE_URL, and the Origin their browser-like calls send). */
export const TEST_BASE_URL = 'http://127.0.0.1:3001';

export interface TestAuthService {
  svc: ServiceHandle;
  db: TestDatabase;
  /** A superuser pool on the test database: what the test reads, and the second connection that holds locks. */
  sql: pg.Pool;
  /** The service's own tables through drizzle, for calling its domain functions directly. */
  database: Database<typeof tables>;
  stop: () => Promise<void>;
}

/**
 * auth-svc in this process on a fresh database and bus of its own, with email verification off (a registered user
 * signs in at once); `name` names the database and the bus.
 */
export async function startTestAuthService(name: string, env: Record<string, string> = {}): Promise<TestAuthService> {
  const db = await createTestDatabase(`mana_auth_${name}`);
  const bus = testBusEnv(uniqueName(`auth${name}`));
  const svc = await startAuthService({
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATABASE_URL: db.url,
      ...bus,
      BASE_URL: TEST_BASE_URL,
      AUTH_SVC_PORT: '0',
      REQUIRE_EMAIL_VERIFICATION: 'false',
      ...env,
    },
  });
  const sql = testPool(db.url, 4);
  const database = createDatabase({ url: db.url, schema: tables, max: 2 });
  return {
    svc,
    db,
    sql,
    database,
    stop: async () => {
      await database.close();
      await sql.end();
      await svc.close();
      await deleteTestBus(bus, ['auth']);
      await db.drop();
    },
  };
}
