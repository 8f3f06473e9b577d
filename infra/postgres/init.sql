-- Runs once, when the PostgreSQL container initialises its data directory (docker-entrypoint-initdb.d).
-- Every service creates and migrates its own schema on start (migration table inside that schema), so
-- this only prepares the database and the roles the services' migrations refer to.

-- The database all schemas live in (one DATABASE_URL; a per-service URL may move a schema elsewhere).
SELECT 'CREATE DATABASE mana'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mana')\gexec

\connect mana

-- Extensions some migrations may use; harmless when unused.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS citext;

-- The schemas are created by each service's first migration (CREATE SCHEMA IF NOT EXISTS); creating them
-- here as well lets an operator grant per-schema rights before the first start.
CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS vault;
CREATE SCHEMA IF NOT EXISTS gdpr;
CREATE SCHEMA IF NOT EXISTS admin;
CREATE SCHEMA IF NOT EXISTS credits;
