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


if __name__ == "__main__":
    sys.exit(main())
