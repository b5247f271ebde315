//! Incremental sync (issue #17): a rerun after workbooks and data sources changed, were added,
//! removed and moved writes what a full run over the final state writes, fetching only what
//! changed, and says in `sync_state` what it did with each and why.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

const PAT: [(&str, &str); 2] = [
    ("AE_TEST_PAT_NAME", "autoexpose-demo"),
    ("AE_TEST_PAT_SECRET", "demo-pat-secret"),
];
const FIRST: &str = "2026-12-01T02:00:00Z";
const NIGHT: &str = "2026-12-02T02:00:00Z";

fn demo() -> Value {
    serde_json::from_slice(&std::fs::read(repo().join("testdata/tableau/demo.site.json")).unwrap())
        .unwrap()
}

fn workbook<'a>(site: &'a mut Value, name: &str) -> &'a mut Value {
    site["workbooks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no workbook {name}"))
}

/// The demo site after a day of work: one workbook renamed (its updatedAt moves), one added,
/// one deleted, one moved between selected projects (updatedAt as it was), one moved out of
/// them, a published data source republished with a table fewer (the workbook reading it
/// unchanged), and a custom SQL query edited (in a workbook republished with it).
fn changed(dir: &std::path::Path) -> std::path::PathBuf {
    let mut f = demo();
    let site = &mut f["sites"][0];
    let finance = workbook(site, "Margin Review").clone();
    let sandbox = workbook(site, "Playground").clone();

    let w = workbook(site, "Sales Overview");
    if w["projectName"] == "Finance" {
        w["name"] = json!("Sales Overview v2");
        w["updatedAt"] = json!("2026-12-01T15:00:00Z");
    }
    let mut added = finance.clone();
    added["id"] = json!("9a000000-0000-4000-8000-0000000000a1");
    added["luid"] = json!("9b000000-0000-4000-8000-0000000000a1");
    added["name"] = json!("Margin Review EU");
    added["vizportalUrlId"] = json!("9001");
    for (i, e) in added["embeddedDatasources"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        e["id"] = json!(format!("9c000000-0000-4000-8000-00000000{i:04}"));
    }
    site["workbooks"].as_array_mut().unwrap().push(added);
    site["workbooks"]
        .as_array_mut()
        .unwrap()
        .retain(|w| w["name"] != "Staging Check");
    let w = workbook(site, "Events Explorer");
    (w["projectLuid"], w["projectName"]) = (
        finance["projectLuid"].clone(),
        finance["projectName"].clone(),
    );
    let w = workbook(site, "Orphan Dashboard");
    (w["projectLuid"], w["projectName"]) = (
        sandbox["projectLuid"].clone(),
        sandbox["projectName"].clone(),
    );
    let w = workbook(site, "Customer 360");
    for p in w["embeddedDatasources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|e| e["upstreamDatasources"].as_array_mut().unwrap())
    {
        p["updatedAt"] = json!("2026-12-01T16:00:00Z");
        p["upstreamTables"].as_array_mut().unwrap().truncate(1);
    }
    let w = workbook(site, "Ad hoc SQL");
    w["updatedAt"] = json!("2026-12-01T17:00:00Z");
    let q = site["custom_sql"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|q| q["query"].as_str().unwrap().starts_with("with recent"))
        .unwrap();
    q["query"] = json!(q["query"]
        .as_str()
        .unwrap()
        .replace("main.fct_orders", "main.fct_orders_v2"));
    let p = dir.join("changed.site.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&f).unwrap()).unwrap();
    p
}

/// Every table but those that record how the run went rather than what it found, and the files.
fn outcome(ws: &Workspace) -> BTreeMap<String, String> {
    let conn = ws.conn();
    // emitted_files says what emit did to each file (`written` or `unchanged`): the rerun
    // found some files as they were.
    let skip = [
        "runs",
        "raw_responses",
        "extract_warnings",
        "sync_bases",
        "sync_state",
        "emitted_files",
    ];
    let mut out = tables_but(&conn, &skip);
    for (name, text) in ws.yaml_files() {
        out.insert(format!("yaml {name}"), text);
    }
    out.insert(
        "exposures.json".into(),
        std::fs::read_to_string(ws.path("exposures.json")).unwrap(),
    );
    out
}

fn states(ws: &Workspace) -> Vec<(String, String, String)> {
    let conn = ws.conn();
    let mut st = conn
        .prepare("SELECT s.kind, coalesce(w.name, s.id), s.action || ': ' || s.reason FROM sync_state s LEFT JOIN tableau_workbooks w ON w.integration = s.integration AND w.id = s.id ORDER BY 1, 2")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn graphql_requests(server: &TableauServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/metadata/graphql")
        .count()
}

#[test]
fn a_nightly_rerun_fetches_only_what_changed_and_writes_what_a_full_run_writes() {
    let fixtures = tempfile::tempdir().unwrap();
    let server = TableauServer::start(
        &repo().join("testdata/tableau/demo.site.json"),
        Faults::default(),
    );
    let site = SiteConfig::demo(&server.base_url);
    let nightly = Workspace::new(std::slice::from_ref(&site), None);
    assert_ok(&nightly.run_with(&[], "run", &["--now", FIRST], &PAT));
    let first_requests = graphql_requests(&server);

    server.set_fixture(&changed(fixtures.path()));
    let out = nightly.run_with(&[], "run", &["--now", NIGHT], &PAT);
    assert_ok(&out);
    assert!(
        stderr(&out).contains(
            "tableau demo: incremental sync (the last full sync was at 2026-12-01T02:00:00Z"
        ),
        "{}",
        stderr(&out)
    );
    let night_requests = graphql_requests(&server) - first_requests;

    let fresh = Workspace::new(&[site], None);
    assert_ok(&fresh.run_with(&[], "run", &["--now", NIGHT], &PAT));
    let (a, b) = (outcome(&nightly), outcome(&fresh));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(v == &b[k], "{k} differs between the incremental rerun and a full run:\n--- incremental\n{v}\n--- full\n{}", b[k]);
    }
    let mode = |ws: &Workspace| {
        ws.conn()
            .query_row("SELECT mode || ': ' || why FROM sync_bases", [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap()
    };
    assert_eq!(
        mode(&nightly),
        "incremental: the last full sync was at 2026-12-01T02:00:00Z (full_sync_every_days: 7)"
    );
    assert_eq!(
        mode(&fresh),
        "full: no earlier extraction of this integration"
    );
    let settings = settings();
    let _guard = settings.bind_to_scope();
    insta::assert_yaml_snapshot!("incremental__sync_state", states(&nightly));
    // Listings, then details of 5 workbooks (one chunk of 5) and of the custom SQL of the one
    // republished with it: fewer requests than the first run's.
    assert!(
        night_requests < first_requests,
        "{night_requests} requests at night, {first_requests} the first time"
    );

    // Nothing changed since: nothing is fetched; the output stays.
    let out = nightly.run_with(&[], "run", &["--now", "2026-12-03T02:00:00Z"], &PAT);
    assert_ok(&out);
    let fetched: i64 = nightly
        .conn()
        .query_row(
            "SELECT count(*) FROM sync_state WHERE action = 'fetched'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fetched, 0, "{:?}", states(&nightly));
    assert_eq!(outcome(&nightly), a);

    // A week after the first full sync, and with --full, the run is full again.
    assert_ok(&nightly.run_with(&[], "run", &["--now", "2026-12-08T02:00:00Z"], &PAT));
    assert_eq!(mode(&nightly), "full: the last full sync was at 2026-12-01T02:00:00Z (7 days before; full_sync_every_days: 7)");
    assert_ok(&nightly.run_with(
        &[],
        "run",
        &["--now", "2026-12-08T03:00:00Z", "--full"],
        &PAT,
    ));
    assert_eq!(mode(&nightly), "full: --full");
    assert_eq!(outcome(&nightly), a);
    server.stop();
}

/// An incomplete extraction (here: tables whose names Catalog permissions hid) is never the
/// base of the next one, which is full and says why; a failed one commits nothing, so the next
/// builds on the last that succeeded.
#[test]
fn an_incomplete_or_failed_extraction_is_never_built_on() {
    let fixtures = tempfile::tempdir().unwrap();
    let mut f = demo();
    let w = workbook(&mut f["sites"][0], "Margin Review");
    for t in w["embeddedDatasources"][0]["upstreamTables"]
        .as_array_mut()
        .unwrap()
    {
        for k in ["name", "fullName", "schema"] {
            t[k] = Value::Null;
        }
        t["database"]["name"] = Value::Null;
    }
    let redacted = fixtures.path().join("redacted.site.json");
    std::fs::write(&redacted, serde_json::to_vec(&f).unwrap()).unwrap();
    let server = TableauServer::start(&redacted, Faults::default());
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run_with(&[], "extract", &["--now", FIRST], &PAT);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let base = |ws: &Workspace| {
        ws.conn()
            .query_row(
                "SELECT mode || ': ' || why || ', complete ' || complete FROM sync_bases",
                [],
                |r| r.get::<_, String>(0),
            )
            .unwrap()
    };
    assert_eq!(
        base(&ws),
        "full: no earlier extraction of this integration, complete 0"
    );

    server.set_fixture(&repo().join("testdata/tableau/demo.site.json"));
    assert_ok(&ws.run_with(&[], "extract", &["--now", NIGHT], &PAT));
    assert_eq!(
        base(&ws),
        "full: the last extraction was incomplete, complete 1"
    );

    // A config the run fails on (a project the site lacks) stops it before anything is
    // written: the next run still builds on the complete one.
    let config = std::fs::read_to_string(&ws.config).unwrap();
    std::fs::write(&ws.config, config.replace("Marketing", "No Such Project")).unwrap();
    let out = ws.run_with(&[], "extract", &["--now", NIGHT], &PAT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        base(&ws),
        "full: the last extraction was incomplete, complete 1"
    );
    std::fs::write(&ws.config, config).unwrap();
    assert_ok(&ws.run_with(&[], "extract", &["--now", NIGHT], &PAT));
    assert_eq!(base(&ws), "incremental: the last full sync was at 2026-12-02T02:00:00Z (full_sync_every_days: 7), complete 1");
    server.stop();
}
