import type pg from 'pg';

export interface ScanHit {
  table: string;
  column: string;
  /** Rows whose column holds one of the needles. */
  rows: number;
}

const SYSTEM_SCHEMAS = ['pg_catalog', 'information_schema', 'pg_toast'];

/**
 * Searches every text-like column (text, varchar, char, json, jsonb, arrays of them) of every table in every
 * schema of the database for each needle (case-insensitive substring). What an erasure must leave no trace of.
 */
export async function scanForIdentifiers(sql: pg.Pool, needles: string[]): Promise<ScanHit[]> {
  const { rows: columns } = await sql.query<{ schema: string; table: string; column: string }>(
    `select c.table_schema as schema, c.table_name as table, c.column_name as column
       from information_schema.columns c
       join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where t.table_type = 'BASE TABLE'
        and c.table_schema <> all($1::text[]) and c.table_schema not like 'pg_temp%'
        and (c.data_type in ('text', 'character varying', 'character', 'json', 'jsonb')
             or (c.data_type = 'ARRAY' and c.udt_name in ('_text', '_varchar', '_bpchar', '_json', '_jsonb')))
      order by 1, 2, 3`,
    [SYSTEM_SCHEMAS],
  );
  const ident = (x: string) => `"${x.replace(/"/g, '""')}"`;
  const patterns = needles.map((n) => `%${n.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  const byTable = new Map<string, string[]>();
  for (const { schema, table, column } of columns) {
    const key = `${ident(schema)}.${ident(table)}`;
    byTable.set(key, [...(byTable.get(key) ?? []), column]);
  }
  const hits: ScanHit[] = [];
  // One query per table: a count per column of rows where the column holds any needle.
  for (const [table, cols] of byTable) {
    const counts = cols.map((c, i) => `count(*) filter (where ${ident(c)}::text ilike any($1::text[]))::int as c${i}`).join(', ');
    const { rows } = await sql.query<Record<string, number>>(`select ${counts} from ${table}`, [patterns]);
    cols.forEach((column, i) => {
      const n = rows[0]?.[`c${i}`] ?? 0;
      if (n > 0) hits.push({ table: table.replace(/"/g, ''), column, rows: n });
    });
  }
  return hits;
}

/** How many tables the scan covers (a sanity check that it looked at all schemas). */
export async function scannedSchemas(sql: pg.Pool): Promise<string[]> {
  const { rows } = await sql.query<{ schema: string }>(
    `select distinct table_schema as schema from information_schema.tables
      where table_type = 'BASE TABLE' and table_schema <> all($1::text[]) order by 1`,
    [SYSTEM_SCHEMAS],
  );
  return rows.map((r) => r.schema);
}
