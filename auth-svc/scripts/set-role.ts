// Grants or removes the admin role: npx tsx auth-svc/scripts/set-role.ts admin@example.com admin|user
import { runMain } from '@mana/shared';

// The roles are listed here, not imported: a usage error answers at once, before the app's modules load.
const ROLES = ['user', 'admin'] as const;
type Role = (typeof ROLES)[number];
const isRole = (r: string | undefined): r is Role => (ROLES as readonly string[]).includes(r ?? '');

void runMain(async () => {
  const [email, role] = process.argv.slice(2);
  if (!email || !isRole(role)) {
    process.stderr.write(`usage: set-role.ts <email> <${ROLES.join('|')}>\n`);
    process.exit(2);
  }
  const [{ operatorContext }, { setRoleByEmail, ROLES: APP_ROLES }] = await Promise.all([
    import('./operator'),
    import('../src/domain/roles'),
  ]);
  if (APP_ROLES.join() !== ROLES.join()) throw new Error('set-role.ts: its role list differs from src/domain/roles.ts');
  const op = await operatorContext();
  try {
    const result = await setRoleByEmail(op.db, email, role);
    if (result.kind === 'not-found') {
      process.stderr.write(`no user with email ${email}\n`);
      process.exitCode = 1;
    } else if (result.kind === 'unchanged') process.stdout.write(`${email} already has role ${role}\n`);
    else
      process.stdout.write(
        `${email}: ${result.from} → ${role}` + (result.sessionsEnded ? ` (${result.sessionsEnded} sessions ended)` : '') + '\n',
      );
  } finally {
    await op.finish();
  }
});
