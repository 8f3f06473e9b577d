import type pg from 'pg';
import type { Operation } from './fuzz-requests';

/** What the request fuzz (test/e2e/fuzz.test.ts) checks of each answer and of the database. */

export interface Answer {
  status: number;
  contentType: string;
  text: string;
}

const UPPER_SNAKE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The documented error shape of the route, or why the answer is not it. */
export function shapeProblem(op: Operation, a: Answer): string | undefined {
  if (a.status >= 500) return `${a.status}`;
  if (a.status < 400) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(a.text);
  } catch {
    body = undefined;
  }
  const ours =
    isObject(body) &&
    typeof body.error === 'string' &&
    UPPER_SNAKE.test(body.error) &&
    typeof body.message === 'string' &&
    typeof body.requestId === 'string' &&
    body.requestId !== '';
  // The gateway answers before any service (token, service key, size, unknown route): always our shape.
  if (ours && a.contentType.includes('application/json')) return undefined;
  if (op.path.startsWith('/auth/'))
    // Hosted pages answer a bad form with the page again and the error on it.
    return a.contentType.startsWith('text/html') && a.text.length > 0 ? undefined : 'not an HTML page';
  if (op.path.startsWith('/api/auth/')) {
    // Better Auth: `{ code, message }`; its OAuth endpoints: RFC 6749 `{ error, error_description }`.
    if (isObject(body) && typeof body.message === 'string' && (body.code === undefined || typeof body.code === 'string')) return undefined;
    if (isObject(body) && typeof body.error === 'string' && /^[a-z_]+$/.test(body.error)) return undefined;
    // Its router's unknown endpoint (here: an empty path parameter) sends no body.
    if (a.text === '' && a.status === 404) return undefined;
    return 'neither Better Auth’s { code, message } nor an RFC 6749 { error }';
  }
  return 'not { error: UPPER_SNAKE, message, requestId }';
}

/** One row per table: its row count and a checksum of every row. */
export async function snapshot(db: Pick<pg.Pool, 'query'>, tables: string[]): Promise<Map<string, string>> {
  const sql = tables
    .map(
      (t) => `select '${t}' as t, count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as h from ${t} x`,
    )
    .join(' union all ');
  const res = await db.query<{ t: string; h: string }>(sql);
  return new Map(res.rows.map((r) => [r.t, r.h]));
}

/** Waits until no table changes for a moment (outbox relays and consumers finish what a success started). */
export async function settled(db: Pick<pg.Pool, 'query'>, tables: string[]): Promise<Map<string, string>> {
  let last = await snapshot(db, tables);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const next = await snapshot(db, tables);
    if (diff(last, next).length === 0) return next;
    last = next;
  }
  return last;
}

export const diff = (a: Map<string, string>, b: Map<string, string>) => [...a.keys()].filter((k) => a.get(k) !== b.get(k));

/** Runs `fn` over `items`, `n` at a time. */
export async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}
