import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from '@mana/shared';
import { createTestDatabase, eventually, testPool, type TestDatabase } from '@mana/shared/testing';

/**
 * A migration waits for a table lock `lockTimeoutMs` at a time: behind a long transaction its ALTER TABLE gives
 * up (its transaction rolls back, so the queries queued behind it go on), and it tries again; once the
 * transaction ended it applies. The interleaving is read from the migrator's own warning, never slept for.
 */
describe('runMigrations: bounded waits for table locks', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let folder: string;
  const SCHEMA = 'locky';

  /** A drizzle-kit migrations folder with the given migrations (tag → SQL), in order. */
  const writeFolder = (migrations: Array<[string, string]>) => {
    mkdirSync(join(folder, 'meta'), { recursive: true });
    const entries = migrations.map(([tag], idx) => ({ idx, version: '7', when: 1_700_000_000_000 + idx * 1000, tag, breakpoints: true }));
    writeFileSync(join(folder, 'meta', '_journal.json'), JSON.stringify({ version: '7', dialect: 'postgresql', entries }));
    for (const [tag, text] of migrations) writeFileSync(join(folder, `${tag}.sql`), text);
  };
  const warnings: string[] = [];
  const logger = {
    info: () => undefined,
    warn: (_obj: unknown, msg: string) => warnings.push(msg),
  } as unknown as Logger;
  const columns = async () =>
    (
      await pool.query<{ column_name: string }>(
        `select column_name from information_schema.columns where table_schema = $1 and table_name = 'items' order by 1`,
        [SCHEMA],
      )
    ).rows.map((r) => r.column_name);

  beforeAll(async () => {
    db = await createTestDatabase('mana_locky');
    pool = testPool(db.url, 4);
    folder = mkdtempSync(join(tmpdir(), 'mana-migrations-'));
    writeFolder([
      [
        '0000_init',
        `CREATE SCHEMA IF NOT EXISTS "${SCHEMA}";\n--> statement-breakpoint\nCREATE TABLE "${SCHEMA}"."items" ("id" integer PRIMARY KEY);`,
      ],
    ]);
    await runMigrations(pool, { folder, schema: SCHEMA });
    writeFolder([
      [
        '0000_init',
        `CREATE SCHEMA IF NOT EXISTS "${SCHEMA}";\n--> statement-breakpoint\nCREATE TABLE "${SCHEMA}"."items" ("id" integer PRIMARY KEY);`,
      ],
      ['0001_add_note', `ALTER TABLE "${SCHEMA}"."items" ADD COLUMN "note" text;`],
    ]);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('gives up behind a long transaction, rolled back, and fails the start once its tries are spent', async () => {
    const reader = await pool.connect();
    try {
      await reader.query('begin');
      await reader.query(`select * from "${SCHEMA}"."items"`);
      await expect(runMigrations(pool, { folder, schema: SCHEMA, lockTimeoutMs: 100, attempts: 2, logger })).rejects.toMatchObject({
        cause: { code: '55P03' },
      });
      expect(warnings).toHaveLength(1);
    } finally {
      await reader.query('rollback');
      reader.release();
    }
    expect(await columns()).toEqual(['id']);
  });

  it('applies once the transaction it waited behind has ended', async () => {
    warnings.length = 0;
    const reader = await pool.connect();
    let migrating: Promise<void> | undefined;
    try {
      await reader.query('begin');
      await reader.query(`select * from "${SCHEMA}"."items"`);
      migrating = runMigrations(pool, { folder, schema: SCHEMA, lockTimeoutMs: 100, attempts: 5, logger });
      migrating.catch(() => undefined);
      await eventually(() => warnings.length > 0);
      // Meanwhile (between tries) nothing queues behind the migration: a write to the table goes through.
      await pool.query(`insert into "${SCHEMA}"."items" (id) values (1)`);
    } finally {
      await reader.query('rollback');
      reader.release();
    }
    await migrating;
    expect(await columns()).toEqual(['id', 'note']);
  });
});
