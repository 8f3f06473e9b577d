import { randomBytes } from 'node:crypto';
import { call } from './http';
import type { Stack } from './stack';

export interface TokenPair {
  user: { id: string; email: string; role: string; name: string };
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  tokenType: 'Bearer';
}

/** A unique address for one test (mails are matched by recipient). */
export const uniqueEmail = (tag = 'user') => `${tag}-${randomBytes(4).toString('hex')}@example.com`;

/** A password no policy refuses. */
export const strongPassword = () => `Tangerine ${randomBytes(6).toString('hex')} Orbit`;

/** Follows a mail's link through the gateway (no redirects followed); returns the status. */
export async function follow(link: string): Promise<number> {
  return (await fetch(link, { redirect: 'manual' })).status;
}

/** POST /api/v1/auth/register, then the verification mail's link. */
export async function registerVerified(s: Stack, email = uniqueEmail(), password = strongPassword(), name?: string) {
  const reg = await call<{ user: { id: string } }>(`${s.gatewayUrl}/api/v1/auth/register`, { body: { email, password, name } });
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
  const mail = await s.smtp.waitFor(email, (m) => m.text.includes('/verify-email?'));
  const status = await follow(s.smtp.linkIn(mail));
  if (status >= 400) throw new Error(`verification link answered ${status}`);
  return { email, password, userId: reg.body.user.id };
}

/** POST /api/v1/auth/login; throws unless 200. */
export async function login(s: Stack, email: string, password: string, extra: Record<string, string> = {}): Promise<TokenPair> {
  const res = await call<TokenPair>(`${s.gatewayUrl}/api/v1/auth/login`, { body: { email, password, ...extra } });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
