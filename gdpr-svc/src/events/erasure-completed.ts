import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Logger } from 'pino';
import { consumeOnce, type EventBus } from '@mana/shared';
import * as tables from '../db/schema';
import { completeErasure, recordAnswer, type Tx } from '../domain/erasure';
import { activeSigningKey } from '../domain/keys';

export const CONSUMER = 'gdpr.erasure-completed';

export interface ErasureCompletedDeps {
  db: NodePgDatabase<typeof tables>;
  bus: EventBus;
  sealKey: Buffer;
  /** `iss` of the receipts. */
  issuer: string;
  logger: Logger;
}

/**
 * `user.erasure.completed.v1` → the participant's first answer is recorded; the last one closes the request
 * and signs the receipt, in the same transaction.
 */
export async function subscribeErasureCompleted(deps: ErasureCompletedDeps): Promise<void> {
  await deps.bus.subscribe({
    queue: 'gdpr',
    bindings: ['user.erasure.completed.v1'],
    handler: async (event) => {
      if (event.type !== 'user.erasure.completed.v1') return;
      const answer = event.data;
      const key = await activeSigningKey(deps.db, deps.sealKey);
      let outcome: Awaited<ReturnType<typeof recordAnswer>> | undefined;
      await consumeOnce(deps.db, tables.processedMessages, CONSUMER, event.id, async (anyTx) => {
        const tx = anyTx as Tx;
        outcome = await recordAnswer(tx, answer);
        if (outcome === 'all-answered') await completeErasure(tx, answer.requestId, key, deps.issuer);
      });
      deps.logger.info({ requestId: answer.requestId, service: answer.service, outcome: outcome ?? 'redelivered' }, 'erasure answer');
    },
  });
}
