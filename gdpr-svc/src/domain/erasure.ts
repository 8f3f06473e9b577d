import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray, ne, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { createEvent } from '@mana/shared';
import * as tables from '../db/schema';
import { erasureCompleted } from '../metrics';
import type { Counts, ErasureStatus } from '../db/schema';
import { GDPR_ERRORS } from '../errors';
import { newCapabilityToken, tokenMatches, type GdprSecrets } from './secrets';
import { signReceipt } from './receipt';
import type { ActiveKey } from './keys';

type Db = NodePgDatabase<typeof tables>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface ErasureSettings {
  participants: readonly string[];
  retryMs: number;
  deadlineHours: number;
  secrets: GdprSecrets;
  /** Public URL of the gateway: the status URL is built on it. */
  baseUrl: string;
}

export interface StartedErasure {
  requestId: string;
  status: ErasureStatus;
  statusUrl: string;
  /** false when the request joined one already running. */
  created: boolean;
}

export interface ErasureActor {
  origin: 'self' | 'admin';
  actorId?: string;
  reason?: string;
}

export const statusUrl = (baseUrl: string, requestId: string, token: string) =>
  `${baseUrl.replace(/\/$/, '')}/api/v1/gdpr/erasures/${requestId}?token=${token}`;

/** Delay before the n-th re-ask (n ≥ 1): doubling from `retryMs`, at most 64 × `retryMs`. */
export const backoffMs = (retryMs: number, attempts: number) => retryMs * 2 ** Math.min(Math.max(attempts - 1, 0), 6);

/**
 * Starts the saga: the request row, one row per participant and `user.erasure.requested.v1` commit together
 * (outbox). A request for someone whose erasure is still running joins it: same requestId, a token of its own.
 */
export async function startErasure(db: Db, settings: ErasureSettings, userId: string, actor: ErasureActor): Promise<StartedErasure> {
  const subject = settings.secrets.subject(userId);
  const { token, hash } = newCapabilityToken();
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext('gdpr.erasure:' || ${subject}))`);
    const [open] = await tx
      .update(tables.erasureRequests)
      .set({ tokenHashes: sql`array_append(${tables.erasureRequests.tokenHashes}, ${hash})` })
      .where(and(eq(tables.erasureRequests.subject, subject), ne(tables.erasureRequests.status, 'completed')))
      .returning({ id: tables.erasureRequests.id, status: tables.erasureRequests.status });
    if (open) return { requestId: open.id, status: open.status, statusUrl: statusUrl(settings.baseUrl, open.id, token), created: false };
    const requestId = randomUUID();
    const now = Date.now();
    const event = createEvent('user.erasure.requested.v1', { requestId, userId });
    // The request, its participants and the event (outbox) in one statement.
    await tx.execute(sql`
      with request as (
        insert into ${tables.erasureRequests}
          (id, user_id, subject, origin, actor_subject, reason, token_hashes, requested_at, deadline_at, next_attempt_at)
        values (${requestId}::uuid, ${userId}, ${subject}, ${actor.origin}, ${actor.actorId ? settings.secrets.subject(actor.actorId) : null},
                ${actor.reason ?? null}, array[${hash}]::text[], ${new Date(now).toISOString()}::timestamptz,
                ${new Date(now + settings.deadlineHours * 3600_000).toISOString()}::timestamptz,
                ${new Date(now + backoffMs(settings.retryMs, 1)).toISOString()}::timestamptz)
        returning id
      ),
      participants as (
        insert into ${tables.erasureParticipants} (request_id, service)
        select request.id, p.service from request, jsonb_array_elements_text(${JSON.stringify(settings.participants)}::jsonb) as p(service)
      )
      insert into ${tables.outbox} (id, type, envelope)
      select ${event.id}::uuid, ${event.type}, ${JSON.stringify(event)}::jsonb from request`);
    return { requestId, status: 'in_progress' as const, statusUrl: statusUrl(settings.baseUrl, requestId, token), created: true };
  });
}

export interface ParticipantAnswer {
  requestId: string;
  userId: string;
  service: string;
  deleted: Counts;
  pseudonymized: Counts;
  retained: Counts;
}

/**
 * Records the first answer of each participant in `answers` (a repeated answer, an answer to an unknown or
 * finished request, or one about someone else changes nothing) with one statement for the whole batch, and
 * returns the requests every participant has answered now, so the caller finishes them in the same transaction.
 */
export async function recordAnswers(tx: Tx, answers: readonly ParticipantAnswer[], now = new Date()): Promise<string[]> {
  if (answers.length === 0) return [];
  // The requests' rows are locked first, in one order (no deadlock between instances): two last answers
  // recorded at once elsewhere cannot both miss that the request is complete.
  const ids = [...new Set(answers.map((a) => a.requestId))].sort();
  const idList = `{${ids.join(',')}}`; // event request ids are validated uuids
  await tx.execute(sql`select id from gdpr.erasure_requests where id = any(${idList}::uuid[]) order by id for update`);
  const rows = answers.map((a) => ({
    request_id: a.requestId,
    user_id: a.userId,
    service: a.service,
    deleted: a.deleted,
    pseudonymized: a.pseudonymized,
    retained: a.retained,
  }));
  // Rows this statement updates are not visible to its own subqueries: "nothing left" excludes them explicitly.
  const done = await tx.execute<{ request_id: string }>(sql`
    with a as (
      select distinct on (request_id, service) *
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
          as x(request_id uuid, user_id text, service text, deleted jsonb, pseudonymized jsonb, retained jsonb)
    ),
    recorded as (
      update gdpr.erasure_participants p
         set completed_at = ${now.toISOString()}::timestamptz, deleted = a.deleted, pseudonymized = a.pseudonymized, retained = a.retained
        from a join gdpr.erasure_requests r on r.id = a.request_id and r.status <> 'completed' and r.user_id = a.user_id
       where p.request_id = a.request_id and p.service = a.service and p.completed_at is null
      returning p.request_id, p.service
    )
    select distinct d.request_id from recorded d
     where not exists (
       select 1 from gdpr.erasure_participants p
        where p.request_id = d.request_id and p.completed_at is null
          and not exists (select 1 from recorded d2 where d2.request_id = p.request_id and d2.service = p.service))`);
  return done.rows.map((r) => r.request_id);
}

/**
 * Closes the requests every participant answered: signs each receipt and forgets the user id (the keyed hash
 * stays; so do the counts, which name tables, not people).
 */
export async function completeErasures(tx: Tx, requestIds: readonly string[], key: ActiveKey, issuer: string): Promise<void> {
  if (requestIds.length === 0) return;
  const ids = [...requestIds];
  const requests = await tx
    .select()
    .from(tables.erasureRequests)
    .where(and(inArray(tables.erasureRequests.id, ids), ne(tables.erasureRequests.status, 'completed')))
    .for('update');
  if (requests.length === 0) return;
  const rows = await tx
    .select()
    .from(tables.erasureParticipants)
    .where(inArray(tables.erasureParticipants.requestId, ids))
    .orderBy(asc(tables.erasureParticipants.requestId), asc(tables.erasureParticipants.service));
  const completedAt = new Date();
  const done: Array<{ id: string; receipt: string }> = [];
  for (const request of requests) {
    const services: Record<string, { deleted: Counts; pseudonymized: Counts; retained: Counts }> = {};
    for (const r of rows.filter((row) => row.requestId === request.id))
      services[r.service] = { deleted: r.deleted ?? {}, pseudonymized: r.pseudonymized ?? {}, retained: r.retained ?? {} };
    const receipt = await signReceipt(
      key,
      {
        requestId: request.id,
        sub: request.subject,
        requestedAt: request.requestedAt.toISOString(),
        completedAt: completedAt.toISOString(),
        services,
      },
      issuer,
    );
    done.push({ id: request.id, receipt });
  }
  // One statement for all of them; the user id and the reason are forgotten.
  await tx.execute(sql`update gdpr.erasure_requests r
       set status = 'completed', completed_at = ${completedAt.toISOString()}::timestamptz, receipt = x.receipt, user_id = null, reason = null
      from jsonb_to_recordset(${JSON.stringify(done)}::jsonb) as x(id uuid, receipt text)
     where r.id = x.id`);
  for (const request of requests)
    erasureCompleted.emit((completedAt.getTime() - request.requestedAt.getTime()) / 1000, request.status === 'partial');
}

export interface ErasureView {
  requestId: string;
  status: ErasureStatus;
  requestedAt: string;
  completedAt: string | null;
  missing: string[];
  services: Record<
    string,
    {
      status: 'pending' | 'completed';
      completedAt: string | null;
      deleted: Counts | null;
      pseudonymized: Counts | null;
      retained: Counts | null;
    }
  >;
  receipt: string | null;
}

/** The status behind a capability URL; a wrong token reads exactly like an unknown id. */
export async function erasureStatus(db: Db, requestId: string, token: string): Promise<ErasureView> {
  const [request] = await db.select().from(tables.erasureRequests).where(eq(tables.erasureRequests.id, requestId));
  // Compare even when there is no row, so a missing id and a wrong token take the same path.
  const ok = tokenMatches(token, request?.tokenHashes ?? [newCapabilityToken().hash]);
  if (!request || !ok) throw GDPR_ERRORS.erasureNotFound();
  return viewOf(db, request);
}

export async function viewOf(db: Db | Tx, request: typeof tables.erasureRequests.$inferSelect): Promise<ErasureView> {
  const rows = await db
    .select()
    .from(tables.erasureParticipants)
    .where(eq(tables.erasureParticipants.requestId, request.id))
    .orderBy(asc(tables.erasureParticipants.service));
  const services: ErasureView['services'] = {};
  for (const r of rows)
    services[r.service] = {
      status: r.completedAt ? 'completed' : 'pending',
      completedAt: r.completedAt?.toISOString() ?? null,
      deleted: r.deleted,
      pseudonymized: r.pseudonymized,
      retained: r.retained,
    };
  return {
    requestId: request.id,
    status: request.status,
    requestedAt: request.requestedAt.toISOString(),
    completedAt: request.completedAt?.toISOString() ?? null,
    missing: rows.filter((r) => !r.completedAt).map((r) => r.service),
    services,
    receipt: request.receipt,
  };
}
