#!/usr/bin/env bash
# Create (or reuse) .venv-dbt/ at the repo root with dbt-core, dbt-duckdb and dbt-snowflake 1.10
# from PyPI (dbt-snowflake only parses: `dbt parse` renders Snowflake relations offline).
# Idempotent: does nothing when .venv-dbt/bin/dbt already reports 1.10 with both adapters.
# Usage: scripts/dbt-venv.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv-dbt"
dbt="$venv/bin/dbt"
python="${PYTHON:-python3}"

# dbt-core 1.12 does not install offline (its parser wheel comes from GitHub): keep the pins.
pins=("dbt-core==1.10.*" "dbt-duckdb==1.10.*" "dbt-snowflake==1.10.*")

dbt_is_110() {
    [[ -x "$dbt" ]] || return 1
    local out
    out="$(DBT_SEND_ANONYMOUS_USAGE_STATS=false "$dbt" --version 2>/dev/null)" || return 1
    # "Core:\n  - installed: 1.10.23" in the first lines of `dbt --version`.
    grep -Eq 'installed: *1\.10\.' <<<"$out" && grep -Eq -- '- duckdb: ' <<<"$out" && grep -Eq -- '- snowflake: ' <<<"$out"
}

if dbt_is_110; then
    echo "dbt 1.10 already installed"
else
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "creating $venv"
        "$python" -m venv "$venv"
    fi
    echo "installing ${pins[*]} into $venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "${pins[@]}"
    if ! dbt_is_110; then
        echo "error: $dbt does not report dbt-core 1.10 after install" >&2
        exit 1
    fi
fi

echo "dbt: $dbt"
DBT_SEND_ANONYMOUS_USAGE_STATS=false "$dbt" --version 2>/dev/null \
    | grep -Ev 'deprecated|no longer receives' | sed -n '1,12p' || true
