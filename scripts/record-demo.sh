#!/usr/bin/env bash
# Re-records the demo Tableau site and Power BI tenant (testdata/http/demo) from their fixtures,
# through the local Tableau- and Power BI-speaking test servers. Run after changing
# testdata/tableau/demo.site.json, testdata/powerbi/demo.tenant.json or the requests autoexpose
# sends. The servers are ours: started here, stopped here by their PIDs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/listening.sh

fixture=${1:-testdata/tableau/demo.site.json}
pbi_fixture=${2:-testdata/powerbi/demo.tenant.json}
out=testdata/http/demo

cargo build --quiet --example tableau_server --example powerbi_server
# AUTOEXPOSE_BIN=target/debug/autoexpose records with another build (the release one is built
# otherwise).
bin=${AUTOEXPOSE_BIN:-target/release/autoexpose}
[ -n "${AUTOEXPOSE_BIN:-}" ] || cargo build --quiet --release

work=$(mktemp -d)
server_pid=
pbi_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$pbi_pid" ]; then kill "$pbi_pid" 2>/dev/null || true; wait "$pbi_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

target/debug/examples/tableau_server --fixture "$fixture" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
url="$(listening_url "$work/server.out" "$server_pid")"
[ -n "$url" ] || { echo "the test server did not start:"; cat "$work/server.log"; exit 1; }

# A fixed port: the scan's Location (an absolute URL) is recorded, and so stays the same.
target/debug/examples/powerbi_server --fixture "$pbi_fixture" --port "${PBI_PORT:-47813}" --quiet >"$work/pbi.out" 2>"$work/pbi.log" &
pbi_pid=$!
pbi_url="$(listening_url "$work/pbi.out" "$pbi_pid")"
[ -n "$pbi_url" ] || { echo "the Power BI test server did not start:"; cat "$work/pbi.log"; exit 1; }

# The demo config, pointed at the local server, recording instead of replaying.
sed -e "s#^replay:.*##" \
    -e "s#server_url: .*#server_url: $url#" \
    -e "s#api_url: .*#api_url: $pbi_url#" \
    -e "s#login_url: .*#login_url: $pbi_url#" \
    -e "s#\.\./\.\./#$PWD/#g" \
    -e "s#^database: .*#database: $work/record.db#" \
    examples/demo/autoexpose.yml >"$work/autoexpose.yml"

rm -rf "$out"
# The fixtures' own invented credentials; recordings keep none of them.
TABLEAU_TOKEN_NAME=autoexpose-demo TABLEAU_TOKEN_SECRET=demo-pat-secret \
POWERBI_CLIENT_ID=de300000-0000-4000-8000-0000000c11e7 POWERBI_CLIENT_SECRET=demo-powerbi-client-secret \
  "$bin" --record "$out" extract --full --config "$work/autoexpose.yml"
# And a rerun on the same database, incremental: the Tableau listings it sends (nothing
# changed, so nothing else) join the first run's, so the demo replays a second time too.
# Only Tableau's: Power BI scans in full again, under a new scan id (its last extraction is less than
# 30 minutes old, too young for modifiedSince; and replays of Power BI are always full, as a
# modifiedSince of the run's clock has no recording).
TABLEAU_TOKEN_NAME=autoexpose-demo TABLEAU_TOKEN_SECRET=demo-pat-secret \
POWERBI_CLIENT_ID=de300000-0000-4000-8000-0000000c11e7 POWERBI_CLIENT_SECRET=demo-powerbi-client-secret \
  "$bin" --record "$work/rerun" extract --config "$work/autoexpose.yml"
cp -n "$work"/rerun/demo/*.json "$out/demo/"
echo "recorded $(find "$out" -name '*.json' | wc -l) exchanges into $out"
