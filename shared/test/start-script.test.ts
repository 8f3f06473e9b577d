import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * `npm start` as a newcomer runs it: no DATABASE_URL, no AMQP_URL — an embedded PostgreSQL (own data dir
 * and port here, so it cannot meet a developer's running instance) and the in-process bus.
 */
/** Polls until `fn` yields a value; fails at once (with the output) when the process exits first. */
async function waitFor<T>(fn: () => T | undefined, timeoutMs = 50_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (closed || Date.now() > deadline) throw new Error(`npm start did not become ready (exit code ${child.exitCode}):\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let child: ChildProcess;
let output = '';
/** 'close' (not 'exit'): every byte of stdout/stderr has arrived. */
let closed = false;

describe('scripts/start.ts (npm start) with nothing configured', () => {
  let dataDir: string;
  let exit: Promise<number | null>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mana-start-'));
    // Laid out like a fresh clone under /tmp (0755, as git creates it) with no `.data/` yet: as root, the
    // script must create `.data/` so that the postgres user can walk through it.
    chmodSync(dataDir, 0o755);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    // vitest's own variables (BASE_URL=/ among them) are not this project's configuration
    for (const k of ['DATABASE_URL', 'AMQP_URL', 'AUTH_JWKS_URL', 'BASE_URL', 'MODE', 'DEV', 'PROD', 'SSR']) delete env[k];
    Object.assign(env, {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      NO_COLOR: '1',
      EMBEDDED_PG_DATA_DIR: join(dataDir, 'clone', '.data', 'postgres'),
      EMBEDDED_PG_PORT: String(await freePort()),
      PORT: '0',
      AUTH_SVC_PORT: '0',
      VAULT_SVC_PORT: '0',
      GDPR_SVC_PORT: '0',
      ADMIN_SVC_PORT: '0',
      CREDITS_SVC_PORT: '0',
      RATE_LIMIT_PREFIX: `start-test-${process.pid}`,
      // Two of everything, as `INSTANCES=2 npm start` runs it (port 0: every instance gets a free port).
      INSTANCES: '2',
    });
    child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    exit = new Promise((resolve) =>
      child.once('close', (code) => {
        closed = true;
        resolve(code);
      }),
    );
  });

  afterAll(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints the gateway URL once every service is ready, and the gateway answers /readyz', async () => {
    const ready = await waitFor(() => /Mana Auth is ready at (http:\/\/localhost:\d+)/.exec(output)?.[1]);
    expect(output).toMatch(/ready at http:\/\/localhost:\d+ \(started in \d+\.\d s\)/);
    const res = await fetch(`${ready}/readyz`);
    expect(res.status).toBe(200);
    expect(output).toMatch(/\[auth-svc\] INFO {2}auth-svc listening/);
    expect(output).toMatch(/\[credits-svc#2\] INFO {2}credits-svc listening/);
    expect(output).toMatch(/2 instances of every service/);
    expect(output).toMatch(/\[gateway\] INFO {2}gateway listening/);
    expect(output).toMatch(/embedded PostgreSQL ready/);
    expect(output).not.toMatch(/cannot reach/);
    // a protected route answers through the gateway with the JSON error contract
    const me = await fetch(`${ready}/api/v1/credits/balance`);
    expect(me.status).toBe(401);
    expect(await me.json()).toMatchObject({ error: 'TOKEN_MISSING' });
  }, 60_000);

  it('stops in order on SIGINT — gateway, services, database — and exits 0', async () => {
    child.kill('SIGINT');
    expect(await exit).toBe(0);
    const at = (needle: string) => {
      const i = output.indexOf(needle);
      expect(i, `missing "${needle}" in:\n${output}`).toBeGreaterThan(-1);
      return i;
    };
    const gateway = at('gateway stopped');
    const auth = at('auth-svc stopped');
    const credits = at('credits-svc stopped');
    const database = at('embedded PostgreSQL stopped');
    expect(gateway).toBeLessThan(credits);
    expect(credits).toBeLessThan(auth);
    expect(auth).toBeLessThan(database);
  }, 30_000);
});
