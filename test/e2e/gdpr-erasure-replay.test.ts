import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { runScript } from '../helpers/scripts';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';

const exec = promisify(execFile);

/**
 * The runbook's restore of one schema (docs/OPERATIONS.md, "Erasure replay after a restore"): pg_dump -n credits,
 * an erasure completes, the schema is restored from the dump (the erased user is back), and
 * `erasures.ts replay` erases them again under the original request, whose receipt stays as it was.
 */
describe('restoring a schema from a backup older than an erasure, then replaying the erasure', () => {
  let s: Stack;
  const dir = mkdtempSync(join(tmpdir(), 'mana-replay-'));

  beforeAll(async () => {
    s = await startStack({ services: ['vault', 'credits', 'gdpr', 'admin'] });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const wallets = async (userId: string) =>
    (await s.sql.query<{ n: number }>('select count(*)::int as n from credits.wallets where owner = $1', [`user:${userId}`])).rows[0]?.n;

  it('erases the restored user again and leaves the completed request and its receipt unchanged', async () => {
    const { userId, email, password } = await registerVerified(s);
    const other = await registerVerified(s);
    await eventually(async () => ((await wallets(userId)) === 1 && (await wallets(other.userId)) === 1 ? true : undefined));

    const dump = join(dir, 'credits.dump');
    const backupTime = new Date();
    await exec('pg_dump', ['--format=custom', '--schema=credits', `--file=${dump}`, s.db.url]);

    const { accessToken } = await login(s, email, password);
    const erase = await call<{ requestId: string }>(`${s.gatewayUrl}/api/v1/me/data`, {
      method: 'DELETE',
      token: accessToken,
      body: { confirm: 'DELETE' },
    });
    expect(erase.status).toBe(202);
    const receiptOf = async () =>
      (
        await s.sql.query<{ status: string; receipt: string | null }>('select status, receipt from gdpr.erasure_requests where id = $1', [
          erase.body.requestId,
        ])
      ).rows[0];
    const done = await eventually(async () => {
      const r = await receiptOf();
      return r?.status === 'completed' ? r : undefined;
    }, 30_000);
    expect(await wallets(userId)).toBe(0);

    // Restore the credits schema from the backup (service stopped), as the runbook says.
    await s.stopService('credits');
    await s.sql.query('drop schema credits cascade');
    await exec('pg_restore', ['--exit-on-error', `--dbname=${s.db.url}`, dump]);
    await s.startService('credits');
    expect(await wallets(userId)).toBe(1);

    const ids = join(dir, 'ids.txt');
    const owners = await s.sql.query<{ owner: string }>("select owner from credits.wallets where owner like 'user:%'");
    writeFileSync(ids, owners.rows.map((r) => r.owner.slice('user:'.length)).join('\n'));
    const { stdout } = await runScript('gdpr-svc/scripts/erasures.ts', ['replay', '--since', backupTime.toISOString(), '--ids-file', ids], {
      ...process.env,
      ...s.env,
    });
    expect(stdout).toContain(`asked again: ${erase.body.requestId}`);
    expect(stdout).toMatch(/replayed 1 erasure\(s\) completed since .* \(2 user id\(s\) checked\)/);
    expect(stdout).not.toContain(userId);

    await eventually(async () => ((await wallets(userId)) === 0 ? true : undefined), 30_000);
    expect(await wallets(other.userId)).toBe(1);
    expect(await receiptOf()).toEqual(done);

    // A time after the erasure finds nothing to replay.
    const later = await runScript('gdpr-svc/scripts/erasures.ts', ['replay', '--since', new Date().toISOString(), '--ids-file', ids], {
      ...process.env,
      ...s.env,
    });
    expect(later.stdout).toMatch(/replayed 0 erasure\(s\)/);
  });
});
