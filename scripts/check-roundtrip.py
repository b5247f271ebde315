#!/usr/bin/env python3
"""Compares what dbt parsed (target/manifest.json) with what autoexpose meant (exposures.json).

    scripts/check-roundtrip.py --manifest M --exposures-json J [--fixture SITE.json]
        [--hand-written NAME]... [--previous OLD_exposures.json] [--must-write-prefix LUID_PREFIX]

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
  - with --previous: a workbook keeps its exposure name across runs.
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
            c.fail(uid, f"an autoexpose exposure in dbt's manifest (workbook "
                        f"{meta.get('workbook_luid')}, {m.get('original_file_path')}) that "
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
    return (meta.get("integration"), meta.get("workbook_luid") or meta.get("dashboard_id"))


if __name__ == "__main__":
    sys.exit(main())
