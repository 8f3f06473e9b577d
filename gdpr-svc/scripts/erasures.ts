// Operator command: open erasure requests, and asking their missing participants again now.
//   npx tsx gdpr-svc/scripts/erasures.ts list
//   npx tsx gdpr-svc/scripts/erasures.ts redrive [requestId…]    (no id: every open request)
//   npx tsx gdpr-svc/scripts/erasures.ts replay --since <backup time> --ids-file <file>
//     after restoring a participant's schema: every user id of the file (one a line, taken from the restored
//     schema) erased at or after the backup time is asked again under its original requestId (docs/OPERATIONS.md).
// Reads the same environment as gdpr-svc. A re-drive writes user.erasure.requested.v1 (same requestId) to
// gdpr-svc's outbox; a running gdpr-svc relays it within a second. Participants that already answered
// repeat their answer; the others erase now. Prints no user id.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createDatabase, runMain } from '@mana/shared';
import { loadServiceConfig } from '../src/config';
import * as tables from '../src/db/schema';
import { listOpen, redriveDue } from '../src/domain/redrive';
import { replayCompletedErasures } from '../src/domain/replay';
import { deriveSecrets } from '../src/domain/secrets';

const say = (line: string) => process.stdout.write(`${line}\n`);
const USAGE = 'usage: erasures.ts list | redrive [requestId…] | replay --since <ISO time> --ids-file <file>';

function replayArgs(args: string[]): { since: Date; ids: string[] } {
  const { values } = parseArgs({ args, options: { since: { type: 'string' }, 'ids-file': { type: 'string' } } });
  const since = new Date(values.since ?? '');
  if (!values.since || Number.isNaN(since.getTime())) throw new Error(`--since must be an ISO time (${USAGE})`);
  if (!values['ids-file']) throw new Error(`--ids-file is required (${USAGE})`);
  const ids = readFileSync(values['ids-file'], 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return { since, ids };
}

async function main(): Promise<void> {
  const [command, ...ids] = process.argv.slice(2);
  if (command !== 'list' && command !== 'redrive' && command !== 'replay') throw new Error(USAGE);
  const replay = command === 'replay' ? replayArgs(ids) : undefined;
  const config = loadServiceConfig();
  const url = config.GDPR_DATABASE_URL ?? config.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL (or GDPR_DATABASE_URL) is required');
  const database = createDatabase({ url, schema: tables, applicationName: 'gdpr-erasures', max: 2 });
  try {
    if (replay) {
      const asked = await replayCompletedErasures(database.db, deriveSecrets(config.GDPR_SECRET), replay.ids, replay.since);
      for (const id of asked) say(`asked again: ${id}`);
      say(`replayed ${asked.length} erasure(s) completed since ${replay.since.toISOString()} (${replay.ids.length} user id(s) checked)`);
      return;
    }
    if (command === 'list') {
      const open = await listOpen(database.db);
      say(`${open.length} open erasure request(s)`);
      for (const r of open)
        say(
          `${r.requestId}  ${r.status.padEnd(11)}  ${r.origin.padEnd(5)}  requested ${r.requestedAt.toISOString()}  deadline ${r.deadlineAt.toISOString()}  attempts ${r.attempts}  missing: ${r.missing.join(',') || '-'}`,
        );
      return;
    }
    const asked = await redriveDue(database.db, config.ERASURE_RETRY_MS, {
      force: true,
      only: ids.length > 0 ? ids : undefined,
      limit: 10_000,
    });
    for (const r of asked) say(`asked again: ${r.requestId} (attempt ${r.attempts}, ${r.status}, missing: ${r.missing.join(',') || '-'})`);
    say(`re-drove ${asked.length} request(s)`);
    if (ids.length > 0 && asked.length < ids.length) {
      say('some ids are not open (completed, unknown, or being re-driven by a running instance right now)');
      process.exitCode = 1;
    }
  } finally {
    await database.close();
  }
}

void runMain(main);
