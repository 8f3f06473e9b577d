#!/usr/bin/env bash
# Generates a drizzle-kit migration for one service and makes its CREATE SCHEMA idempotent:
# the migrator creates the service schema first (its migration table lives there).
# usage: scripts/db-generate.sh vault-svc [--name what_changed]
set -euo pipefail
svc=$1; shift
cd "$(dirname "$0")/../$svc"
npx drizzle-kit generate --config drizzle.config.ts "$@"
sed -i -E 's/^CREATE SCHEMA "([a-z_]+)";/CREATE SCHEMA IF NOT EXISTS "\1";/' drizzle/*.sql
