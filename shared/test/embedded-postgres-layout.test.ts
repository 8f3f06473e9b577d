import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '@mana/shared';
import { postgresUser, reachable, reachableDataDir } from '../../scripts/postgres-as-root';

const logger = createLogger('layout-test', 'silent');
const base = mkdtempSync(join(tmpdir(), 'mana-layout-'));
chmodSync(base, 0o755);
const asRoot = userInfo().uid === 0;
const who = postgresUser(logger);

/** As root the postgres user must reach the folder it gets; as a normal user the folder is used as given. */
function expectUsable(requested: string, got: string): void {
  if (!asRoot) return expect(got).toBe(requested);
  expect(reachable(got, who!), `${got} is not reachable for postgres`).toBe(true);
}

describe('embedded PostgreSQL data folder layouts (npm start as root and as a normal user)', () => {
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('a fresh clone: .data/ is created traversable, the data stays in the clone', () => {
    const dataDir = join(base, 'fresh', '.data', 'postgres');
    mkdirSync(join(base, 'fresh'), { mode: 0o755 });
    const got = reachableDataDir(dataDir, who, logger);
    expect(got).toBe(dataDir);
    expectUsable(dataDir, got);
    expect(statSync(join(base, 'fresh', '.data')).mode & 0o777).toBe(0o755);
  });

  it('a second start after a failed first one: a private .data/ left behind is opened again', () => {
    const dotData = join(base, 'second', '.data');
    mkdirSync(dotData, { recursive: true, mode: 0o700 });
    chmodSync(join(base, 'second'), 0o755);
    chmodSync(dotData, 0o700);
    const dataDir = join(dotData, 'postgres');
    const got = reachableDataDir(dataDir, who, logger);
    expect(got).toBe(dataDir);
    expectUsable(dataDir, got);
  });

  it('EMBEDDED_PG_DATA_DIR pointing somewhere new: every missing parent is created', () => {
    const dataDir = join(base, 'new', 'a', 'b', 'pg');
    const got = reachableDataDir(dataDir, who, logger);
    expect(got).toBe(dataDir);
    expectUsable(dataDir, got);
  });

  it('a clone in a private home (/root): the data moves where the postgres user can reach it', () => {
    const home = join(base, 'private-home');
    mkdirSync(home, { mode: 0o700 });
    chmodSync(home, 0o700);
    const dataDir = join(home, 'clone', '.data', 'postgres');
    const got = reachableDataDir(dataDir, who, logger);
    if (asRoot) expect(got).not.toBe(dataDir);
    expectUsable(dataDir, got);
  });
});
