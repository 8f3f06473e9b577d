import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '@mana/shared';
import * as tables from '../../vault-svc/src/db/schema';
import { readStatusOneTrip } from '../../vault-svc/src/db/hot-paths';
import { InvalidUserIdError, vaultDb, withUserScope } from '../../vault-svc/src/db/scope';
import { startVaultStack, VAULT, type VaultStack } from '../../vault-svc/test/harness';

const b = (n: number) => randomBytes(n);

/** The SQLSTATE (and constraint) a statement fails with, or 'ok'. */
async function outcome(client: pg.Client, text: string, values: unknown[] = []): Promise<string> {
  try {
    await client.query(text, values);
    return 'ok';
  } catch (err) {
    const e = err as { code?: string; constraint?: string };
    return e.constraint ? `${e.code}:${e.constraint}` : String(e.code);
  }
}

/** Runs `fn` as the vault role, optionally scoped to a user, and always rolls back. */
async function asApp<T>(client: pg.Client, userId: string | null, fn: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    await client.query('set local role vault_app');
    if (userId !== null) await client.query("select set_config('app.current_user_id', $1, true)", [userId]);
    return await fn();
  } finally {
    await client.query('rollback');
  }
}

describe('vault tables: CHECK constraints, row-level security, append-only audit', () => {
  let s: VaultStack;
  let client: pg.Client;
  beforeAll(async () => {
    s = await startVaultStack();
    client = s.admin;
    for (const user of ['user-a', 'user-b']) {
      const token = await s.token(user);
      expect((await s.call(`${VAULT}/init`, { token, method: 'POST' })).status).toBe(200);
    }
  });
  afterAll(async () => {
    await s?.close();
  });

  it('CHECK constraints refuse inconsistent rows written directly with SQL', async () => {
    const insert = (cols: Record<string, unknown>) => {
      const names = Object.keys(cols);
      return outcome(
        client,
        `insert into vault.encryption_vaults (user_id, ${names.join(', ')}) values ('direct', ${names.map((_, i) => `$${i + 1}`).join(', ')})`,
        Object.values(cols),
      );
    };
    expect(await insert({ zero_knowledge: false })).toBe('23514:encryption_vaults_has_wrap');
    expect(await insert({ wrapped_mk: b(48), kek_id: 'kek-1' })).toBe('23514:encryption_vaults_wrap_iv_pair');
    expect(await insert({ wrapped_mk: b(48), wrap_iv: b(12) })).toBe('23514:encryption_vaults_wrap_iv_pair');
    expect(await insert({ wrapped_mk: b(48), wrap_iv: b(12), kek_id: 'kek-1', recovery_wrapped_mk: b(48) })).toBe(
      '23514:encryption_vaults_wrap_iv_pair',
    );
    expect(
      await insert({
        wrapped_mk: b(48),
        wrap_iv: b(12),
        kek_id: 'kek-1',
        recovery_wrapped_mk: b(48),
        recovery_iv: b(12),
        zero_knowledge: true,
      }),
    ).toBe('23514:encryption_vaults_zk_consistency');
    // The same rules hold for updates of a valid row, whoever runs them.
    expect(await outcome(client, "update vault.encryption_vaults set zero_knowledge = true where user_id = 'user-a'")).toBe(
      '23514:encryption_vaults_zk_consistency',
    );
    expect(await outcome(client, "update vault.encryption_vaults set wrap_iv = null where user_id = 'user-a'")).toBe(
      '23514:encryption_vaults_wrap_iv_pair',
    );
    // A consistent zero-knowledge row is accepted.
    expect(await insert({ recovery_wrapped_mk: b(48), recovery_iv: b(12), zero_knowledge: true })).toBe('ok');
    await client.query("delete from vault.encryption_vaults where user_id = 'direct'");
  });

  it('the vault role is neither superuser nor BYPASSRLS, and both tables force RLS', async () => {
    const { rows: roles } = await client.query(
      "select rolname, rolsuper, rolbypassrls, rolcanlogin from pg_roles where rolname like 'vault\\_%' order by 1",
    );
    expect(roles).toEqual([
      { rolname: 'vault_app', rolsuper: false, rolbypassrls: false, rolcanlogin: false },
      { rolname: 'vault_maint', rolsuper: false, rolbypassrls: false, rolcanlogin: false },
      // vault-svc's own login role (owns the schema; see test/e2e/db-least-privilege.test.ts).
      { rolname: 'vault_svc', rolsuper: false, rolbypassrls: false, rolcanlogin: true },
    ]);
    const { rows } = await client.query(
      "select relname, relrowsecurity, relforcerowsecurity from pg_class where relnamespace = 'vault'::regnamespace and relkind = 'r' and relname like 'encryption_vault%' order by 1",
    );
    expect(rows).toEqual([
      { relname: 'encryption_vault_audit', relrowsecurity: true, relforcerowsecurity: true },
      { relname: 'encryption_vaults', relrowsecurity: true, relforcerowsecurity: true },
    ]);
  });

  it('without app.current_user_id nothing is visible', async () => {
    const { rows: all } = await client.query<{ n: number }>('select count(*)::int as n from vault.encryption_vaults');
    expect(all[0].n).toBeGreaterThanOrEqual(2);
    for (const setting of [null, '']) {
      const counts = await asApp(client, setting, async () => [
        (await client.query<{ n: number }>('select count(*)::int as n from vault.encryption_vaults')).rows[0].n,
        (await client.query<{ n: number }>('select count(*)::int as n from vault.encryption_vault_audit')).rows[0].n,
        (await client.query("update vault.encryption_vaults set rotated_at = now() where user_id = 'user-a'")).rowCount,
      ]);
      expect(counts).toEqual([0, 0, 0]);
    }
  });

  it("user A can never read or change user B's vault or audit rows", async () => {
    await asApp(client, 'user-a', async () => {
      expect((await client.query('select user_id from vault.encryption_vaults')).rows).toEqual([{ user_id: 'user-a' }]);
      expect((await client.query("select * from vault.encryption_vaults where user_id = 'user-b'")).rowCount).toBe(0);
      expect(
        (await client.query("update vault.encryption_vaults set wrapped_mk = null, wrap_iv = null, kek_id = null where user_id = 'user-b'"))
          .rowCount,
      ).toBe(0);
      expect((await client.query("delete from vault.encryption_vaults where user_id = 'user-b'")).rowCount).toBe(0);
      expect(
        (await client.query<{ n: number }>("select count(*)::int as n from vault.encryption_vault_audit where user_id = 'user-b'")).rows[0]
          .n,
      ).toBe(0);
    });
    // Writes naming B are refused by the policy's WITH CHECK.
    const inserts = [
      "insert into vault.encryption_vaults (user_id, recovery_wrapped_mk, recovery_iv) values ('user-b2', '\\x00', '\\x00')",
      "update vault.encryption_vaults set user_id = 'user-b' where user_id = 'user-a'",
      "insert into vault.encryption_vault_audit (user_id, action, status) values ('user-b', 'fetch', 200)",
    ];
    for (const sql of inserts) expect(await asApp(client, 'user-a', () => outcome(client, sql))).toMatch(/^(42501|23505)/);
    expect(await asApp(client, 'user-a', () => outcome(client, inserts[0]))).toBe('42501');
    // B's row is untouched.
    const { rows } = await client.query("select kek_id from vault.encryption_vaults where user_id = 'user-b'");
    expect(rows).toEqual([{ kek_id: 'kek-1' }]);
  });

  it('the audit table is append-only for the vault role', async () => {
    await asApp(client, 'user-a', async () => {
      expect((await client.query<{ n: number }>('select count(*)::int as n from vault.encryption_vault_audit')).rows[0].n).toBeGreaterThan(
        0,
      );
    });
    expect(
      await asApp(client, 'user-a', () =>
        outcome(client, "insert into vault.encryption_vault_audit (user_id, action, status) values ('user-a', 'fetch', 200)"),
      ),
    ).toBe('ok');
    expect(await asApp(client, 'user-a', () => outcome(client, 'update vault.encryption_vault_audit set status = 0'))).toBe('42501');
    expect(await asApp(client, 'user-a', () => outcome(client, 'delete from vault.encryption_vault_audit'))).toBe('42501');
    expect(await asApp(client, 'user-a', () => outcome(client, 'truncate vault.encryption_vault_audit'))).toBe('42501');
    // The erasure path can only pseudonymize the user in scope, and only to an erased: pseudonym.
    expect(await asApp(client, 'user-a', () => outcome(client, "select vault.pseudonymize_audit('user-b', 'erased:x')"))).toBe('42501');
    expect(await asApp(client, 'user-a', () => outcome(client, "select vault.pseudonymize_audit('user-a', 'user-b')"))).toBe('22023');
    // The group-commit path for fetch rows writes fetch rows only, only for a user with a vault (an erased user
    // has none), and never under an erased: pseudonym.
    const fetchRow = (userId: string) => `select vault.append_fetch_audit('[{"user_id":"${userId}","status":200}]'::jsonb) as written`;
    const written = (userId: string) =>
      asApp(client, null, async () => (await client.query<{ written: string[] }>(fetchRow(userId))).rows[0]?.written);
    expect(await written('user-a')).toEqual(['user-a']);
    expect(await written('user-nobody')).toEqual([]);
    // A vault row under a reserved id (only the owner could write one): the policy still refuses its fetch row.
    const reserved = async (userId: string) => {
      await client.query('begin');
      try {
        await client.query(
          "insert into vault.encryption_vaults (user_id, recovery_wrapped_mk, recovery_iv) values ($1, '\\x00', '\\x00')",
          [userId],
        );
        await client.query('set local role vault_app');
        return await outcome(client, fetchRow(userId));
      } finally {
        await client.query('rollback');
      }
    };
    expect(await reserved('erased:x')).toBe('42501');
    expect(await reserved('')).toBe('42501');
    // vault_maint may lock vault rows (to order fetch rows with the erasure), never change one.
    await client.query('begin');
    try {
      await client.query('set local role vault_maint');
      expect(await outcome(client, "update vault.encryption_vaults set user_id = user_id where user_id = 'user-a'")).toBe('42501');
    } finally {
      await client.query('rollback');
    }
    // And the cross-user helper functions hand out ids and counts, never key material.
    const usage = await asApp(
      client,
      null,
      async () => (await client.query<Record<string, unknown>>('select * from vault.kek_usage()')).rows,
    );
    expect(usage).toEqual([{ kek_id: 'kek-1', vaults: '2' }]);
  });

  it("a wrap copied onto another user's row, or tampered with, is refused with an opaque 500 and audited", async () => {
    const [c, d] = [await s.token('user-c'), await s.token('user-d')];
    await s.call(`${VAULT}/init`, { token: c, method: 'POST' });
    await s.call(`${VAULT}/init`, { token: d, method: 'POST' });
    // An attacker with write access to the table copies C's wrap onto D's row: the AAD binds it to C.
    await client.query(
      "update vault.encryption_vaults d set wrapped_mk = c.wrapped_mk, wrap_iv = c.wrap_iv from vault.encryption_vaults c where c.user_id = 'user-c' and d.user_id = 'user-d'",
    );
    const swapped = await s.call(`${VAULT}/key`, { token: d });
    expect(swapped.status).toBe(500);
    expect(swapped.body).toMatchObject({ error: 'INTERNAL_ERROR', message: 'Internal server error' });
    await client.query(
      "update vault.encryption_vaults set wrapped_mk = set_byte(wrapped_mk, 0, get_byte(wrapped_mk, 0) # 1) where user_id = 'user-c'",
    );
    expect((await s.call(`${VAULT}/key`, { token: c })).status).toBe(500);
    for (const user of ['user-c', 'user-d']) {
      const { rows } = await client.query(
        "select status, context from vault.encryption_vault_audit where user_id = $1 and action = 'fetch'",
        [user],
      );
      expect(rows).toEqual([{ status: 500, context: { error: 'INTERNAL_ERROR' } }]);
    }
  });

  it('withUserScope switches to the vault role for one transaction and refuses an empty user id before any query', async () => {
    const database = createDatabase({ url: s.db.url, schema: tables, max: 1 });
    try {
      await expect(withUserScope(vaultDb(database), '', async () => 'never')).rejects.toBeInstanceOf(InvalidUserIdError);
      await expect(withUserScope(vaultDb(database), 'a\u0000b', async () => 'never')).rejects.toBeInstanceOf(InvalidUserIdError);
      // Pseudonyms of erased users are not a namespace a token can step into.
      await expect(withUserScope(vaultDb(database), 'erased:1234', async () => 'never')).rejects.toBeInstanceOf(InvalidUserIdError);
      expect(database.pool.totalCount).toBe(0);
      const inside = await withUserScope(vaultDb(database), 'user-a', async (tx) => {
        const r = await tx.execute<{ who: string; uid: string }>(
          sql`select current_user as who, current_setting('app.current_user_id') as uid`,
        );
        return r.rows[0];
      });
      expect(inside).toEqual({ who: 'vault_app', uid: 'user-a' });
      // Quotes and backslashes in an id stay data (the scope statement carries it as an escaped literal).
      const odd = "o'brien\\'; reset role; --";
      const quoted = await withUserScope(vaultDb(database), odd, async (tx) => {
        const r = await tx.execute<{ who: string; uid: string }>(
          sql`select current_user as who, current_setting('app.current_user_id') as uid`,
        );
        return r.rows[0];
      });
      expect(quoted).toEqual({ who: 'vault_app', uid: odd });
      // The one-round-trip hot paths run in an implicit transaction: their scope ends with it as well.
      expect((await readStatusOneTrip(vaultDb(database), 'user-a')).vaultExists).toBe(true);
      expect((await readStatusOneTrip(vaultDb(database), 'user-b')).vaultExists).toBe(true);
      // The same pooled connection is back to its own role with no user afterwards.
      const after = await database.pool.query(
        "select current_user as who, coalesce(current_setting('app.current_user_id', true), '') as uid",
      );
      expect(after.rows[0]).toEqual({ who: 'postgres', uid: '' });
    } finally {
      await database.close();
    }
  });
});
