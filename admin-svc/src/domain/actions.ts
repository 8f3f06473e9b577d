import { AppError, createEvent, enqueueEvent, ERRORS } from '@mana/shared';
import { appendAudit, type AuditAction } from '../db/audit';
import { auditTargetOf, findUser, setBan, setRole, setTier } from '../db/directory';
import { outbox } from '../db/schema';
import { asApp, type Tx } from '../db/scope';
import type { Actor, AdminDeps } from './context';
import { ADMIN_ERRORS } from './errors';
import { pseudonymOf } from './pseudonym';
import { directoryUser } from './users';

const userPath = (userId: string, rest = '') => `/api/v1/internal/users/${encodeURIComponent(userId)}${rest}`;

interface RemoteAction<T> {
  action: AuditAction;
  targetId: string;
  reason?: string | null;
  /** The call to auth-svc or gdpr-svc that does the work. */
  remote: () => Promise<T>;
  /** The local effect, in the transaction of the audit entry; returns what the entry records as `changes`. */
  local: (tx: Tx, result: T) => Promise<Record<string, unknown>>;
}

/**
 * An admin write done by another service: the call, then the local effect and the audit entry in one
 * transaction. A refused or failed call is audited too (outcome and error code), then answered. The entry is
 * written after the call, and the call may itself start the target's erasure (data.erase: gdpr-svc's saga
 * reaches admin-svc's participant at once), so the target is named as the erasure's lock and tombstone say.
 */
async function remoteAction<T>(deps: AdminDeps, actor: Actor, a: RemoteAction<T>): Promise<T> {
  const base = {
    actorId: actor.id,
    action: a.action,
    targetId: a.targetId,
    reason: a.reason ?? null,
    requestId: actor.requestId,
    ipAddress: actor.ipAddress,
  };
  const target = (tx: Tx) => auditTargetOf(tx, a.targetId, pseudonymOf(deps.pseudonymSecret, a.targetId));
  let result: T;
  try {
    result = await a.remote();
  } catch (err) {
    const code = err instanceof AppError ? err.code : 'INTERNAL_ERROR';
    await asApp(deps.db, async (tx) =>
      appendAudit(tx, { ...base, targetId: await target(tx), changes: { outcome: 'failed', error: code } }),
    ).catch((auditErr: unknown) =>
      deps.logger.error({ err: (auditErr as Error).message, action: a.action }, 'could not write the audit entry of a failed action'),
    );
    throw err instanceof AppError ? err : ERRORS.internal(err);
  }
  await asApp(deps.db, async (tx) => {
    const targetId = await target(tx); // first: the lock comes before any row lock of local()
    const changes = await a.local(tx, result);
    await appendAudit(tx, { ...base, targetId, changes: { outcome: 'ok', ...changes } });
  });
  return result;
}

export async function changeTier(deps: AdminDeps, actor: Actor, userId: string, tier: string, reason: string | null) {
  if (!deps.tiers.includes(tier)) throw ADMIN_ERRORS.unknownTier(deps.tiers);
  const from = await asApp(deps.db, async (tx) => {
    const previous = await setTier(tx, userId, tier);
    if (previous === undefined) throw ADMIN_ERRORS.userNotFound();
    await appendAudit(tx, {
      actorId: actor.id,
      action: 'tier.set',
      targetId: userId,
      reason,
      changes: { from: previous, to: tier },
      requestId: actor.requestId,
      ipAddress: actor.ipAddress,
    });
    if (previous !== tier) await enqueueEvent(tx, outbox, createEvent('user.tier.changed.v1', { userId, tier }));
    return previous;
  });
  if (from !== tier) deps.relay?.kick();
  return { userId, tier };
}

function notSelf(actor: Actor, userId: string) {
  if (actor.id === userId) throw ADMIN_ERRORS.cannotTargetSelf();
}

export async function banUser(deps: AdminDeps, actor: Actor, userId: string, reason: string, expiresAt: Date | null) {
  notSelf(actor, userId);
  await directoryUser(deps, userId);
  const result = await remoteAction(deps, actor, {
    action: 'ban.set',
    targetId: userId,
    reason,
    remote: () =>
      deps.auth<{ sessionsEnded: number }>('POST', userPath(userId, '/ban'), {
        reason,
        expiresAt: expiresAt?.toISOString(),
        actorId: actor.id,
      }),
    local: async (tx, r) => {
      await setBan(tx, userId, { reason, expiresAt });
      return { expiresAt: expiresAt?.toISOString() ?? null, sessionsEnded: r.sessionsEnded };
    },
  });
  return {
    userId,
    banned: true,
    bannedReason: reason,
    banExpiresAt: expiresAt?.toISOString() ?? null,
    sessionsEnded: result.sessionsEnded,
  };
}

export async function liftBan(deps: AdminDeps, actor: Actor, userId: string) {
  notSelf(actor, userId);
  await directoryUser(deps, userId);
  await remoteAction(deps, actor, {
    action: 'ban.lift',
    targetId: userId,
    remote: () => deps.auth<{ wasBanned: boolean }>('DELETE', userPath(userId, '/ban')),
    local: async (tx, r) => {
      await setBan(tx, userId, null);
      return { wasBanned: r.wasBanned };
    },
  });
  return { userId, banned: false };
}

export async function revokeSessions(deps: AdminDeps, actor: Actor, userId: string) {
  await directoryUser(deps, userId);
  const r = await remoteAction(deps, actor, {
    action: 'sessions.revoke',
    targetId: userId,
    remote: () => deps.auth<{ sessionsEnded: number }>('POST', userPath(userId, '/sessions/revoke'), { actorId: actor.id }),
    local: async (_tx, res) => ({ sessionsEnded: res.sessionsEnded }),
  });
  return { userId, sessionsEnded: r.sessionsEnded };
}

export async function changeRole(deps: AdminDeps, actor: Actor, userId: string, role: 'user' | 'admin') {
  const before = await directoryUser(deps, userId);
  const r = await remoteAction(deps, actor, {
    action: 'role.set',
    targetId: userId,
    remote: () => deps.auth<{ changed: boolean; sessionsEnded: number }>('PUT', userPath(userId, '/role'), { role, actorId: actor.id }),
    local: async (tx, res) => {
      await setRole(tx, userId, role);
      return { from: before.role, to: role, changed: res.changed, sessionsEnded: res.sessionsEnded };
    },
  });
  return { userId, role, changed: r.changed };
}

export async function unlockUser(deps: AdminDeps, actor: Actor, userId: string) {
  const row = await directoryUser(deps, userId);
  const r = await remoteAction(deps, actor, {
    action: 'lockout.unlock',
    targetId: userId,
    remote: () => deps.auth<{ unlocked: boolean }>('POST', '/api/v1/internal/lockout/unlock', { email: row.email, actorId: actor.id }),
    local: async (_tx, res) => ({ wasLocked: res.unlocked }),
  });
  return { userId, unlocked: r.unlocked };
}

/** gdpr-svc's erasure saga with the admin as actor; an admin's own account goes through self-service. */
export async function eraseUser(deps: AdminDeps, actor: Actor, userId: string, reason: string) {
  if (actor.id === userId) throw ADMIN_ERRORS.useSelfService();
  return remoteAction(deps, actor, {
    action: 'data.erase',
    targetId: userId,
    reason,
    remote: () =>
      deps.gdpr<{ requestId: string; statusUrl: string }>('POST', '/api/v1/internal/gdpr/erasures', { userId, actorId: actor.id, reason }),
    local: async (tx, res) => ({ requestId: res.requestId, inDirectory: (await findUser(tx, userId)) !== undefined }),
  });
}
