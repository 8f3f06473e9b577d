#!/usr/bin/env bash
# Generates a drizzle-kit migration for one service and makes its CREATE SCHEMA idempotent:
# the migrator creates the service schema first (its migration table lives there).
# usage: scripts/db-generate.sh vault-svc [--name what_changed]
set -euo pipefail
svc=${1:-}
if [[ -z "$svc" || ! -f "$(dirname "$0")/../$svc/drizzle.config.ts" ]]; then
  echo "usage: $0 <service folder with a drizzle.config.ts, e.g. vault-svc> [--name what_changed]" >&2
  exit 2
fi
shift
cd "$(dirname "$0")/../$svc"
npx drizzle-kit generate --config drizzle.config.ts "$@"
shopt -s nullglob
sql=(drizzle/*.sql)
if (( ${#sql[@]} )); then
  sed -i -E 's/^CREATE SCHEMA "([a-z_]+)";/CREATE SCHEMA IF NOT EXISTS "\1";/' "${sql[@]}"
fi
