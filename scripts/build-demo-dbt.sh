#!/usr/bin/env bash
# Build the demo dbt project (testdata/dbt/demo) with dbt-duckdb and refresh the committed
# artifacts testdata/dbt/demo/artifacts/{manifest,run_results}.json.
#
# Needs .venv-dbt (scripts/dbt-venv.sh creates it). Starts from an empty DuckDB file each time,
# so the run is repeatable. Offline apart from dbt's own version check.
# Usage: scripts/build-demo-dbt.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
project="$repo_root/testdata/dbt/demo"
dbt="${DBT:-$repo_root/.venv-dbt/bin/dbt}"

if [[ ! -x "$dbt" ]]; then
    echo "error: $dbt not found; run scripts/dbt-venv.sh first" >&2
    exit 1
fi

export DBT_SEND_ANONYMOUS_USAGE_STATS=false
export DBT_USE_COLORS=false
export DBT_PROFILES_DIR="$project"
# The profile's DuckDB path (target/demo.duckdb) is relative to the working directory.
cd "$project"

# Run dbt, dropping the "This version of dbt is deprecated…" banner; keep dbt's exit code.
run_dbt() {
    echo "+ dbt $*"
    local status=0
    "$dbt" "$@" 2>&1 | sed -e '/This version of dbt is deprecated/d' || true
    status="${PIPESTATUS[0]}"
    if [[ "$status" -ne 0 ]]; then
        echo "error: dbt $1 failed with exit code $status" >&2
        exit "$status"
    fi
}

rm -f target/demo.duckdb target/demo.duckdb.wal target/partial_parse.msgpack

run_dbt deps
run_dbt build --no-partial-parse

mkdir -p artifacts
cp target/manifest.json artifacts/manifest.json
cp target/run_results.json artifacts/run_results.json
echo "copied manifest.json and run_results.json to ${project#"$repo_root"/}/artifacts/"
