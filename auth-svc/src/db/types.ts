import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type * as tables from './schema';

export type Db = NodePgDatabase<typeof tables>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
/** Either the pool or an open transaction. */
export type Conn = Db | Tx;
