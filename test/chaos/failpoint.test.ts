import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

/**
 * Runs `failpoint(name)` in a fresh process with `env`; resolves with how it ended: 'SIGKILL', or 'alive' and
 * the failpoint reported as ignored (what the outbox relay warns about at start).
 */
function run(name: string, env: Record<string, string>): Promise<string> {
  const code = `import('./shared/src/bus/failpoint.ts').then((m) => { m.failpoint(${JSON.stringify(name)}); process.stdout.write('alive ' + (m.ignoredFailpoint() ?? '-')); })`;
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', '-e', code],
      { cwd: root, env: { PATH: process.env.PATH, ...env } },
      (_, stdout) => resolve(child.signalCode ?? stdout),
    );
  });
}

/**
 * The failpoints the chaos tests use (`MANA_FAILPOINT`) kill a process only under NODE_ENV=test: a production
 * deployment (or one that forgot NODE_ENV) that carries the variable by mistake keeps running, and says so.
 */
describe('chaos: failpoints', () => {
  it('SIGKILL the process at the named point under NODE_ENV=test, and nowhere else', async () => {
    const armed = { MANA_FAILPOINT: 'outbox.after-publish' };
    // Each in its own process, side by side (a tsx start is the slow part).
    const ended = await Promise.all([
      run('outbox.after-publish', { ...armed, NODE_ENV: 'test' }),
      run('erasure.before-ack', { MANA_FAILPOINT: 'erasure.before-ack', NODE_ENV: 'test' }),
      run('erasure.before-ack', { ...armed, NODE_ENV: 'test' }),
      run('outbox.after-publish', { ...armed, NODE_ENV: 'production' }),
      run('outbox.after-publish', { ...armed, NODE_ENV: 'development' }),
      run('outbox.after-publish', armed),
    ]);
    const ignored = 'alive outbox.after-publish';
    expect(ended).toEqual(['SIGKILL', 'SIGKILL', 'alive -', ignored, ignored, ignored]);
  });
});
