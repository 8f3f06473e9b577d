import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Logger } from 'pino';
import type { OutboxRelay } from '@mana/shared';
import type * as tables from '../db/schema';
import { ownRecords, takeExportSlot } from './exports';
import { erasureStatus, startErasure, type ErasureActor, type ErasureSettings } from './erasure';
import { erasureStarted } from '../metrics';
import { publishedKeys } from './keys';
import { gather, type SourceFetch, type SourceName } from './sources';
import { summarize } from './summary';

export const EXPORT_FORMAT = 'mana-export/1';

export interface GdprDeps {
  db: NodePgDatabase<typeof tables>;
  relay?: OutboxRelay;
  logger: Logger;
  fetchers: Record<SourceName, SourceFetch>;
  sourceTimeoutMs: number;
  exportsPerHour: number;
  erasure: ErasureSettings;
}

/** What the routes call: each use case of the service, with its dependencies bound. */
export function gdprService(deps: GdprDeps) {
  const { db, erasure } = deps;
  return {
    async summary(userId: string) {
      const { sections, sources } = await gather(deps.fetchers, userId, deps.sourceTimeoutMs, deps.logger);
      return { userId, generatedAt: new Date().toISOString(), sections: summarize(sections), sources };
    },

    async exportDocument(userId: string) {
      const subject = erasure.secrets.subject(userId);
      await takeExportSlot(db, subject, deps.exportsPerHour);
      const { sections, sources } = await gather(deps.fetchers, userId, deps.sourceTimeoutMs, deps.logger);
      return {
        exportedAt: new Date().toISOString(),
        userId,
        format: EXPORT_FORMAT,
        sections: { ...sections, gdpr: await ownRecords(db, subject) },
        sources: { ...sources, gdpr: 'ok' as const },
      };
    },

    async erase(userId: string, actor: ErasureActor) {
      const started = await startErasure(db, erasure, userId, actor);
      if (started.created) {
        deps.relay?.kick();
        erasureStarted.emit(actor.origin);
      }
      deps.logger.info({ requestId: started.requestId, origin: actor.origin, joined: !started.created }, 'erasure requested');
      return { requestId: started.requestId, status: started.status, statusUrl: started.statusUrl };
    },

    status: (requestId: string, token: string) => erasureStatus(db, requestId, token),
    jwks: () => publishedKeys(db),
  };
}

export type GdprService = ReturnType<typeof gdprService>;
