#!/usr/bin/env python3
"""Compares what dbt parsed (target/manifest.json) with what autoexpose meant (exposures.json).

    scripts/check-roundtrip.py --manifest M --exposures-json J [--fixture SITE.json]
        [--hand-written NAME]... [--previous OLD_exposures.json] [--must-write-prefix LUID_PREFIX]
        [--powerbi-tenant TENANT.json --powerbi-expected EXPECTED.json --database autoexpose.db
         --exposures-dir DIR]

Checks, for every exposures.json entry with status "written":
  - dbt has exposure.<project>.<name>, from the file autoexpose named;
  - its depends_on.nodes equal depends_on_unique_ids (as sets);
  - label, description, owner.name, owner.email byte for byte equal to exposures.json, and
    url, type, maturity, config.meta, config.tags too;
and besides:
  - entries with another status are not in dbt's manifest;
  - every exposure in the manifest with config.meta.exposure_mode "auto" is a written entry
    (none left behind by a workbook that is gone);
  - names match ^[a-z][a-z0-9_]*$ and are unique;
  - the --hand-written exposures are in the manifest, from a file autoexpose did not write;
  - no manifest value contains the home directory where the source string did not (dbt
    rendered Jinja from Tableau);
  - with --fixture: exposures.json holds the Tableau strings with trailing whitespace trimmed
    (label = workbook name, owner = owner name, description, email), every workbook of the
    selected projects is in exposures.json, and the workbooks whose luid starts with
    --must-write-prefix are written;
  - with --previous: a workbook (report, dashboard) keeps its exposure name across runs;
  - with --powerbi-tenant and --powerbi-expected (a hand-written expectation beside the tenant
    fixture; the reports of --powerbi-gone are gone from the tenant and must have no exposure):
    every live report of the selected workspaces that is not an app copy is exactly
    one exposures.json entry of the integration, and nothing else of the tenant is (app copies,
    personal, deleted and unselected workspaces); label = the report's name (trailing
    whitespace trimmed), byte for byte in dbt's manifest too; owner as expected; type
    dashboard; url the report's page; config.meta exactly integration, tenant, workspace,
    report_id, exposure_mode (and dataset_id, when present, the report's dataset); depends_on
    exactly the expected nodes (none: status no_dependencies, not in dbt); the file is
    <exposures dir>/<integration>__<workspace slug>.yml (a slug shared by two workspaces gets
    the first 6 hex digits of the sha256 of the workspace id); and, from --database, each
    dataset table that reads something dbt cannot take is in unmatched_tables with exactly
    the expected reason (file_connection, no_source, private_model …), and no other table of
    the tenant is.

    scripts/check-roundtrip.py refresh --phase first|too_soon|after --database autoexpose.db
        --powerbi-expected EXPECTED.json --requests LOG [--run-results run_results.json]
        [--output REFRESH_OUTPUT]

checks one real `autoexpose refresh --wait` against the "refresh" part of the expectation:
  - with --run-results: dbt's build failed where the expectation says (its fail_model errored,
    the skipped_by_failure nodes skipped, nothing else failed);
  - in refresh_events (the newest run, not a dry run) every exposure of the integration is a
    report of the expectation: upstream_failed ones skipped with the detail naming the node,
    never a target; DirectQuery ones not_applicable; per due dataset, in phases first and
    after, exactly one report triggered it (HTTP 202, waited for: job_status success,
    matched_by heuristic, completed at or after --now, so not yesterday's refresh nor the
    scheduled one that lands after ours and never ends) and the others say
    refreshed_in_this_run naming that exposure; in phase too_soon that one is too_soon,
    eligible at the first run's --now plus build_after_minutes;
  - refresh_state: each due dataset last triggered at the --now of the last due run;
  - with --output: one `Refreshing Power BI dataset for exposure NAME … [DECISION…` line per
    decision of the integration;
  - LOG (the Power BI server's request lines of this run only, `#N METHOD PATH -> STATUS`):
    one POST …/refreshes per due dataset answered 202 (none in phase too_soon), each followed
    by polls of that dataset's history, and no request naming any other dataset's refreshes.
Prints a diff for each mismatch and exits 1 if there is any. Standard library only.
"""

import argparse
import json
import os
import re
import sys

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Checker:
    def __init__(self):
        self.failures = 0

    def fail(self, where, message, expected=None, actual=None, show=False):
        self.failures += 1
        print(f"MISMATCH {where}: {message}")
        if show:
            print(f"    expected: {expected!r}")
            print(f"    actual:   {actual!r}")
            if isinstance(expected, str) and isinstance(actual, str):
                i = next((k for k, (a, b) in enumerate(zip(expected, actual)) if a != b),
                         min(len(expected), len(actual)))
                print(f"    first difference at character {i} "
                      f"(lengths {len(expected)} and {len(actual)}): "
                      f"expected {expected[i:i + 20]!r}, got {actual[i:i + 20]!r}")

    def equal(self, where, field, expected, actual):
        if expected != actual:
            self.fail(where, f"{field} differs", expected, actual, show=True)


def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def selected_projects(site, names):
    """Project ids of the named projects and everything nested below them."""
    children = {}
    for p in site["projects"]:
        children.setdefault(p.get("parentProjectId"), []).append(p["id"])
    todo = [p["id"] for p in site["projects"] if p["name"] in names]
    out = set()
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(children.get(pid, []))
    return out


def main():
    if sys.argv[1:2] == ["refresh"]:
        return refresh_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--exposures-json", required=True)
    ap.add_argument("--fixture", help="the Tableau site fixture the run read")
    ap.add_argument("--site", default="demo", help="content_url of the site in --fixture")
    ap.add_argument("--projects", default="Finance,Marketing",
                    help="the projects the config selects (with their nested projects)")
    ap.add_argument("--must-write-prefix", default=None,
                    help="workbooks whose luid starts with this must have status written")
    ap.add_argument("--hand-written", action="append", default=[], metavar="NAME")
    ap.add_argument("--previous", help="exposures.json of an earlier run: names must not change")
    ap.add_argument("--powerbi-tenant", help="the Power BI tenant fixture the run read")
    ap.add_argument("--powerbi-expected", help="what the run must make of --powerbi-tenant")
    ap.add_argument("--powerbi-gone", default="", metavar="ID,ID",
                    help="reports of --powerbi-expected that --powerbi-tenant no longer has")
    ap.add_argument("--database", help="autoexpose's SQLite file (for unmatched tables)")
    ap.add_argument("--exposures-dir", default="models/imported_from_tableau",
                    help="exposures.dir of the config, relative to the dbt project")
    args = ap.parse_args()

    c = Checker()
    manifest = load(args.manifest)
    entries = load(args.exposures_json)
    project = manifest["metadata"]["project_name"]
    exposures = manifest.get("exposures", {})
    home = os.path.expanduser("~")
    check_home = len(home) > 1

    written = [e for e in entries if e.get("status") == "written"]
    others = [e for e in entries if e.get("status") != "written"]
    print(f"exposures.json: {len(entries)} entries, {len(written)} written; "
          f"manifest: {len(exposures)} exposures")

    names = [e["name"] for e in entries]
    for n in sorted({n for n in names if names.count(n) > 1}):
        c.fail(n, "name used by more than one exposures.json entry")
    for n in names:
        if not NAME_RE.match(n):
            c.fail(n, "name does not match ^[a-z][a-z0-9_]*$")

    for e in written:
        uid = f"exposure.{project}.{e['name']}"
        m = exposures.get(uid)
        if m is None:
            c.fail(uid, f"written to {e.get('file')} but not in dbt's manifest")
            continue
        c.equal(uid, "file", e.get("file"), m.get("original_file_path"))
        c.equal(uid, "depends_on.nodes (as a set)", sorted(set(e["depends_on_unique_ids"])),
                sorted(set(m["depends_on"]["nodes"])))
        if not e["depends_on_unique_ids"]:
            c.fail(uid, "written with no dependencies")
        c.equal(uid, "label", e["label"], m.get("label"))
        c.equal(uid, "description", e["description"], m.get("description"))
        c.equal(uid, "owner.name", e["owner"].get("name"), m["owner"].get("name"))
        c.equal(uid, "owner.email", e["owner"].get("email"), m["owner"].get("email"))
        c.equal(uid, "url", e.get("url"), m.get("url"))
        c.equal(uid, "type", e.get("type"), m.get("type"))
        c.equal(uid, "maturity", e.get("maturity"), m.get("maturity"))
        c.equal(uid, "config.meta", e.get("meta") or {}, m.get("config", {}).get("meta", {}))
        c.equal(uid, "config.tags", sorted(e.get("tags") or []),
                sorted(m.get("config", {}).get("tags", [])))
        if check_home:
            source = set(strings([e["label"], e["description"], e["owner"], e.get("url"),
                                  e.get("meta"), e.get("tags")]))
            leaked = [s for s in strings([m.get("label"), m.get("description"), m.get("owner"),
                                          m.get("url"), m.get("meta"), m.get("tags"),
                                          m.get("config")])
                      if home in s and not any(home in t for t in source)]
            for s in leaked:
                c.fail(uid, f"a value contains the home directory {home!r} that no Tableau "
                            f"string held (dbt rendered Jinja)", None, s, show=True)

    for e in others:
        uid = f"exposure.{project}.{e['name']}"
        if uid in exposures:
            c.fail(uid, f"status {e.get('status')!r} in exposures.json, yet dbt has it "
                        f"(from {exposures[uid].get('original_file_path')})")

    written_ids = {f"exposure.{project}.{e['name']}" for e in written}
    for uid, m in sorted(exposures.items()):
        meta = m.get("config", {}).get("meta", {}) or m.get("meta", {})
        if meta.get("exposure_mode") == "auto" and uid not in written_ids:
            ref = meta.get("workbook_luid") or meta.get("report_id") or meta.get("dashboard_id")
            c.fail(uid, f"an autoexpose exposure in dbt's manifest ({meta.get('integration')} "
                        f"{ref}, {m.get('original_file_path')}) that "
                        f"exposures.json does not list as written: left behind?")

    generated_files = {e.get("file") for e in written}
    for name in args.hand_written:
        uid = f"exposure.{project}.{name}"
        m = exposures.get(uid)
        if m is None:
            c.fail(uid, "the hand-written exposure is missing from dbt's manifest")
            continue
        if m.get("original_file_path") in generated_files:
            c.fail(uid, f"the hand-written exposure comes from a generated file "
                        f"{m.get('original_file_path')}")
        if name in names:
            c.fail(uid, "autoexpose used the hand-written exposure's name")
        if check_home:
            for s in strings([m.get("label"), m.get("description"), m.get("owner"), m.get("url")]):
                if home in s:
                    c.fail(uid, f"a value contains the home directory {home!r}", None, s, show=True)

    if args.fixture:
        fixture = load(args.fixture)
        site = next(s for s in fixture["sites"] if s["content_url"] == args.site)
        wanted = selected_projects(site, {p for p in args.projects.split(",") if p})
        by_luid = {e.get("meta", {}).get("workbook_luid"): e for e in entries
                   if "workbook_luid" in e.get("meta", {})}
        for w in site["workbooks"]:
            where = f"workbook {w['luid']} ({w['name'][:40]!r})"
            e = by_luid.get(w["luid"])
            if w["projectLuid"] not in wanted:
                if e is not None:
                    c.fail(where, f"outside the selected projects, yet exposure {e['name']} exists")
                continue
            if e is None:
                c.fail(where, "in a selected project but not in exposures.json")
                continue
            if args.must_write_prefix and w["luid"].startswith(args.must_write_prefix) \
                    and e.get("status") != "written":
                c.fail(where, f"reads fct_orders, yet status is {e.get('status')!r}")
            # A name of only whitespace gets a stated fallback rather than an empty label.
            label = w["name"].rstrip() if w["name"].strip() else f"Untitled Tableau workbook {w['luid']}"
            c.equal(where, "label vs Tableau name (trailing whitespace trimmed)", label, e["label"])
            desc = (w.get("description") or "").rstrip()
            if desc:
                c.equal(where, "description vs Tableau description (trimmed)", desc,
                        e["description"])
            owner = w.get("owner") or {}
            if (owner.get("name") or "").strip():
                c.equal(where, "owner.name vs Tableau owner name (trimmed)",
                        owner["name"].rstrip(), e["owner"].get("name"))
            if (owner.get("email") or "").strip():
                c.equal(where, "owner.email vs Tableau owner email",
                        owner["email"].rstrip(), e["owner"].get("email"))
            # Tags as dbt stores them: trimmed, blank ones dropped, de-duplicated.
            tags = sorted({t["name"].rstrip() for t in w.get("tags", []) if t["name"].strip()})
            c.equal(where, "tags vs Tableau tags (trimmed)", tags, sorted(e.get("tags") or []))

    if args.powerbi_tenant or args.powerbi_expected:
        if not (args.powerbi_tenant and args.powerbi_expected and args.database):
            sys.exit("--powerbi-tenant, --powerbi-expected and --database go together")
        check_powerbi(c, entries, exposures, project, load(args.powerbi_tenant),
                      load(args.powerbi_expected), args.database, args.exposures_dir,
                      {g for g in args.powerbi_gone.split(",") if g})

    if args.previous:
        before = {identity(e): e["name"] for e in load(args.previous)}
        for e in entries:
            key = identity(e)
            if key in before and before[key] != e["name"]:
                c.fail(f"asset {key}", "exposure name changed between runs",
                       before[key], e["name"], show=True)

    if c.failures:
        print(f"check-roundtrip: {c.failures} mismatch(es)")
        return 1
    print(f"check-roundtrip: OK ({len(written)} written exposures match dbt's manifest"
          f"{', ' + str(len(args.hand_written)) + ' hand-written kept' if args.hand_written else ''})")
    return 0


def identity(e):
    """An exposure's asset, whichever integration wrote it: (integration, the ref under its
    tool's meta key: workbook_luid for Tableau, dashboard_id for an inventory)."""
    meta = e.get("meta", {})
    return (meta.get("integration"),
            meta.get("workbook_luid") or meta.get("report_id") or meta.get("dashboard_id"))


def slug(text, limit):
    """emit's folder slug, written again from its rule: ASCII letters and digits lower-cased,
    every other run of characters one `_`, none at either end, at most `limit` long."""
    out = ""
    for ch in text:
        if ch.isascii() and ch.isalnum():
            out += ch.lower()
        elif out and not out.endswith("_"):
            out += "_"
    return out.rstrip("_")[:limit].rstrip("_")


POWERBI_META = {"integration", "tenant", "workspace", "report_id", "exposure_mode"}


def check_powerbi(c, entries, exposures, project, tenant, expected, database, exposures_dir,
                  gone_ids):
    """The Power BI part of the round trip (see the module docstring)."""
    import hashlib
    import sqlite3

    integ = expected["integration"]
    selected = set(expected["selected_workspaces"])
    workspaces = {w["id"]: w for w in tenant["workspaces"]}
    reports = {r["id"]: (w, r) for w in tenant["workspaces"] for r in w.get("reports", [])}
    mine = [e for e in entries if (e.get("meta") or {}).get("integration") == integ]
    by_report = {}
    for e in mine:
        rid = e["meta"].get("report_id")
        if rid in by_report:
            c.fail(f"report {rid}", f"more than one exposure: {by_report[rid]['name']}, {e['name']}")
        by_report[rid] = e
    in_manifest = {}
    for uid, m in exposures.items():
        meta = (m.get("config") or {}).get("meta") or m.get("meta") or {}
        if meta.get("integration") == integ:
            in_manifest.setdefault(meta.get("report_id"), []).append(uid)

    # The fixture and the expectation agree on which reports are live (else the expectation
    # is stale, which is worth a failure of its own).
    def app_copy(r):
        return bool(r.get("appId") or r.get("originalReportObjectId") or r.get("originalReportId"))
    live = {rid for rid, (w, r) in reports.items()
            if w["id"] in selected and w.get("type", "Workspace") == "Workspace"
            and w.get("state", "Active") == "Active" and not app_copy(r)}
    # A tenant with reports removed (the round trip's second run) has fewer live reports.
    if not live <= set(expected["reports"]):
        c.fail("powerbi expectation", "live reports of the tenant fixture that the expectation "
               "does not list", None, sorted(live - set(expected["reports"])), show=True)
    gone = {rid: "left the tenant" for rid in expected["reports"] if rid not in live}
    if set(gone) != gone_ids:
        c.fail("powerbi expectation", "the expectation's reports the tenant fixture does not "
               "have as live reports are not the --powerbi-gone ones", sorted(gone_ids),
               sorted(gone), show=True)
    for rid in sorted(set(by_report) - live):
        why = {**expected["not_exposures"], **gone}.get(rid, "not a report of the expectation")
        c.fail(f"report {rid}", f"has exposure {by_report[rid]['name']} but must not ({why})")
    for rid, why in sorted({**expected["not_exposures"], **gone}.items()):
        if rid in in_manifest:
            c.fail(f"report {rid}", f"in dbt's manifest as {in_manifest[rid]} but must not ({why})")

    # File names: slugs of the workspaces with an entry, a shared slug made unique.
    folders = {reports[rid][0]["id"] for rid in live}
    slugs = {f: slug(workspaces[f].get("name") or "", 60) or "project" for f in folders}
    files = {}
    for f, s in slugs.items():
        shared = sum(1 for t in slugs.values() if t == s) > 1
        suffix = "_" + hashlib.sha256(f.encode()).hexdigest()[:6] if shared else ""
        files[f] = f"{exposures_dir.rstrip('/')}/{integ}__{s}{suffix}.yml"

    for rid, want in sorted(expected["reports"].items()):
        if rid not in live:
            continue
        w, r = reports[rid]
        where = f"report {rid} ({(r.get('name') or '')[:40]!r})"
        e = by_report.get(rid)
        if e is None:
            c.fail(where, "a live report without an exposure")
            continue
        ds = expected["datasets"][want["dataset"]]
        name = r.get("name") or ""
        label = name.rstrip() if name.strip() else e["label"]
        c.equal(where, "label vs the report's name (trailing whitespace trimmed)", label, e["label"])
        c.equal(where, "type", "dashboard", e.get("type"))
        c.equal(where, "owner.name", want["owner"], e["owner"].get("name"))
        c.equal(where, "owner.email", want["email"], e["owner"].get("email"))
        if not (e.get("url") or "").startswith(f"https://app.powerbi.com/groups/{w['id']}/") \
                or not e["url"].endswith(rid):
            c.fail(where, f"url {e.get('url')!r} is not the report's page in workspace {w['id']}")
        meta = e.get("meta") or {}
        want_meta = {"integration": integ, "tenant": tenant["tenant_id"],
                     "workspace": (w.get("name") or "").rstrip(), "report_id": rid,
                     "exposure_mode": "auto"}
        if "dataset_id" in meta:
            want_meta["dataset_id"] = r.get("datasetId")
        c.equal(where, "config.meta", want_meta, meta)
        c.equal(where, "depends_on (the expectation's nodes)", sorted(ds["depends_on"]),
                sorted(e["depends_on_unique_ids"]))
        status = "written" if ds["depends_on"] else "no_dependencies"
        c.equal(where, "status", status, e.get("status"))
        uid = f"exposure.{project}.{e['name']}"
        if status == "written":
            c.equal(where, "file", files[w["id"]], e.get("file"))
            m = exposures.get(uid)
            if m is not None:
                c.equal(where, "label in dbt's manifest vs the report's name", label, m.get("label"))
                c.equal(where, "depends_on.nodes in dbt's manifest", sorted(ds["depends_on"]),
                        sorted(m["depends_on"]["nodes"]))
        elif uid in exposures or rid in in_manifest:
            c.fail(where, "no dependencies, yet in dbt's manifest")

    # Tables that read nothing in dbt: each in unmatched_tables, with its reason.
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT asset_id, via_id, reason, relation_id FROM unmatched_tables WHERE integration = ?",
        (integ,)).fetchall()
    conn.close()
    got = {}
    for asset, via_id, reason, relation in rows:
        # via_id is "{dataset id}/{table name}" (src/powerbi/store.rs relations_of).
        table = via_id.split("/", 1)[1] if "/" in via_id else via_id
        got.setdefault((asset, table), set()).add((reason, relation))
        if not (reason or "").strip():
            c.fail(f"report {asset}", f"table {table!r} unmatched without a reason")
    want = {}
    for rid, r in expected["reports"].items():
        if rid not in live:
            continue
        for table, reason in expected["datasets"][r["dataset"]]["unmatched"].items():
            want[(rid, table)] = reason
    for key in sorted(set(got) - set(want)):
        c.fail(f"report {key[0]}", f"table {key[1]!r} is unmatched ({sorted(got[key])}), but must match")
    for key, reason in sorted(want.items()):
        if key not in got:
            c.fail(f"report {key[0]}", f"table {key[1]!r} must be unmatched ({reason}), but is not")
        elif {r for r, _ in got[key]} != {reason}:
            c.fail(f"report {key[0]}", f"table {key[1]!r}: unmatched with another reason",
                   reason, sorted(got[key]), show=True)
    print(f"powerbi: {len(live)} live reports ({len(gone)} of the expectation gone), {len(mine)} exposures of {integ}, "
          f"{sum(1 for e in mine if e.get('status') == 'written')} written; "
          f"{len(got)} unmatched tables with reasons")


def epoch(t):
    """Seconds since the epoch of an RFC 3339 UTC time (`2026-11-26T02:00:32.000Z`), or None."""
    import datetime
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|\+00:00)", (t or "").strip())
    if not m:
        return None
    y, mo, d, h, mi, se = (int(g) for g in m.groups()[:6])
    return datetime.datetime(y, mo, d, h, mi, se, tzinfo=datetime.timezone.utc).timestamp()


REQUEST_RE = re.compile(r"^#(\d+) ([A-Z]+) (\S+) -> (\d+)$")
REFRESHES_RE = re.compile(r"^/v1\.0/myorg/groups/([^/?]+)/datasets/([^/?]+)/refreshes(\?.*)?$")


def refresh_main(argv):
    """The `refresh` mode (see the module docstring)."""
    import sqlite3

    ap = argparse.ArgumentParser(prog="check-roundtrip.py refresh")
    ap.add_argument("--phase", required=True, choices=["first", "too_soon", "after"])
    ap.add_argument("--database", required=True)
    ap.add_argument("--powerbi-expected", required=True)
    ap.add_argument("--requests", required=True, help="the Power BI server's lines of this run")
    ap.add_argument("--run-results", help="dbt's run_results.json of the build refresh read")
    ap.add_argument("--output", help="what `autoexpose refresh` printed: one line per decision")
    args = ap.parse_args(argv)

    c = Checker()
    expected = load(args.powerbi_expected)
    integ = expected["integration"]
    want = expected["refresh"]
    now = epoch(want["now"][args.phase])
    due_phase = args.phase != "too_soon"
    first_now = epoch(want["now"]["first"])
    last_due_now = now if due_phase else first_now

    if args.run_results:
        statuses = {r["unique_id"]: r["status"] for r in load(args.run_results)["results"]}
        c.equal("dbt build", f"status of {want['fail_model']}", "error", statuses.get(want["fail_model"]))
        for node in want["skipped_by_failure"]:
            c.equal("dbt build", f"status of {node}", "skipped", statuses.get(node))
        others = {u: st for u, st in statuses.items()
                  if st not in ("success", "pass") and u != want["fail_model"]
                  and u not in want["skipped_by_failure"]
                  and not (st == "skipped" and u.startswith("test."))
                  and not u.startswith("exposure.")}  # dbt 1.10 lists exposures: no-op, skipped
        if others:
            c.fail("dbt build", "other nodes did not succeed", {}, others, show=True)

    conn = sqlite3.connect(f"file:{args.database}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    run_id = conn.execute("SELECT max(run_id) FROM refresh_events WHERE dry_run = 0").fetchone()[0]
    rows = conn.execute("SELECT * FROM refresh_events WHERE run_id = ? AND integration = ? ORDER BY seq",
                        (run_id, integ)).fetchall()
    state = {r["target_ref"]: r for r in conn.execute(
        "SELECT * FROM refresh_state WHERE integration = ?", (integ,)).fetchall()}
    conn.close()
    by_report = {}
    for r in rows:
        by_report.setdefault(r["asset_ref"], []).append(r)
    due_reports = {rid: t for t, rids in want["due"].items() for rid in rids}
    known = set(want["upstream_failed"]) | set(want["not_applicable"]) | set(due_reports)
    for rid in sorted(set(by_report) - known):
        c.fail(f"report {rid}", f"refresh_events has {[(r['decision'], r['reason']) for r in by_report[rid]]} "
                               f"for a report the expectation does not list")
    for rid in sorted(known - set(by_report)):
        c.fail(f"report {rid}", "no refresh_events row in this run")

    def one(rid):
        got = by_report.get(rid, [])
        if len(got) != 1:
            if got:
                c.fail(f"report {rid}", f"{len(got)} refresh_events rows, want one",
                       None, [(r["decision"], r["reason"], r["target_ref"]) for r in got], show=True)
            return None
        return got[0]

    for rid, detail in sorted(want["upstream_failed"].items()):
        r = one(rid)
        if r is not None:
            c.equal(f"report {rid}", "decision, reason", ("skipped", "upstream_failed"), (r["decision"], r["reason"]))
            c.equal(f"report {rid}", "detail (the failed or skipped node)", detail, r["detail"])
            c.equal(f"report {rid}", "target_ref (never a target)", None, r["target_ref"])
    for rid, reason in sorted(want["not_applicable"].items()):
        r = one(rid)
        if r is not None:
            c.equal(f"report {rid}", "decision, reason", ("not_applicable", reason), (r["decision"], r["reason"]))
            c.equal(f"report {rid}", "target_ref (no target)", None, r["target_ref"])
    for target, rids in sorted(want["due"].items()):
        rs = [x for x in (one(rid) for rid in rids) if x is not None]
        for r in rs:
            c.equal(f"report {r['asset_ref']}", "target", ("dataset", target), (r["target_kind"], r["target_ref"]))
        firsts = [r for r in rs if r["reason"] != "refreshed_in_this_run"]
        if len(firsts) != 1:
            c.fail(f"dataset {target}", f"{len(firsts)} reports decide it (not refreshed_in_this_run), want one",
                   None, [(r["asset_ref"], r["decision"], r["reason"]) for r in firsts], show=True)
            continue
        f = firsts[0]
        for r in rs:
            if r is not f:
                c.equal(f"report {r['asset_ref']}", "decision, reason", ("skipped", "refreshed_in_this_run"),
                        (r["decision"], r["reason"]))
                if f["exposure"] not in (r["detail"] or ""):
                    c.fail(f"report {r['asset_ref']}", f"refreshed_in_this_run without naming {f['exposure']}",
                           f["exposure"], r["detail"], show=True)
        where = f"dataset {target} (report {f['asset_ref']})"
        if due_phase:
            c.equal(where, "decision", "triggered", f["decision"])
            c.equal(where, "http_status", 202, f["http_status"])
            c.equal(where, "job_status (waited for)", "success", f["job_status"])
            c.equal(where, "matched_by", "heuristic", f["matched_by"])
            if not (f["job_id"] or "").endswith("@" + target):
                c.fail(where, f"job_id {f['job_id']!r} does not name the dataset")
            done = epoch(f["job_completed_at"])
            if done is None or done < now:
                c.fail(where, f"job_completed_at {f['job_completed_at']!r} is before our POST at "
                              f"{want['now'][args.phase]}: not our refresh")
        else:
            c.equal(where, "decision, reason", ("skipped", "too_soon"), (f["decision"], f["reason"]))
            c.equal(where, "eligible_at", first_now + 60 * want["build_after_minutes"], epoch(f["eligible_at"]))
            c.equal(where, "job_id (nothing sent)", None, f["job_id"])
        s = state.get(target)
        if s is None:
            c.fail(where, "no refresh_state row")
        else:
            c.equal(where, "refresh_state.last_triggered_at", last_due_now, epoch(s["last_triggered_at"]))
            c.equal(where, "refresh_state.last_decision", "triggered", s["last_decision"])
    for t in sorted(set(state) - set(want["due"])):
        c.fail(f"dataset {t}", "in refresh_state, but never due")

    # One dbt-style line per decision: `Refreshing Power BI dataset for exposure NAME … [DECISION`.
    if args.output:
        with open(args.output, encoding="utf-8", errors="replace") as fh:
            printed = [line.rstrip("\n") for line in fh if " Refreshing Power BI dataset for exposure " in line]
        for r in rows:
            head = f" Refreshing Power BI dataset for exposure {r['exposure']} "
            mine = [line for line in printed if head in line or line.endswith(head.rstrip())]
            tag = "[" + r["decision"].upper()
            if len(mine) != 1 or tag not in mine[0]:
                c.fail(f"report {r['asset_ref']}", f"want one output line for exposure {r['exposure']} with {tag}",
                       tag, mine, show=True)
        if len(printed) != len(rows):
            c.fail("output", f"{len(printed)} 'Refreshing Power BI dataset' lines for {len(rows)} decisions")

    # The server's own account of this run.
    posts, polls, other = {}, {}, []
    with open(args.requests, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = REQUEST_RE.match(line.rstrip("\n"))
            if not m:
                continue
            n, method, path, status = int(m[1]), m[2], m[3], int(m[4])
            rm = REFRESHES_RE.match(path)
            if not rm:
                continue
            target = f"{rm[1]}/{rm[2]}"
            if target not in want["due"]:
                other.append(line.strip())
            elif method == "POST":
                posts.setdefault(target, []).append((n, status))
            elif method == "GET":
                polls.setdefault(target, []).append(n)
    for line in other:
        c.fail("Power BI server", f"a refresh call for a dataset that is not due: {line}")
    for target in sorted(want["due"]):
        p = posts.get(target, [])
        if not due_phase:
            if p:
                c.fail(f"dataset {target}", f"POSTed inside the cadence: {p}")
            continue
        if [s for _, s in p] != [202]:
            c.fail(f"dataset {target}", "POSTs to …/refreshes (request number, status), want exactly one 202",
                   "one", p, show=True)
            continue
        after = [n for n in polls.get(target, []) if n > p[0][0]]
        if not after:
            c.fail(f"dataset {target}", f"no poll of the dataset's refresh history after our POST #{p[0][0]}")
    for target in sorted(set(posts) - set(want["due"])):
        c.fail(f"dataset {target}", f"POSTed but not due: {posts[target]}")

    n_posts = sum(len(v) for v in posts.values())
    if c.failures:
        print(f"check-roundtrip refresh ({args.phase}): {c.failures} mismatch(es)")
        return 1
    print(f"check-roundtrip refresh ({args.phase}): OK: {len(rows)} decisions of {integ} in run {run_id}; "
          f"{n_posts} refresh POSTs ({', '.join(sorted(posts)) or 'none'}), "
          f"{sum(len(v) for v in polls.values())} history polls; "
          f"{len(want['upstream_failed'])} upstream_failed, {len(want['not_applicable'])} not_applicable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
