import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_SCHEMAS, createDatabase, provisionServiceRoles, runMigrations, serviceRole, type ServiceSchema } from '@mana/shared';
import { createTestDatabase, type TestDatabase } from '@mana/shared/testing';
import { startStack, type Stack } from '../helpers/stack';

/** The services that migrate a schema, and their migration folders. */
const MIGRATED: ReadonlyArray<[ServiceSchema, string]> = [
  ['auth', 'auth-svc'],
  ['vault', 'vault-svc'],
  ['gdpr', 'gdpr-svc'],
  ['admin', 'admin-svc'],
  ['credits', 'credits-svc'],
];
const folder = (svc: string) => fileURLToPath(new URL(`../../${svc}/drizzle`, import.meta.url));

async function asRole<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The SQLSTATE of a statement, or 'ok'. */
async function outcome(c: pg.Client, statement: string): Promise<string> {
  try {
    await c.query(statement);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? 'error';
  }
}

describe('PostgreSQL least privilege: one role per service, owning its schema only', () => {
  let db: TestDatabase;
  let urls: Record<ServiceSchema, string>;
  let admin: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('mana_least');
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    // A database migrated before the roles existed: gdpr's schema belongs to the administrator.
    const legacy = createDatabase({ url: db.url });
    try {
      await runMigrations(legacy.pool, { folder: folder('gdpr-svc'), schema: 'gdpr' });
    } finally {
      await legacy.close();
    }
    urls = await provisionServiceRoles({ adminUrl: db.url });
    // Idempotent: a second run (the next start, a concurrent test file) changes nothing and fails nothing.
    urls = await provisionServiceRoles({ adminUrl: db.url });
    for (const [schema, svc] of MIGRATED) {
      const own = createDatabase({ url: urls[schema] });
      try {
        await runMigrations(own.pool, { folder: folder(svc), schema });
      } finally {
        await own.close();
      }
    }
  });
  afterAll(async () => {
    await admin?.end();
    await db?.drop();
  });

  it('each service role logs in, is no superuser, cannot create roles or bypass RLS, and owns its schema and every table in it', async () => {
    const roles = await admin.query<{
      rolname: string;
      rolsuper: boolean;
      rolcreaterole: boolean;
      rolbypassrls: boolean;
      rolcanlogin: boolean;
    }>(`select rolname, rolsuper, rolcreaterole, rolbypassrls, rolcanlogin from pg_roles where rolname = any($1) order by rolname`, [
      SERVICE_SCHEMAS.map(serviceRole),
    ]);
    expect(roles.rows).toHaveLength(SERVICE_SCHEMAS.length);
    for (const r of roles.rows) expect(r).toMatchObject({ rolsuper: false, rolcreaterole: false, rolbypassrls: false, rolcanlogin: true });
    for (const schema of SERVICE_SCHEMAS) {
      const owner = await admin.query<{ owner: string }>(`select nspowner::regrole::text as owner from pg_namespace where nspname = $1`, [
        schema,
      ]);
      expect(owner.rows[0]?.owner).toBe(serviceRole(schema));
    }
    for (const [schema] of MIGRATED) {
      const tables = await admin.query<{ tablename: string; tableowner: string }>(
        'select tablename, tableowner from pg_tables where schemaname = $1',
        [schema],
      );
      expect(tables.rows.length).toBeGreaterThan(1);
      // gdpr was migrated by the administrator first: provisioning handed its tables over as well.
      for (const t of tables.rows) expect({ schema, ...t }).toEqual({ schema, tablename: t.tablename, tableowner: serviceRole(schema) });
    }
  });

  it("auth's role cannot read or write vault's schema, and vault's role cannot read or write auth's (permission denied)", async () => {
    await asRole(urls.auth, async (c) => {
      expect((await c.query<{ n: number }>('select count(*)::int as n from auth.user')).rows[0]?.n).toBe(0);
      expect(await outcome(c, 'select * from vault.encryption_vaults')).toBe('42501');
      expect(await outcome(c, `insert into vault.encryption_vault_audit (user_id, action) values ('x', 'fetch')`)).toBe('42501');
      expect(await outcome(c, 'create table vault.planted (id int)')).toBe('42501');
    });
    await asRole(urls.vault, async (c) => {
      expect(await outcome(c, 'select * from vault.encryption_vaults')).toBe('ok');
      expect(await outcome(c, 'select * from auth.user')).toBe('42501');
      expect(await outcome(c, 'select * from auth.session')).toBe('42501');
      expect(await outcome(c, `delete from auth.session`)).toBe('42501');
    });
  });

  it('no service role can use any other service schema', async () => {
    for (const who of SERVICE_SCHEMAS)
      for (const schema of SERVICE_SCHEMAS) {
        const r = await admin.query<{ usage: boolean; create: boolean }>(
          `select has_schema_privilege($1, $2, 'USAGE') as usage, has_schema_privilege($1, $2, 'CREATE') as create`,
          [serviceRole(who), schema],
        );
        expect({ who, schema, ...r.rows[0] }).toEqual({ who, schema, usage: who === schema, create: who === schema });
      }
    // And no table of another schema is reachable by a grant either.
    const leaks = await admin.query(
      `select r.rolname, t.schemaname, t.tablename from pg_tables t cross join pg_roles r
        where r.rolname = any($1) and t.schemaname = any($2) and r.rolname <> t.schemaname || '_svc'
          and has_table_privilege(r.rolname, format('%I.%I', t.schemaname, t.tablename), 'SELECT, INSERT, UPDATE, DELETE')
          and has_schema_privilege(r.rolname, t.schemaname, 'USAGE')`,
      [SERVICE_SCHEMAS.map(serviceRole), [...SERVICE_SCHEMAS]],
    );
    expect(leaks.rows).toEqual([]);
  });
});

describe('the services of a stack log in as their own roles', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ services: ['vault'] });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('auth-svc connects as auth_svc and vault-svc as vault_svc', async () => {
    const sessions = await s.sql.query<{ usename: string; application_name: string }>(
      `select distinct usename::text, application_name from pg_stat_activity where datname = current_database() and application_name like '%-svc'`,
    );
    const byService = Object.fromEntries(sessions.rows.map((r) => [r.application_name, r.usename]));
    expect(byService).toMatchObject({ 'auth-svc': 'auth_svc', 'vault-svc': 'vault_svc' });
    expect(sessions.rows.filter((r) => r.usename === 'postgres')).toEqual([]);
  });
});
