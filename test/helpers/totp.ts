import type * as OTPAuth from 'otpauth';
import type { Stack } from './stack';

const STEP_MS = 30_000;

/** Makes auth-svc forget the TOTP codes a user has used: what two minutes passing would do. */
export async function forgetUsedTotpCodes(s: Stack, userId: string): Promise<void> {
  await s.sql.query('delete from auth.verification where identifier like $1', [`totp-used:${userId}:%`]);
}

/**
 * Unused TOTP codes for one user, for tests that need more than one. A code works once (ASVS 6.5.1);
 * auth-svc accepts the current and the next 30 s step (and the previous one, not handed out here: it
 * could expire between generation and check). This hands out the current step, then the next; when
 * both are spent it advances the clock as far as the server is concerned (`forgetUsedTotpCodes`).
 */
export function totpCodes(s: Stack, totp: OTPAuth.TOTP, userId: string): () => Promise<string> {
  let lastStep = Number.NEGATIVE_INFINITY;
  return async () => {
    const now = Math.floor(Date.now() / STEP_MS);
    let step = Math.max(now, lastStep + 1);
    if (step > now + 1) {
      await forgetUsedTotpCodes(s, userId);
      step = now;
    }
    lastStep = step;
    return totp.generate({ timestamp: step * STEP_MS });
  };
}
