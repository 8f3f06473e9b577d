// After the soak: what the services hold must agree with what the clients were told, and with each other.
import type pg from 'pg';
import { eventually } from '../../shared/src/testing';
import { WALLET_SUMS_SQL } from '../lib';
import { deadLetters } from './system';

export interface Consistency {
  wallets: number;
  /** Wallets whose ledger sum, lot remainders and cached balance disagree. */
  walletsDisagreeing: number;
  unbalancedTransactions: number;
  spendsInLedger: number;
  keyFetchesAudited: number;
  users: number;
  directoryRows: number;
  signupBonuses: number;
  /** Every registration reached admin-svc's directory and credits-svc's signup bonus (within 60 s). */
  eventsSettled: boolean;
  /** Messages in the run's dead-letter queues; undefined when rabbitmqctl may not be used. */
  deadLetters: number | undefined;
}

export async function checkConsistency(sql: pg.Pool, busPrefix: string): Promise<Consistency> {
  const counts = async () => {
    const { rows } = await sql.query<{ users: number; directory: number; bonuses: number }>(`
      select (select count(*)::int from auth."user") as users,
        (select count(*)::int from admin.directory_users) as directory,
        (select count(*)::int from credits.grants where source_key like 'signup:%') as bonuses`);
    return rows[0];
  };
  const settled = await eventually(
    async () => {
      const c = await counts();
      return c.directory === c.users && c.bonuses === c.users;
    },
    60_000,
    500,
  ).catch(() => false);
  const c = await counts();
  const { rows } = await sql.query<{ owners: number; disagree: number; unbalanced: number; spends: number; fetches: number }>(
    `${WALLET_SUMS_SQL},
      (select count(*)::int from vault.encryption_vault_audit where action = 'fetch' and status = 200) as fetches`,
  );
  const r = rows[0];
  return {
    wallets: r.owners,
    walletsDisagreeing: r.disagree,
    unbalancedTransactions: r.unbalanced,
    spendsInLedger: r.spends,
    keyFetchesAudited: r.fetches,
    users: c.users,
    directoryRows: c.directory,
    signupBonuses: c.bonuses,
    eventsSettled: settled,
    deadLetters: await deadLetters(busPrefix),
  };
}
