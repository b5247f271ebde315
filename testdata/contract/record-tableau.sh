#!/usr/bin/env bash
# Records a Tableau contract case's http/ folder from a site fixture, through the local
# Tableau-speaking test server (as scripts/record-demo.sh does for the demo). The case's config
# is used as it is, pointed at the server, recording instead of replaying.
#
#   testdata/contract/record-tableau.sh CASE SITE_FIXTURE PAT_NAME PAT_SECRET
#   testdata/contract/record-tableau.sh tableau_snowflake testdata/tableau/snowflake.site.json sf-ci sf-ci-secret
#
# The PAT is the fixture's own (its "pats"); recordings keep no name or secret. Then review the
# case's snapshots: cargo test --locked contract && cargo insta review.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/listening.sh

[ $# -eq 4 ] || { sed -n '2,10p' "$0"; exit 2; }
case_dir=testdata/contract/$1 fixture=$2 pat_name=$3 pat_secret=$4
[ -f "$case_dir/autoexpose.yml" ] || { echo "$case_dir/autoexpose.yml: no such case"; exit 1; }

cargo build --quiet --locked --example tableau_server
cargo build --quiet --locked
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

target/debug/examples/tableau_server --fixture "$fixture" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
url="$(listening_url "$work/server.out" "$server_pid")"
[ -n "$url" ] || { echo "the test server did not start:"; cat "$work/server.log"; exit 1; }

# Same folder as the case (its relative paths hold), outputs into $work.
cfg=$case_dir/.record.autoexpose.yml
sed -e "s#^replay:.*##" \
    -e "s#server_url: .*#server_url: $url#" \
    -e "s#^database: .*#database: $work/record.db#" \
    -e "s#project_dir: .*#project_dir: $work/dbt#" \
    "$case_dir/autoexpose.yml" >"$cfg"
trap 'rm -f "$cfg"; cleanup' EXIT
name_env=$(sed -n 's/^ *token_name_env: *//p' "$cfg" | head -1)
secret_env=$(sed -n 's/^ *token_secret_env: *//p' "$cfg" | head -1)

rm -rf "$case_dir/http"
env "$name_env=$pat_name" "$secret_env=$pat_secret" target/debug/autoexpose --record "$case_dir/http" extract --full --config "$cfg"
# A rerun, incremental: its listings are recorded beside the first run's (see record-demo.sh).
env "$name_env=$pat_name" "$secret_env=$pat_secret" target/debug/autoexpose --record "$case_dir/http" extract --config "$cfg"
echo "recorded $(find "$case_dir/http" -name '*.json' | wc -l) exchanges into $case_dir/http"
