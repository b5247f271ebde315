#!/usr/bin/env bash
# Parses testdata/dbt/snowflake_shop with dbt-snowflake (no connection: `dbt parse` renders
# relation names offline) and copies target/manifest.json into artifacts/.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo_root/scripts/dbt-venv.sh" >/dev/null
cd "$repo_root/testdata/dbt/snowflake_shop"
DBT_PROFILES_DIR=. DBT_SEND_ANONYMOUS_USAGE_STATS=false "$repo_root/.venv-dbt/bin/dbt" parse --no-partial-parse 2>&1 \
  | grep -Ev 'deprecated|no longer receives' || true
test -s target/manifest.json
mkdir -p artifacts
cp target/manifest.json artifacts/manifest.json
echo "wrote testdata/dbt/snowflake_shop/artifacts/manifest.json"
