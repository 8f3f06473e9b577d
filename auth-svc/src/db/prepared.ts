import type { Db } from './types';

/**
 * One prepared statement per database handle, built on first use: drizzle renders its SQL once instead of on
 * every call, and PostgreSQL parses and plans it once per connection. For the statements every sign-in or
 * session check runs; a statement prepared on the pool always runs outside any transaction.
 */
export function preparedStatement<T>(build: (db: Db) => T): (db: Db) => T {
  const statements = new WeakMap<Db, T>();
  return (db) => {
    let statement = statements.get(db);
    if (statement === undefined) {
      statement = build(db);
      statements.set(db, statement);
    }
    return statement;
  };
}
