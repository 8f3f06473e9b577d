import { randomUUID } from 'node:crypto';
import { call } from '../helpers/http';
import type { Stack } from '../helpers/stack';
import { login, registerVerified, strongPassword, uniqueEmail } from '../helpers/users';

/** Every service of the system, two instances each (the chaos suite always runs "two of everything"). */
export const ALL_SERVICES = ['vault', 'credits', 'admin', 'gdpr'] as const;
export const INSTANCES = 2;

export interface ChaosUser {
  userId: string;
  email: string;
  password: string;
  token: string;
}

/** A user as far as the registration went: the id the events carry. */
export interface Registered {
  userId: string;
  email: string;
}

/** Registers through the gateway (one scrypt hash) and nothing more; throws unless 201. */
export async function register(s: Stack): Promise<Registered> {
  const email = uniqueEmail('chaos');
  const res = await call<{ user: { id: string } }>(`${s.gatewayUrl}/api/v1/auth/register`, { body: { email, password: strongPassword() } });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { userId: res.body.user.id, email };
}

/** Registers (through the gateway), verifies the address and signs in. */
export async function newUser(s: Stack): Promise<ChaosUser> {
  const { userId, email, password } = await registerVerified(s);
  const { accessToken } = await login(s, email, password);
  return { userId, email, password, token: accessToken };
}

export interface Spend {
  user: ChaosUser;
  key: string;
  status: number;
}

/** Spends one credit through the gateway with a fresh idempotency key; never throws on an HTTP answer. */
export async function spendOne(s: Stack, user: ChaosUser): Promise<Spend> {
  const key = `chaos-${randomUUID()}`;
  const res = await call(`${s.gatewayUrl}/api/v1/credits/use`, {
    token: user.token,
    body: { amount: 1, appId: 'chaos', description: 'chaos spend', idempotencyKey: key },
  });
  return { user, key, status: res.status };
}

/** Runs `n` copies of `work` until `until` (epoch ms), each starting its next round when the last ended. */
export async function loop(n: number, until: number, work: (worker: number) => Promise<void>): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async (_, worker) => {
      while (Date.now() < until) await work(worker);
    }),
  );
}

/** Counts of `values`, e.g. HTTP statuses: `{ 201: 40, 402: 3 }`. */
export function tally(values: readonly (number | string)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
