// The soak's users, made the way clients make them, through the gateway: registered, their email marked verified
// (as following the mailed link does), signed in, a vault created and credits granted; one of them an admin.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { SERVICE_KEY } from './system';
import type { Actor, Answer, Traffic } from './traffic';

/** Runs `fn` over `items`, `limit` at a time (scrypt runs on four threads: more in parallel only queues). */
async function inBatches<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += limit) out.push(...(await Promise.all(items.slice(i, i + limit).map(fn))));
  return out;
}

const expect = (what: string, status: number, want: number, body: string) => {
  if (status !== want) throw new Error(`${what}: ${status} ${body.slice(0, 300)}`);
};

/**
 * The setup is not measured: a 5xx (on a shared machine, PostgreSQL out of connection slots) is retried a few times,
 * as a client would. Every call here is idempotent or safe to repeat (a second registration answers alike).
 */
async function retrying(fn: () => Promise<Answer>): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    const res = await fn().catch((err: unknown) => ({ status: 0, body: String(err) }));
    if (res.status < 500 && res.status !== 0) return res;
    if (attempt === 8) return res;
    await new Promise((r) => setTimeout(r, 1_000 * attempt));
  }
}

/** Funds per user: far more than ten minutes of spends of 1 use. */
const FUNDS = 10_000_000;

export async function createUsers(client: Traffic, sql: pg.Pool, count: number): Promise<{ users: Actor[]; admin: Actor }> {
  const tag = randomBytes(3).toString('hex');
  const people = Array.from({ length: count + 1 }, (_, i) => ({
    email: `soak-user-${tag}-${i}@example.com`,
    password: `Tangerine ${randomBytes(6).toString('hex')} Orbit`,
  }));
  const ids = await inBatches(people, 4, async (p) => {
    const res = await client.call('POST', '/api/v1/auth/register', undefined, {
      email: p.email,
      password: p.password,
      name: `Soak ${p.email}`,
    });
    expect('register', res.status, 201, res.body);
    return (JSON.parse(res.body) as { user: { id: string } }).user.id;
  });
  await sql.query(`update auth."user" set email_verified = true where id = any($1)`, [ids]);
  await sql.query(`update auth."user" set role = 'admin' where id = $1`, [ids[0]]);
  const actors = await inBatches(people, 4, async (p): Promise<Actor> => {
    const res = await retrying(() => client.call('POST', '/api/v1/auth/login', undefined, { email: p.email, password: p.password }));
    expect('login', res.status, 200, res.body);
    const body = JSON.parse(res.body) as { user: { id: string }; accessToken: string; refreshToken: string };
    return { id: body.user.id, ...p, access: body.accessToken, refresh: body.refreshToken, refreshing: false };
  });
  await inBatches(actors.slice(1), 8, async (a) => {
    const init = await retrying(() => client.call('POST', '/api/v1/me/encryption-vault/init', a.access));
    if (init.status !== 200 && init.status !== 201) throw new Error(`vault init: ${init.status} ${init.body.slice(0, 300)}`);
    const grant = await retrying(() =>
      client.call(
        'POST',
        '/api/v1/internal/credits/grants',
        undefined,
        { userId: a.id, amount: FUNDS, reason: 'soak funds', idempotencyKey: 'soak' },
        { 'x-service-key': SERVICE_KEY },
      ),
    );
    // 200: a retried grant whose first answer was lost (same idempotency key, granted once).
    if (grant.status !== 201 && grant.status !== 200) throw new Error(`grant: ${grant.status} ${grant.body.slice(0, 300)}`);
  });
  const [admin, ...users] = actors as [Actor, ...Actor[]];
  return { users, admin };
}
