import { consumeOnce } from '@mana/shared';
import { applyUnlessErased } from '../db/directory';
import { processedMessages } from '../db/schema';
import { enterAppRole } from '../db/scope';
import { pseudonymOf } from '../domain/pseudonym';
import type { ConsumerDeps } from './deps';

export const CONSUMER = 'admin.user-registered';

/** A new user enters the directory (with the first tier); redelivered or late, it changes nothing newer. */
export async function subscribeUserRegistered(deps: ConsumerDeps): Promise<void> {
  await deps.bus.subscribe({
    queue: CONSUMER,
    bindings: ['user.registered.v1'],
    handler: async (event) => {
      if (event.type !== 'user.registered.v1') return;
      const { userId, email, name } = event.data;
      await consumeOnce(deps.db, processedMessages, CONSUMER, event.id, async (tx) => {
        await enterAppRole(tx);
        await applyUnlessErased(
          tx,
          { userId, at: new Date(event.occurredAt), email, name: name ?? null },
          deps.defaultTier,
          pseudonymOf(deps.pseudonymSecret, userId),
        );
      });
    },
  });
}
