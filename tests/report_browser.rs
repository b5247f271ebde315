//! `autoexpose report` in a real browser: Debian's headless Chromium over WebDriver
//! (tests/support/webdriver.rs), on a database made by `run` against the demo Tableau site
//! with a hostile workbook name. The page must load without a console error or a network
//! request, show every exposure, narrow as one types, filter, open a detail view with the
//! exposure's dependencies and a lineage drawing of exactly its upstream nodes, and show the
//! hostile name as text, with no alert and no injected element.
//!
//! Screenshots go to target/report-screenshot.png (the list) and
//! target/report-screenshot-detail.png (a detail view); CI keeps them as artifacts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};
use crate::support::webdriver::{Driver, Session};

const PAT: [(&str, &str); 2] = [
    ("AE_TEST_PAT_NAME", "autoexpose-demo"),
    ("AE_TEST_PAT_SECRET", "demo-pat-secret"),
];
const HOSTILE: &str = "</script><script>alert(1)</script><img src=x onerror=alert(2)> {{ x }}";

/// The demo site with its first workbook renamed to `HOSTILE`.
fn hostile_site(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("testdata/tableau/demo.site.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["sites"][0]["workbooks"][0]["name"] = json!(HOSTILE);
    let path = dir.join("hostile.site.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    path
}

/// dbt_nodes.depends_on as extract writes it (the manifest's depends_on.nodes among the
/// graph's nodes), filled here only while extract still leaves them all '[]': the graph
/// edges are a parallel change to extract, and the drawing is tested on a real graph either way.
fn ensure_graph(conn: &rusqlite::Connection) {
    let filled: i64 = conn
        .query_row(
            "SELECT count(*) FROM dbt_nodes WHERE depends_on <> '[]'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if filled > 0 {
        return;
    }
    let manifest: Value = serde_json::from_slice(&std::fs::read(demo_manifest()).unwrap()).unwrap();
    let ids: BTreeSet<String> = conn
        .prepare("SELECT unique_id FROM dbt_nodes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (uid, node) in manifest["nodes"].as_object().unwrap() {
        if !ids.contains(uid) {
            continue;
        }
        let mut parents: Vec<&str> = node["depends_on"]["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|p| ids.contains(*p))
                    .collect()
            })
            .unwrap_or_default();
        parents.sort_unstable();
        parents.dedup();
        conn.execute(
            "UPDATE dbt_nodes SET depends_on = ?1 WHERE unique_id = ?2",
            (serde_json::to_string(&parents).unwrap(), uid),
        )
        .unwrap();
    }
}

/// Each dbt node's parents and its (kind, name), as the database holds them.
fn graph(conn: &rusqlite::Connection) -> BTreeMap<String, (String, String, Vec<String>)> {
    conn.prepare("SELECT unique_id, resource_type, name, depends_on FROM dbt_nodes")
        .unwrap()
        .query_map([], |r| {
            let parents: String = r.get(3)?;
            Ok((
                r.get::<_, String>(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    serde_json::from_str(&parents).unwrap(),
                ),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn shown(s: &Session) -> (u64, u64, u64) {
    let v = s.eval(
        "var c = document.getElementById('count'); return [Number(c.dataset.shown), Number(c.dataset.total), document.querySelectorAll('#list-body tr').length];",
        json!([]),
    );
    (
        v[0].as_u64().unwrap(),
        v[1].as_u64().unwrap(),
        v[2].as_u64().unwrap(),
    )
}

/// The drawn lineage's nodes as (kind, name).
fn drawn(s: &Session) -> BTreeSet<(String, String)> {
    let v = s.eval(
        "return Array.from(document.querySelectorAll('#lineage g.node')).map(function (g) { return [g.getAttribute('data-kind'), g.getAttribute('data-name')]; });",
        json!([]),
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo().join("target"), std::path::PathBuf::from)
}

/// Console errors and CSP violations: every SEVERE entry of the browser log.
fn assert_no_errors(s: &Session, when: &str) {
    let severe: Vec<Value> = s
        .browser_log()
        .into_iter()
        .filter(|e| e["level"] == json!("SEVERE"))
        .collect();
    assert!(severe.is_empty(), "browser errors {when}: {severe:#?}");
}

#[test]
fn report_in_chromium() {
    let fixtures = tempfile::tempdir().unwrap();
    let server = TableauServer::start(&hostile_site(fixtures.path()), Faults::default());
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    assert_ok(&ws.run(&[], "run", &PAT));
    server.stop();
    let conn = ws.conn();
    ensure_graph(&conn);
    let page = ws.path("report.html");
    let out = ws.run_with(&[], "report", &["--out", page.to_str().unwrap()], &[]);
    assert_ok(&out);
    let total: u64 = conn
        .query_row("SELECT count(*) FROM exposures", [], |r| r.get(0))
        .unwrap();
    assert!(total > 5, "the demo site makes more exposures than {total}");
    let hostile_name: String = conn
        .query_row("SELECT e.name FROM exposures e JOIN bi_assets a USING (integration, asset_ref) WHERE a.name = ?1", [HOSTILE], |r| r.get(0))
        .unwrap();

    let driver = Driver::start();
    let s = Session::new(&driver, 1400, 1000);
    s.goto(&format!("file://{}", page.display()));
    s.wait_for("return document.body.getAttribute('data-ready') === 'true';");

    // Nothing fetched, a CSP that forbids it, no console error.
    assert_eq!(
        s.eval(
            "return performance.getEntriesByType('resource').length;",
            json!([])
        ),
        json!(0)
    );
    let csp = s.eval("var m = document.querySelector('meta[http-equiv=\"Content-Security-Policy\"]'); return m ? m.content : null;", json!([]));
    assert!(
        csp.as_str()
            .is_some_and(|c| c.starts_with("default-src 'none';")),
        "CSP: {csp}"
    );
    assert_no_errors(&s, "on load");

    // Every exposure (the demo has fewer than a page of them).
    assert_eq!(shown(&s), (total, total, total));

    // The hostile name is text: its label cell reads it back exactly, no alert opened, and
    // the page holds only its own two scripts and no image.
    assert_eq!(s.alert_text(), None, "an alert is open");
    let cells = s.eval(
        "var want = arguments[0]; return Array.from(document.querySelectorAll('#list-body td')).filter(function (td) { return td.textContent === want; }).length;",
        json!([HOSTILE]),
    );
    assert_eq!(cells, json!(1), "the hostile label is shown as text once");
    assert_eq!(s.eval("return [document.scripts.length, document.images.length, document.querySelectorAll('img, iframe, object, embed').length];", json!([])), json!([2, 0, 0]));
    s.screenshot(&target_dir().join("report-screenshot.png"));

    // Search narrows as one types: the hostile workbook's `onerror` matches it alone;
    // a dependency's name matches every exposure that reads it.
    s.type_into("#search", "onerror");
    assert_eq!(shown(&s), (1, total, 1));
    s.clear("#search");
    s.type_into("#search", "dim_customers");
    let readers: u64 = conn
        .query_row("SELECT count(DISTINCT e.name) FROM exposures e JOIN bi_assets a USING (integration, asset_ref) JOIN exposure_dependencies d ON d.integration = a.integration AND d.asset_id = a.asset_id WHERE d.unique_id LIKE '%.dim_customers%'", [], |r| r.get(0))
        .unwrap();
    let (n, _, rows) = shown(&s);
    assert!(
        readers > 0 && readers < total,
        "dim_customers readers: {readers}"
    );
    assert_eq!(
        (n, rows),
        (readers, readers),
        "searching a dependency's name"
    );
    s.clear("#search");
    assert_eq!(
        shown(&s),
        (total, total, total),
        "a cleared search shows everything again"
    );

    // A filter: the Marketing folder.
    let marketing: u64 = conn
        .query_row("SELECT count(*) FROM exposures e JOIN bi_assets a USING (integration, asset_ref) WHERE a.folder = 'Marketing'", [], |r| r.get(0))
        .unwrap();
    assert!(marketing > 0 && marketing < total);
    s.click("#f-folder option[value='Marketing']");
    assert_eq!(shown(&s), (marketing, total, marketing));
    s.click("#f-folder option[value='']");
    assert_eq!(shown(&s).0, total);

    // Sorting by a column: dependencies, descending on the second click.
    s.click("th button[data-sort='deps']");
    s.click("th button[data-sort='deps']");
    let counts = s.eval("return Array.from(document.querySelectorAll('#list-body tr td:nth-child(9)')).map(function (td) { return Number(td.textContent); });", json!([]));
    let counts: Vec<u64> = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "sorted by dependencies, descending: {counts:?}"
    );

    // The hostile exposure's detail view: its label as text, its dependencies, its lineage.
    s.type_into("#search", "onerror");
    s.click("#list-body a.open");
    s.wait_for("return !document.getElementById('detail-view').hidden;");
    assert_eq!(
        s.eval(
            "return document.getElementById('detail-title').textContent;",
            json!([])
        ),
        json!(HOSTILE)
    );
    assert_eq!(
        s.eval(
            "return document.getElementById('detail-name').textContent;",
            json!([])
        ),
        json!(hostile_name)
    );
    let deps: Vec<String> = conn
        .prepare("SELECT d.unique_id FROM exposure_dependencies d JOIN bi_assets a ON d.integration = a.integration AND d.asset_id = a.asset_id WHERE a.name = ?1 ORDER BY 1")
        .unwrap()
        .query_map([HOSTILE], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!deps.is_empty());
    let g = graph(&conn);
    let listed = s.eval("return Array.from(document.querySelectorAll('#deps tbody a.node-link')).map(function (a) { return a.textContent; }).sort();", json!([]));
    let mut want: Vec<String> = deps.iter().map(|d| g[d].1.clone()).collect();
    want.sort();
    assert_eq!(listed, json!(want), "the dependencies table");
    let via = s.eval("return Array.from(document.querySelectorAll('#deps tbody tr td:nth-child(3)')).map(function (td) { return td.textContent; });", json!([]));
    assert!(
        via.as_array()
            .unwrap()
            .iter()
            .all(|v| ["embedded", "published", "custom_sql"].contains(&v.as_str().unwrap())),
        "paths: {via}"
    );

    // Upstream: the dependencies and all their ancestors, and the exposure.
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    let mut stack = deps.clone();
    let mut seen = BTreeSet::new();
    while let Some(uid) = stack.pop() {
        if seen.insert(uid.clone()) {
            let (kind, name, parents) = &g[&uid];
            expected.insert((kind.clone(), name.clone()));
            stack.extend(parents.iter().cloned());
        }
    }
    assert!(
        expected.iter().any(|(k, _)| k == "source" || k == "seed"),
        "the demo's lineage reaches a source or seed: {expected:?}"
    );
    expected.insert(("exposure".into(), hostile_name.clone()));
    assert_eq!(drawn(&s), expected, "upstream lineage");
    assert_eq!(s.eval("return document.querySelector('#lineage g.node[data-kind=exposure]').getAttribute('data-tool');", json!([])), json!("tableau"));
    assert_eq!(s.alert_text(), None);
    assert_eq!(
        s.eval(
            "return [document.scripts.length, document.images.length];",
            json!([])
        ),
        json!([2, 0])
    );
    s.screenshot(&target_dir().join("report-screenshot-detail.png"));

    // Downstream of one model (the first dependency): its descendants and the exposures
    // that read any of them.
    let model = &deps[0];
    let mut down: BTreeSet<String> = BTreeSet::from([model.clone()]);
    loop {
        let more: Vec<String> = g
            .iter()
            .filter(|(u, n)| !down.contains(*u) && n.2.iter().any(|p| down.contains(p)))
            .map(|(u, _)| u.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        down.extend(more);
    }
    let mut expected: BTreeSet<(String, String)> = down
        .iter()
        .map(|u| (g[u].0.clone(), g[u].1.clone()))
        .collect();
    let mut st = conn
        .prepare("SELECT DISTINCT e.name, d.unique_id FROM exposures e JOIN bi_assets a USING (integration, asset_ref) JOIN exposure_dependencies d ON d.integration = a.integration AND d.asset_id = a.asset_id")
        .unwrap();
    for row in st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (name, uid) = row.unwrap();
        if down.contains(&uid) {
            expected.insert(("exposure".into(), name));
        }
    }
    // The table lists dependencies in unique_id order, as `deps` is.
    s.click("#deps tbody a.node-link");
    s.wait_for("return document.querySelector('#lineage g.node.focus[data-kind]') !== null && location.hash.indexOf('#node=') === 0;");
    assert_eq!(
        s.eval(
            "return document.getElementById('detail-title').textContent;",
            json!([])
        ),
        json!(g[model].1)
    );
    assert_eq!(drawn(&s), expected, "downstream lineage of {model}");
    assert_no_errors(&s, "after using the page");

    // Back to the list.
    s.click("a.back");
    s.wait_for("return !document.getElementById('list-view').hidden;");
    assert_eq!(
        s.eval(
            "return performance.getEntriesByType('resource').length;",
            json!([])
        ),
        json!(0),
        "nothing fetched"
    );
}
