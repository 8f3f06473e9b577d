import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '@mana/shared/testing';
import { chargeAttempt, unchargeAttempt } from '../src/domain/lockout';
import { startTestAuthService, type TestAuthService } from './helpers/service';

/**
 * A charge given back (an attempt that was no guess, or one refused beyond the limit) goes back to the window it was
 * charged to only: after that window ran out and a new one started, giving it back must not take a charge of the new
 * window (a flood timed at a window's end would get that many more checks in the next one).
 */
describe('auth-svc: lockout charges are given back to their own window', () => {
  let sql: TestAuthService['sql'];
  let database: TestAuthService['database'];
  let stop: TestAuthService['stop'] | undefined;
  const policy = { maxAttempts: 3, windowMinutes: 15, durationMinutes: 15 };
  const failures = async (email: string) =>
    (await sql.query<{ failures: number }>('select failures from auth.sign_in_lockouts where email = $1', [email])).rows[0]?.failures;

  beforeAll(async () => {
    ({ sql, database, stop } = await startTestAuthService('lockwin'));
  });
  afterAll(async () => {
    await stop?.();
  });

  it('in its window a charge is given back', async () => {
    const email = `${uniqueName('lockwin')}@example.com`;
    await chargeAttempt(database.db, email, policy);
    const second = await chargeAttempt(database.db, email, policy);
    expect(second.failures).toBe(2);
    await unchargeAttempt(database.db, { email, window: second.window });
    expect(await failures(email)).toBe(1);
  });

  it('after its window ran out it takes nothing from the next one', async () => {
    const email = `${uniqueName('lockwin')}@example.com`;
    const old = await chargeAttempt(database.db, email, policy);
    // The window runs out (moved into the past), and the next attempt starts a new one.
    await sql.query(`update auth.sign_in_lockouts set window_started_at = now() - interval '16 minutes' where email = $1`, [email]);
    const fresh = await chargeAttempt(database.db, email, policy);
    expect(fresh.failures).toBe(1);
    expect(fresh.window).not.toBe(old.window);
    await unchargeAttempt(database.db, { email, window: old.window });
    expect(await failures(email)).toBe(1);
  });
});
