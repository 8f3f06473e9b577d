-- Runs once, when the PostgreSQL container initialises its data directory (docker-entrypoint-initdb.d),
-- as the administrator (POSTGRES_USER). It prepares the database and one login role per service:
-- `<schema>_svc` owns its schema, runs its own migrations and has no right on any other schema
-- (least privilege; the same as `provisionServiceRoles` in shared/src/db/service-roles.ts, which the
-- embedded `npm start` and the tests use). Each service then gets its own URL, e.g.
--   AUTH_DATABASE_URL=postgres://auth_svc:<AUTH_DB_PASSWORD>@postgres:5432/mana
-- The passwords come from the container's environment (psql's \getenv, PostgreSQL 15+); none is
-- committed. A missing one stops the initialisation with an error.

\getenv auth_db_password AUTH_DB_PASSWORD
\getenv vault_db_password VAULT_DB_PASSWORD
\getenv gdpr_db_password GDPR_DB_PASSWORD
\getenv admin_db_password ADMIN_DB_PASSWORD
\getenv credits_db_password CREDITS_DB_PASSWORD
\getenv gateway_db_password GATEWAY_DB_PASSWORD

SELECT 'CREATE DATABASE mana'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mana')\gexec

\connect mana

-- Extensions the migrations use (a service role may not create them).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Login roles: no superuser, no CREATEROLE (it could grant itself any role), no BYPASSRLS.
CREATE ROLE auth_svc LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'auth_db_password';
CREATE ROLE vault_svc LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'vault_db_password';
CREATE ROLE gdpr_svc LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'gdpr_db_password';
CREATE ROLE admin_svc LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'admin_db_password';
CREATE ROLE credits_svc LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'credits_db_password';
CREATE ROLE gateway_svc LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'gateway_db_password';

-- The roles the migrations switch to for row-level security (SET LOCAL ROLE); a login role cannot create
-- them, so they exist before the first start and each service's login role is a member of its own.
CREATE ROLE vault_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE ROLE vault_maint NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE ROLE credits_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE ROLE credits_maint NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE ROLE admin_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE ROLE admin_maint NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
GRANT vault_app, vault_maint TO vault_svc;
GRANT credits_app, credits_maint TO credits_svc;
GRANT admin_app, admin_maint TO admin_svc;

-- drizzle's migrator runs CREATE SCHEMA IF NOT EXISTS, which needs CREATE on the database even when the
-- schema exists: the roles may create schemas of their own, never use another's.
GRANT CONNECT, CREATE ON DATABASE mana TO auth_svc, vault_svc, gdpr_svc, admin_svc, credits_svc, gateway_svc;

-- Each schema belongs to its service's role; nobody else has USAGE on it.
CREATE SCHEMA IF NOT EXISTS auth AUTHORIZATION auth_svc;
CREATE SCHEMA IF NOT EXISTS vault AUTHORIZATION vault_svc;
CREATE SCHEMA IF NOT EXISTS gdpr AUTHORIZATION gdpr_svc;
CREATE SCHEMA IF NOT EXISTS admin AUTHORIZATION admin_svc;
CREATE SCHEMA IF NOT EXISTS credits AUTHORIZATION credits_svc;
CREATE SCHEMA IF NOT EXISTS gateway AUTHORIZATION gateway_svc;

-- The migrations hand their SECURITY DEFINER functions to the `_maint` roles, which needs CREATE on the schema.
GRANT USAGE, CREATE ON SCHEMA vault TO vault_maint;
GRANT USAGE, CREATE ON SCHEMA credits TO credits_maint;
GRANT USAGE, CREATE ON SCHEMA admin TO admin_maint;
