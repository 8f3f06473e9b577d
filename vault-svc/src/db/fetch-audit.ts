import pg from 'pg';
import type { Logger } from 'pino';
import { APP_ROLE, assertUserId, type VaultDb } from './scope';

export interface FetchAuditRow {
  userId: string;
  status: number;
  ip: string | null;
  userAgent: string | null;
  context: Record<string, unknown>;
}

interface Waiting {
  row: FetchAuditRow;
  resolve: (written: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for the audit rows of `GET /key`: each fetch waits until its row is committed before the key
 * leaves, but the rows of all fetches that arrive while one INSERT is in flight share the next INSERT.
 * At low load every row is written alone (one round trip); under load batches grow by themselves and the
 * per-fetch cost of auditing shrinks. No timer, no extra latency beyond the in-flight write.
 *
 * A row is written only while the user's vault exists (`vault.append_fetch_audit` takes it FOR KEY SHARE, so an
 * erasure's delete waits for the row or the row for the delete): `append` answers false when the vault was erased
 * after the fetch read it, and that key must not be answered.
 */
export class FetchAuditBatcher {
  private queue: Waiting[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;

  constructor(
    private readonly db: VaultDb,
    private readonly opts: { durable: boolean; maxBatch?: number; logger?: Logger },
  ) {}

  append(row: FetchAuditRow): Promise<boolean> {
    assertUserId(row.userId);
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing || this.scheduled) return;
    this.scheduled = true;
    // Rows arriving in the same tick share the first write.
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) this.schedule();
      });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0, this.opts.maxBatch ?? 500);
    if (batch.length === 0) return;
    const rows = batch.map(({ row }) => ({
      user_id: row.userId,
      status: row.status,
      ip: row.ip,
      user_agent: row.userAgent,
      context: row.context,
    }));
    const commit = this.opts.durable ? '' : ", set_config('synchronous_commit', 'off', true)";
    // One simple query = one implicit transaction: the role switch and the insert commit together.
    const text = `SELECT set_config('role', '${APP_ROLE}', true)${commit}; SELECT vault.append_fetch_audit(${pg.escapeLiteral(JSON.stringify(rows))}::jsonb) AS written`;
    try {
      const results = (await this.db.$client.query(text)) as unknown as pg.QueryResult<{ written: string[] }>[];
      const written = new Set(results[1]?.rows[0]?.written);
      for (const w of batch) w.resolve(written.has(w.row.userId));
    } catch (err) {
      this.opts.logger?.error({ err: (err as Error).message, rows: batch.length }, 'fetch audit batch failed');
      for (const w of batch) w.reject(err);
    }
  }

  /** Waits for every queued row to be written (shutdown). */
  async drain(): Promise<void> {
    while (this.flushing || this.scheduled || this.queue.length > 0) {
      if (this.flushing) await this.flushing;
      else await new Promise((r) => setImmediate(r));
    }
  }
}
