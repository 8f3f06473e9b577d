import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import { withAppRole, withOwnerScope, type CreditsDb, type Owner } from '../db/scope';
import { expireLots, openWallet, saveWallet, type LedgerPolicy } from './ledger';
import { expireHold } from './reservations';

const isOwner = (o: string): o is Owner => /^(user|org):/.test(o);

/**
 * Releases expired holds and moves expired lots to breakage for wallets nobody reads. Safe with several
 * instances: candidates come from a narrow SECURITY DEFINER function, and each one is handled under its
 * wallet's row lock with its state checked again, so two sweepers never resolve the same hold twice.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: CreditsDb,
    private readonly policy: () => LedgerPolicy,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.sweep().then(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; returns how many holds and wallets it changed. */
  async sweep(): Promise<{ holds: number; wallets: number }> {
    let holds = 0;
    let walletsChanged = 0;
    try {
      const expired = await withAppRole(this.db, (tx) =>
        tx.execute<{ id: string; owner: string }>(sql`select id, owner from credits.expired_reservations(100)`),
      );
      for (const { id, owner } of expired.rows) {
        if (!isOwner(owner)) continue;
        if (await withOwnerScope(this.db, owner, (tx) => expireHold(tx, owner, id, this.policy()))) holds++;
      }
      const stale = await withAppRole(this.db, (tx) =>
        tx.execute<{ owner: string }>(sql`select owner from credits.owners_with_expired_grants(100)`),
      );
      for (const { owner } of stale.rows) {
        if (!isOwner(owner)) continue;
        const changed = await withOwnerScope(this.db, owner, async (tx) => {
          // Erased since it was listed: nothing left to expire, and no wallet is made for it.
          const w = await openWallet(tx, owner, this.policy());
          if (!w) return false;
          const n = await expireLots(tx, w, this.policy().now);
          if (n > 0) await saveWallet(tx, w);
          return n > 0;
        });
        if (changed) walletsChanged++;
      }
      if (holds + walletsChanged > 0) this.logger.info({ holds, wallets: walletsChanged }, 'sweep released expired holds and lots');
    } catch (err) {
      this.logger.error({ err }, 'sweep failed');
    }
    return { holds, wallets: walletsChanged };
  }
}
