import { asc, eq, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Db } from '../db/types';
import { findMatrixLink, matrixView } from '../oidc/matrix';
import { listApiKeys } from './api-keys';
import { organizationsOf } from './organizations';
import { passkeySummaries } from './passkeys';
import { listSessions } from './sessions';
import { publicSession, publicUser } from './views';

/** Everything auth-svc holds about a user, for the GDPR view (never a secret); undefined for no such user. */
export async function userData(conn: Db, id: string) {
  const [user] = await conn.select().from(tables.user).where(eq(tables.user.id, id)).limit(1);
  if (!user) return undefined;
  const accounts = await conn
    .select({
      id: tables.account.id,
      providerId: tables.account.providerId,
      accountId: tables.account.accountId,
      scope: tables.account.scope,
      hasPassword: sql<boolean>`${tables.account.password} is not null`,
      createdAt: tables.account.createdAt,
      updatedAt: tables.account.updatedAt,
    })
    .from(tables.account)
    .where(eq(tables.account.userId, id));
  const sessions = await listSessions(conn, id);
  // The full audit trail about the user (the export carries it; the summary shows only the count).
  const t = tables.securityEvents;
  const events = await conn
    .select({ id: t.id, type: t.type, ipAddress: t.ipAddress, userAgent: t.userAgent, context: t.context, createdAt: t.createdAt })
    .from(t)
    .where(eq(t.userId, id))
    .orderBy(asc(t.createdAt), asc(t.id));
  return {
    user: publicUser(user),
    accounts: accounts.map((a) => ({ ...a, createdAt: a.createdAt.toISOString(), updatedAt: a.updatedAt.toISOString() })),
    sessions: sessions.map((s) => publicSession(s)),
    twoFactorEnabled: user.twoFactorEnabled === true,
    organizations: await organizationsOf(conn, id),
    securityEventCount: events.length,
    securityEvents: events.map((e) => ({ ...e, createdAt: e.createdAt.toISOString() })),
    matrix: matrixView(await findMatrixLink(conn, id)),
    apiKeys: await listApiKeys(conn, id),
    // Name, kind and time only: no credential ID, public key, counter or authenticator model.
    passkeys: (await passkeySummaries(conn, id)).map((p) => ({ ...p, createdAt: p.createdAt?.toISOString() ?? null })),
  };
}
