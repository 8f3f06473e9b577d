import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { z } from 'zod';
import {
  AppError,
  ERRORS,
  createApp,
  errorBody,
  isDatabaseUnavailable,
  parseBody,
  parseQuery,
  toAppError,
  type ServiceHandle,
} from '@mana/shared';
import { TEST_PG_ADMIN_URL } from '@mana/shared/testing';
import { silent } from './helpers/bus';
import { serveApp } from './helpers/http';

describe('errors over real HTTP', () => {
  let svc: ServiceHandle;
  const state = { shuttingDown: false };
  let dbUp = true;

  beforeAll(async () => {
    const { app, finish } = createApp({
      logger: silent,
      bodyLimit: '1kb',
      state,
      readiness: {
        database: async () => {
          if (!dbUp) throw new Error('connect ECONNREFUSED 10.0.0.5:5432');
        },
      },
    });
    app.get('/boom', () => {
      throw new Error('password=hunter2 at 10.0.0.5');
    });
    app.get('/async-boom', async () => {
      await Promise.resolve();
      throw new TypeError('cannot read secretKey of undefined');
    });
    app.get('/app-500', () => {
      throw new AppError('DB_DOWN', 500, 'pool to 10.0.0.5 exhausted', { details: { host: '10.0.0.5' } });
    });
    app.get('/unavailable', () => {
      throw ERRORS.unavailable('Try again in a minute');
    });
    app.get('/limited', () => {
      throw ERRORS.rateLimited(7);
    });
    const body = z.object({ email: z.email(), age: z.number().int().min(18) });
    app.post('/validate', (req, res) => {
      res.json(parseBody(body, req.body));
    });
    app.get('/query', (req, res) => {
      res.json(parseQuery(z.object({ page: z.coerce.number().int().positive() }), req.query));
    });
    svc = await serveApp(finish());
  });
  afterAll(async () => {
    await svc?.close();
  });

  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${svc.url}${path}`, init);
    return { res, body: (await res.json()) as Record<string, unknown>, text: '' };
  };

  it('turns an unexpected error into an opaque 500', async () => {
    for (const path of ['/boom', '/async-boom', '/app-500']) {
      const { res, body } = await get(path, { headers: { 'x-request-id': 'req-500' } });
      expect(res.status).toBe(500);
      expect(body.message).toBe('Internal server error');
      expect(body.requestId).toBe('req-500');
      expect(body).not.toHaveProperty('details');
      expect(body).not.toHaveProperty('stack');
      expect(JSON.stringify(body)).not.toMatch(/hunter2|10\.0\.0\.5|secretKey/);
    }
    expect((await get('/boom')).body.error).toBe('INTERNAL_ERROR');
    expect((await get('/app-500')).body.error).toBe('DB_DOWN');
  });

  it('exposes a deliberate 503 message and a 429 Retry-After header', async () => {
    const u = await get('/unavailable');
    expect(u.res.status).toBe(503);
    expect(u.body).toMatchObject({ error: 'SERVICE_UNAVAILABLE', message: 'Try again in a minute' });
    const l = await get('/limited');
    expect(l.res.status).toBe(429);
    expect(l.res.headers.get('retry-after')).toBe('7');
    expect(l.body.error).toBe('RATE_LIMITED');
  });

  it('names every failing field of a body and of a query string', async () => {
    const { res, body } = await get('/validate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'not-an-email', age: 12 }),
    });
    expect(res.status).toBe(400);
    expect(body.error).toBe('VALIDATION_FAILED');
    const paths = (body.details as Array<{ path: string }>).map((d) => d.path);
    expect(paths.sort()).toEqual(['age', 'email']);
    expect(body.message).toMatch(/email/);
    const q = await get('/query?page=-1');
    expect(q.res.status).toBe(400);
    expect((q.body.details as Array<{ path: string }>)[0]?.path).toBe('page');
  });

  it('answers malformed JSON with 400 INVALID_JSON and an oversized body with 413', async () => {
    const bad = await get('/validate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":' });
    expect(bad.res.status).toBe(400);
    expect(bad.body.error).toBe('INVALID_JSON');
    const big = await get('/validate', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'a@b.co', pad: 'x'.repeat(4096) }),
    });
    expect(big.res.status).toBe(413);
    expect(big.body.error).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers unknown routes with a JSON 404 and a generated request id', async () => {
    const { res, body } = await get('/nowhere');
    expect(res.status).toBe(404);
    expect(body.error).toBe('NOT_FOUND');
    expect(body.requestId).toBe(res.headers.get('x-request-id'));
    expect(String(body.requestId)).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('replaces a malformed incoming request id', async () => {
    const { res } = await get('/nowhere', { headers: { 'x-request-id': 'bad id with spaces <script>' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('reports readiness per dependency without leaking the failure, and 503 while shutting down', async () => {
    expect((await get('/readyz')).res.status).toBe(200);
    dbUp = false;
    const down = await get('/readyz');
    expect(down.res.status).toBe(503);
    expect(down.body).toEqual({ status: 'not_ready', checks: { database: 'fail' } });
    dbUp = true;
    state.shuttingDown = true;
    const closing = await get('/readyz');
    expect(closing.res.status).toBe(503);
    expect(closing.body.status).toBe('shutting_down');
    state.shuttingDown = false;
    expect((await get('/healthz')).body).toEqual({ status: 'ok' });
  });
});

describe('toAppError / errorBody', () => {
  it('keeps client errors, hides server errors', () => {
    expect(toAppError({ status: 405 }).status).toBe(405);
    expect(toAppError({ type: 'entity.too.large' }).code).toBe('PAYLOAD_TOO_LARGE');
    expect(toAppError('a string').code).toBe('INTERNAL_ERROR');
    const exposed500 = new AppError('X', 500, 'secret detail', { expose: false, details: { dsn: 'postgres://u:p@h' } });
    expect(errorBody(exposed500, 'r')).toEqual({ error: 'X', message: 'Internal server error', requestId: 'r' });
    expect(new AppError('Y', 404, 'nope').expose).toBe(true);
  });
});

describe('a database outage is a 503, not a 500', () => {
  it('maps a connection terminated by the server (pg_terminate_backend) to SERVICE_UNAVAILABLE, wrapped or not', async () => {
    const victim = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
    const killer = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
    await Promise.all([victim.connect(), killer.connect()]);
    victim.on('error', () => undefined);
    try {
      const pid = (await victim.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
      const running = victim.query('select pg_sleep(5)').catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 100));
      await killer.query('select pg_terminate_backend($1)', [pid]);
      const err = await running;
      expect(isDatabaseUnavailable(err)).toBe(true);
      // drizzle wraps the driver's error ("Failed query: …", the original as `cause`); a route's own catch or
      // an adapter wraps it into an opaque 500 (vault's audited actions, auth-svc's Better Auth translation)
      const drizzled = new Error('Failed query: select 1', { cause: err });
      for (const thrown of [err, drizzled, ERRORS.internal(err), ERRORS.internal(drizzled)]) {
        const mapped = toAppError(thrown);
        expect(mapped).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503, headers: { 'retry-after': '1' } });
        expect(errorBody(mapped, 'r')).toEqual({
          error: 'SERVICE_UNAVAILABLE',
          message: 'Service unavailable, try again shortly',
          requestId: 'r',
        });
      }
    } finally {
      await Promise.all([victim.end().catch(() => undefined), killer.end()]);
    }
  });

  it('knows the refusals of a server out of connection slots by their text when the code got lost', () => {
    for (const message of [
      'sorry, too many clients already',
      'too many connections for role "vault_svc"',
      'remaining connection slots are reserved for roles with the SUPERUSER attribute',
    ]) {
      expect(isDatabaseUnavailable(new Error(message)), message).toBe(true);
      expect(toAppError(ERRORS.internal(new Error(message)))).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503 });
    }
  });

  it('keeps an AppError the code chose, and an opaque 500 around anything but an outage', () => {
    const outage = Object.assign(new Error('too many connections for role "x"'), { code: '53300' });
    const chosen = new AppError('VAULT_CONFLICT', 409, 'conflict', { cause: outage });
    expect(toAppError(chosen)).toBe(chosen);
    const bug = ERRORS.internal(new TypeError('x is undefined'));
    expect(toAppError(bug)).toBe(bug);
  });

  it('leaves query errors (a constraint, a syntax error) as they are', async () => {
    const client = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
    await client.connect();
    try {
      const err = await client.query('select from nowhere_at_all').catch((e: unknown) => e);
      expect(isDatabaseUnavailable(err)).toBe(false);
      expect(toAppError(err).code).toBe('INTERNAL_ERROR');
    } finally {
      await client.end();
    }
  });
});
