import pg from 'pg';
import type { Logger } from 'pino';
import { serviceUrls } from '@mana/shared';
import type { Config } from '../config';

/** The sections of the summary and the export, in the order they appear. */
export const SOURCES = ['auth', 'vault', 'credits', 'admin', 'projects'] as const;
export type SourceName = (typeof SOURCES)[number];
export type SourceStatus = 'ok' | 'unavailable';
export type Section = Record<string, unknown>;

/** One source's view of a user; `null` from `projects` means "not configured". */
export type SourceFetch = (userId: string, signal: AbortSignal) => Promise<Section | null>;

export interface Gathered {
  sections: Record<SourceName, Section | null>;
  sources: Record<SourceName, SourceStatus | 'not_configured'>;
}

/** A source that is not there yet, or a user it does not know: 404 reads as "holds nothing". */
export class SourceError extends Error {}

function internalGet(urls: string, path: (id: string) => string, serviceKey: string): SourceFetch {
  const target = serviceUrls(urls);
  return async (userId, signal) => {
    const res = await target.fetch(path(encodeURIComponent(userId)), {
      headers: { 'x-service-key': serviceKey, accept: 'application/json' },
      signal,
    });
    if (res.status === 404) {
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      // A user the source never heard of is "nothing held"; an unknown route means the source is not there.
      if (body.error && body.error !== 'NOT_FOUND') return {};
    }
    if (!res.ok) throw new SourceError(`${res.status}`);
    return (await res.json()) as Section;
  };
}

export interface SourceSet {
  fetchers: Record<SourceName, SourceFetch>;
  close: () => Promise<void>;
}

/** The internal APIs the views come from, and the sync database when one is configured. */
export function createSources(config: Config, logger: Logger): SourceSet {
  const key = config.MANA_SERVICE_KEY;
  const sync = config.SYNC_DATABASE_URL
    ? new pg.Pool({ connectionString: config.SYNC_DATABASE_URL, max: 2, application_name: 'gdpr-svc' })
    : undefined;
  sync?.on('error', (err) => logger.warn({ err: err.message }, 'sync database pool error'));
  const projects: SourceFetch = async (userId) => {
    if (!sync) return null;
    const client = await sync.connect();
    try {
      await client.query('begin read only');
      await client.query(`set local statement_timeout = ${Math.max(1, config.GDPR_SOURCE_TIMEOUT_MS)}`);
      const { rows } = await client.query<{ app: string; count: number | string }>(config.SYNC_ENTITY_COUNT_SQL, [userId]);
      await client.query('commit');
      const apps: Record<string, number> = {};
      for (const r of rows) apps[String(r.app)] = Number(r.count);
      return { apps, total: Object.values(apps).reduce((a, b) => a + b, 0) };
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  };
  return {
    fetchers: {
      auth: internalGet(config.AUTH_SVC_URL, (id) => `/api/v1/internal/users/${id}/data`, key),
      vault: internalGet(config.VAULT_SVC_URL, (id) => `/api/v1/internal/vault/users/${id}`, key),
      credits: internalGet(config.CREDITS_SVC_URL, (id) => `/api/v1/internal/credits/users/${id}/data`, key),
      admin: internalGet(config.ADMIN_SVC_URL, (id) => `/api/v1/internal/admin/users/${id}/data`, key),
      projects,
    },
    close: async () => {
      await sync?.end();
    },
  };
}

/** Asks every source at once; one that fails or takes longer than `timeoutMs` is `unavailable`, its section null. */
export async function gather(
  fetchers: Record<SourceName, SourceFetch>,
  userId: string,
  timeoutMs: number,
  logger: Logger,
): Promise<Gathered> {
  const results = await Promise.all(
    SOURCES.map(async (name) => {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const section = await Promise.race([
          fetchers[name](userId, signal),
          new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('timeout')), { once: true })),
        ]);
        return { name, section, status: section === null ? ('not_configured' as const) : ('ok' as const) };
      } catch (err) {
        logger.warn({ source: name, err: (err as Error).message }, 'gdpr source unavailable');
        return { name, section: null, status: 'unavailable' as const };
      }
    }),
  );
  const out = { sections: {}, sources: {} } as Gathered;
  for (const r of results) {
    out.sections[r.name] = r.section;
    out.sources[r.name] = r.status;
  }
  return out;
}
