#!/usr/bin/env bash
# Re-records the demo Tableau site (testdata/http/demo) from the site fixture, through the
# local Tableau-speaking test server. Run after changing testdata/tableau/demo.site.json or the
# queries autoexpose sends. The server is ours: started here, stopped here by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

fixture=${1:-testdata/tableau/demo.site.json}
out=testdata/http/demo

cargo build --quiet --example tableau_server
# AUTOEXPOSE_BIN=target/debug/autoexpose records with another build (the release one is built
# otherwise).
bin=${AUTOEXPOSE_BIN:-target/release/autoexpose}
[ -n "${AUTOEXPOSE_BIN:-}" ] || cargo build --quiet --release

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

target/debug/examples/tableau_server --fixture "$fixture" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$work/server.out" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$url" ] || { echo "the test server did not start:"; cat "$work/server.log"; exit 1; }

# The demo config, pointed at the local server, recording instead of replaying.
sed -e "s#^replay:.*##" \
    -e "s#server_url: .*#server_url: $url#" \
    -e "s#\.\./\.\./#$PWD/#g" \
    -e "s#^database: .*#database: $work/record.db#" \
    examples/demo/autoexpose.yml >"$work/autoexpose.yml"

rm -rf "$out"
TABLEAU_TOKEN_NAME=autoexpose-demo TABLEAU_TOKEN_SECRET=demo-pat-secret \
  "$bin" --record "$out" extract --config "$work/autoexpose.yml"
echo "recorded $(find "$out" -name '*.json' | wc -l) exchanges into $out"
