import { sql } from 'drizzle-orm';
import { MetricSignal, type EventBus, type EventEnvelope, type ServiceMetrics } from '@mana/shared';
import type { Db } from './db/types';

/** Every security event as it is recorded (type and its context: method, reason), for the counters below. */
export const securityEventRecorded = new MetricSignal<[type: string, context: Readonly<Record<string, unknown>> | undefined]>();

const text = (v: unknown, fallback: string) => (typeof v === 'string' && v.length <= 40 ? v : fallback);

/**
 * auth-svc's business metrics: sign-ins by method and outcome (`success`, or the failure's reason), lockouts,
 * token refreshes, refresh-token reuse, registrations (user.registered.v1 relayed), and the age of the JWT
 * signing key (read at scrape time). Returns the unsubscribe function.
 */
export function authMetrics(metrics: ServiceMetrics, db: Db, bus: EventBus): () => void {
  const signIns = metrics.counter('auth_sign_ins_total', 'Sign-in attempts by method and outcome (success, or why it failed)', [
    'method',
    'outcome',
  ]);
  const lockouts = metrics.counter('auth_lockouts_total', 'Accounts locked after too many failed sign-ins');
  const refreshes = metrics.counter('auth_token_refreshes_total', 'Refresh tokens exchanged for a new token pair');
  const reuse = metrics.counter('auth_refresh_token_reuse_total', 'Spent refresh tokens presented again (the session is ended)');
  const registrations = metrics.counter('auth_registrations_total', 'Accounts created (user.registered.v1 relayed to the bus)');
  metrics.gauge('auth_signing_key_age_seconds', 'Time since the current JWT signing key started signing', [], async (g) => {
    // A staged key is inserted with an old created_at; it signs from the moment the others expired.
    const { rows } = await db.execute<{ age: number | null }>(sql`
      select extract(epoch from now() - greatest(
        (select max(created_at) from auth.jwks where expires_at is null or expires_at > now()),
        (select max(expires_at) from auth.jwks where expires_at <= now())
      ))::float8 as age`);
    const age = rows[0]?.age;
    if (age === null || age === undefined) g.reset();
    else g.set(age);
  });

  const onPublished = (e: EventEnvelope) => {
    if (e.type === 'user.registered.v1') registrations.inc();
  };
  bus.on('published', onPublished);
  const unsubscribe = securityEventRecorded.subscribe((type, context) => {
    switch (type) {
      case 'sign_in_success':
        signIns.inc({ method: text(context?.method, 'password'), outcome: 'success' });
        return;
      case 'sign_in_failure':
        signIns.inc({ method: text(context?.method, 'password'), outcome: text(context?.reason, 'failure') });
        return;
      case 'two_factor_failed':
        signIns.inc({ method: text(context?.method, 'totp'), outcome: text(context?.reason, 'invalid_code') });
        return;
      case 'account_locked':
        lockouts.inc();
        return;
      case 'token_refreshed':
        refreshes.inc();
        return;
      case 'refresh_token_reuse':
        reuse.inc();
        return;
    }
  });
  return () => {
    unsubscribe();
    bus.off('published', onPublished);
  };
}
