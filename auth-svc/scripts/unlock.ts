// Lifts a sign-in lockout (and forgets the failure count): npx tsx auth-svc/scripts/unlock.ts user@example.com
import { eq } from 'drizzle-orm';
import { runMain } from '@mana/shared';
import * as tables from '../src/db/schema';
import { lockoutKey, unlock } from '../src/domain/lockout';
import { recordSecurityEvent } from '../src/domain/security-events';
import { operatorContext } from './operator';

void runMain(async () => {
  const [email] = process.argv.slice(2);
  if (!email || !email.includes('@')) {
    process.stderr.write('usage: unlock.ts <email>\n');
    process.exit(2);
  }
  const op = await operatorContext();
  try {
    const wasLocked = await unlock(op.db, email);
    const [user] = await op.db
      .select({ id: tables.user.id })
      .from(tables.user)
      .where(eq(tables.user.email, lockoutKey(email)))
      .limit(1);
    await recordSecurityEvent(op.db, { userId: user?.id ?? null, type: 'account_unlocked', context: { by: 'operator', wasLocked } });
    process.stdout.write(wasLocked ? `${email}: unlocked\n` : `${email}: was not locked (failure count reset)\n`);
  } finally {
    await op.finish();
  }
});
