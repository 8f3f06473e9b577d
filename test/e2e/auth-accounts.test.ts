import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { registerVerified, strongPassword, uniqueEmail } from '../helpers/users';

type Answer = { user: Record<string, unknown> };

describe('accounts: the register answer tells nothing about existing emails', () => {
  let s: Stack;
  const register = (body: Record<string, unknown>) => call<Answer>(`${s.gatewayUrl}/api/v1/auth/register`, { body });
  /** The shape of a value: its keys and the type of each. */
  const shape = (user: Record<string, unknown>) =>
    Object.entries(user)
      .map(([k, v]) => [k, v === null ? 'null' : typeof v])
      .sort();

  beforeAll(async () => {
    s = await startStack();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('answers a new and an already registered (verified) email with the same shape and the same values from the request', async () => {
    const existing = await registerVerified(s, uniqueEmail('taken'), strongPassword(), 'Grace Hopper');
    const request = { password: strongPassword(), name: 'Ada Lovelace', locale: 'de' };
    const fresh = await register({ email: uniqueEmail('fresh'), ...request });
    const taken = await register({ email: existing.email, ...request });
    expect([fresh.status, taken.status]).toEqual([201, 201]);
    expect(shape(taken.body.user)).toEqual(shape(fresh.body.user));
    for (const answer of [fresh, taken])
      expect(answer.body.user).toMatchObject({ name: 'Ada Lovelace', locale: 'de', emailVerified: false, role: 'user', image: null });
    // Nothing of the stored account leaks: not its id, name, verification state or creation time.
    expect(taken.body.user.id).not.toBe(existing.userId);
    expect(taken.body.user.email).toBe(existing.email);
    const stored = await s.sql.query<{ created_at: Date }>('select created_at from auth."user" where id = $1', [existing.userId]);
    expect(taken.body.user.createdAt).not.toBe(stored.rows[0]?.created_at.toISOString());
    // Without optional fields the two answers match as well.
    const bare = { password: strongPassword() };
    const freshBare = await register({ email: uniqueEmail('bare'), ...bare });
    const takenBare = await register({ email: existing.email, ...bare });
    expect(shape(takenBare.body.user)).toEqual(shape(freshBare.body.user));
    expect(takenBare.body.user.locale).toBeNull();
  });
});
