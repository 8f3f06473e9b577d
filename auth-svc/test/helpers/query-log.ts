import { AsyncLocalStorage } from 'node:async_hooks';
import type { Server } from 'node:http';
import pg from 'pg';

/**
 * Counts the SQL statements (round trips to PostgreSQL) one HTTP request makes: pg's `Client.prototype.query`
 * is wrapped once per process, and every request the server receives while recording runs in an
 * AsyncLocalStorage context, so a statement is attributed to the request that issued it — the outbox relay's
 * poll, metrics and other requests running at the same time are not counted.
 */
const current = new AsyncLocalStorage<string[]>();
let wrapped = false;

function statementText(query: unknown): string {
  const q = query as { text?: unknown } | string | undefined;
  const text = typeof q === 'string' ? q : typeof q?.text === 'string' ? q.text : '?';
  return text.replace(/\s+/g, ' ').trim();
}

function wrapPg(): void {
  if (wrapped) return;
  wrapped = true;
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function query(this: unknown, ...args: unknown[]) {
    current.getStore()?.push(statementText(args[0]));
    return Reflect.apply(original, this, args);
  };
}

/** The statements `fn` itself makes (called directly, not through the server). */
export async function recordStatements<T>(fn: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
  wrapPg();
  const statements: string[] = [];
  const result = await current.run(statements, fn);
  return { result, statements };
}

export interface QueryRecorder {
  /** Runs `fn` (which sends requests to the server) and returns the statements those requests made, in order. */
  record: (fn: () => Promise<unknown>, settleMs?: number) => Promise<string[]>;
}

export function recordQueries(server: Server): QueryRecorder {
  wrapPg();
  let log: string[] | undefined;
  const emit = server.emit.bind(server);
  server.emit = ((event: string, ...args: unknown[]) => {
    if (event === 'request' && log) return current.run(log, () => emit(event, ...args));
    return emit(event, ...args);
  }) as Server['emit'];
  return {
    record: async (fn, settleMs = 200) => {
      const statements: string[] = [];
      log = statements;
      try {
        await fn();
        // Hooks that finish after the answer (background work of the request) still count.
        await new Promise((r) => setTimeout(r, settleMs));
      } finally {
        log = undefined;
      }
      return statements;
    },
  };
}

/** A short label for a statement: its verb and the table it touches (`select auth.user`, `begin`). */
export function statementLabel(sql: string): string {
  const s = sql.toLowerCase();
  const verb = /^\s*(\w+)/.exec(s)?.[1] ?? '?';
  const table =
    /(?:from|into|update)\s+("?\w+"?\."?\w+"?)/.exec(s)?.[1]?.replace(/"/g, '') ??
    /select\s+("?\w+"?\."?\w+"?)\(/.exec(s)?.[1]?.replace(/"/g, '') ??
    '';
  return table ? `${verb} ${table}` : verb;
}
