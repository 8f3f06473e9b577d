import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '@mana/shared/testing';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_SCHEMAS, createDatabase, createLogger, runMigrations, serviceRole, type ServiceSchema } from '@mana/shared';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../scripts/embedded-postgres';

/**
 * infra/postgres/init.sql as the PostgreSQL container runs it (psql, as the administrator, on an empty
 * cluster): one login role per service with the password from the environment, owning its schema; then
 * every service migrates as its role and is refused the others' schemas.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const MIGRATED: ReadonlyArray<[ServiceSchema, string]> = [
  ['auth', 'auth-svc'],
  ['vault', 'vault-svc'],
  ['gdpr', 'gdpr-svc'],
  ['admin', 'admin-svc'],
  ['credits', 'credits-svc'],
];
const passwordOf = (schema: ServiceSchema) => `pw-${schema}-'quoted'`;

function psql(url: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'psql',
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', join(root, 'infra/postgres/init.sql')],
      { env: { PATH: process.env.PATH ?? '', ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

describe('infra/postgres/init.sql', () => {
  let dir: string;
  let server: EmbeddedPostgresHandle;
  let adminUrl: string;
  const roleUrl = (schema: ServiceSchema, password = passwordOf(schema)) => {
    const u = new URL(server.url);
    u.username = serviceRole(schema);
    u.password = encodeURIComponent(password);
    return u.toString();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mana-pg-init-'));
    chmodSync(dir, 0o755); // as root, the postgres user must reach the data directory
    server = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), port: await freePort(), logger: createLogger('pg', 'silent') });
    const u = new URL(server.url);
    u.pathname = '/postgres';
    adminUrl = u.toString();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to run without a password in the environment, then creates one role per service from it', async () => {
    const passwords = Object.fromEntries(SERVICE_SCHEMAS.map((s) => [`${s.toUpperCase()}_DB_PASSWORD`, passwordOf(s)]));
    const { AUTH_DB_PASSWORD: _omitted, ...withoutAuth } = passwords;
    const refused = await psql(adminUrl, withoutAuth);
    expect(refused.code).not.toBe(0);
    const ok = await psql(adminUrl, passwords);
    expect(ok).toEqual({ code: 0, output: expect.any(String) });

    for (const [schema, svc] of MIGRATED) {
      const db = createDatabase({ url: roleUrl(schema) });
      try {
        await runMigrations(db.pool, { folder: join(root, svc, 'drizzle'), schema });
      } finally {
        await db.close();
      }
    }
    const wrong = new pg.Client({ connectionString: roleUrl('auth', 'not-the-password') });
    await expect(wrong.connect()).rejects.toThrow(/password authentication failed/);
  }, 120_000);

  it('each role owns its schema and is refused the others (permission denied)', async () => {
    for (const [schema] of MIGRATED) {
      const c = new pg.Client({ connectionString: roleUrl(schema) });
      await c.connect();
      try {
        const owner = await c.query<{ owner: string }>('select nspowner::regrole::text as owner from pg_namespace where nspname = $1', [
          schema,
        ]);
        expect(owner.rows[0]?.owner).toBe(serviceRole(schema));
        for (const [other] of MIGRATED.filter(([o]) => o !== schema)) {
          const err = await c.query(`select 1 from ${other}.outbox limit 1`).then(
            () => undefined,
            (e: { code?: string }) => e.code,
          );
          expect({ schema, other, err }).toEqual({ schema, other, err: '42501' });
        }
      } finally {
        await c.end();
      }
    }
  });
});
