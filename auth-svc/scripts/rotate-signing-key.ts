// Rotates the JWT signing key: npx tsx auth-svc/scripts/rotate-signing-key.ts [--wait <seconds>]
// The new key is published first and only signs after --wait seconds (default 60): verifiers
// refetch an unknown kid at most every 30 s (shared/src/auth/jwt.ts cooldown), so by then all of
// them can load it.
import { runMain } from '@mana/shared';
import { activateSigningKey, stageSigningKey } from '../src/domain/signing-keys';
import { JWKS_GRACE_SECONDS } from '../src/domain/tokens';
import { operatorContext } from './operator';

function waitSeconds(argv: string[]): number {
  const i = argv.indexOf('--wait');
  if (i < 0) return 60;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write('usage: rotate-signing-key.ts [--wait <seconds>]\n');
    process.exit(2);
  }
  return n;
}

void runMain(async () => {
  const wait = waitSeconds(process.argv.slice(2));
  const op = await operatorContext();
  try {
    const keyId = await stageSigningKey(await op.auth(), op.db, op.config);
    process.stdout.write(`staged signing key ${keyId} (published, not signing yet); activating in ${wait} s\n`);
    await new Promise((r) => setTimeout(r, wait * 1000));
    const r = await activateSigningKey(op.db, keyId);
    process.stdout.write(
      `new signing key ${keyId}\n` +
        `retired ${r.retiredKeyIds.length} key(s) (${r.retiredKeyIds.join(', ') || '-'}); they stay in the JWKS for ${JWKS_GRACE_SECONDS} s\n` +
        `pruned ${r.prunedKeyIds.length} expired key(s)\n`,
    );
  } finally {
    await op.finish();
  }
});
