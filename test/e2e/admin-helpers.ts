import { randomUUID } from 'node:crypto';
import { createEvent, type EventEnvelope, type EventInput } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import { call, type JsonResponse } from '../helpers/http';
import type { Stack } from '../helpers/stack';
import { login, registerVerified, type TokenPair } from '../helpers/users';

/** A verified user made admin in auth's table (as the set-role command does), signed in again for an admin token. */
export async function makeAdmin(s: Stack): Promise<{ userId: string; email: string; password: string; token: string; tokens: TokenPair }> {
  const user = await registerVerified(s);
  await s.sql.query(`update auth."user" set role = 'admin' where id = $1`, [user.userId]);
  const tokens = await login(s, user.email, user.password);
  return { ...user, token: tokens.accessToken, tokens };
}

/** A call to /api/v1/admin/* through the gateway. */
export function adminApi(s: Stack, token: string) {
  return <T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<JsonResponse<T>> =>
    call<T>(`${s.gatewayUrl}/api/v1/admin${path}`, { method, body, token });
}

/** A call to an internal API through the gateway with the service key. */
export function internalApi(s: Stack) {
  return <T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<JsonResponse<T>> =>
    call<T>(`${s.gatewayUrl}/api/v1/internal${path}`, { method, body, headers: { 'x-service-key': s.env.MANA_SERVICE_KEY ?? '' } });
}

/** An event as auth-svc would publish it, with a chosen time (late and out-of-order deliveries). */
export function eventAt<T extends EventEnvelope['type']>(type: T, data: EventInput<T>, occurredAt: Date): EventEnvelope<T> {
  return { ...createEvent(type, data), occurredAt: occurredAt.toISOString() };
}

export const directoryRow = async (s: Stack, userId: string) =>
  (await s.sql.query('select * from admin.directory_users where id = $1', [userId])).rows[0] as Record<string, unknown> | undefined;

export const waitForRow = (s: Stack, userId: string, match: (row: Record<string, unknown>) => boolean = () => true) =>
  eventually(async () => {
    const row = await directoryRow(s, userId);
    return row && match(row) ? row : undefined;
  });

export const newUserId = () => `u_${randomUUID().replace(/-/g, '')}`;
