// Rebuilds the admin directory from auth-svc: npx tsx admin-svc/scripts/resync.ts
// (first deployment over an existing database, or after a bug). Prints what it added, changed and removed.
import { fileURLToPath } from 'node:url';
import { createDatabase, createLogger, runMain, runMigrations } from '@mana/shared';
import { loadServiceConfig } from '../src/config';
import * as tables from '../src/db/schema';
import { adminDeps } from '../src/deps';
import { resyncDirectory } from '../src/domain/resync';

void runMain(async () => {
  const config = loadServiceConfig();
  const logger = createLogger('admin-resync', config.LOG_LEVEL);
  const database = createDatabase({
    url: config.ADMIN_DATABASE_URL ?? config.DATABASE_URL ?? '',
    schema: tables,
    logger,
    applicationName: 'admin-resync',
  });
  try {
    await runMigrations(database.pool, { folder: fileURLToPath(new URL('../drizzle', import.meta.url)), schema: 'admin', logger });
    const deps = adminDeps(config, database.db, logger);
    const report = await resyncDirectory(database.db, deps.auth, {
      defaultTier: config.ACCESS_TIERS[0] ?? 'public',
      actorId: 'operator',
      pseudonymSecret: deps.pseudonymSecret,
    });
    process.stdout.write(
      `directory resync: ${report.added} added, ${report.changed} changed, ${report.removed} removed (${report.total} users in auth-svc)\n`,
    );
  } finally {
    await database.close();
  }
});
