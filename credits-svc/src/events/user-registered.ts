import type { Logger } from 'pino';
import { consumeOnce, type EventBus } from '@mana/shared';
import { processedMessages } from '../db/schema';
import { enterOwnerScope, userOwner, type CreditsDb, type Tx } from '../db/scope';
import { grantSignupBonus, type SignupOutcome } from '../domain/grants';
import type { LedgerPolicy } from '../domain/ledger';

export const SIGNUP_QUEUE = 'credits.user-registered';

export interface SignupDeps {
  db: CreditsDb;
  bus: EventBus;
  logger: Logger;
  /** Promo credits per new user (0 = none). */
  bonus: number;
  policy: () => LedgerPolicy;
}

/**
 * `user.registered.v1` → the signup bonus. Once per event id (processed_messages) and once per user
 * (the lot's source key `signup:<userId>`), so a redelivery or a re-published event grants nothing more.
 * An event for a user erased in the meantime is acknowledged and dropped (recorded as processed, nothing created).
 */
export async function subscribeUserRegistered(deps: SignupDeps): Promise<void> {
  await deps.bus.subscribe({
    queue: SIGNUP_QUEUE,
    bindings: ['user.registered.v1'],
    handler: async (event) => {
      if (event.type !== 'user.registered.v1') return;
      const { userId } = event.data;
      let outcome: SignupOutcome | 'duplicate' = 'duplicate';
      await consumeOnce(deps.db, processedMessages, SIGNUP_QUEUE, event.id, async (tx) => {
        const owner = userOwner(userId);
        await enterOwnerScope(tx, owner);
        outcome = await grantSignupBonus(tx as unknown as Tx, userId, owner, deps.bonus, deps.policy());
      });
      deps.logger.info({ eventId: event.id, outcome }, 'signup bonus handled');
    },
  });
}
