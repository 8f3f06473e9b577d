// Lifts a sign-in lockout (and forgets the failure count): npx tsx auth-svc/scripts/unlock.ts user@example.com
import { runMain } from '@mana/shared';

void runMain(async () => {
  const [email] = process.argv.slice(2);
  if (!email || !email.includes('@')) {
    process.stderr.write('usage: unlock.ts <email>\n');
    process.exit(2);
  }
  // Loaded after the usage check, so a usage error answers at once.
  const [{ eq }, tables, { lockoutKey, unlock }, { recordSecurityEvent }, { operatorContext }] = await Promise.all([
    import('drizzle-orm'),
    import('../src/db/schema'),
    import('../src/domain/lockout'),
    import('../src/domain/security-events'),
    import('./operator'),
  ]);
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
