import { randomUUID } from 'node:crypto';
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import { subscribeErasureParticipant } from '@mana/shared';
import type { AuthContext } from '../context';
import * as tables from '../db/schema';
import type { Tx } from '../db/types';

const count = async (query: Promise<unknown[]>) => (await query).length;

/**
 * Deletes the user and everything auth-svc holds on them. Deleting the user cascades to sessions
 * (whose trigger revokes each one with session.revoked.v1), accounts and refresh tokens; API keys are
 * deleted first so the receipt counts them (their trigger revokes each key's sid the same way), and so are passkeys. Passkey challenges in flight are
 * verification rows that name the user, deleted with the others.
 */
export async function eraseUser(tx: Tx, userId: string): Promise<Record<string, number>> {
  // What the cascade will take, the memberships and the email (for invitations): one round trip.
  const { rows } = await tx.execute<{ sessions: number; accounts: number; refresh: number; email: string | null; org_ids: string[] }>(sql`
    select (select count(*)::int from ${tables.session} where ${tables.session.userId} = ${userId}) as sessions,
           (select count(*)::int from ${tables.account} where ${tables.account.userId} = ${userId}) as accounts,
           (select count(*)::int from ${tables.refreshTokens} where ${tables.refreshTokens.userId} = ${userId}) as refresh,
           (select ${tables.user.email} from ${tables.user} where ${tables.user.id} = ${userId}) as email,
           array(select ${tables.member.organizationId} from ${tables.member} where ${tables.member.userId} = ${userId}) as org_ids`);
  const facts = rows[0];
  // Cascades with the user too; deleted first so the receipt counts it.
  const matrixLinks = await count(
    tx.delete(tables.matrixLinks).where(eq(tables.matrixLinks.userId, userId)).returning({ id: tables.matrixLinks.userId }),
  );
  const apiKeys = await count(tx.delete(tables.apiKeys).where(eq(tables.apiKeys.userId, userId)).returning({ id: tables.apiKeys.id }));
  const passkeys = await count(tx.delete(tables.passkey).where(eq(tables.passkey.userId, userId)).returning({ id: tables.passkey.id }));
  const securityEvents = await count(
    tx.delete(tables.securityEvents).where(eq(tables.securityEvents.userId, userId)).returning({ id: tables.securityEvents.id }),
  );
  // Password-reset and similar tokens carry the user id as their value.
  const verifications = await count(
    tx
      .delete(tables.verification)
      .where(or(eq(tables.verification.value, userId), sql`${tables.verification.value} like ${`%"${userId}"%`}`))
      .returning({ id: tables.verification.id }),
  );
  const orgIds = facts?.org_ids ?? [];
  const email = facts?.email;
  const invitations = email
    ? await count(tx.delete(tables.invitation).where(eq(tables.invitation.email, email)).returning({ id: tables.invitation.id }))
    : 0;
  const users = await count(tx.delete(tables.user).where(eq(tables.user.id, userId)).returning({ id: tables.user.id }));
  // Memberships went with the user (FK); an organization of theirs nobody belongs to any more goes too.
  const organizations =
    orgIds.length === 0
      ? 0
      : await count(
          tx
            .delete(tables.organization)
            .where(
              and(
                inArray(tables.organization.id, orgIds),
                sql`not exists (select 1 from ${tables.member} m where m.organization_id = ${tables.organization.id})`,
              ),
            )
            .returning({ id: tables.organization.id }),
        );
  return {
    users,
    sessions: facts?.sessions ?? 0,
    accounts: facts?.accounts ?? 0,
    refreshTokens: facts?.refresh ?? 0,
    verifications,
    securityEvents,
    matrixLinks,
    apiKeys,
    passkeys,
    memberships: orgIds.length,
    invitations,
    organizations,
  };
}

/**
 * The revocations of the user's ended sessions must stay until their last access token expires (every
 * gateway refuses those tokens), but not under the user's id: a random pseudonym per erasure replaces it.
 */
export async function pseudonymizeRevocations(tx: Tx, userId: string): Promise<number> {
  return count(
    tx
      .update(tables.sessionRevocations)
      .set({ userId: `erased:${randomUUID()}` })
      .where(eq(tables.sessionRevocations.userId, userId))
      .returning({ id: tables.sessionRevocations.sessionId }),
  );
}

/**
 * What an erased admin did to other users stays (who was banned, whose sessions ended, role changes, unlocks),
 * but not under their id: a random pseudonym per erasure replaces `user_bans.banned_by` and the `actorId`
 * in the context of other users' security events (the admin's own events went with eraseUser).
 */
export async function pseudonymizeActor(tx: Tx, userId: string): Promise<{ userBans: number; securityEvents: number }> {
  const pseudonym = `erased:${randomUUID()}`;
  const userBans = await count(
    tx
      .update(tables.userBans)
      .set({ bannedBy: pseudonym })
      .where(eq(tables.userBans.bannedBy, userId))
      .returning({ id: tables.userBans.userId }),
  );
  const context = tables.securityEvents.context;
  const securityEvents = await count(
    tx
      .update(tables.securityEvents)
      .set({ context: sql`jsonb_set(${context}, '{actorId}', to_jsonb(${pseudonym}::text))` })
      .where(sql`${context}->>'actorId' = ${userId}`)
      .returning({ id: tables.securityEvents.id }),
  );
  return { userBans, securityEvents };
}

/** Joins the erasure saga as `auth` (queue `auth`): the shared participant helper runs eraseUser once per request. */
export async function subscribeErasure(ctx: AuthContext): Promise<void> {
  await subscribeErasureParticipant({
    service: 'auth',
    bus: ctx.rt.bus,
    db: ctx.db,
    outbox: tables.outbox,
    processedMessages: tables.processedMessages,
    relay: ctx.rt.relay,
    logger: ctx.rt.logger.child({ component: 'erasure' }),
    erase: async (tx, userId) => {
      const deleted = await eraseUser(tx as Tx, userId);
      // After eraseUser: deleting the sessions is what records their revocations.
      const sessionRevocations = await pseudonymizeRevocations(tx as Tx, userId);
      const actor = await pseudonymizeActor(tx as Tx, userId);
      return { deleted, pseudonymized: { sessionRevocations, userBans: actor.userBans, securityEvents: actor.securityEvents } };
    },
  });
}
