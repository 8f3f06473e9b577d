// Operator command: open erasure requests, and asking their missing participants again now.
//   npx tsx gdpr-svc/scripts/erasures.ts list
//   npx tsx gdpr-svc/scripts/erasures.ts redrive [requestId…]    (no id: every open request)
// Reads the same environment as gdpr-svc. A re-drive writes user.erasure.requested.v1 (same requestId) to
// gdpr-svc's outbox; a running gdpr-svc relays it within a second. Participants that already answered
// repeat their answer; the others erase now. Prints no user id.
import { createDatabase, runMain } from '@mana/shared';
import { loadServiceConfig } from '../src/config';
import * as tables from '../src/db/schema';
import { listOpen, redriveDue } from '../src/domain/redrive';

const say = (line: string) => process.stdout.write(`${line}\n`);
const USAGE = 'usage: erasures.ts list | redrive [requestId…]';

async function main(): Promise<void> {
  const [command, ...ids] = process.argv.slice(2);
  if (command !== 'list' && command !== 'redrive') throw new Error(USAGE);
  const config = loadServiceConfig();
  const url = config.GDPR_DATABASE_URL ?? config.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL (or GDPR_DATABASE_URL) is required');
  const database = createDatabase({ url, schema: tables, applicationName: 'gdpr-erasures', max: 2 });
  try {
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
