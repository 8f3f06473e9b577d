// Operator command: make a new Ed25519 key the one that signs erasure receipts.
//   npx tsx gdpr-svc/scripts/rotate-receipt-key.ts
// Reads the same environment as gdpr-svc (GDPR_SECRET seals the new private key). The old keys stay in
// /api/v1/gdpr/jwks.json, so every receipt they signed still verifies; running instances sign with the
// new key from their next receipt on.
import { createDatabase, runMain } from '@mana/shared';
import { loadServiceConfig } from '../src/config';
import * as tables from '../src/db/schema';
import { rotateSigningKey } from '../src/domain/keys';
import { deriveSecrets } from '../src/domain/secrets';

async function main(): Promise<void> {
  const config = loadServiceConfig();
  const url = config.GDPR_DATABASE_URL ?? config.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL (or GDPR_DATABASE_URL) is required');
  const database = createDatabase({ url, schema: tables, applicationName: 'gdpr-rotate-key', max: 1 });
  try {
    const { kid, retired } = await rotateSigningKey(database.db, deriveSecrets(config.GDPR_SECRET).sealKey);
    process.stdout.write(`active receipt key: ${kid}\n${retired.map((k) => `retired (still published): ${k}\n`).join('')}`);
  } finally {
    await database.close();
  }
}

void runMain(main);
