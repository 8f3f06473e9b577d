import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { createDatabase, type Database } from '@mana/shared';
import { testPool } from '@mana/shared/testing';
import * as tables from '../src/db/schema';
import { findLiveSessionFast } from '../src/domain/sessions';
import { recordQueries, recordStatements, statementLabel, type QueryRecorder } from './helpers/query-log';
import { startTestAuthService, type TestAuthService } from './helpers/service';

/**
 * The number of SQL statements one `POST /api/v1/auth/login` and one bearer `GET /api/v1/auth/session` make,
 * counted (not timed): a change that adds a round trip to the sign-in hot path fails here and has to say why
 * (docs/BENCHMARKS.md, "Login", lists each statement and its purpose).
 */
describe('auth-svc: SQL statements of the sign-in and session-check paths', () => {
  let svc: TestAuthService['svc'];
  let db: TestAuthService['db'];
  let stop: TestAuthService['stop'] | undefined;
  let queries: QueryRecorder;
  const email = 'query-count@example.com';
  const password = 'Counted Statements Passphrase 7';
  const headers = { 'content-type': 'application/json', 'user-agent': 'query-count/1.0' };
  const login = (body: Record<string, unknown>) =>
    fetch(`${svc.url}/api/v1/auth/login`, { method: 'POST', headers, body: JSON.stringify(body) });

  beforeAll(async () => {
    ({ svc, db, stop } = await startTestAuthService('queries'));
    queries = recordQueries(svc.server);
    const reg = await fetch(`${svc.url}/api/v1/auth/register`, { method: 'POST', headers, body: JSON.stringify({ email, password }) });
    expect(reg.status).toBe(201);
    // The first sign-in of the account from this client records the device (and loads the signing key).
    expect((await login({ email, password })).status).toBe(200);
  });

  afterAll(async () => {
    await stop?.();
  });

  /** One login's statements, by label (the full SQL is the assertion's message). */
  const loginStatements = async (body: Record<string, unknown>, expectedStatus = 200) => {
    let status = 0;
    const statements = await queries.record(async () => {
      const res = await login(body);
      status = res.status;
      await res.text();
    });
    expect(status).toBe(expectedStatus);
    return { labels: statements.map(statementLabel), sql: statements.join('\n') };
  };

  // Was 18 (issue 16): a second lockout read, a ban read and a four-statement ban transaction (now the session
  // insert's trigger), the device count, a four-statement refresh-token transaction, a re-read of session and user,
  // and the signing key's row. 6 until the lockout counted each attempt before its check (a read became the upsert
  // that counts it, and a success takes the count back); 7 until the success's clear of the count went into the
  // audit statement.
  const SIGN_IN = [
    'insert auth.sign_in_lockouts', // lockout: count this attempt before the password is checked; locked? beyond the limit?
    'select auth.user', // Better Auth: the user by email
    'select auth.account', // Better Auth: the credential account (password hash)
    'insert auth.session', // Better Auth: the session (its trigger refuses a banned user: no round trip of its own)
    'with auth.security_events', // audit: sign_in_success + known device (+ whether it is a new one) + the lockout count goes
    'with auth.session', // /api/v1: device fields, refresh token, user and current signing key
  ];

  it('a password sign-in makes 6 statements', async () => {
    const { labels, sql } = await loginStatements({ email, password, deviceId: 'dev-1', deviceName: 'Counting phone' });
    expect(labels, sql).toEqual(SIGN_IN);
  });

  it('a failed attempt stays counted; the next sign-in takes the count back in the same statements', async () => {
    const pool = testPool(db.url, 1);
    const failures = async () =>
      (await pool.query<{ failures: number }>('select failures from auth.sign_in_lockouts where email = $1', [email])).rows[0]?.failures;
    try {
      expect((await login({ email, password: 'Not The Password 000' })).status).toBe(401);
      expect(await failures()).toBe(1);
      const { labels, sql } = await loginStatements({ email, password });
      expect(labels, sql).toEqual(SIGN_IN);
      expect(await failures()).toBeUndefined();
    } finally {
      await pool.end();
    }
  });

  it('a bearer session check', async () => {
    const res = await login({ email, password });
    const { accessToken } = (await res.json()) as { accessToken: string };
    const check = () => fetch(`${svc.url}/api/v1/auth/session`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect((await check()).status).toBe(200);
    let status = 0;
    const statements = await queries.record(async () => {
      const r = await check();
      status = r.status;
      await r.text();
    });
    expect(status).toBe(200);
    expect(statements.map(statementLabel), statements.join('\n')).toEqual(['select auth.session']);
  });

  it('session checks that arrive together share one statement, and each gets its own answer', async () => {
    const signIn = async () => {
      const { accessToken } = (await (await login({ email, password })).json()) as { accessToken: string };
      const { sid, sub } = decodeJwt(accessToken) as { sid: string; sub: string };
      return { accessToken, sid, sub };
    };
    const [a, b, ended] = [await signIn(), await signIn(), await signIn()];
    const out = await fetch(`${svc.url}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${ended.accessToken}` } });
    expect(out.status).toBe(200);
    const database: Database<typeof tables> = createDatabase({ url: db.url, schema: tables, max: 2 });
    try {
      const { result, statements } = await recordStatements(() =>
        Promise.all([
          findLiveSessionFast(database.db, a.sid, a.sub),
          findLiveSessionFast(database.db, b.sid, b.sub),
          findLiveSessionFast(database.db, ended.sid, ended.sub),
          findLiveSessionFast(database.db, a.sid, 'someone-else'),
          findLiveSessionFast(database.db, a.sid, a.sub),
        ]),
      );
      expect(statements.map(statementLabel)).toEqual(['select auth.session']);
      expect(result.map((r) => r?.session.id)).toEqual([a.sid, b.sid, undefined, undefined, a.sid]);
      expect(result[0]?.user.email).toBe(email);
    } finally {
      await database.close();
    }
  });
});
