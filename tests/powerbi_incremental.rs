//! Incremental sync for Power BI (issue #17): a rerun after workspaces were modified, added and
//! removed scans only those (`workspaces/modified?modifiedSince=`, shared/reference/powerbi.md
//! section 2), reuses the rest from the cache, and writes what a full run over the final state
//! writes; `sync_state` says what it did with each workspace and why. A last extraction outside
//! the 30 minutes – 30 days `modifiedSince` takes makes a full sync, and says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;
use crate::powerbi::{fixture, report, ws_id, Tenant, SECRET};
use crate::support::powerbi_server::{Faults, PowerBiServer};

const FIRST: &str = "2026-12-01T02:00:00Z";
const NIGHT: &str = "2026-12-02T02:00:00Z";
/// When the day's changes were made: between the two runs.
const CHANGED_AT: &str = "2026-12-01T15:00:00Z";

fn corp() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("corp.tenant.json")).unwrap()).unwrap()
}

fn dataset(n: u32) -> String {
    format!("da7a0000-0000-4000-8000-{n:012x}")
}

/// A plain workspace: one report on one dataset of one SQL Server table.
fn plain(n: u32, name: &str, table: &str) -> Value {
    json!({
        "id": ws_id(n), "name": name,
        "reports": [{"id": report(n + 10), "name": format!("{name} report"), "datasetId": dataset(n + 10), "reportType": "PowerBIReport", "createdBy": "kim@contoso.example"}],
        "datasets": [{"id": dataset(n + 10), "name": format!("{name} model"), "configuredBy": "kim@contoso.example",
            "tables": [{"name": "T", "source": [{"expression": format!("let\n    Source = Sql.Database(\"sql01.corp.example\", \"dw\"),\n    T = Source{{[Schema=\"dbo\",Item=\"{table}\"]}}[Data]\nin\n    T")}]}]}]
    })
}

fn workspace<'a>(f: &'a mut Value, name: &str) -> &'a mut Value {
    f["workspaces"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no workspace {name}"))
}

fn write(dir: &Path, name: &str, f: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(f).unwrap()).unwrap();
    p
}

/// The corp tenant with an Archive workspace more.
fn first(dir: &Path) -> PathBuf {
    let mut f = corp();
    f["workspaces"]
        .as_array_mut()
        .unwrap()
        .push(plain(6, "Archive", "old_orders"));
    write(dir, "first.tenant.json", &f)
}

/// The day after: in Shared Models (modified) a report renamed and the Finance model's M
/// changed (Sales, unmodified, reads that model); Archive deleted; Finance added.
fn changed(dir: &Path) -> PathBuf {
    let mut f = corp();
    let shared = workspace(&mut f, "Shared Models");
    shared["modified_at"] = json!(CHANGED_AT);
    shared["reports"][0]["name"] = json!("Finance KPIs v2");
    let m = &mut shared["datasets"][0]["tables"][0]["source"][0]["expression"];
    *m = json!(m
        .as_str()
        .unwrap()
        .replace("dbo.fct_revenue", "dbo.fct_revenue_v2"));
    let mut added = plain(7, "Finance", "fct_budget");
    added["modified_at"] = json!(CHANGED_AT);
    f["workspaces"].as_array_mut().unwrap().push(added);
    write(dir, "changed.tenant.json", &f)
}

/// Every table but those that record how the run went rather than what it found, and the files.
fn outcome(t: &Tenant) -> BTreeMap<String, String> {
    let conn = t.conn();
    // powerbi_scans lists the scans this run started: an incremental run starts fewer.
    let skip = [
        "runs",
        "raw_responses",
        "extract_warnings",
        "sync_bases",
        "sync_state",
        "emitted_files",
        "powerbi_scans",
    ];
    let mut out = tables_but(&conn, &skip);
    let mut stack = vec![t.dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.strip_prefix(t.dir.path()).unwrap().display().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".yml") && name != "autoexpose.yml"
                || name.ends_with("exposures.json")
            {
                out.insert(format!("file {name}"), std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    assert!(
        out.keys()
            .any(|k| k.starts_with("file ") && k.ends_with(".yml")),
        "no YAML written: {:?}",
        out.keys()
    );
    out
}

fn states(t: &Tenant) -> Vec<(String, String)> {
    let conn = t.conn();
    let mut st = conn
        .prepare("SELECT coalesce(w.name, s.id), s.action || ': ' || s.reason FROM sync_state s LEFT JOIN powerbi_workspaces w ON w.integration = s.integration AND w.id = s.id WHERE s.kind = 'workspace' ORDER BY 1")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn mode(t: &Tenant) -> String {
    t.conn()
        .query_row("SELECT mode || ': ' || why FROM sync_bases", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Runs `run` at `now`, the server's clock set to it.
fn run_at(t: &Tenant, server: &PowerBiServer, now: &str) {
    server.set_now(now);
    let out = t.run_with(&[], "run", &["--now", now], Some(SECRET));
    assert_ok(&out);
}

fn scans_of(server: &PowerBiServer, from: usize) -> Vec<String> {
    server.requests()[from..]
        .iter()
        .filter(|r| r.path.contains("/getInfo"))
        .map(|r| r.body.clone().unwrap_or_default())
        .collect()
}

fn assert_same(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in a {
        assert!(v == &b[k], "{k} differs between the incremental rerun and a full run:\n--- incremental\n{v}\n--- full\n{}", b[k]);
    }
}

#[test]
fn a_nightly_rerun_scans_only_the_modified_workspaces_and_writes_what_a_full_run_writes() {
    let fixtures = tempfile::tempdir().unwrap();
    let mut server = PowerBiServer::start(
        &first(fixtures.path()),
        Faults {
            polls_to_succeed: 1,
            ..Faults::default()
        },
    );
    let extra = "full_sync_every_days: 60\nexposures:\n  include_unmatched: true\n";
    let nightly = Tenant::new(&server.base_url, extra);
    run_at(&nightly, &server, FIRST);
    assert_eq!(
        mode(&nightly),
        "full: no earlier extraction of this integration"
    );

    server.set_fixture(&changed(fixtures.path()));
    let before = server.requests().len();
    run_at(&nightly, &server, NIGHT);
    assert_eq!(
        mode(&nightly),
        "incremental: the last full sync was at 2026-12-01T02:00:00Z (full_sync_every_days: 60); scanning the workspaces modified since 2026-12-01T02:00:00Z"
    );
    let night = server.requests()[before..].to_vec();
    assert!(
        night.iter().any(|r| r.path == "/v1.0/myorg/admin/workspaces/modified?modifiedSince=2026-12-01T02%3A00%3A00.0000000Z&excludePersonalWorkspaces=True&excludeInActiveWorkspaces=True"),
        "{night:#?}"
    );
    // One scan, of the modified and the new workspace; the parameters of Sales' dataset and
    // the reports of Sales come from the cache.
    assert_eq!(
        scans_of(&server, before),
        [format!(
            r#"{{"workspaces":["{}","{}"]}}"#,
            ws_id(2),
            ws_id(7)
        )]
    );
    assert!(
        !night
            .iter()
            .any(|r| r.path.contains(&format!("groups/{}/", ws_id(1)))),
        "{night:#?}"
    );

    let fresh = Tenant::new(&server.base_url, extra);
    run_at(&fresh, &server, NIGHT);
    assert_eq!(
        mode(&fresh),
        "full: no earlier extraction of this integration"
    );
    let a = outcome(&nightly);
    assert_same(&a, &outcome(&fresh));
    assert!(
        a["table bi_relations"].contains("fct_revenue_v2")
            && a["table bi_assets"].contains("Finance KPIs v2")
    );
    let settings = settings();
    let _guard = settings.bind_to_scope();
    insta::assert_yaml_snapshot!("powerbi_incremental__sync_state", states(&nightly));

    // Nothing changed since: nothing is scanned; the output stays.
    let before = server.requests().len();
    run_at(&nightly, &server, "2026-12-03T02:00:00Z");
    assert!(scans_of(&server, before).is_empty());
    assert!(
        states(&nightly)
            .iter()
            .all(|(_, s)| s.starts_with("reused: not modified since 2026-12-02T02:00:00Z")),
        "{:?}",
        states(&nightly)
    );
    assert_eq!(outcome(&nightly), a);

    // Less than 30 minutes after the last extraction: incremental still, asking from 31
    // minutes ago (the youngest modifiedSince the service takes), so nothing is missed.
    let before = server.requests().len();
    run_at(&nightly, &server, "2026-12-03T02:10:00Z");
    assert!(
        mode(&nightly).starts_with("incremental: "),
        "{}",
        mode(&nightly)
    );
    assert!(
        mode(&nightly).ends_with("scanning the workspaces modified since 2026-12-03T01:39:00Z (the last extraction started 10 minutes before, under the 30 minutes workspaces/modified takes)"),
        "{}",
        mode(&nightly)
    );
    assert!(scans_of(&server, before).is_empty());
    assert_eq!(outcome(&nightly), a);
    // A service whose clock is two hours behind ours refuses the modifiedSince we send: the
    // run does not fail, it scans every workspace and says why. (That one refusal is the
    // point here; it is counted below.)
    server.expect_refusals();
    server.set_now("2026-12-03T00:30:00Z");
    let out = nightly.run_with(&[], "run", &["--now", "2026-12-03T02:40:00Z"], Some(SECRET));
    assert_ok(&out);
    assert!(
        mode(&nightly).starts_with("full: the service refused modifiedSince 2026-12-03T02:09:00Z (GET admin/workspaces/modified?modifiedSince: HTTP 400"),
        "{}",
        mode(&nightly)
    );
    assert_eq!(outcome(&nightly), a);
    assert_eq!(server.refused().len(), 1, "{:?}", server.refused());
    // More than 30 days: full.
    run_at(&nightly, &server, "2027-01-03T02:40:00Z");
    assert_eq!(
        mode(&nightly),
        "full: the last extraction started at 2026-12-03T02:40:00Z (31 days before); workspaces/modified takes a modifiedSince 30 minutes to 30 days ago only"
    );
    assert_eq!(outcome(&nightly), a);
    server.stop();
}

/// Selected by id, Sales' report on a dataset of Shared Models scans Shared Models too (the
/// "extra" scan): reused while it is not modified, scanned again once it is.
#[test]
fn the_workspace_of_a_dataset_read_from_elsewhere_is_reused_or_scanned_again() {
    let fixtures = tempfile::tempdir().unwrap();
    let server = PowerBiServer::start(
        &fixture("corp.tenant.json"),
        Faults {
            polls_to_succeed: 1,
            ..Faults::default()
        },
    );
    let extra = format!(
        "    workspaces: [{}]\nexposures:\n  include_unmatched: true\n",
        ws_id(1)
    );
    let nightly = Tenant::new(&server.base_url, &extra);
    run_at(&nightly, &server, FIRST);
    let first = outcome(&nightly);
    run_at(&nightly, &server, NIGHT);
    assert_eq!(
        states(&nightly),
        [
            (
                "Sales".to_string(),
                "reused: not modified since 2026-12-01T02:00:00Z".to_string()
            ),
            (
                "Shared Models".into(),
                "reused: not modified since 2026-12-01T02:00:00Z".into()
            )
        ]
    );
    assert_eq!(outcome(&nightly), first);

    let mut f = corp();
    let shared = workspace(&mut f, "Shared Models");
    shared["modified_at"] = json!("2026-12-02T15:00:00Z");
    let m = &mut shared["datasets"][0]["tables"][0]["source"][0]["expression"];
    *m = json!(m
        .as_str()
        .unwrap()
        .replace("dbo.fct_revenue", "dbo.fct_revenue_v2"));
    server.set_fixture(&write(fixtures.path(), "changed.tenant.json", &f));
    let before = server.requests().len();
    run_at(&nightly, &server, "2026-12-03T02:00:00Z");
    assert_eq!(
        scans_of(&server, before),
        [format!(r#"{{"workspaces":["{}"]}}"#, ws_id(2))]
    );
    assert_eq!(
        states(&nightly)[1],
        (
            "Shared Models".into(),
            "fetched: modified since 2026-12-02T02:00:00Z (workspaces/modified)".into()
        )
    );
    let fresh = Tenant::new(&server.base_url, &extra);
    run_at(&fresh, &server, "2026-12-03T02:00:00Z");
    let a = outcome(&nightly);
    assert_same(&a, &outcome(&fresh));
    assert!(a["table bi_relations"].contains("fct_revenue_v2"));
    server.stop();
}
