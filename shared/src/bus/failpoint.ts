/** The named points where a chaos test can make a process die (`MANA_FAILPOINT=<name>`). */
export type FailpointName = 'outbox.after-publish' | 'erasure.before-ack';

const armed = () => process.env.NODE_ENV === 'test';

/**
 * SIGKILLs this process at `name` when `MANA_FAILPOINT` names it, so a chaos test can die exactly between two
 * steps (published but not marked, committed but not acknowledged) instead of by chance. Armed only when
 * NODE_ENV is `test`; anywhere else (production, or NODE_ENV unset) the variable is ignored with a warning.
 */
export function failpoint(name: FailpointName): void {
  if (armed() && process.env.MANA_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

/** The `MANA_FAILPOINT` set where it is ignored (the outbox relay warns about it when it starts). */
export const ignoredFailpoint = (): string | undefined => (armed() ? undefined : process.env.MANA_FAILPOINT || undefined);
