import pg from 'pg';

/**
 * Least privilege between services in PostgreSQL: each service logs in as its own role `<schema>_svc`,
 * which owns its schema (and so runs its own migrations) and has no right on any other schema.
 * `provisionServiceRoles` prepares that with an administrator's connection: `npm start`'s embedded
 * PostgreSQL, the test helpers, and (as SQL) infra/postgres/init.sql do the same.
 */
export const SERVICE_SCHEMAS = ['auth', 'vault', 'gdpr', 'admin', 'credits', 'gateway'] as const;
export type ServiceSchema = (typeof SERVICE_SCHEMAS)[number];

/** The variable each process reads its own URL from (falling back to DATABASE_URL). */
export const SERVICE_DATABASE_URL_VARS: Readonly<Record<ServiceSchema, string>> = {
  auth: 'AUTH_DATABASE_URL',
  vault: 'VAULT_DATABASE_URL',
  gdpr: 'GDPR_DATABASE_URL',
  admin: 'ADMIN_DATABASE_URL',
  credits: 'CREDITS_DATABASE_URL',
  gateway: 'GATEWAY_DATABASE_URL',
};

/**
 * Roles a service's own migrations create and switch to (`SET LOCAL ROLE`) for row-level security. A
 * service's login role may not create roles (CREATEROLE would let it grant itself any role), so the
 * administrator creates them and makes the login role a member; the migrations then find them.
 */
const SWITCH_ROLES: Readonly<Partial<Record<ServiceSchema, readonly string[]>>> = {
  vault: ['vault_app', 'vault_maint'],
  credits: ['credits_app', 'credits_maint'],
  admin: ['admin_app', 'admin_maint'],
};

/** Extensions a migration creates; a service role may not, so the administrator does first. */
const EXTENSIONS: Readonly<Partial<Record<ServiceSchema, readonly string[]>>> = { admin: ['pg_trgm'] };

export const serviceRole = (schema: ServiceSchema): string => `${schema}_svc`;

export interface ProvisionOptions {
  /** An administrator (superuser, or CREATEROLE and owner of the database) connected to the target database. */
  adminUrl: string;
  schemas?: readonly ServiceSchema[];
  /** Passwords per service role; without one an existing role keeps its own (a new one has none: trust or peer only). */
  passwords?: Partial<Record<ServiceSchema, string>>;
}

/**
 * Creates (idempotently) each service's login role, its switch roles and its schema owned by it; a schema
 * that exists under another owner (a database migrated before roles existed) is handed over with every
 * object its previous owner had in it. Roles are cluster-wide and test files provision concurrently:
 * races are retried. Returns each service's URL (the admin URL with the role as user).
 */
export async function provisionServiceRoles(opts: ProvisionOptions): Promise<Record<ServiceSchema, string>> {
  const schemas = opts.schemas ?? SERVICE_SCHEMAS;
  const client = new pg.Client({ connectionString: opts.adminUrl });
  await client.connect();
  try {
    for (const schema of schemas) await retryRaces(() => provisionOne(client, schema, opts.passwords?.[schema]));
  } finally {
    await client.end();
  }
  const urls = {} as Record<ServiceSchema, string>;
  for (const schema of SERVICE_SCHEMAS) urls[schema] = serviceUrl(opts.adminUrl, schema, opts.passwords?.[schema]);
  return urls;
}

/** The admin URL with a service's role (and password) as the user. */
export function serviceUrl(adminUrl: string, schema: ServiceSchema, password?: string): string {
  const url = new URL(adminUrl);
  url.username = serviceRole(schema);
  url.password = password ? encodeURIComponent(password) : '';
  return url.toString();
}

async function provisionOne(client: pg.Client, schema: ServiceSchema, password?: string): Promise<void> {
  const role = serviceRole(schema);
  const id = (name: string) => client.escapeIdentifier(name);
  await ensureRole(client, role, 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION');
  // Without a password the role keeps what it has (tests share roles across files; trust needs none).
  if (password) await client.query(`ALTER ROLE ${id(role)} PASSWORD ${client.escapeLiteral(password)}`);
  for (const extra of SWITCH_ROLES[schema] ?? []) {
    await ensureRole(client, extra, 'NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT');
    const member = await client.query('select pg_has_role($1, $2, $3) as m', [role, extra, 'MEMBER']);
    if (!(member.rows[0] as { m: boolean }).m) await client.query(`GRANT ${id(extra)} TO ${id(role)}`);
  }
  // drizzle's migrator and every first migration run CREATE SCHEMA IF NOT EXISTS, which PostgreSQL checks
  // against CREATE on the database before it looks for the schema: the role may create schemas (of its
  // own), never use another's.
  await client.query(`GRANT CONNECT, CREATE ON DATABASE ${id(await currentDatabase(client))} TO ${id(role)}`);
  for (const ext of EXTENSIONS[schema] ?? []) await client.query(`CREATE EXTENSION IF NOT EXISTS ${id(ext)}`);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${id(schema)} AUTHORIZATION ${id(role)}`);
  // The migrations hand their SECURITY DEFINER functions to the `_maint` role; a new owner needs CREATE on
  // the schema (superusers skipped that check). Only the service's login role can become that role.
  for (const extra of SWITCH_ROLES[schema] ?? [])
    if (extra.endsWith('_maint')) await client.query(`GRANT USAGE, CREATE ON SCHEMA ${id(schema)} TO ${id(extra)}`);
  const owner = await client.query('select nspowner::regrole::text as owner from pg_namespace where nspname = $1', [schema]);
  const previous = (owner.rows[0] as { owner: string } | undefined)?.owner;
  if (previous && previous !== role) await handOver(client, schema, previous, role);
}

async function currentDatabase(client: pg.Client): Promise<string> {
  return ((await client.query('select current_database() as d')).rows[0] as { d: string }).d;
}

/** Creates the role if missing; one that exists with more power than a service role may have is refused. */
async function ensureRole(client: pg.Client, role: string, attributes: string): Promise<void> {
  const found = await client.query<{ risky: boolean }>(
    'select rolsuper or rolcreaterole or rolbypassrls or rolreplication as risky from pg_roles where rolname = $1',
    [role],
  );
  if (found.rowCount === 0) await client.query(`CREATE ROLE ${client.escapeIdentifier(role)} ${attributes}`);
  else if (found.rows[0]?.risky)
    throw new Error(`role ${role} exists with SUPERUSER, CREATEROLE, BYPASSRLS or REPLICATION: a service role must have none`);
}

/**
 * Gives the schema and what `previous` owned in it to `role`: tables (their sequences follow), views,
 * standalone sequences, functions and types. Objects of other owners (the `_maint` roles' SECURITY
 * DEFINER functions) stay theirs.
 */
async function handOver(client: pg.Client, schema: string, previous: string, role: string): Promise<void> {
  await client.query(
    `DO $$
     DECLARE r record;
     BEGIN
       EXECUTE format('ALTER SCHEMA %I OWNER TO %I', ${client.escapeLiteral(schema)}, ${client.escapeLiteral(role)});
       FOR r IN
         SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ${client.escapeLiteral(schema)} AND c.relowner = ${client.escapeLiteral(previous)}::regrole
            AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
            AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
       LOOP
         EXECUTE format('ALTER %s %s OWNER TO %I',
           CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.obj, ${client.escapeLiteral(role)});
       END LOOP;
       FOR r IN
         SELECT p.oid::regprocedure AS obj FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = ${client.escapeLiteral(schema)} AND p.proowner = ${client.escapeLiteral(previous)}::regrole
       LOOP
         EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.obj, ${client.escapeLiteral(role)});
       END LOOP;
       FOR r IN
         SELECT t.oid::regtype AS obj FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE n.nspname = ${client.escapeLiteral(schema)} AND t.typowner = ${client.escapeLiteral(previous)}::regrole
            AND t.typtype IN ('e', 'd') AND t.typrelid = 0
       LOOP
         EXECUTE format('ALTER TYPE %s OWNER TO %I', r.obj, ${client.escapeLiteral(role)});
       END LOOP;
     END $$`,
  );
}

/** Concurrent provisioners (test files) race on cluster-wide catalogs: a lost race is simply retried. */
async function retryRaces(fn: () => Promise<void>): Promise<void> {
  const RACES = new Set(['23505', '42710', 'XX000', '40001', '40P01']);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (attempt >= 5 || !RACES.has(code)) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50));
    }
  }
}
