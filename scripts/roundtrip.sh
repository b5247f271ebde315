#!/usr/bin/env bash
# The round trip CI runs: Tableau (the local test server, on a site fixture full of hostile
# workbook names), Power BI (the local Power BI server, on a tenant fixture full of hostile
# report names, testdata/powerbi/roundtrip.tenant.json) and an inventory file, all three in one
# config → `autoexpose run` → exposures YAML → a real `dbt parse` → compare dbt's manifest.json
# with what autoexpose meant to write and, for Power BI, with a hand-written expectation
# (testdata/powerbi/roundtrip.expected.json) (scripts/check-roundtrip.py). Then
# workbooks disappear from the site, and `autoexpose refresh --dry-run` runs after a second
# `dbt build` in which one model fails on purpose; then `autoexpose refresh --wait` for real,
# three times (due, inside the cadence, after it), checked against the Power BI server's
# request log, refresh_events and refresh_state (check-roundtrip.py refresh) and the
# expectation's hand-written "refresh" part. Last, a Snowflake-style project (dbt-snowflake,
# parse only) goes the same way.
#
# Works in a temp dir (a copy of testdata/dbt/demo and demo_utils); the repo is not touched
# apart from cargo's target/ and .venv-dbt/. The temp dir and the test server (stopped by its
# PID) go away on exit; KEEP_WORK=1 keeps the temp dir for a look.
# Usage: scripts/roundtrip.sh            (from any directory; exit 1 on any failed check)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
source "$repo/scripts/lib/listening.sh"

export DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_USE_COLORS=false DBT_PRINTER_WIDTH=120
# Only steps 8 and 8b turn active exposures on; `autoexpose run` must not refresh by itself.
unset DBT_ACTIVE_EXPOSURES DBT_ACTIVE_EXPOSURES_BUILD_AFTER
export TABLEAU_TOKEN_NAME=autoexpose-demo TABLEAU_TOKEN_SECRET=demo-pat-secret
# The principal of testdata/powerbi/roundtrip.tenant.json.
export PBI_CLIENT_ID=a11ce000-0000-4000-8000-0000000001c1 PBI_CLIENT_SECRET='roundtrip-pbi-secret~Value.7'

fixture=testdata/tableau/roundtrip.site.json
dbt="$repo/.venv-dbt/bin/dbt"
target_dir="${CARGO_TARGET_DIR:-target}"   # relative to the repo, as cargo takes it here
[[ "$target_dir" == /* ]] || target_dir="$repo/$target_dir"
ae="$target_dir/release/autoexpose"
server_bin="$target_dir/debug/examples/tableau_server"
pbi_server_bin="$target_dir/debug/examples/powerbi_server"
pbi_fixture=testdata/powerbi/roundtrip.tenant.json
pbi_expected=testdata/powerbi/roundtrip.expected.json
# Reports that leave the tenant in step 7: one "Revenue" of Finance, and every report of
# the workspace "Sales: {{ Ops }}".
pbi_gone_reports=7e900000-0000-4000-8000-000000000104
pbi_gone_workspace=5a1e0000-0000-4000-8000-000000000103
hostile_prefix=d0000000-0000-4000-8000-00000000f0   # luids of the hostile workbooks
# Workbooks that leave the site in step 7: two demo workbooks of Finance (Sales Overview,
# Margin Review), and every Marketing workbook.
gone_luids=d0000000-0000-4000-8000-000000000101,d0000000-0000-4000-8000-000000000106
gone_project=Marketing

work="$(mktemp -d "${TMPDIR:-/tmp}/autoexpose-roundtrip.XXXXXX")"
server_pid= pbi_pid=
cleanup() {
    local status=$?
    for pid in "$server_pid" "$pbi_pid"; do
        if [[ -n "$pid" ]]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ "${KEEP_WORK:-}" == 1 ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- bookkeeping: steps with timings, checks that fail without stopping the run -----------
t0=$EPOCHREALTIME
step_name= step_start=
timings=()
failures=()
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
end_step() {
    if [[ -n "$step_name" ]]; then
        timings+=("$(printf '%7ss  %s' "$(seconds_since "$step_start")" "$step_name")")
    fi
    step_name=
}
step() {
    end_step
    step_name=$1
    step_start=$EPOCHREALTIME
    printf '\n== %s\n' "$1"
}
fail() {
    echo "FAIL: $*"
    failures+=("$*")
}
die() {
    echo "error: $*" >&2
    exit 1
}
indent() { sed 's/^/    /'; }

# dbt inside the temp project (the DuckDB path in profiles.yml is relative to the cwd), its
# output in $work/<log>.log without the "This version of dbt is deprecated" banner, and shown.
# Returns dbt's exit status.
run_dbt() {
    local log="$work/$1.log"
    shift
    echo "+ dbt $*"
    local status=0
    (cd "$project" && DBT_PROFILES_DIR="$project" "$dbt" "$@") >"$log.raw" 2>&1 || status=$?
    grep -v 'This version of dbt is deprecated' "$log.raw" >"$log" || true
    indent <"$log"
    return "$status"
}

# `dbt parse`, failing on a non-zero exit or on any warning or error dbt prints (the demo
# projects parse clean, so any is about what autoexpose wrote). A dbt message is its
# timestamped line plus its continuation lines (the exposure-name deprecation names the
# exposure on its third line).
dbt_parse_check() {
    local log=$1 status=0
    run_dbt "$log" parse --no-partial-parse || status=$?
    if [[ "$status" -ne 0 ]]; then
        fail "dbt parse ($log) exited with $status"
    fi
    local bad
    bad="$(awk '
        function flush() {
            if (msg ~ /\[WARNING\]|Warning|WARN|Error|ERROR|[Dd]eprecat/) print msg
        }
        { gsub(/\033\[[0-9;]*m/, "") }   # colour codes, should dbt print any
        /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9] / { flush(); msg = $0; next }
        { msg = msg "\n" $0 }
        END { flush() }' "$work/$log.log")"
    if [[ -n "$bad" ]]; then
        echo "dbt warned or failed:"
        indent <<<"$bad"
        fail "dbt parse ($log) printed warnings/errors (above)"
    fi
}

start_server() {
    local site=$1 port=${2:-0}
    : >"$work/server.out"
    echo "--- server on $site" >>"$work/server.log"
    "$server_bin" --fixture "$site" --port "$port" >"$work/server.out" 2>>"$work/server.log" &
    server_pid=$!
    url="$(listening_url "$work/server.out" "$server_pid")"
    if [[ -z "$url" ]]; then
        tail -20 "$work/server.log" >&2
        die "the test server did not start on $site"
    fi
    echo "test server (pid $server_pid) on $url serving $site"
}

stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}

# The local Power BI server on a tenant fixture; its requests go to $work/pbi-server.log.
start_pbi_server() {
    local tenant=$1 port=${2:-0}
    : >"$work/pbi-server.out"
    "$pbi_server_bin" --fixture "$tenant" --port "$port" >"$work/pbi-server.out" 2>>"$work/pbi-server.log" &
    pbi_pid=$!
    pbi_url="$(listening_url "$work/pbi-server.out" "$pbi_pid")"
    if [[ -z "$pbi_url" ]]; then
        tail -20 "$work/pbi-server.log" >&2
        die "the Power BI test server did not start on $tenant"
    fi
    echo "Power BI test server (pid $pbi_pid) on $pbi_url serving $tenant"
}

stop_pbi_server() {
    if [[ -n "$pbi_pid" ]]; then
        kill "$pbi_pid" 2>/dev/null || true
        wait "$pbi_pid" 2>/dev/null || true
        pbi_pid=
    fi
}

write_config() {
    cat >"$config" <<EOF
# Written by scripts/roundtrip.sh: the demo config against the local test server, no replay.
database: autoexpose.db
dbt:
  project_dir: dbt/demo
  manifest: dbt/demo/target/manifest.json
  run_results: dbt/demo/target/run_results.json
tableau:
  - name: demo
    server_url: $url
    site: demo
    token_name_env: TABLEAU_TOKEN_NAME
    token_secret_env: TABLEAU_TOKEN_SECRET
    projects: [Finance, Marketing]
    page_size: 5
    database_aliases: {prod_demo: demo}
# The Power BI tenant, its workspaces by id (Finance, Sales & Ops, Sales: {{ Ops }}): Shared
# Models, not selected, is scanned only for the dataset a Finance report reads.
powerbi:
  - name: pbi
    tenant_id: 6f1c0000-0000-4000-8000-0000000001bb
    client_id_env: PBI_CLIENT_ID
    client_secret_env: PBI_CLIENT_SECRET
    workspaces:
      - 5a1e0000-0000-4000-8000-000000000101
      - 5a1e0000-0000-4000-8000-000000000102
      - 5a1e0000-0000-4000-8000-000000000103
    api_url: $pbi_url
    login_url: $pbi_url
    database_aliases: {prod_demo: demo}
    scan_poll_ms: 20
# Dashboards listed by hand (the inventory integration) beside the site: dbt parses theirs too.
inventory:
  - name: listed
    file: dashboards.yml
    database_aliases: {prod_demo: demo}
exposures:
  dir: models/imported_from_tableau
  maturity: medium
EOF
    cp "$repo/testdata/inventory/demo.dashboards.yml" "$work/dashboards.yml"
}

autoexpose_run() {
    local log="$work/$1.log" status=0
    echo "+ autoexpose run --config $config"
    "$ae" run --config "$config" >"$log" 2>&1 || status=$?
    indent <"$log"
    if [[ "$status" -ne 0 ]]; then
        die "autoexpose run ($1) exited with $status; nothing after it can be checked"
    fi
}

# check-roundtrip.py; on failure every mismatch line also goes into the final list.
check() {
    local label=$1 out="$work/check-$1.log" status=0
    shift
    echo "+ check-roundtrip.py $*"
    python3 "$repo/scripts/check-roundtrip.py" --manifest "$project/target/manifest.json" \
        --exposures-json "$work/exposures.json" --hand-written "$hand_name" "$@" >"$out" 2>&1 ||
        status=$?
    indent <"$out"
    if [[ "$status" -ne 0 ]]; then
        fail "check-roundtrip.py ($label) exited with $status:"
        while IFS= read -r line; do
            failures+=("    $line")
        done < <(grep '^MISMATCH' "$out" || tail -3 "$out")
    fi
}

# One line per YAML file of the exposures dir: name, inode, sha256 (to see what was rewritten).
files_state() {
    (cd "$expdir" && for f in *.yml; do
        if [[ -e "$f" ]]; then
            printf '%s %s %s\n' "$f" "$(stat -c %i "$f")" "$(sha256sum <"$f" | cut -c1-64)"
        fi
    done)
}

# ---- 1. tools ---------------------------------------------------------------------------
step "1. dbt venv, autoexpose (release) and the test servers"
bash scripts/dbt-venv.sh | indent
cargo build --locked --release --quiet
cargo build --locked --example tableau_server --example powerbi_server --quiet
[[ -x "$ae" && -x "$server_bin" && -x "$pbi_server_bin" && -x "$dbt" ]] ||
    die "missing $ae, $server_bin, $pbi_server_bin or $dbt"

# ---- 2. the dbt project, built ----------------------------------------------------------
step "2. copy the demo dbt project, dbt deps, dbt build"
mkdir -p "$work/dbt"
# Generated and local state stays behind: target/, dbt_packages/, logs/, and the exposures
# the README demo wrote (ignored by git), so the run starts from what a clone has.
tar -C testdata/dbt -cf - \
    --exclude=demo/target --exclude=demo/dbt_packages --exclude=demo/logs \
    --exclude=demo/models/imported_from_tableau \
    --exclude=demo_utils/target --exclude=demo_utils/dbt_packages --exclude=demo_utils/logs \
    demo demo_utils | tar -C "$work/dbt" -xf -
project="$work/dbt/demo"
expdir="$project/models/imported_from_tableau"
config="$work/autoexpose.yml"
# In the copy only: stg_customers fails when a build says so (`--vars '{roundtrip_fail:
# stg_customers}'`, step 8) by reading a relation that does not exist; every other build
# compiles it as before.
cat >>"$project/models/staging/stg_customers.sql" <<'SQL'
{% if var('roundtrip_fail', '') == 'stg_customers' %}
union all select * from roundtrip_no_such_relation  -- scripts/roundtrip.sh: fails on purpose
{% endif %}
SQL

# A hand-written exposure in the generated dir, written before the build so the manifest
# autoexpose reads has it. Its name is the one autoexpose would give "Ad hoc SQL"
# (slug + sha256("demo:<luid>")[:6], see src/naming.rs): autoexpose must take the long suffix.
hand_name="ad_hoc_sql_$(printf 'demo:%s' d0000000-0000-4000-8000-000000000107 | sha256sum | cut -c1-6)"
mkdir -p "$expdir"
cat >"$expdir/hand_written.yml" <<EOF
# Written by hand (scripts/roundtrip.sh): autoexpose must never change or delete this file.
version: 2
exposures:
  - name: $hand_name
    label: Ad hoc SQL (the hand-written one)
    type: notebook
    maturity: low
    url: https://notebooks.example.com/ad-hoc-sql
    description: A notebook over fct_orders, declared by hand.
    owner:
      name: Data Platform
      email: data-platform@example.com
    depends_on:
      - ref('fct_orders')
EOF
hand_sha="$(sha256sum <"$expdir/hand_written.yml")"

run_dbt deps deps || die "dbt deps failed"
run_dbt build build --no-partial-parse || die "dbt build failed"

# ---- 3. the site fixture ----------------------------------------------------------------
step "3. site fixture: committed $fixture is what make-roundtrip-fixture.py writes"
python3 scripts/make-roundtrip-fixture.py --out "$work/site1.json" | indent
if ! cmp -s "$work/site1.json" "$fixture"; then
    fail "$fixture is stale: run scripts/make-roundtrip-fixture.py and commit it"
fi

# ---- 4. autoexpose run against the test server ------------------------------------------
step "4. test servers on the fixtures (Tableau, Power BI), autoexpose run"
start_server "$fixture"
start_pbi_server "$pbi_fixture"
pbi_port="${pbi_url##*:}"
port="${url##*:}"
write_config
autoexpose_run run1
cp "$work/exposures.json" "$work/exposures.run1.json"
echo "files in ${expdir#"$work"/}:"
ls -1 "$expdir" | indent
[[ -f "$expdir/demo__marketing.yml" ]] || fail "run 1 wrote no demo__marketing.yml"
[[ -f "$expdir/demo__finance.yml" ]] || fail "run 1 wrote no demo__finance.yml"
# Power BI's files beside Tableau's, named by integration: Finance is also a Tableau project;
# "Sales & Ops" and "Sales: {{ Ops }}" share the slug sales_ops (check-roundtrip.py checks the
# exact names).
[[ -f "$expdir/pbi__finance.yml" ]] || fail "run 1 wrote no pbi__finance.yml"
[[ "$(find "$expdir" -name 'pbi__sales_ops_*.yml' | wc -l)" == 2 ]] ||
    fail "run 1 did not write two pbi__sales_ops_<hash>.yml files"
[[ "$(sha256sum <"$expdir/hand_written.yml")" == "$hand_sha" ]] ||
    fail "run 1 changed hand_written.yml"

# ---- 5. dbt parse -----------------------------------------------------------------------
step "5. dbt parse the generated exposures"
dbt_parse_check parse1

# ---- 6. compare ------------------------------------------------------------------------
step "6. compare dbt's manifest with exposures.json and the fixtures"
pbi_args=(--powerbi-tenant "$pbi_fixture" --powerbi-expected "$pbi_expected"
    --database "$work/autoexpose.db" --exposures-dir models/imported_from_tableau)
check run1 --fixture "$fixture" --must-write-prefix "$hostile_prefix" "${pbi_args[@]}"

step "6b. autoexpose run again on the same site: no file rewritten, no name changed"
files_state >"$work/files.before"
autoexpose_run run1b
files_state >"$work/files.after"
if ! diff -u "$work/files.before" "$work/files.after" >"$work/files.diff"; then
    indent <"$work/files.diff"
    fail "a second run on an unchanged site rewrote files (name, inode, sha256 above)"
fi
cmp -s "$work/exposures.run1.json" "$work/exposures.json" ||
    fail "a second run on an unchanged site changed exposures.json"

# ---- 7. workbooks disappear -------------------------------------------------------------
step "7. workbooks leave the site: 2 of Finance, all of $gone_project; reports leave the tenant"
python3 scripts/make-roundtrip-fixture.py --out "$work/site2.json" \
    --without "$gone_luids" --without-project "$gone_project" | indent
gone="$(python3 - "$fixture" "$gone_luids" "$gone_project" <<'EOF'
import json, sys
site = json.load(open(sys.argv[1], encoding="utf-8"))["sites"][0]
gone = set(sys.argv[2].split(","))
print("\n".join(w["luid"] for w in site["workbooks"]
                if w["luid"] in gone or w["projectName"] == sys.argv[3]))
EOF
)"
stop_server
start_server "$work/site2.json" "$port"   # the same port: the exposures' URLs stay the same
# Power BI: one of Finance's two "Revenue" reports, and every report of "Sales: {{ Ops }}"
# leave the tenant: its file goes, and "Sales & Ops" no longer shares its slug.
python3 - "$pbi_fixture" "$work/tenant2.json" "$pbi_gone_reports" "$pbi_gone_workspace" <<'EOF'
import json, sys
tenant = json.load(open(sys.argv[1], encoding="utf-8"))
gone = set(sys.argv[3].split(","))
for w in tenant["workspaces"]:
    w["reports"] = [r for r in w["reports"] if r["id"] not in gone and w["id"] != sys.argv[4]]
json.dump(tenant, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False, indent=2)
EOF
pbi_gone="$(python3 - "$pbi_fixture" "$work/tenant2.json" <<'EOF'
import json, sys
ids = lambda p: {r["id"] for w in json.load(open(p, encoding="utf-8"))["workspaces"] for r in w["reports"]}
print(",".join(sorted(ids(sys.argv[1]) - ids(sys.argv[2]))))
EOF
)"
stop_pbi_server
start_pbi_server "$work/tenant2.json" "$pbi_port"
autoexpose_run run2
echo "files in ${expdir#"$work"/}:"
ls -1 "$expdir" | indent
[[ ! -e "$expdir/demo__marketing.yml" ]] ||
    fail "demo__marketing.yml is still there though every $gone_project workbook left the site"
[[ -f "$expdir/demo__finance.yml" ]] || fail "demo__finance.yml is gone though Finance workbooks remain"
[[ "$(sha256sum <"$expdir/hand_written.yml")" == "$hand_sha" ]] ||
    fail "run 2 changed or deleted hand_written.yml"
while read -r luid; do
    if grep -rlF "$luid" "$expdir" >/dev/null; then
        fail "workbook $luid left the site but is still in $(grep -rlF "$luid" "$expdir" | sed "s#^$project/##" | tr '\n' ' ')"
    fi
    if grep -qF "$luid" "$work/exposures.json"; then
        fail "workbook $luid left the site but is still in exposures.json"
    fi
done <<<"$gone"
echo "$(wc -l <<<"$gone") workbooks gone: none of them in the exposures dir or exposures.json (else FAIL above)"
for f in "$expdir"/pbi__sales_ops_*.yml; do
    [[ ! -e "$f" ]] || fail "${f##*/} is still there though Sales: {{ Ops }} has no report left"
done
[[ -f "$expdir/pbi__sales_ops.yml" ]] || fail "no pbi__sales_ops.yml once Sales & Ops has its slug alone"
[[ -f "$expdir/pbi__finance.yml" ]] || fail "pbi__finance.yml is gone though Finance reports remain"
for id in ${pbi_gone//,/ }; do
    if grep -rlF "$id" "$expdir" >/dev/null || grep -qF "\"$id\"" "$work/exposures.json"; then
        fail "report $id left the tenant but is still in the exposures dir or exposures.json"
    fi
done
dbt_parse_check parse2
check run2 --fixture "$work/site2.json" --must-write-prefix "$hostile_prefix" \
    --previous "$work/exposures.run1.json" --powerbi-tenant "$work/tenant2.json" \
    --powerbi-expected "$pbi_expected" --powerbi-gone "$pbi_gone" \
    --database "$work/autoexpose.db" --exposures-dir models/imported_from_tableau

# ---- 8. refresh after a second build ----------------------------------------------------
step "8. dbt build again (stg_customers fails), then autoexpose refresh --dry-run"
# A build whose run_results we control: stg_customers errors, so dim_customers v1 and v2 are
# skipped; everything else is rebuilt.
build2_status=0
run_dbt build2 build --no-partial-parse --vars '{roundtrip_fail: stg_customers}' || build2_status=$?
[[ "$build2_status" -eq 1 ]] ||
    fail "the second dbt build (stg_customers failing on purpose) exited with $build2_status, not 1"
requests_before="$(wc -l <"$work/server.log")"
pbi_requests_before="$(wc -l <"$work/pbi-server.log")"
refresh_status=0
echo "+ DBT_ACTIVE_EXPOSURES=1 autoexpose refresh --dry-run --now 2026-11-25T02:00:00Z --config $config"
DBT_ACTIVE_EXPOSURES=1 "$ae" refresh --dry-run --now 2026-11-25T02:00:00Z --config "$config" \
    >"$work/refresh.log" 2>&1 || refresh_status=$?
indent <"$work/refresh.log"
[[ "$refresh_status" -eq 0 ]] || fail "autoexpose refresh --dry-run exited with $refresh_status"
done_line="$(grep -E 'Done\. TRIGGERED=' "$work/refresh.log" || true)"
[[ -n "$done_line" ]] || fail "autoexpose refresh --dry-run printed no 'Done. TRIGGERED=' line"
[[ "$(wc -l <"$work/server.log")" == "$requests_before" ]] ||
    fail "autoexpose refresh --dry-run sent requests to the server: $(tail -n +"$((requests_before + 1))" "$work/server.log" | head -5)"
[[ "$(wc -l <"$work/pbi-server.log")" == "$pbi_requests_before" ]] ||
    fail "autoexpose refresh --dry-run sent requests to the Power BI server: $(tail -n +"$((pbi_requests_before + 1))" "$work/pbi-server.log" | head -5)"

# ---- 8b. refresh for real: due, inside the cadence, after it ------------------------------
step "8b. autoexpose refresh --wait for real: first, inside the cadence, after it"
# The Power BI server's refresh clock is the run's --now (a refresh POSTed starts 2 s after
# it), and after each POST of ours a scheduled refresh lands in the history, newer than ours
# and never ending: waiting on anything but our own refresh times out. What is due is written
# by hand in the expectation's "refresh" part, with each phase's --now.
refresh_now() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["refresh"]["now"][sys.argv[2]])' "$pbi_expected" "$1"
}
# The Power BI server on tenant2 again, the same port (the config stays), its clock at $1.
start_pbi_server_clocked() {
    : >"$work/pbi-server.out"
    "$pbi_server_bin" --fixture "$work/tenant2.json" --port "$pbi_port" --refresh-clock "$1" \
        --scheduled-after-post >"$work/pbi-server.out" 2>>"$work/pbi-server.log" &
    pbi_pid=$!
    pbi_url="$(listening_url "$work/pbi-server.out" "$pbi_pid")"
    [[ -n "$pbi_url" ]] || die "the Power BI test server did not start with --refresh-clock $1"
    echo "Power BI test server (pid $pbi_pid) on $pbi_url, refresh clock $1"
}
# One real refresh at phase $1's --now, then check-roundtrip.py refresh on what it did (its
# Power BI requests alone in $work/pbi-requests-$1.log); more arguments go to the check.
real_refresh() {
    local phase=$1 now status=0 before out check_status=0
    shift
    now="$(refresh_now "$phase")"
    before="$(wc -l <"$work/pbi-server.log")"
    echo "+ DBT_ACTIVE_EXPOSURES=1 autoexpose refresh --wait --now $now --config $config"
    DBT_ACTIVE_EXPOSURES=1 DBT_ACTIVE_EXPOSURES_BUILD_AFTER=1440 "$ae" refresh --wait --wait-timeout 60 \
        --now "$now" --config "$config" >"$work/refresh-$phase.log" 2>&1 || status=$?
    indent <"$work/refresh-$phase.log"
    tail -n +"$((before + 1))" "$work/pbi-server.log" >"$work/pbi-requests-$phase.log"
    [[ "$status" -eq 0 ]] || fail "autoexpose refresh --wait ($phase, --now $now) exited with $status"
    grep -qE 'Done\. TRIGGERED=' "$work/refresh-$phase.log" ||
        fail "autoexpose refresh --wait ($phase) printed no 'Done. TRIGGERED=' line"
    out="$work/check-refresh-$phase.log"
    echo "+ check-roundtrip.py refresh --phase $phase $*"
    python3 "$repo/scripts/check-roundtrip.py" refresh --phase "$phase" --database "$work/autoexpose.db" \
        --powerbi-expected "$pbi_expected" --requests "$work/pbi-requests-$phase.log" \
        --output "$work/refresh-$phase.log" "$@" >"$out" 2>&1 ||
        check_status=$?
    indent <"$out"
    if [[ "$check_status" -ne 0 ]]; then
        fail "check-roundtrip.py refresh ($phase) exited with $check_status:"
        while IFS= read -r line; do
            failures+=("    $line")
        done < <(grep '^MISMATCH' "$out" || tail -3 "$out")
    fi
}
stop_pbi_server
start_pbi_server_clocked "$(refresh_now first)"
real_refresh first --run-results "$project/target/run_results.json"
real_refresh too_soon
# A day later on the server's refresh clock too (a new server: its histories start afresh).
stop_pbi_server
start_pbi_server_clocked "$(refresh_now after)"
real_refresh after
stop_server
stop_pbi_server

# ---- 9. a Snowflake-style project -------------------------------------------------------
step "9. Snowflake-style project: dbt-snowflake parse, autoexpose run, dbt parse, compare"
tar -C testdata/dbt -cf - --exclude=snowflake_shop/target --exclude=snowflake_shop/logs \
    --exclude=snowflake_shop/models/imported_from_tableau snowflake_shop | tar -C "$work/dbt" -xf -
project="$work/dbt/snowflake_shop"
run_dbt sf-parse0 parse --no-partial-parse || die "dbt parse of the Snowflake project failed"
sf_fixture=testdata/tableau/snowflake.site.json
start_server "$sf_fixture"
config="$work/snowflake.yml"
cat >"$config" <<EOF
database: snowflake/autoexpose.db
dbt:
  project_dir: dbt/snowflake_shop
  manifest: dbt/snowflake_shop/target/manifest.json
tableau:
  - name: sf
    server_url: $url
    site: analytics
    token_name_env: SF_TOKEN_NAME
    token_secret_env: SF_TOKEN_SECRET
    projects: [Sales]
exposures:
  dir: models/imported_from_tableau
EOF
sf_status=0
SF_TOKEN_NAME=sf-ci SF_TOKEN_SECRET=sf-ci-secret "$ae" run --config "$config" >"$work/sf-run.log" 2>&1 || sf_status=$?
indent <"$work/sf-run.log"
[[ "$sf_status" -eq 0 ]] || fail "autoexpose run on the Snowflake project exited with $sf_status"
stop_server
dbt_parse_check sf-parse1
sf_check=0
python3 "$repo/scripts/check-roundtrip.py" --manifest "$project/target/manifest.json" \
    --exposures-json "$work/snowflake/exposures.json" --fixture "$sf_fixture" --site analytics \
    --projects Sales >"$work/check-sf.log" 2>&1 || sf_check=$?
indent <"$work/check-sf.log"
[[ "$sf_check" -eq 0 ]] || fail "check-roundtrip.py (snowflake) exited with $sf_check"
# What the upper-case relations must match, whatever Tableau's spelling: ORDERS is also the
# lower-case unquoted source mart.orders (one Snowflake table); REVENUE vs "Revenue" is ambiguous.
sf_expect=0
python3 - "$work/snowflake/exposures.json" >"$work/sf-expect.log" 2>&1 <<'PY' || sf_expect=$?
import json, sys
got = {e["label"]: sorted(e["depends_on_unique_ids"]) for e in json.load(open(sys.argv[1]))}
want = {
    "Orders Board": ["model.snowflake_shop.customers", "model.snowflake_shop.orders", "source.snowflake_shop.mart.orders"],
    "Raw Events": ["model.snowflake_shop.stg_orders", "source.snowflake_shop.raw.events"],
    "Revenue": [],
}
if got != want:
    sys.exit(f"got {got}, want {want}")
print("Snowflake dependencies as expected")
PY
indent <"$work/sf-expect.log"
[[ "$sf_expect" -eq 0 ]] || fail "Snowflake dependencies differ (above)"
end_step

# ---- 10. summary -------------------------------------------------------------------------
written="$(python3 -c 'import json,sys; print(sum(e["status"] == "written" for e in json.load(open(sys.argv[1]))))' "$work/exposures.run1.json")"
written2="$(python3 -c 'import json,sys; print(sum(e["status"] == "written" for e in json.load(open(sys.argv[1]))))' "$work/exposures.json")"
printf '\n== summary\n'
pbi_written="$(python3 -c 'import json,sys; print(sum(e["status"] == "written" and e["meta"].get("integration") == "pbi" for e in json.load(open(sys.argv[1]))))' "$work/exposures.run1.json")"
echo "run 1: $written exposures written and parsed by dbt ($pbi_written of them Power BI reports); after workbooks left: $written2"
echo "refresh --dry-run: ${done_line:-no Done line}"
for phase in first too_soon after; do
    echo "refresh --wait ($phase): $(grep -hE 'Done\. TRIGGERED=' "$work/refresh-$phase.log" 2>/dev/null || echo 'no Done line'); $(grep -hE '^check-roundtrip refresh' "$work/check-refresh-$phase.log" 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
done
printf '%s\n' "${timings[@]}"
printf '%7ss  total\n' "$(seconds_since "$t0")"
if [[ "${#failures[@]}" -gt 0 ]]; then
    n=0
    for f in "${failures[@]}"; do [[ "$f" == "    "* ]] || n=$((n + 1)); done
    echo "roundtrip: $n check(s) FAILED:"
    for f in "${failures[@]}"; do
        if [[ "$f" == "    "* ]]; then echo "    $f"; else echo "  - $f"; fi
    done
    exit 1
fi
echo "roundtrip: OK"
