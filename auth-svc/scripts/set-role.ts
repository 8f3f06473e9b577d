// Grants or removes the admin role: npx tsx auth-svc/scripts/set-role.ts admin@example.com admin|user
import { runMain } from '@mana/shared';
import { ROLES, setRoleByEmail, type Role } from '../src/domain/roles';
import { operatorContext } from './operator';

const isRole = (r: string | undefined): r is Role => (ROLES as readonly string[]).includes(r ?? '');

void runMain(async () => {
  const [email, role] = process.argv.slice(2);
  if (!email || !isRole(role)) {
    process.stderr.write(`usage: set-role.ts <email> <${ROLES.join('|')}>\n`);
    process.exit(2);
  }
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
