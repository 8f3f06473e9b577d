import { randomBytes } from 'node:crypto';
import { drizzleAdapter } from 'better-auth/adapters/drizzle';
import { APIError } from 'better-auth/api';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAppError } from '@mana/shared';
import { TEST_PG_ADMIN_URL } from '@mana/shared/testing';
import { withDatabaseOutage } from '../src/auth/database-outage';
import { toV1Error } from '../src/auth/better-auth-adapter';
import * as tables from '../src/db/schema';

/**
 * Better Auth's adapter against a PostgreSQL that refuses the connection (a role of this file's own with
 * CONNECTION LIMIT 0: SQLSTATE 53300, as when the server's slots are used up). The outage leaves the adapter as
 * a 503 APIError, the one error type Better Auth passes through unchanged (sign-up would otherwise turn it into a
 * 422 FAILED_TO_CREATE_USER, its HTTP handler into an empty 500).
 */
describe('the Better Auth adapter in a database outage', () => {
  const role = `auth_outage_${randomBytes(4).toString('hex')}`;
  let admin: pg.Client;
  let pool: pg.Pool;
  let adapter: ReturnType<ReturnType<typeof drizzleAdapter>>;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE ROLE ${admin.escapeIdentifier(role)} LOGIN CONNECTION LIMIT 0`);
    const url = new URL(TEST_PG_ADMIN_URL);
    url.username = role;
    pool = new pg.Pool({ connectionString: url.toString(), max: 1 });
    const db = drizzle(pool);
    adapter = withDatabaseOutage(drizzleAdapter(db, { provider: 'pg', schema: { user: tables.user }, transaction: true }))({});
  });
  afterAll(async () => {
    await pool?.end();
    await admin?.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(role)}`);
    await admin?.end();
  });

  const expectOutage = (err: unknown) => {
    expect(err).toBeInstanceOf(APIError);
    const e = err as APIError;
    expect(e.statusCode).toBe(503);
    expect(e.body).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable, try again shortly' });
    expect(e.headers).toMatchObject({ 'retry-after': '1' });
    // The driver's error stays as the cause (for the log), never in the body.
    expect(JSON.stringify(e.body)).not.toMatch(/53300|too many|role/);
    expect(toAppError(toV1Error(err))).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503 });
    return e;
  };

  it('throws a 503 APIError for a query, with the refusal (53300) as its cause', async () => {
    const err = await adapter.findOne({ model: 'user', where: [{ field: 'email', value: 'nobody@example.com' }] }).catch((e: unknown) => e);
    const e = expectOutage(err);
    let cause: unknown = e.cause;
    while (cause && typeof cause === 'object' && !('code' in cause && cause.code === '53300')) cause = (cause as { cause?: unknown }).cause;
    expect(cause).toMatchObject({ code: '53300' });
  });

  it('throws a 503 APIError from a transaction and from the adapter it hands its callback', async () => {
    expectOutage(await adapter.transaction((trx) => trx.count({ model: 'user' })).catch((e: unknown) => e));
  });

  it('leaves errors that are not an outage as they are', async () => {
    const err = await adapter.findOne({ model: 'no_such_model', where: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(APIError);
  });
});
