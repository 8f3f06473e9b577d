import { MetricSignal, type ServiceMetrics } from '@mana/shared';
import type { VaultDb } from './db/scope';
import type { Keyring } from './domain/kek';
import { kekUsage } from './domain/rewrap';

/** Every GET /key answered: how the key was handed out (`server_wrapped`, `zero_knowledge`) or `refused`. */
export const keyFetched = new MetricSignal<[outcome: 'server_wrapped' | 'zero_knowledge' | 'refused']>();

/** How long the per-KEK vault counts (a scan of the vault table) are reused between scrapes. */
const KEK_USAGE_TTL_MS = 5 * 60_000;

export interface KekClock {
  /** When the active KEK was introduced (MANA_AUTH_KEK_ROTATED_AT); unknown → no age gauge. */
  rotatedAt?: Date;
}

/**
 * vault-svc's business metrics: key fetches by outcome, the active KEK's age (from MANA_AUTH_KEK_ROTATED_AT),
 * whether the all-zero development KEK is in use, and how many vaults each KEK still wraps (a rotation is
 * finished when only the active one wraps any). Returns the unsubscribe function.
 */
export function vaultMetrics(metrics: ServiceMetrics, db: VaultDb, keyring: Keyring, clock: KekClock): () => void {
  const fetches = metrics.counter('vault_key_fetches_total', 'Master-key fetches (GET /key) by outcome', ['outcome']);
  metrics.gauge('vault_kek_age_seconds', 'Time since the active KEK was introduced (MANA_AUTH_KEK_ROTATED_AT)', ['kek_id'], (g) => {
    g.reset();
    if (clock.rotatedAt) g.set({ kek_id: keyring.activeId }, (Date.now() - clock.rotatedAt.getTime()) / 1000);
  });
  metrics.gauge('vault_kek_dev_fallback', '1 when vaults are wrapped with the all-zero development KEK', [], (g) => {
    g.set(keyring.devFallback ? 1 : 0);
  });
  let usage: { at: number; rows: Promise<Array<{ kekId: string; vaults: number }>> } | undefined;
  metrics.gauge(
    'vault_vaults_by_kek',
    'Vaults whose master key is wrapped with each KEK (active="false": left to re-wrap)',
    ['kek_id', 'active'],
    async (g) => {
      if (!usage || Date.now() - usage.at > KEK_USAGE_TTL_MS) {
        const rows = kekUsage(db);
        usage = { at: Date.now(), rows };
        rows.catch(() => (usage = undefined));
      }
      const rows = await usage.rows;
      g.reset();
      for (const r of rows) g.set({ kek_id: r.kekId, active: String(r.kekId === keyring.activeId) }, r.vaults);
    },
  );
  return keyFetched.subscribe((outcome) => fetches.inc({ outcome }));
}
