#!/usr/bin/env python3
"""Writes the site fixture for scripts/roundtrip.sh: the demo site plus hostile workbooks.

    scripts/make-roundtrip-fixture.py                       # (re)writes testdata/tableau/roundtrip.site.json
    scripts/make-roundtrip-fixture.py --out F --without LUID,LUID --without-project Marketing

The hostile workbooks all live in project Finance and read [demo].[main].[fct_orders] through
a live embedded data source, so each one becomes an exposure. Their name, owner name and
description carry Jinja, YAML syntax, quotes, backslashes, control whitespace, emoji,
right-to-left text, very long and symbol-only text: autoexpose must get every one of them into
dbt's manifest.json byte for byte (trailing whitespace aside: dbt drops it).

--without / --without-project remove workbooks (and the custom SQL only they used), as when
workbooks are deleted on the site; the round trip uses that to check that their exposures go.
Output is deterministic (ids derive from the luids). Standard library only.
"""

import argparse
import copy
import json
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "testdata/tableau/demo.site.json"
OUT = REPO / "testdata/tableau/roundtrip.site.json"

FINANCE = "d0000000-0000-4000-8000-000000000011"
# Workbook luids of the hostile workbooks: d0000000-0000-4000-8000-00000000f0NN (no clash with
# the demo's 01xx workbooks, 02xx data sources and 03xx tables).
LUID = "d0000000-0000-4000-8000-00000000f0{:02d}"
NS = uuid.UUID("6b1e2c40-0000-4000-8000-00000000f000")  # for the GraphQL ids, invented

LONG = ("Quarterly revenue by region, channel and customer segment, with returns and "
        "refunds netted out ") * 4

# (name, owner name, owner email, description, tags). Literal backslashes use raw strings;
# "\n" and "\t" in ordinary strings are real newlines and tabs.
HOSTILE = [
    ("{{ env_var('HOME') }}",
     "{% if true %}yes{% endif %}", "jinja.home@example.com",
     "{# comment #} reads {{ env_var('HOME') }} and {{ env_var('DBT_PROFILES_DIR') }}",
     ["{{ env_var('HOME') }}", "finance"]),
    ("{% if true %}yes{% endif %}",
     "{{ env_var('HOME') }}", "{{ env_var('HOME') }}@example.com",
     "{% raw %}x{% endraw %}{{ 1 + 1 }}", []),
    ("{# comment #}",
     "{{{{", "jinja.comment@example.com",
     "{% if true %}yes{% endif %} / {# comment #} / {%- set x = 1 -%}{{ x }}", []),
    ("{% raw %}x{% endraw %}{{ 1 + 1 }}",
     "{# comment #}", "jinja.raw@example.com",
     "{{{{ }}}} {{{{ {% endraw %} {{ '{' }}", []),
    ("{{{{",
     "{% raw %}x{% endraw %}{{ env_var('HOME') }}", "jinja.braces@example.com",
     "{{{{{{{{ {{ {", []),
    # YAML syntax: whole values that are YAML tokens, and values that would add keys.
    ("key: value",
     "- item", "yaml.key@example.com",
     "&anchor *alias !!python/object:os.system ? complex | block > folded %YAML --- ...",
     ["key: value", "- item"]),
    ("- item",
     "&anchor", "yaml.item@example.com",
     "| block\n  indented line\n> folded\n", []),
    ("&anchor *alias",
     "*alias", "yaml.anchor@example.com",
     "!!python/object/apply:os.system [\"echo pwned\"]", []),
    ("!!python/object:os.system",
     "? complex", "yaml.tag@example.com",
     "%YAML 1.2\n---\nkey: value\n...\n", []),
    ("? complex",
     "| block", "yaml.complex@example.com",
     "> folded", []),
    ("| block",
     "> folded", "yaml.block@example.com",
     "---", []),
    ("> folded",
     "%YAML", "yaml.folded@example.com",
     "...", []),
    ("%YAML 1.2",
     "---", "yaml.directive@example.com",
     "x\n  depends_on: [ref('dim_customers')]\nname: evil\n- name: injected", []),
    ("---",
     "...", "yaml.dashes@example.com",
     "- item\n- another: item", []),
    ("...",
     "key: value", "yaml.dots@example.com",
     "? complex\n: value", []),
    # Quotes and backslashes (literal backslash sequences, not escapes).
    ("It's \"quoted\" ''twice'' \"\"double\"\"",
     "O'Brien \"The Quote\" Smith", "o'brien@example.com",
     "'single' \"double\" `back` ' \" unbalanced", []),
    (r"back\\slash \n \t C:\Reports\new",
     r"DOMAIN\\user \t", "backslash@example.com",
     r"\\ \n \t \u0041 \x41 \" \' \\\\ trailing\\", []),
    # Real newlines and tabs, and trailing whitespace dbt will drop.
    ("Line one\nLine two\tTabbed   ",
     "Tab\tOwner\nSecond line", "whitespace@example.com",
     "first line\n\tindented with a tab\n\nthird paragraph   \n\n", []),
    ("Sales 📈🚀 Dashboard 👩‍💻",
     "Zoë 😀 Ñúñez", "emoji@example.com",
     "Flags 🇮🇱🇸🇦, a family 👨‍👩‍👧‍👦 and a 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 line", []),
    ("לוח מחוונים מכירות",
     "محمد العلي", "rtl@example.com",
     "mixed עברית and العربية with \u200fRLM\u200f and \u202eoverride\u202c marks", []),
    (LONG[:300],
     LONG[:200].rstrip(), "long@example.com",
     (LONG * 6)[:2000], []),
    ("!!!???",
     "!!!???", "symbols@example.com",
     "!!!???", []),
    ("   Leading spaces",
     "  Indented Owner", "leading@example.com",
     "   leading and trailing   ", []),
    # Beyond the brief's list. Windows line ends in text that also holds a brace (so dbt
    # renders it with Jinja), and without one (dbt leaves it alone).
    ("Windows {notes}\r\nsecond line\rlone CR",
     "Owner {CRLF}\r\nsecond line", "crlf@example.com",
     "Windows text {x}\r\nline two\r\n\r\nline four", []),
    ("Windows notes\r\nno braces",
     "Owner CRLF\r\nno braces", "crlf.plain@example.com",
     "Windows text\r\nline two\r\n\r\nline four", []),
    # Trailing whitespace where the brief's fields end: the owner's email and a tag.
    ("Trailing whitespace in email and tag",
     "Trailing Email Owner", "trailing.space@example.com \t",
     "The owner's email and one tag end in whitespace.", ["spaced tag ", "finance"]),
    # Unicode line and paragraph separators, NEL, C0 controls, BOM, zero-width and NBSP.
    ("Separators \u2028LS \u2029PS \u0085NEL {y}",
     "Bell \x07 and \x1b escape", "controls@example.com",
     "BOM \ufeff inside, ZWSP \u200b, NBSP\u00a0, DEL \x7f {z}", []),
    # Only whitespace: the label trims to "", the owner falls back to the username and the
    # description to the generated line.
    ("\t \n  ",
     "   ", "blank@example.com",
     "   \n\t ", []),
]


def table_from(site):
    """The demo's [demo].[main].[fct_orders] table node, reused by every hostile workbook."""
    for w in site["workbooks"]:
        for ds in w["embeddedDatasources"]:
            for t in ds["upstreamTables"]:
                if t.get("fullName") == "[demo].[main].[fct_orders]":
                    return copy.deepcopy(t)
    sys.exit("demo.site.json has no [demo].[main].[fct_orders] table")


def hostile_workbook(i, spec, table):
    name, owner_name, email, description, tags = spec
    luid = LUID.format(i)
    url_id = str(900 + i)
    return {
        "id": str(uuid.uuid5(NS, "workbook:" + luid)),
        "luid": luid,
        "name": name,
        "uri": "sites/1/workbooks/" + url_id,
        "vizportalUrlId": url_id,
        "projectLuid": FINANCE,
        "projectName": "Finance",
        "description": description,
        "createdAt": "2024-05-01T10:00:00Z",
        "updatedAt": "2024-05-02T10:00:%02dZ" % i,
        "owner": {"username": "hostile%02d" % i, "email": email, "name": owner_name},
        "tags": [{"name": t} for t in tags],
        "embeddedDatasources": [{
            "id": str(uuid.uuid5(NS, "datasource:" + luid)),
            "name": "fct_orders (live)",
            "hasExtracts": False,
            "upstreamTables": [table],
            "upstreamDatasources": [],
        }],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", type=Path, default=DEMO, help="the demo site fixture to start from")
    ap.add_argument("--out", type=Path, default=OUT, help="where to write (default: %(default)s)")
    ap.add_argument("--without", default="", help="comma-separated workbook luids to leave out")
    ap.add_argument("--without-project", action="append", default=[], metavar="NAME",
                    help="leave out every workbook whose projectName is NAME (repeatable)")
    args = ap.parse_args()

    fixture = json.loads(args.demo.read_text(encoding="utf-8"))
    sites = [s for s in fixture["sites"] if s["content_url"] == "demo"]
    if len(sites) != 1:
        sys.exit(f"{args.demo}: expected one site with content_url 'demo'")
    site = sites[0]
    if not any(p["id"] == FINANCE and p["name"] == "Finance" for p in site["projects"]):
        sys.exit(f"{args.demo}: project Finance ({FINANCE}) not found")

    table = table_from(site)
    known = {w["luid"] for w in site["workbooks"]}
    for i, spec in enumerate(HOSTILE, start=1):
        wb = hostile_workbook(i, spec, table)
        assert wb["luid"] not in known, wb["luid"]
        site["workbooks"].append(wb)

    without = {x.strip() for x in args.without.split(",") if x.strip()}
    unknown = without - {w["luid"] for w in site["workbooks"]}
    if unknown:
        sys.exit(f"--without: no workbook with luid {', '.join(sorted(unknown))}")
    removed = {w["luid"] for w in site["workbooks"]
               if w["luid"] in without or w["projectName"] in args.without_project}
    site["workbooks"] = [w for w in site["workbooks"] if w["luid"] not in removed]
    # Custom SQL belongs to its workbooks: drop the links to removed ones, and the query when
    # no workbook is left.
    kept_sql = []
    for q in site.get("custom_sql", []):
        q["downstreamWorkbooks"] = [d for d in q["downstreamWorkbooks"] if d["luid"] not in removed]
        if q["downstreamWorkbooks"]:
            kept_sql.append(q)
    site["custom_sql"] = kept_sql

    text = json.dumps(fixture, indent=2, ensure_ascii=False) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {len(site['workbooks'])} workbooks"
          + (f" ({len(removed)} left out)" if removed else ""))


if __name__ == "__main__":
    main()
