//! Active exposures for Power BI (issue #15) against the local Power BI server
//! (tests/support/powerbi_server.rs): the datasets behind due reports refreshed once each,
//! the cadence, upstream failures, refusals (already running, the daily limit, 403), DirectQuery
//! datasets, and `--wait` following our very refresh (a scheduled one landing in the history is
//! not ours; a token expiring while polling is renewed). Each case snapshots its decision table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::common::*;
use crate::support::powerbi_server::{Faults, PowerBiServer};

const ID_ENV: &str = "AE_PBI_CLIENT_ID";
const SECRET_ENV: &str = "AE_PBI_CLIENT_SECRET";
/// The principal of testdata/powerbi/corp.tenant.json.
const CLIENT_ID: &str = "a11ce000-0000-4000-8000-00000000c11d";
const SECRET: &str = "pbi-test-secret~Value.42";
const TENANT: &str = "6f1c0000-0000-4000-8000-0000000000aa";
/// "Sales model" (reports Sales Overview and the hostile-named one) and "Finance model"
/// (Revenue, in another workspace, and Finance KPIs).
const SALES_DS: &str = "da7a0000-0000-4000-8000-000000000001";
const FINANCE_DS: &str = "da7a0000-0000-4000-8000-000000000002";
const T0: &str = "2026-11-25T02:00:00Z";
const ON: (&str, &str) = ("DBT_ACTIVE_EXPOSURES", "1");

/// The corp tenant, where the Sales model's `Orders` table reads the demo project's fct_orders
/// (`demo.main.fct_orders`) and the Finance model reads it too, so both datasets are due after
/// a build of fct_orders.
fn fixture() -> Value {
    let mut f: Value = serde_json::from_slice(
        &std::fs::read(repo().join("testdata/powerbi/corp.tenant.json")).unwrap(),
    )
    .unwrap();
    let m = &mut dataset(&mut f, SALES_DS)["tables"][0]["source"][0]["expression"];
    let text = m
        .as_str()
        .unwrap()
        .replace("ANALYTICS", "demo")
        .replace("MARTS", "main")
        .replace("FCT_ORDERS", "fct_orders");
    assert!(text.contains("fct_orders"), "{text}");
    *m = json!(text);
    let orders = dataset(&mut f, SALES_DS)["tables"][0].clone();
    dataset(&mut f, FINANCE_DS)["tables"]
        .as_array_mut()
        .unwrap()
        .push(orders);
    f
}

fn dataset<'a>(f: &'a mut Value, id: &str) -> &'a mut Value {
    f["workspaces"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|w| w["datasets"].as_array_mut().unwrap().iter_mut())
        .find(|d| d["id"] == id)
        .unwrap()
}

/// A scratch project of one tenant: extracted and emitted from one server (stopped after), then
/// refreshed against another that plays the tenant at refresh time.
struct Case {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Case {
    fn new(f: &Value) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenant.json");
        std::fs::write(&path, serde_json::to_vec_pretty(f).unwrap()).unwrap();
        let server = PowerBiServer::start(&path, Faults::default());
        let case = Case {
            config: dir.path().join("autoexpose.yml"),
            dir,
        };
        case.serve(&server);
        let out = case.command("run", &[]).output().unwrap();
        assert_ok(&out);
        server.stop();
        std::fs::create_dir_all(case.dir.path().join("dbt/target")).unwrap();
        case.set_run_results(&run_results(
            "build",
            &[
                ("model.autoexpose_demo.fct_orders", "success"),
                ("model.autoexpose_demo.stg_orders", "success"),
            ],
        ));
        case
    }

    /// Writes the config pointing at `server`.
    fn serve(&self, server: &PowerBiServer) {
        std::fs::create_dir_all(self.dir.path().join("dbt")).unwrap();
        let url = &server.base_url;
        let yaml = format!(
            "database: autoexpose.db\ndbt:\n  project_dir: dbt\n  manifest: {}\nexposures:\n  include_unmatched: true\npowerbi:\n  - name: corp\n    tenant_id: {TENANT}\n    client_id_env: {ID_ENV}\n    client_secret_env: {SECRET_ENV}\n    api_url: {url}\n    login_url: {url}\n    retry: {{attempts: 4, base_delay_ms: 20}}\n    scan_poll_ms: 5\n",
            demo_manifest().display()
        );
        std::fs::write(&self.config, yaml).unwrap();
    }

    fn set_run_results(&self, rr: &Value) {
        std::fs::write(
            self.dir.path().join("dbt/target/run_results.json"),
            serde_json::to_vec(rr).unwrap(),
        )
        .unwrap();
    }

    fn command(&self, stage: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoexpose"));
        cmd.arg(stage).arg("--config").arg(&self.config).args(args);
        for k in ["DBT_ACTIVE_EXPOSURES", "DBT_ACTIVE_EXPOSURES_BUILD_AFTER"] {
            cmd.env_remove(k);
        }
        cmd.env(ID_ENV, CLIENT_ID).env(SECRET_ENV, SECRET);
        cmd
    }

    /// `autoexpose refresh` against `server`, its refresh clock set to `now`.
    fn refresh(
        &self,
        server: &PowerBiServer,
        now: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        self.serve(server);
        server.set_refresh_clock(now);
        let mut cmd = self.command("refresh", &["--now", now]);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("autoexpose.db")).unwrap()
    }

    /// The decision table, job ids (which hold our POST time) reduced to whether there is one.
    fn decisions(&self) -> Vec<BTreeMap<String, Value>> {
        let mut rows = dump_query(
            &self.conn(),
            "SELECT run_id, seq, dry_run, decided_at, exposure, target_kind, target_ref, target_name, decision, reason, detail,
                    eligible_at, job_id IS NOT NULL AS has_job, http_status, service_code, service_message, job_status, job_notes,
                    job_completed_at, matched_by
             FROM refresh_events",
        );
        rows.sort_by_key(|r| (r["run_id"].as_i64(), r["seq"].as_i64()));
        rows
    }

    fn targets(&self) -> Vec<BTreeMap<String, Value>> {
        dump_query(&self.conn(), "SELECT asset_ref, target_kind, target_ref, target_name FROM bi_refresh_targets ORDER BY asset_ref")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn snapshot(name: &str, value: impl serde::Serialize) {
    insta::with_settings!({snapshot_path => repo().join("snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_yaml_snapshot!(name, value);
    });
}

fn posts_of(server: &PowerBiServer, ds: &str) -> usize {
    server
        .refresh_posts()
        .iter()
        .filter(|(d, _)| d == ds)
        .count()
}

/// The tenant `f` as a file the server can be started on (kept while the folder lives).
fn served(f: &serde_json::Value) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenant.json");
    std::fs::write(&path, serde_json::to_vec(f).unwrap()).unwrap();
    (dir, path)
}

#[test]
fn due_datasets_once_each_then_inside_the_cadence_then_after_it() {
    let f = fixture();
    let case = Case::new(&f);
    let (_dir, path) = served(&f);
    let server = PowerBiServer::start(&path, Faults::default());

    let out = case.refresh(&server, T0, &[], &[ON]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("02:00:00  Refreshing Power BI dataset for exposure "),
        "{text}"
    );
    assert!(
        text.contains("(dataset Sales model) ... [TRIGGERED job "),
        "{text}"
    );
    assert!(
        text.contains("(dataset Finance model) ... [TRIGGERED job "),
        "{text}"
    );
    assert!(
        text.contains("[SKIPPED: already refreshed in this run for "),
        "{text}"
    );
    assert!(text.contains("Done. TRIGGERED=2 SKIPPED=3"), "{text}");
    // One POST per dataset, however many reports read it; the server refused no body.
    assert_eq!(
        (posts_of(&server, SALES_DS), posts_of(&server, FINANCE_DS)),
        (1, 1),
        "{:?}",
        server.refresh_posts()
    );
    assert!(server.refused().is_empty(), "{:?}", server.refused());
    let posts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/refreshes"))
        .collect();
    assert!(
        posts
            .iter()
            .all(|r| r.body.as_deref() == Some(r#"{"notifyOption":"NoNotification"}"#)),
        "{posts:?}"
    );
    assert!(
        posts[0]
            .path
            .starts_with("/v1.0/myorg/groups/5a1e0000-0000-4000-8000-00000000000"),
        "{posts:?}"
    );

    // Three hours later: inside the 24 h cadence, nothing is sent.
    let out = case.refresh(&server, "2026-11-25T05:00:00Z", &[], &[ON]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("[SKIPPED: refreshed 3h ago, eligible after 2026-11-26T02:00:00Z]"),
        "{text}"
    );
    assert!(text.contains("Done. TRIGGERED=0"), "{text}");
    assert_eq!(server.refresh_posts().len(), 2);

    // After the cadence: due again.
    let out = case.refresh(&server, "2026-11-26T02:00:00Z", &[], &[ON]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Done. TRIGGERED=2"),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.refresh_posts().len(), 4);

    let state = dump_query(&case.conn(), "SELECT target_kind, target_ref, target_name, last_triggered_at, last_decision FROM refresh_state");
    snapshot(
        "powerbi_refresh_due_cadence",
        (case.targets(), case.decisions(), state),
    );
    server.stop();
}

#[test]
fn upstream_failed_and_not_rebuilt_send_nothing() {
    let f = fixture();
    let case = Case::new(&f);
    let (_dir, path) = served(&f);
    let server = PowerBiServer::start(&path, Faults::default());
    case.set_run_results(&run_results(
        "build",
        &[
            ("model.autoexpose_demo.stg_orders", "success"),
            ("model.autoexpose_demo.fct_orders", "error"),
        ],
    ));
    let out = case.refresh(&server, T0, &[], &[ON]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("[SKIPPED: upstream failed]"),
        "{}",
        stdout(&out)
    );
    // Nothing rebuilt at all.
    case.set_run_results(&run_results(
        "build",
        &[("model.autoexpose_demo.stg_payments", "success")],
    ));
    let out = case.refresh(&server, T0, &[], &[ON]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("[SKIPPED: not rebuilt]"),
        "{}",
        stdout(&out)
    );
    assert!(
        server.refresh_posts().is_empty(),
        "{:?}",
        server.refresh_posts()
    );
    snapshot(
        "powerbi_refresh_upstream_failed_not_rebuilt",
        case.decisions(),
    );
    server.stop();
}

/// A refresh already running (409, then a 400 "in progress") is `already_queued` and counts for
/// the cadence; over the daily limit is `failed` / `daily_limit` with Power BI's message, sent
/// once; a 403 is `failed` / `forbidden` and the run goes on.
#[test]
fn already_running_daily_limit_and_forbidden() {
    let f = fixture();
    let case = Case::new(&f);
    let (_dir, path) = served(&f);

    let faults = Faults {
        refresh_running: vec![SALES_DS.into()],
        daily_limit_of: vec![FINANCE_DS.into()],
        ..Faults::default()
    };
    let server = PowerBiServer::start(&path, faults);
    let out = case.refresh(&server, T0, &[], &[ON]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a failed target makes the exit non-zero\n{}",
        stdout(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("(dataset Sales model) ... [ALREADY_QUEUED]"),
        "{text}"
    );
    assert!(
        text.contains("Number of refresh requests in last 24 hours exceeded limit"),
        "{text}"
    );
    // Not retried: one POST each.
    assert_eq!(
        (posts_of(&server, SALES_DS), posts_of(&server, FINANCE_DS)),
        (1, 1),
        "{:?}",
        server.refresh_posts()
    );
    server.stop();

    // The day after: the 400 spelling of "already running", and a 403 on the Finance model.
    let faults = Faults {
        refresh_running: vec![SALES_DS.into(), FINANCE_DS.into()],
        running_as_400: true,
        refresh_forbidden: vec![FINANCE_DS.into()],
        ..Faults::default()
    };
    let server = PowerBiServer::start(&path, faults);
    let out = case.refresh(&server, "2026-11-26T03:00:00Z", &[], &[ON]);
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("(dataset Sales model) ... [ALREADY_QUEUED]"),
        "{text}"
    );
    assert!(
        text.contains("(dataset Finance model) ... [FAILED: HTTP 403"),
        "{text}"
    );
    snapshot("powerbi_refresh_refusals", case.decisions());
    server.stop();
}

/// A DirectQuery dataset has no target (`not_applicable`); a composite one with an imported
/// table is refreshed.
#[test]
fn directquery_is_not_applicable_and_composite_is_refreshed() {
    let mut f = fixture();
    for t in dataset(&mut f, SALES_DS)["tables"].as_array_mut().unwrap() {
        t["storageMode"] = json!("DirectQuery");
    }
    let finance = dataset(&mut f, FINANCE_DS);
    finance["tables"][0]["storageMode"] = json!("DirectQuery");
    finance["tables"][1]["storageMode"] = json!("Import");
    let case = Case::new(&f);
    let (_dir, path) = served(&f);
    let server = PowerBiServer::start(&path, Faults::default());
    let out = case.refresh(&server, T0, &[], &[ON]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("[NOT_APPLICABLE: DirectQuery only]"),
        "{text}"
    );
    assert!(
        text.contains("(dataset Finance model) ... [TRIGGERED job "),
        "{text}"
    );
    assert_eq!(
        (posts_of(&server, SALES_DS), posts_of(&server, FINANCE_DS)),
        (0, 1),
        "{:?}",
        server.refresh_posts()
    );
    snapshot(
        "powerbi_refresh_directquery",
        (case.targets(), case.decisions()),
    );
    server.stop();
}

/// `--wait` follows our own refresh: a scheduled refresh landing in the history after our POST
/// (newer, never finishing) and yesterday's API refresh are not taken for ours; the match is
/// recorded as heuristic. A failed refresh keeps serviceExceptionJson and exits 4.
#[test]
fn wait_takes_our_refresh_not_the_scheduled_one_landing_after_it() {
    let f = fixture();
    let case = Case::new(&f);
    let (_dir, path) = served(&f);
    let faults = Faults {
        scheduled_after_post: true,
        refresh_polls: 2,
        refresh_fails_of: vec![FINANCE_DS.into()],
        ..Faults::default()
    };
    let server = PowerBiServer::start(&path, faults);
    let out = case.refresh(&server, T0, &["--wait", "--wait-timeout", "60"], &[ON]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "the Finance refresh failed\n{}",
        stdout(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("(dataset Sales model) ... [SUCCESS]"),
        "{text}"
    );
    assert!(
        text.contains("(dataset Finance model) ... [FAILED: "),
        "{text}"
    );
    assert!(!text.contains("TIMEOUT"), "{text}");
    assert!(text.contains("JOBS_FAILED=1"), "{text}");
    snapshot(
        "powerbi_refresh_wait_scheduled_in_history",
        case.decisions(),
    );
    server.stop();
}

/// The token expires while polling: renewed once, the poll repeated; with `Location` given,
/// the refresh is found by its id (`matched_by` exact).
#[test]
fn token_expiry_while_polling_and_the_refresh_id() {
    let f = fixture();
    let case = Case::new(&f);
    let (_dir, path) = served(&f);
    // Every token stops working after three calls (two POSTs and a poll with the first one),
    // answered 401 TokenExpired.
    let faults = Faults {
        expire_token_after: Some(3),
        refresh_polls: 2,
        refresh_location: true,
        ..Faults::default()
    };
    let server = PowerBiServer::start(&path, faults);
    let out = case.refresh(&server, T0, &["--wait", "--wait-timeout", "60"], &[ON]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("Done. TRIGGERED=2") && text.contains("JOBS_FAILED=0"),
        "{text}"
    );
    let log = server.requests();
    // Every token lasts three calls here: renewed after each 401, polls included.
    assert!(
        log.iter()
            .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
            .count()
            >= 2,
        "renewed"
    );
    assert!(
        log.iter()
            .any(|r| r.status == 401 && r.method == "GET" && r.path.contains("/refreshes?")),
        "the token did expire while polling"
    );
    // No token, and not the client secret, reaches the output or the database.
    let mut places = vec![
        ("stdout".to_string(), out.stdout.clone()),
        ("stderr".to_string(), out.stderr.clone()),
    ];
    places.extend(database_places(
        "database",
        &case.dir.path().join("autoexpose.db"),
    ));
    let mut secrets = server.issued_tokens();
    secrets.push(SECRET.to_string());
    for (what, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{s:?} found in {what}");
        }
    }
    snapshot("powerbi_refresh_token_expiry_exact", case.decisions());
    server.stop();
}
