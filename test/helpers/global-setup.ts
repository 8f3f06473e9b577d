import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { TEST_PG_ADMIN_URL, deleteBrokerObjects } from '@mana/shared/testing';

const run = promisify(execFile);

/**
 * Tags every test name of this run (`uniqueName` reads MANA_TEST_RUN) and, at the end, looks for what the
 * run left behind: RabbitMQ queues and exchanges (through `rabbitmqctl`, when this user may run it) and
 * PostgreSQL databases carrying the tag. Leftovers are deleted and fail the run: a test file that leaks
 * quorum queues makes a developer's broker slower run after run until AMQP handshakes time out.
 */
export default function setup(): () => Promise<void> {
  const tag = `r${randomBytes(3).toString('hex')}`;
  process.env.MANA_TEST_RUN = tag;
  return async () => {
    const leaks = [...(await leakedBrokerObjects(tag)), ...(await leakedDatabases(tag))];
    if (!leaks.length) return;
    // vitest only logs an error thrown here; the exit code is what CI reads.
    process.exitCode = 1;
    throw new Error(`the test run left ${leaks.length} object(s) behind (now deleted): ${leaks.slice(0, 20).join(', ')}`);
  };
}

async function rabbitmqctl(...args: string[]): Promise<string[] | undefined> {
  try {
    const { stdout } = await run('rabbitmqctl', ['-q', ...args], { timeout: 30_000 });
    return stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && l !== 'name');
  } catch {
    return undefined; // not installed, or this user may not talk to the broker's node: nothing to check
  }
}

async function leakedBrokerObjects(tag: string): Promise<string[]> {
  const mark = `_${tag}_`;
  const queues = (await rabbitmqctl('list_queues', 'name'))?.filter((q) => q.includes(mark)) ?? [];
  const exchanges = (await rabbitmqctl('list_exchanges', 'name'))?.filter((e) => e.includes(mark)) ?? [];
  if (queues.length || exchanges.length) await deleteBrokerObjects(queues, exchanges);
  return [...queues.map((q) => `queue ${q}`), ...exchanges.map((e) => `exchange ${e}`)];
}

async function leakedDatabases(tag: string): Promise<string[]> {
  const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`%\\_${tag}\\_%`]);
    for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    return rows.map((r) => `database ${r.datname}`);
  } finally {
    await admin.end();
  }
}
