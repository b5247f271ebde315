//! The generic stage against a fake integration: no HTTP, no config, only the seam. Proves
//! that refresh needs nothing of an integration but `Refresher` and the rows its extract wrote
//! (`bi_refresh_targets`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use super::seam::{
    Answer, JobState, RefreshTexts, Refresher, Refreshers, Refusal, SendError, Target, Torn,
};
use super::tags::JobStatus;
use super::{refresh, Options};
use crate::clock::Instant;
use crate::config::ActiveExposures;
use crate::run_results::RunResults;

const WORDS: RefreshTexts = RefreshTexts {
    target: "fake extract",
    jobs: "the fake's jobs",
    no_targets: "nothing behind it",
    not_applicable: "live connections only",
    job_label: super::seam::first_8,
};

/// What the fake service does, and every call it got.
#[derive(Default)]
struct Script {
    /// Target id → the answer to its refresh request.
    answers: BTreeMap<String, Result<Answer, SendError>>,
    /// Target id → what its jobs list shows.
    listed: BTreeMap<String, Torn>,
    /// Job id → its states, one per poll (the last one repeats).
    jobs: BTreeMap<String, Vec<JobState>>,
    calls: Vec<String>,
}

#[derive(Clone, Default)]
struct Fake(Rc<RefCell<Script>>);

impl Refresher for Fake {
    fn refresh(&self, target: &Target) -> Result<Answer, SendError> {
        let mut s = self.0.borrow_mut();
        s.calls.push(format!("refresh {}", target.id));
        s.answers
            .get(&target.id)
            .cloned()
            .unwrap_or(Ok(Answer::Job(format!("job-{}", target.id))))
    }

    fn check_torn(&self, target: &Target) -> Torn {
        let mut s = self.0.borrow_mut();
        s.calls.push(format!("check_torn {}", target.id));
        s.listed
            .get(&target.id)
            .cloned()
            .unwrap_or(Torn::NotQueued {
                why: "not listed".into(),
            })
    }

    fn job(&self, id: &str) -> Result<JobState, SendError> {
        let mut s = self.0.borrow_mut();
        s.calls.push(format!("job {id}"));
        let states = s.jobs.get_mut(id).ok_or_else(|| SendError {
            message: format!("no job {id}"),
            answer_lost: false,
        })?;
        Ok(if states.len() > 1 {
            states.remove(0)
        } else {
            states[0].clone()
        })
    }

    fn sign_out(&self) {
        self.0.borrow_mut().calls.push("sign_out".into());
    }
}

/// Integration `fake` is the fake; any other cannot be opened.
struct FakeIntegrations(Fake);

impl Refreshers for FakeIntegrations {
    fn texts(&self, integration: &str) -> &'static RefreshTexts {
        if integration == "fake" {
            &WORDS
        } else {
            &RefreshTexts::NEUTRAL
        }
    }

    fn open(&self, integration: &str) -> Result<Box<dyn Refresher>, String> {
        match integration {
            "fake" => Ok(Box::new(self.0.clone())),
            other => Err(format!("integration {other:?} cannot be opened")),
        }
    }
}

fn job(status: Option<JobStatus>, finish_code: Option<i32>, notes: Option<&str>) -> JobState {
    JobState {
        status,
        finish_code,
        completed_at: status.map(|_| "2026-11-29T02:05:00Z".into()),
        notes: notes.map(str::to_string),
        matched_by: None,
    }
}

fn db() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::db::migrate(&mut conn).unwrap();
    conn.execute_batch(
        r#"INSERT INTO runs (stage, started_at, tool_version, config_hash, status) VALUES ('refresh', 't', 'v', 'h', 'running');
           INSERT INTO exposures (integration, asset_ref, name, file, status, depends_on, body)
             VALUES ('fake', 'a1', 'sales', 'f.yml', 'written', '["model.p.orders"]', '{}'),
                    ('fake', 'a2', 'stale', 'f.yml', 'written', '["model.p.old"]', '{}'),
                    ('gone', 'a3', 'orphan', 'f.yml', 'written', '["model.p.orders"]', '{}');
           INSERT INTO bi_refresh_targets VALUES
             ('fake', 'a1', 'datasource', 'd1', 'Orders'),
             ('fake', 'a1', 'datasource', 'd2', 'Customers'),
             ('fake', 'a1', 'workbook', 'a1', 'Sales'),
             ('fake', 'a2', 'datasource', 'd1', 'Orders'),
             ('gone', 'a3', 'datasource', 'g1', 'Gone');"#,
    )
    .unwrap();
    conn
}

fn run_results() -> RunResults {
    serde_json::from_value(json!({
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
        "results": [{"unique_id": "model.p.orders", "status": "success"}],
        "args": {"which": "build"},
    }))
    .unwrap()
}

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn rows(conn: &Connection) -> Vec<Row> {
    let mut st = conn
        .prepare(
            "SELECT exposure || ' ' || coalesce(target_ref, '-'), decision, reason, job_id, service_code, service_message, job_status,
                    job_finish_code
             FROM refresh_events ORDER BY seq",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// A refusal, a lost answer found in the jobs list, a plain trigger, job outcomes polled to
/// the end, an exposure not rebuilt and an integration that cannot be opened: each a row, as
/// the stage decides them from what the fake says.
#[test]
fn the_stage_runs_against_any_refresher() {
    let mut conn = db();
    let fake = Fake::default();
    {
        let mut sc = fake.0.borrow_mut();
        sc.answers.insert(
            "d1".into(),
            Ok(Answer::Refused {
                refusal: Refusal::NotRefreshable,
                status: 409,
                code: s("E-NOTHING"),
                message: "nothing to refresh".into(),
            }),
        );
        sc.answers.insert(
            "d2".into(),
            Err(SendError {
                message: "the answer was cut short".into(),
                answer_lost: true,
            }),
        );
        sc.listed.insert(
            "d2".into(),
            Torn::Found {
                job_id: "job-torn".into(),
                why: "listed as pending".into(),
            },
        );
        sc.jobs.insert(
            "job-torn".into(),
            vec![
                job(None, None, None),
                job(Some(JobStatus::Failed), Some(1), Some("disk full")),
            ],
        );
        sc.jobs.insert(
            "job-a1".into(),
            vec![job(Some(JobStatus::Success), Some(0), None)],
        );
    }
    let opts = Options {
        now: Instant::parse("2026-11-29T02:00:00Z").unwrap(),
        dry_run: false,
        wait: true,
        wait_timeout: Duration::from_secs(30),
        settings: ActiveExposures::default(),
    };
    let summary = refresh(
        &mut conn,
        &run_results(),
        &FakeIntegrations(fake.clone()),
        &opts,
    )
    .unwrap();

    let want: Vec<Row> = vec![
        (
            "sales d1".into(),
            "not_applicable".into(),
            s("not_refreshable"),
            None,
            s("E-NOTHING"),
            s("nothing to refresh"),
            None,
            None,
        ),
        (
            "sales d2".into(),
            "triggered".into(),
            s("answer_unreadable"),
            s("job-torn"),
            None,
            s("the answer was cut short"),
            s("failed"),
            Some(1),
        ),
        (
            "sales a1".into(),
            "triggered".into(),
            None,
            s("job-a1"),
            None,
            None,
            s("success"),
            Some(0),
        ),
        (
            "stale -".into(),
            "skipped".into(),
            s("not_rebuilt"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            "orphan g1".into(),
            "failed".into(),
            s("http_error"),
            None,
            None,
            s("integration \"gone\" cannot be opened"),
            None,
            None,
        ),
    ];
    assert_eq!(rows(&conn), want);
    let calls = fake.0.borrow().calls.clone();
    assert_eq!(
        calls,
        [
            "refresh d1",
            "refresh d2",
            "check_torn d2",
            "refresh a1",
            "job job-torn",
            "job job-a1",
            "job job-torn",
            "sign_out"
        ]
    );
    assert_eq!(summary.failed_jobs, 1);
    assert!(summary.any_failure());
    // The cadence's memory: the two triggers, not the refusal, not the failure.
    let state: Vec<(String, String)> = conn
        .prepare("SELECT target_ref, last_job_id FROM refresh_state ORDER BY target_ref")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        state,
        [
            ("a1".to_string(), "job-a1".to_string()),
            ("d2".to_string(), "job-torn".to_string())
        ]
    );
}

/// A request a killed run left in flight is settled from the fake's jobs list before anything
/// is decided, and not sent again.
#[test]
fn a_request_left_in_flight_is_settled_through_the_seam() {
    let mut conn = db();
    conn.execute_batch(
        "INSERT INTO runs (stage, started_at, tool_version, config_hash, status) VALUES ('refresh', 't', 'v', 'h', 'running');
         INSERT INTO refresh_events (run_id, seq, dry_run, decided_at, integration, exposure, asset_ref, target_kind, target_ref,
            target_name, decision)
         VALUES (1, 1, 0, '2026-11-29T01:00:00Z', 'fake', 'sales', 'a1', 'datasource', 'd1', 'Orders', 'sending');",
    )
    .unwrap();
    let fake = Fake::default();
    fake.0.borrow_mut().listed.insert(
        "d1".into(),
        Torn::Found {
            job_id: "job-old".into(),
            why: "listed".into(),
        },
    );
    let opts = Options {
        now: Instant::parse("2026-11-29T02:00:00Z").unwrap(),
        dry_run: false,
        wait: false,
        wait_timeout: Duration::from_secs(1),
        settings: ActiveExposures {
            enabled: true,
            build_after_minutes: 120,
        },
    };
    refresh(
        &mut conn,
        &run_results(),
        &FakeIntegrations(fake.clone()),
        &opts,
    )
    .unwrap();
    let settled: (String, String, String) = conn
        .query_row(
            "SELECT decision, reason, job_id FROM refresh_events WHERE run_id = 1 AND seq = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        settled,
        ("triggered".into(), "interrupted".into(), "job-old".into())
    );
    let calls = fake.0.borrow().calls.clone();
    assert_eq!(calls[0], "check_torn d1");
    assert!(!calls.contains(&"refresh d1".to_string()), "{calls:?}");
    let d1: String = conn
        .query_row("SELECT decision || '/' || reason FROM refresh_events WHERE run_id = 2 AND target_ref = 'd1' AND exposure = 'sales'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(d1, "skipped/too_soon");
}
