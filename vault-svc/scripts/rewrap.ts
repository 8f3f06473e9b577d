// Operator command: re-wrap every vault to the active KEK (MANA_AUTH_KEK_ACTIVE).
//   npx tsx vault-svc/scripts/rewrap.ts [--batch-size 100] [--status]
// Reads the same environment as vault-svc. Ctrl-C stops after the row in hand; run it again to resume.
// It never prints or stores a master key: each MK lives in memory between one unwrap and one wrap.
import { parseArgs } from 'node:util';
import { createDatabase, runMain } from '@mana/shared';
import { loadServiceConfig } from '../src/config';
import * as tables from '../src/db/schema';
import { vaultDb } from '../src/db/scope';
import { loadKeyring } from '../src/domain/kek';
import { kekUsage, rewrapAll } from '../src/domain/rewrap';

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'batch-size': { type: 'string', default: '100' }, status: { type: 'boolean', default: false } },
  });
  const batchSize = Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1000) throw new Error('--batch-size must be 1..1000');
  const config = loadServiceConfig();
  const keyring = loadKeyring(config, { warn: (msg: string) => say(`WARNING: ${msg}`) });
  const url = config.VAULT_DATABASE_URL ?? config.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL (or VAULT_DATABASE_URL) is required');
  const database = createDatabase({ url, schema: tables, applicationName: 'vault-rewrap', max: 2 });
  try {
    if (values.status) {
      say(`active KEK: ${keyring.activeId}`);
      for (const u of await kekUsage(vaultDb(database))) say(`  ${u.kekId}: ${u.vaults} vault(s)`);
      return;
    }
    const controller = new AbortController();
    let interrupts = 0;
    process.on('SIGINT', () => {
      interrupts += 1;
      if (interrupts > 1) process.exit(130);
      say('stopping after the current row (Ctrl-C again to quit at once)…');
      controller.abort();
    });
    say(`re-wrapping to active KEK ${keyring.activeId} (batch size ${batchSize})`);
    const result = await rewrapAll({
      db: vaultDb(database),
      keyring,
      batchSize,
      signal: controller.signal,
      onProgress: (p) => say(`progress: ${p.rewrapped + p.failed}/${p.total} (re-wrapped ${p.rewrapped}, failed ${p.failed})`),
    });
    say(
      result.stopped
        ? `stopped: re-wrapped ${result.rewrapped}; run again to resume`
        : `done: re-wrapped ${result.rewrapped}, failed ${result.failed}`,
    );
    for (const f of result.failures) say(`  failed: user ${f.userId}: ${f.code}`);
    for (const u of result.usage) say(`  ${u.kekId}: ${u.vaults} vault(s)${u.kekId === keyring.activeId ? ' (active)' : ''}`);
    for (const id of result.unused) say(`KEK ${id} is no longer used by any vault: it can be removed from MANA_AUTH_KEKS`);
    for (const id of result.missing) say(`KEK ${id} is used by vaults but not configured: add it back to MANA_AUTH_KEKS`);
    if (result.failed > 0 || result.missing.length > 0) process.exitCode = 1;
  } finally {
    await database.close();
  }
}

void runMain(main);
