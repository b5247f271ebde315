//! Active exposures against the local Tableau-speaking server: what is due, cadence, shared
//! data sources, embedded extracts, Tableau's refusals, retries, --wait and --dry-run. Each
//! case snapshots its decision table (refresh_events).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

const PAT: [(&str, &str); 2] = [
    ("AE_TEST_PAT_NAME", "autoexpose-demo"),
    ("AE_TEST_PAT_SECRET", "demo-pat-secret"),
];
const CUSTOMERS_DS: &str = "d0000000-0000-4000-8000-000000000201";
const AD_HOC_WB: &str = "d0000000-0000-4000-8000-000000000107";
const T0: &str = "2026-11-25T02:00:00Z";

fn demo_fixture() -> Value {
    serde_json::from_slice(&std::fs::read(repo().join("testdata/tableau/demo.site.json")).unwrap())
        .unwrap()
}

fn workbook<'a>(fixture: &'a mut Value, luid: &str) -> &'a mut Value {
    fixture["sites"][0]["workbooks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|w| w["luid"] == luid)
        .unwrap()
}

/// The demo site, where the Marketing "Sales Overview" also reads the published "Customers"
/// data source (with its extract), so two due exposures share one target.
fn shared_fixture() -> Value {
    let mut f = demo_fixture();
    let customers = {
        let c360 = workbook(&mut f, "d0000000-0000-4000-8000-000000000103");
        c360["embeddedDatasources"][0]["upstreamDatasources"][0].clone()
    };
    let so = workbook(&mut f, "d0000000-0000-4000-8000-000000000102");
    so["embeddedDatasources"][0]["upstreamDatasources"] = json!([customers]);
    f
}

fn write_fixture(dir: &Path, name: &str, f: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(f).unwrap()).unwrap();
    p
}

struct Case {
    ws: Workspace,
    _fixtures: tempfile::TempDir,
}

impl Case {
    /// Extracts and emits the site in `fixture` from a server that is stopped afterwards, and
    /// installs dbt's real run_results.json of the demo build (everything succeeded).
    fn new(fixture: &Value) -> Case {
        let fixtures = tempfile::tempdir().unwrap();
        let path = write_fixture(fixtures.path(), "site.json", fixture);
        let server = TableauServer::start(&path, Faults::default());
        let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
        assert_ok(&ws.run(&[], "run", &PAT));
        server.stop();
        let target = ws.path("dbt/target");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::copy(
            repo().join("testdata/dbt/demo/artifacts/run_results.json"),
            target.join("run_results.json"),
        )
        .unwrap();
        Case {
            ws,
            _fixtures: fixtures,
        }
    }

    fn set_run_results(&self, rr: &Value) {
        std::fs::write(
            self.ws.path("dbt/target/run_results.json"),
            serde_json::to_vec(rr).unwrap(),
        )
        .unwrap();
    }

    /// Points the config at `server` (a refresh talks to the site as it is now).
    fn serve(&self, server: &TableauServer) {
        let text = std::fs::read_to_string(&self.ws.config).unwrap();
        let old = text
            .lines()
            .find(|l| l.contains("server_url"))
            .unwrap()
            .to_string();
        std::fs::write(
            &self.ws.config,
            text.replace(&old, &format!("    server_url: {}", server.base_url)),
        )
        .unwrap();
    }

    fn refresh(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        self.refresh_command(args, env).output().unwrap()
    }

    fn refresh_command(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
        let mut e = PAT.to_vec();
        e.extend_from_slice(env);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_autoexpose"));
        cmd.arg("refresh")
            .arg("--config")
            .arg(&self.ws.config)
            .args(args);
        for k in ["DBT_ACTIVE_EXPOSURES", "DBT_ACTIVE_EXPOSURES_BUILD_AFTER"] {
            cmd.env_remove(k);
        }
        for (k, v) in e {
            cmd.env(k, v);
        }
        cmd
    }

    /// The decision table, with job ids (the server's) reduced to whether there is one.
    fn decisions(&self) -> Vec<BTreeMap<String, Value>> {
        let conn = self.ws.conn();
        let mut rows = dump_query(
            &conn,
            "SELECT run_id, seq, dry_run, decided_at, exposure, target_kind, target_name, decision, reason, detail, eligible_at,
                    job_id IS NOT NULL AS has_job, http_status, service_code, service_message, job_status, job_finish_code, job_notes
             FROM refresh_events",
        );
        rows.sort_by_key(|r| (r["run_id"].as_i64(), r["seq"].as_i64()));
        rows
    }
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refresh_posts(server: &TableauServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/refresh"))
        .map(|r| r.path.clone())
        .collect()
}

#[test]
fn due_targets_once_then_skipped_inside_the_cadence_then_due_again() {
    let case = Case::new(&shared_fixture());
    let server = TableauServer::start(
        &write_fixture(case._fixtures.path(), "now.json", &shared_fixture()),
        Faults::default(),
    );
    case.serve(&server);
    let on = [("DBT_ACTIVE_EXPOSURES", "1")];

    let out = case.refresh(&["--now", T0], &on);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("02:00:00  Refreshing Tableau extract for exposure customer_360_8aa73d (datasource Customers) ... [TRIGGERED job "), "{text}");
    assert!(
        text.contains("[SKIPPED: already refreshed in this run for customer_360_8aa73d]"),
        "{text}"
    );
    assert!(
        text.contains("(workbook Ad hoc SQL) ... [TRIGGERED job"),
        "{text}"
    );
    assert!(
        text.contains("Done. TRIGGERED=2 SKIPPED=2 ALREADY_QUEUED=0 NOT_APPLICABLE=4 FAILED=0"),
        "{text}"
    );
    let posts = refresh_posts(&server);
    assert_eq!(
        posts.len(),
        2,
        "exactly one refresh per due target: {posts:?}"
    );
    assert!(posts
        .iter()
        .any(|p| p.ends_with(&format!("/datasources/{CUSTOMERS_DS}/refresh"))));
    assert!(posts
        .iter()
        .any(|p| p.ends_with(&format!("/workbooks/{AD_HOC_WB}/refresh"))));
    // API 3.23 < 3.25: the empty body.
    assert!(server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/refresh"))
        .all(|r| r.body.as_deref() == Some("<tsRequest />")));

    // Three hours later: inside the 24 h cadence, nothing is sent.
    let out = case.refresh(&["--now", "2026-11-25T05:00:00Z"], &on);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("[SKIPPED: refreshed 3h ago, eligible after 2026-11-26T02:00:00Z]"),
        "{text}"
    );
    assert!(text.contains("Done. TRIGGERED=0 SKIPPED=4"), "{text}");
    assert_eq!(refresh_posts(&server).len(), 2);

    // After the cadence: due again.
    let out = case.refresh(&["--now", "2026-11-26T02:00:00Z"], &on);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Done. TRIGGERED=2"),
        "{}",
        stdout(&out)
    );
    assert_eq!(refresh_posts(&server).len(), 4);

    let state = dump_query(
        &case.ws.conn(),
        "SELECT target_kind, target_ref, last_triggered_at, last_decision FROM refresh_state",
    );
    insta::with_settings!({snapshot_path => repo().join("snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_yaml_snapshot!("refresh_due_cadence", (case.decisions(), state));
    });
    server.stop();
}

#[test]
fn upstream_failed_not_rebuilt_and_test_only_runs() {
    let case = Case::new(&demo_fixture());
    let server = TableauServer::start(
        &repo().join("testdata/tableau/demo.site.json"),
        Faults::default(),
    );
    case.serve(&server);
    case.set_run_results(&run_results(
        "build",
        &[
            ("model.autoexpose_demo.stg_customers", "error"),
            ("model.autoexpose_demo.dim_customers.v2", "skipped"),
            ("model.autoexpose_demo.stg_orders", "success"),
            ("model.autoexpose_demo.fct_orders", "no-op"),
            (
                "test.autoexpose_demo.unique_stg_orders_order_id.e3b841c71a",
                "fail",
            ),
        ],
    ));
    let out = case.refresh(&["--now", T0], &[("DBT_ACTIVE_EXPOSURES", "1")]);
    assert_ok(&out);
    // The Marketing "Sales Overview" reads only stg_orders (rebuilt) but has no extract.
    assert!(
        stdout(&out).contains("Done. TRIGGERED=0 SKIPPED=7 ALREADY_QUEUED=0 NOT_APPLICABLE=1"),
        "{}",
        stdout(&out)
    );

    // A `dbt test` invocation rebuilds nothing, even with model rows in it.
    case.set_run_results(&run_results(
        "test",
        &[("model.autoexpose_demo.stg_orders", "success")],
    ));
    let out = case.refresh(&["--now", T0], &[("DBT_ACTIVE_EXPOSURES", "1")]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("`dbt test`, which rebuilds nothing"),
        "{}",
        stderr(&out)
    );
    assert!(refresh_posts(&server).is_empty());
    insta::with_settings!({snapshot_path => repo().join("snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_yaml_snapshot!("refresh_upstream_failed_not_rebuilt", case.decisions());
    });
    server.stop();
}

#[test]
fn not_found_not_refreshable_forbidden_and_429() {
    let case = Case::new(&demo_fixture());
    // The site as it is at refresh time: "Customers" lost its extract (409090) and the
    // "Ad hoc SQL" workbook is gone (404).
    let mut now = demo_fixture();
    workbook(&mut now, "d0000000-0000-4000-8000-000000000103")["embeddedDatasources"][0]
        ["upstreamDatasources"][0]["hasExtracts"] = json!(false);
    now["sites"][0]["workbooks"]
        .as_array_mut()
        .unwrap()
        .retain(|w| w["luid"] != AD_HOC_WB);
    let server = TableauServer::start(
        &write_fixture(case._fixtures.path(), "now.json", &now),
        Faults::default(),
    );
    case.serve(&server);
    let out = case.refresh(&["--now", T0], &[("DBT_ACTIVE_EXPOSURES", "1")]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a failed target makes the exit non-zero\n{}",
        stdout(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("[NOT_APPLICABLE: no extract to refresh]"),
        "{text}"
    );
    assert!(text.contains("[FAILED: HTTP 404 404006"), "{text}");
    assert!(text.contains("FAILED=1"), "{text}");
    server.stop();

    // 403 on the first refresh (the workbook), then 429 on the next (retried after Retry-After).
    let faults = Faults {
        rate_limit_at: vec![4],
        refresh_forbidden: vec![AD_HOC_WB.into()],
        ..Faults::default()
    };
    let server = TableauServer::start(&repo().join("testdata/tableau/demo.site.json"), faults);
    case.serve(&server);
    let out = case.refresh(
        &["--now", "2026-11-28T02:00:00Z"],
        &[("DBT_ACTIVE_EXPOSURES", "1")],
    );
    assert_eq!(out.status.code(), Some(4));
    let log = server.requests();
    assert_eq!(log[2].status, 403);
    assert_eq!(log[3].status, 429);
    assert_eq!(
        (log[4].path.as_str(), log[4].status),
        (log[3].path.as_str(), 202)
    );
    assert!(
        stdout(&out).contains("[FAILED: HTTP 403"),
        "{}",
        stdout(&out)
    );
    insta::with_settings!({snapshot_path => repo().join("snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_yaml_snapshot!("refresh_refusals", case.decisions());
    });
    server.stop();
}

#[test]
fn already_queued_counts_as_a_trigger() {
    let case = Case::new(&demo_fixture());
    // Jobs never finish here, so a second refresh finds the first still queued (409093).
    let faults = Faults {
        job_polls_to_finish: 1000,
        ..Faults::default()
    };
    let server = TableauServer::start(&repo().join("testdata/tableau/demo.site.json"), faults);
    case.serve(&server);
    let on = [
        ("DBT_ACTIVE_EXPOSURES", "1"),
        ("DBT_ACTIVE_EXPOSURES_BUILD_AFTER", "60"),
    ];
    assert_ok(&case.refresh(&["--now", T0], &on));
    let out = case.refresh(&["--now", "2026-11-25T03:30:00Z"], &on);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Done. TRIGGERED=0 SKIPPED=1 ALREADY_QUEUED=2"),
        "{}",
        stdout(&out)
    );
    // The cadence now runs from the 409093 answer.
    let out = case.refresh(&["--now", "2026-11-25T04:00:00Z"], &on);
    assert!(
        stdout(&out).contains("eligible after 2026-11-25T04:30:00Z"),
        "{}",
        stdout(&out)
    );
    let state = dump_query(
        &case.ws.conn(),
        "SELECT target_kind, last_triggered_at, last_decision FROM refresh_state",
    );
    insta::with_settings!({snapshot_path => repo().join("snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_yaml_snapshot!("refresh_already_queued", (case.decisions(), state));
    });
    server.stop();
}

/// Job polls answered 503 give up after the retry policy (4 tries in the test config), not at
/// --wait-timeout, and the job is recorded as poll_failed.
#[test]
fn wait_gives_up_on_persistent_5xx() {
    let case = Case::new(&demo_fixture());
    let faults = Faults {
        job_poll_unavailable: true,
        ..Faults::default()
    };
    let server = TableauServer::start(&repo().join("testdata/tableau/demo.site.json"), faults);
    case.serve(&server);
    let out = case.refresh(
        &["--now", T0, "--wait", "--wait-timeout", "3600"],
        &[("DBT_ACTIVE_EXPOSURES", "1")],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("[POLL_FAILED]"), "{text}");
    let log = server.requests();
    let jobs: std::collections::BTreeSet<_> = log
        .iter()
        .filter(|r| r.path.contains("/jobs/"))
        .map(|r| r.path.clone())
        .collect();
    let polls = log.iter().filter(|r| r.path.contains("/jobs/")).count();
    assert!(!jobs.is_empty());
    assert_eq!(
        polls,
        jobs.len() * 4,
        "each job asked exactly the retry policy's 4 tries"
    );
    let recorded: i64 = case
        .ws
        .conn()
        .query_row(
            "SELECT count(*) FROM refresh_events WHERE job_status = 'poll_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded as usize, jobs.len());
    server.stop();
}

#[test]
fn wait_records_success_and_failure() {
    let case = Case::new(&demo_fixture());
    let faults = Faults {
        job_polls_to_finish: 2,
        job_outcomes: [
            (
                CUSTOMERS_DS.to_string(),
                (
                    1,
                    Some("[DuckDB] IO Error: could not open demo.duckdb".to_string()),
                ),
            ),
            (AD_HOC_WB.to_string(), (0, None)),
        ]
        .into_iter()
        .collect(),
        ..Faults::default()
    };
    let server = TableauServer::start(&repo().join("testdata/tableau/demo.site.json"), faults);
    case.serve(&server);
    let out = case.refresh(
        &["--now", T0, "--wait", "--wait-timeout", "60"],
        &[("DBT_ACTIVE_EXPOSURES", "1")],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("(workbook Ad hoc SQL) ... [SUCCESS]"),
        "{text}"
    );
    assert!(
        text.contains("(datasource Customers) ... [FAILED: [DuckDB] IO Error"),
        "{text}"
    );
    assert!(text.contains("JOBS_FAILED=1"), "{text}");
    let polls = server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/jobs/"))
        .count();
    assert!(polls >= 4, "each job polled until it finished: {polls}");
    insta::with_settings!({snapshot_path => repo().join("snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_yaml_snapshot!("refresh_wait", case.decisions());
    });
    server.stop();
}

/// `autoexpose refresh | head -1`: once the reader is gone, the decision lines have nowhere to
/// go, but the refreshes Tableau accepted must still be recorded, and nothing may panic.
#[test]
fn closed_stdout_is_no_panic_and_state_is_kept() {
    let case = Case::new(&demo_fixture());
    let server = TableauServer::start(
        &repo().join("testdata/tableau/demo.site.json"),
        Faults::default(),
    );
    case.serve(&server);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = case
        .refresh_command(&["--now", T0], &[("DBT_ACTIVE_EXPOSURES", "1")])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(
        count(&case.ws.conn(), "SELECT count(*) FROM refresh_state"),
        2,
        "both triggers are the cadence's memory"
    );
    server.stop();
}

#[test]
fn dry_run_sends_nothing_and_writes_no_state() {
    let case = Case::new(&demo_fixture());
    let server = TableauServer::start(
        &repo().join("testdata/tableau/demo.site.json"),
        Faults::default(),
    );
    case.serve(&server);
    let out = case.refresh(
        &["--now", T0, "--dry-run"],
        &[("DBT_ACTIVE_EXPOSURES", "1")],
    );
    assert_ok(&out);
    assert!(
        stdout(&out).contains("[DRY RUN: would trigger]"),
        "{}",
        stdout(&out)
    );
    assert_eq!(server.request_count(), 0, "a dry run talks to nobody");
    assert_eq!(
        count(&case.ws.conn(), "SELECT count(*) FROM refresh_state"),
        0
    );
    // So the real run right after still triggers.
    let out = case.refresh(&["--now", T0], &[("DBT_ACTIVE_EXPOSURES", "1")]);
    assert!(stdout(&out).contains("TRIGGERED=2"), "{}", stdout(&out));
    insta::with_settings!({snapshot_path => repo().join("snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_yaml_snapshot!("refresh_dry_run", case.decisions());
    });
    server.stop();
}

#[test]
fn switches_env_config_and_bad_values() {
    let case = Case::new(&demo_fixture());
    let out = case.refresh(&["--now", T0], &[]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("Active exposures are disabled"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        count(&case.ws.conn(), "SELECT count(*) FROM refresh_events"),
        0
    );

    // Config on, env off: the env var wins.
    let text = std::fs::read_to_string(&case.ws.config).unwrap();
    std::fs::write(
        &case.ws.config,
        format!("{text}active_exposures:\n  enabled: true\n  build_after_minutes: 30\n"),
    )
    .unwrap();
    let out = case.refresh(
        &["--now", T0, "--dry-run"],
        &[("DBT_ACTIVE_EXPOSURES", "0")],
    );
    assert!(stderr(&out).contains("disabled"), "{}", stderr(&out));
    let out = case.refresh(&["--now", T0, "--dry-run"], &[]);
    assert_ok(&out);
    assert!(stdout(&out).contains("DRY RUN"), "{}", stdout(&out));

    let out = case.refresh(
        &["--now", T0],
        &[("DBT_ACTIVE_EXPOSURES_BUILD_AFTER", "soon")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("DBT_ACTIVE_EXPOSURES_BUILD_AFTER=\"soon\""),
        "{}",
        stderr(&out)
    );
    let out = case.refresh(&["--now", "tomorrow"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--now \"tomorrow\""),
        "{}",
        stderr(&out)
    );
    // A multi-byte character where the offset's colon belongs panicked (exit 101) once.
    let out = case.refresh(&["--now", "2026-11-24T02:00:00+1é00"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--now \"2026-11-24T02:00:00+1é00\""),
        "{}",
        stderr(&out)
    );

    // Text read back from SQLite goes through the same parser: a bad value names its column.
    case.ws
        .conn()
        .execute(
            "INSERT INTO refresh_state VALUES ('demo', 'datasource', ?1, 'Customers', '2026-11-24T02:00:00+1é00', 'triggered', NULL, 1)",
            [CUSTOMERS_DS],
        )
        .unwrap();
    let out = case.refresh(&["--now", T0], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("table refresh_state, column last_triggered_at"),
        "{}",
        stderr(&out)
    );
    case.ws
        .conn()
        .execute("DELETE FROM refresh_state", [])
        .unwrap();

    std::fs::remove_file(case.ws.path("dbt/target/run_results.json")).unwrap();
    let out = case.refresh(&["--now", T0], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `dbt build` first"),
        "{}",
        stderr(&out)
    );
}

/// A refresh recorded against the server replays offline with the same decisions.
#[test]
fn refresh_replays_from_recordings() {
    let case = Case::new(&demo_fixture());
    let server = TableauServer::start(
        &repo().join("testdata/tableau/demo.site.json"),
        Faults::default(),
    );
    case.serve(&server);
    let rec = tempfile::tempdir().unwrap();
    let out = case.refresh(
        &["--record", rec.path().to_str().unwrap(), "--now", T0],
        &[("DBT_ACTIVE_EXPOSURES", "1")],
    );
    assert_ok(&out);
    server.stop();

    let replayed = Case::new(&demo_fixture());
    let text = std::fs::read_to_string(&replayed.ws.config).unwrap();
    let old = text
        .lines()
        .find(|l| l.contains("server_url"))
        .unwrap()
        .to_string();
    std::fs::write(
        &replayed.ws.config,
        text.replace(&old, "    server_url: http://127.0.0.1:9"),
    )
    .unwrap();
    let out2 = replayed.refresh(
        &["--replay", rec.path().to_str().unwrap(), "--now", T0],
        &[("DBT_ACTIVE_EXPOSURES", "1")],
    );
    assert_ok(&out2);
    assert_eq!(stdout(&out), stdout(&out2));
    assert_eq!(case.decisions(), replayed.decisions());
}
