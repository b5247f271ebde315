//! `refresh` journaled (issue #11): every trigger and every job outcome is committed as it
//! happens, so a kill loses at most the request in flight and the next run sends nothing
//! twice; a refresh answer torn after Tableau created the job is matched to that job through
//! Query Jobs, never sent again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

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
const ON: [(&str, &str); 1] = [("DBT_ACTIVE_EXPOSURES", "1")];

/// The demo site plus `extra` copies of its "Ad hoc SQL" workbook (an embedded extract over
/// custom SQL on stg_orders and stg_customers): `2 + extra` refresh targets, all due after the
/// demo build.
fn fixture(extra: usize) -> Value {
    let mut f: Value = serde_json::from_slice(
        &std::fs::read(repo().join("testdata/tableau/demo.site.json")).unwrap(),
    )
    .unwrap();
    let site = &mut f["sites"][0];
    let original = site["workbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["luid"] == AD_HOC_WB)
        .unwrap()
        .clone();
    for k in 1..=extra {
        let mut w = original.clone();
        w["id"] = json!(format!("87df610b-8ef7-588f-9545-{:012}", k));
        w["luid"] = json!(format!("d0000000-0000-4000-8000-000000009{:03}", k));
        w["name"] = json!(format!("Ad hoc SQL {k}"));
        w["vizportalUrlId"] = json!(format!("{}", 900 + k));
        w["uri"] = json!(format!("sites/1/workbooks/{}", 900 + k));
        w["embeddedDatasources"][0]["id"] = json!(format!("33f4435a-e556-5157-a97e-{:012}", k));
        let link = json!({"id": w["id"], "luid": w["luid"], "name": w["name"]});
        site["workbooks"].as_array_mut().unwrap().push(w);
        site["custom_sql"][0]["downstreamWorkbooks"]
            .as_array_mut()
            .unwrap()
            .push(link);
    }
    f
}

struct Case {
    ws: Workspace,
    _fixtures: tempfile::TempDir,
    site: PathBuf,
    /// The database right after `run` (and before any refresh), to start each kill from.
    template: Vec<u8>,
}

impl Case {
    /// Extracts and emits the site from a server stopped afterwards, and installs dbt's
    /// run_results.json of the demo build (everything succeeded).
    fn new(extra: usize) -> Case {
        let fixtures = tempfile::tempdir().unwrap();
        let site = fixtures.path().join("site.json");
        std::fs::write(&site, serde_json::to_vec_pretty(&fixture(extra)).unwrap()).unwrap();
        let server = TableauServer::start(&site, Faults::default());
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
        let template = std::fs::read(ws.db()).unwrap();
        Case {
            ws,
            _fixtures: fixtures,
            site,
            template,
        }
    }

    /// Puts the database back as `new` left it.
    fn reset(&self) {
        for suffix in ["-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.ws.db().display()));
        }
        std::fs::write(self.ws.db(), &self.template).unwrap();
    }

    /// A server for the site with `faults`, and the config pointed at it.
    fn serve(&self, faults: Faults) -> TableauServer {
        let server = TableauServer::start(&self.site, faults);
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
        server
    }

    fn command(&self, args: &[&str], fault: Option<&str>) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoexpose"));
        cmd.arg("refresh")
            .arg("--config")
            .arg(&self.ws.config)
            .args(args);
        for k in [
            "DBT_ACTIVE_EXPOSURES",
            "DBT_ACTIVE_EXPOSURES_BUILD_AFTER",
            "AUTOEXPOSE_FAULT",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in PAT.iter().chain(ON.iter()) {
            cmd.env(k, v);
        }
        if let Some(f) = fault {
            cmd.env("AUTOEXPOSE_FAULT", f);
        }
        cmd
    }

    fn refresh(&self, args: &[&str], fault: Option<&str>) -> Output {
        self.command(args, fault).output().unwrap()
    }

    fn state(&self) -> BTreeMap<String, Option<String>> {
        let conn = self.ws.conn();
        let mut st = conn
            .prepare("SELECT target_ref, last_job_id FROM refresh_state")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// (target luid, job id) of every `triggered` / `already_queued` row, all runs.
    fn triggers(&self) -> Vec<(String, Option<String>)> {
        let conn = self.ws.conn();
        let mut st = conn
            .prepare("SELECT target_ref, job_id FROM refresh_events WHERE decision IN ('triggered', 'already_queued') ORDER BY run_id, seq")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn last_refresh_run(&self) -> (i64, String) {
        self.ws
            .conn()
            .query_row("SELECT run_id, status FROM runs WHERE stage = 'refresh' ORDER BY run_id DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    }

    fn run_status(&self, run_id: i64) -> String {
        self.ws
            .conn()
            .query_row("SELECT status FROM runs WHERE run_id = ?1", [run_id], |r| {
                r.get(0)
            })
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Target luid of each refresh POST the server accepted (202), in order.
fn accepted(server: &TableauServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/refresh") && r.status == 202)
        .map(|r| {
            r.path
                .trim_end_matches("/refresh")
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn aborted(out: &Output) -> bool {
    out.status.code().is_none() && stderr(out).contains("AUTOEXPOSE_FAULT: aborting at")
}

/// After a killed run and a normal rerun on one server: every target refreshed exactly once,
/// every job the server created recorded once, with its id, in refresh_state and
/// refresh_events; the killed run's `runs` row reads `interrupted`.
fn check_after_rerun(
    case: &Case,
    server: &TableauServer,
    targets: usize,
    killed_run: Option<i64>,
    n: usize,
) {
    let posts = accepted(server);
    let distinct: BTreeSet<&String> = posts.iter().collect();
    assert_eq!(
        distinct.len(),
        posts.len(),
        "*@{n}: a target was refreshed twice: {posts:?}"
    );
    assert_eq!(
        posts.len(),
        targets,
        "*@{n}: every target refreshed once across both runs: {posts:?}"
    );
    let created: BTreeMap<String, String> = server.created_jobs().into_iter().collect();
    let state = case.state();
    let mut recorded: Vec<(String, Option<String>)> = case.triggers();
    recorded.sort();
    let mut want: Vec<(String, Option<String>)> = created
        .iter()
        .map(|(t, j)| (t.clone(), Some(j.clone())))
        .collect();
    want.sort();
    assert_eq!(
        recorded, want,
        "*@{n}: refresh_events holds each created job once, with its id"
    );
    let state_want: BTreeMap<String, Option<String>> =
        created.into_iter().map(|(t, j)| (t, Some(j))).collect();
    assert_eq!(
        state, state_want,
        "*@{n}: refresh_state holds each created job"
    );
    if let Some(id) = killed_run {
        assert_eq!(
            case.run_status(id),
            "interrupted",
            "*@{n}: the killed run's runs row"
        );
    }
    assert_eq!(
        count(
            &case.ws.conn(),
            "SELECT count(*) FROM refresh_events WHERE decision = 'sending'"
        ),
        0,
        "*@{n}: nothing left in flight"
    );
    assert_eq!(case.last_refresh_run().1, "ok", "*@{n}: the rerun");
}

/// Walks AUTOEXPOSE_FAULT=*@N over `refresh` (and `refresh --wait`) until the run ends by
/// itself; after each kill, checks what the killed run committed, then reruns `refresh`.
///
/// The points, in order: `refresh.inputs`; per target `refresh.send` (its `sending` row
/// committed, nothing sent yet), `refresh.answered` (Tableau answered, nothing committed: the
/// one request in flight) and `refresh.trigger` (the answer committed); with `--wait` one
/// `refresh.job` per job outcome committed; `refresh.commit`.
fn kill_walk(wait: bool) {
    const EXTRA: usize = 3;
    let targets = 2 + EXTRA;
    let case = Case::new(EXTRA);
    let mut args = vec!["--now", T0];
    if wait {
        args.extend(["--wait", "--wait-timeout", "60"]);
    }
    let last_point = 1 + 3 * targets + if wait { targets } else { 0 } + 1;
    let mut n = 1;
    loop {
        assert!(n <= last_point + 1, "the walk does not end");
        case.reset();
        // A job stays Pending until it is polled once, as a just-queued job is on Tableau.
        let server = case.serve(Faults {
            job_polls_to_finish: 1,
            ..Faults::default()
        });
        let spec = format!("*@{n}");
        let out = case.refresh(&args, Some(&spec));
        if !aborted(&out) {
            assert_eq!(
                out.status.code(),
                Some(0),
                "*@{n}: {}\n{}",
                stdout(&out),
                stderr(&out)
            );
            assert_eq!(n, last_point + 1, "the run passed every point");
            check_after_rerun(&case, &server, targets, None, n);
            server.stop();
            break;
        }
        let (killed, status) = case.last_refresh_run();
        assert_eq!(status, "running", "*@{n}: nobody has looked yet");
        // What the killed run left, before anything else runs.
        let (committed, sent, sending) = if n >= 2 + 3 * targets {
            (targets, targets, 0)
        } else if n >= 2 {
            let (i, phase) = ((n - 2) / 3, (n - 2) % 3);
            (
                i + usize::from(phase == 2),
                i + usize::from(phase >= 1),
                usize::from(phase <= 1),
            )
        } else {
            (0, 0, 0)
        };
        let posts = accepted(&server);
        let state = case.state();
        assert_eq!(
            posts.len(),
            sent,
            "*@{n}: requests that reached Tableau before the kill"
        );
        assert_eq!(
            state.len(),
            committed,
            "*@{n}: each answer committed before the next request"
        );
        assert!(
            state.keys().all(|t| posts.contains(t)),
            "*@{n}: {posts:?} vs {state:?}"
        );
        let conn = case.ws.conn();
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM refresh_events WHERE decision = 'sending'"
            ) as usize,
            sending,
            "*@{n}"
        );
        let outcomes = count(
            &conn,
            "SELECT count(*) FROM refresh_events WHERE job_status IS NOT NULL",
        ) as usize;
        let want_outcomes = if wait && n > 1 + 3 * targets {
            (n - 1 - 3 * targets).min(targets)
        } else {
            0
        };
        assert_eq!(
            outcomes, want_outcomes,
            "*@{n}: job outcomes committed as they arrived"
        );
        drop(conn);

        let rerun = case.refresh(&["--now", T0], None);
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "*@{n} rerun: {}\n{}",
            stdout(&rerun),
            stderr(&rerun)
        );
        check_after_rerun(&case, &server, targets, Some(killed), n);
        server.stop();
        n += 1;
    }
}

#[test]
fn kill_walk_over_refresh() {
    kill_walk(false);
}

#[test]
fn kill_walk_over_refresh_wait() {
    kill_walk(true);
}

/// The original bug: `refresh --wait` killed (SIGKILL) while its jobs run recorded nothing,
/// and the next run triggered everything again.
#[test]
fn refresh_killed_while_waiting_keeps_its_triggers() {
    const EXTRA: usize = 6;
    let targets = 2 + EXTRA;
    let case = Case::new(EXTRA);
    // Jobs that never finish: the run polls until killed.
    let server = case.serve(Faults {
        job_polls_to_finish: 100_000,
        ..Faults::default()
    });
    let mut child = case
        .command(&["--now", T0, "--wait", "--wait-timeout", "600"], None)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/jobs/"))
        .count()
        < targets
    {
        assert!(
            started.elapsed().as_secs() < 60,
            "the run never started polling"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL, by the child's pid
    let _ = child.wait();

    assert_eq!(accepted(&server).len(), targets);
    let created: BTreeMap<String, Option<String>> = server
        .created_jobs()
        .into_iter()
        .map(|(t, j)| (t, Some(j)))
        .collect();
    assert_eq!(created.len(), targets);
    assert_eq!(
        case.state(),
        created,
        "every trigger survives the kill, with its job id"
    );
    let (killed, status) = case.last_refresh_run();
    assert_eq!(status, "running");

    let out = case.refresh(&["--now", T0], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!("Done. TRIGGERED=0 SKIPPED={}", targets + 1)),
        "{}",
        stdout(&out)
    );
    assert_eq!(accepted(&server).len(), targets, "nothing sent twice");
    assert_eq!(case.run_status(killed), "interrupted");
    server.stop();
}

/// A 202 whose body is cut after Tableau created the job: one POST, the job found through
/// Query Jobs and recorded as triggered with the server's id; the next run sends nothing.
#[test]
fn torn_202_is_recorded_with_the_servers_job_id() {
    let case = Case::new(0);
    let server = case.serve(Faults {
        torn_refresh: vec![CUSTOMERS_DS.into()],
        job_polls_to_finish: 3,
        ..Faults::default()
    });
    let out = case.refresh(&["--now", T0], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("(answer lost; found in Tableau's jobs)]"),
        "{}",
        stdout(&out)
    );
    let posts = server
        .requests()
        .iter()
        .filter(|r| {
            r.path
                .ends_with(&format!("/datasources/{CUSTOMERS_DS}/refresh"))
        })
        .count();
    assert_eq!(posts, 1, "the torn refresh is not sent again");
    let created: Vec<String> = server
        .created_jobs()
        .into_iter()
        .filter(|(t, _)| t == CUSTOMERS_DS)
        .map(|(_, j)| j)
        .collect();
    assert_eq!(created.len(), 1, "exactly one job on the server");
    let row: (String, Option<String>, Option<String>) = case
        .ws
        .conn()
        .query_row(
            "SELECT decision, reason, job_id FROM refresh_events WHERE target_ref = ?1",
            [CUSTOMERS_DS],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "triggered".into(),
            Some("answer_unreadable".into()),
            Some(created[0].clone())
        )
    );
    assert_eq!(
        case.state().get(CUSTOMERS_DS),
        Some(&Some(created[0].clone()))
    );
    assert!(server.requests().iter().any(|r| r
        .path
        .contains("/jobs?filter=jobType:eq:refresh_extracts,status:eq:Pending")));

    let out = case.refresh(&["--now", T0], None);
    assert_ok(&out);
    assert_eq!(
        server
            .created_jobs()
            .iter()
            .filter(|(t, _)| t == CUSTOMERS_DS)
            .count(),
        1,
        "and not by the next run"
    );
    server.stop();
}

/// A torn 202 whose job Tableau no longer lists as pending or running (here it already
/// finished): a failure, exit 4, nothing in refresh_state, still one POST.
#[test]
fn torn_202_without_a_listed_job_is_a_failure_not_a_resend() {
    let case = Case::new(0);
    let server = case.serve(Faults {
        torn_refresh: vec![CUSTOMERS_DS.into()],
        ..Faults::default()
    });
    let out = case.refresh(&["--now", T0], None);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("[FAILED: answer lost, not sent again:"),
        "{}",
        stdout(&out)
    );
    let posts = server
        .requests()
        .iter()
        .filter(|r| {
            r.path
                .ends_with(&format!("/datasources/{CUSTOMERS_DS}/refresh"))
        })
        .count();
    assert_eq!(posts, 1);
    let (decision, reason): (String, String) = case
        .ws
        .conn()
        .query_row(
            "SELECT decision, reason FROM refresh_events WHERE target_ref = ?1",
            [CUSTOMERS_DS],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (decision.as_str(), reason.as_str()),
        ("failed", "answer_unreadable")
    );
    assert!(!case.state().contains_key(CUSTOMERS_DS));
    assert!(
        case.state().contains_key(AD_HOC_WB),
        "the other target is unaffected"
    );
    server.stop();
}

/// A torn 202 when Query Jobs is refused (a PAT that is no site administrator's): nobody knows
/// whether the refresh was queued; a failure naming why, not a resend.
#[test]
fn torn_202_with_jobs_list_forbidden_is_a_failure_naming_why() {
    let case = Case::new(0);
    let server = case.serve(Faults {
        torn_refresh: vec![CUSTOMERS_DS.into()],
        query_jobs_forbidden: true,
        ..Faults::default()
    });
    let out = case.refresh(&["--now", T0], None);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("could not read Tableau's jobs list to check"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("HTTP 403"), "{}", stdout(&out));
    assert_eq!(
        server
            .created_jobs()
            .iter()
            .filter(|(t, _)| t == CUSTOMERS_DS)
            .count(),
        1
    );
    let posts = server
        .requests()
        .iter()
        .filter(|r| {
            r.path
                .ends_with(&format!("/datasources/{CUSTOMERS_DS}/refresh"))
        })
        .count();
    assert_eq!(posts, 1);
    assert!(!case.state().contains_key(CUSTOMERS_DS));
    server.stop();
}
