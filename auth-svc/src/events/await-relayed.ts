import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { AuthContext } from '../context';

/**
 * Kicks the outbox relay and waits (briefly) until the session.revoked.v1 events of these sessions
 * reached the broker, so a client that sees "logged out" finds its token refused at every gateway.
 * With the broker down it does not wait: the outbox delivers later and the gateways also load the
 * revocation list on reconnect.
 */
export async function awaitRevocationsRelayed(ctx: AuthContext, sessionIds: string[], timeoutMs = 2_000): Promise<void> {
  ctx.kickOutbox();
  if (sessionIds.length === 0 || !ctx.rt.bus.isConnected()) return;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await ctx.db
      .select({ n: sql<number>`count(*)::int` })
      .from(tables.outbox)
      .where(
        and(
          eq(tables.outbox.type, 'session.revoked.v1'),
          isNull(tables.outbox.publishedAt),
          inArray(sql<string>`${tables.outbox.envelope}->'data'->>'sessionId'`, sessionIds),
        ),
      );
    if (!row || row.n === 0) return;
    await new Promise((r) => setTimeout(r, 20));
    ctx.kickOutbox();
  }
}
