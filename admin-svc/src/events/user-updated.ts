import { consumeOnce } from '@mana/shared';
import { applyUnlessErased } from '../db/directory';
import { processedMessages } from '../db/schema';
import { enterAppRole } from '../db/scope';
import { pseudonymOf } from '../domain/pseudonym';
import type { ConsumerDeps } from './deps';

export const CONSUMER = 'admin.user-updated';

/** Changed fields of a user; each is taken only if this event is newer than the one that last set it. */
export async function subscribeUserUpdated(deps: ConsumerDeps): Promise<void> {
  await deps.bus.subscribe({
    queue: CONSUMER,
    bindings: ['user.updated.v1'],
    handler: async (event) => {
      if (event.type !== 'user.updated.v1') return;
      const { userId, changes } = event.data;
      await consumeOnce(deps.db, processedMessages, CONSUMER, event.id, async (tx) => {
        await enterAppRole(tx);
        await applyUnlessErased(
          tx,
          { userId, at: new Date(event.occurredAt), ...changes },
          deps.defaultTier,
          pseudonymOf(deps.pseudonymSecret, userId),
        );
      });
    },
  });
}
