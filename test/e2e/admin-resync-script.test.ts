import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../helpers/stack';
import { registerVerified } from '../helpers/users';
import { directoryRow, waitForRow } from './admin-helpers';
import { runScript } from '../helpers/scripts';

describe('admin-svc resync script', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ services: ['admin'] });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('npx tsx admin-svc/scripts/resync.ts brings back a lost row and reports it', { timeout: 120_000 }, async () => {
    const user = await registerVerified(s);
    // The verification's user.updated.v1 too: a later one would bring the row back by itself.
    await waitForRow(s, user.userId, (r) => r.email_verified === true);
    await s.sql.query('delete from admin.directory_users where id = $1', [user.userId]);
    const env = { ...process.env, ...s.env, AUTH_SVC_URL: s.services.auth[0]?.url ?? '', LOG_LEVEL: 'silent' };
    const { stdout } = await runScript('admin-svc/scripts/resync.ts', [], env);
    expect(stdout).toContain('directory resync: 1 added, 0 changed, 0 removed (1 users in auth-svc)');
    expect(await directoryRow(s, user.userId)).toMatchObject({ email: user.email, tier: 'public' });
  });
});
