//! Stage `refresh` (active exposures): after a dbt build, refresh the extracts behind every
//! exposure whose upstream nodes were rebuilt, no more often than `build_after_minutes` per
//! target.
//!
//! Reads: run_results.json (into dbt_run_results), exposures, refresh_state, and
//! bi_refresh_targets (written by each integration's extract), all in one transaction before anything is sent (a concurrent writer
//! cannot mix two runs' tables into one decision). Writes: dbt_run_results (in that same
//! transaction), refresh_events (every decision), refresh_state (the last trigger per target;
//! never in a dry run).
//!
//! Journaled: before a refresh request leaves, its row is committed as `sending` (with the
//! decisions made since the previous commit); its answer replaces it, with its refresh_state
//! row, in a short transaction of its own before the next target is sent; with `--wait` every
//! job outcome is committed as it arrives. The next run sees the triggers already sent as
//! `too_soon`. A kill while a request is in flight leaves its `sending` row: the next run first
//! settles it from the service's jobs list (`settle_in_flight`: triggered with the job found, or
//! failed, reason `interrupted`) instead of sending it again. The rows belong to this stage's
//! `runs` row (`db::run_stage`), which ends `ok` or `failed`, or stays `running` after a kill
//! until the next autoexpose marks it `interrupted` (`db::mark_interrupted`). A target that
//! fails is a row, not an abort.
//!
//! A refresh request whose answer is lost after it may have reached the service (cut short,
//! unreadable, a success without a job id, timed out, reset: `SendError::answer_lost`) is never
//! sent again blindly: the service's jobs list is checked (`Refresher::check_torn`). An unfinished refresh of the target listed there is
//! recorded as `triggered` with that job's id (reason `answer_unreadable`). Otherwise the
//! target is `failed` / `answer_unreadable`, exit code 4, and refresh_state is not touched, so
//! the next run sends it again: when the list shows nothing queued that is right; when the list
//! cannot be read (it may be for administrators only) it risks one duplicate refresh on the
//! next run rather than silently skipping a target for a whole cadence on a guess, and the
//! failure tells the operator to look.
//!
//! Decisions, per exposure:
//! - due: some dependency was rebuilt (model/seed/snapshot, `success` or `partial success`)
//!   and none errored or was skipped;
//! - skipped/upstream_failed: a dependency errored or was skipped;
//! - skipped/not_rebuilt: no dependency ran.
//!
//! Then per target of a due exposure: skipped/too_soon inside the cadence (with the time it
//! becomes eligible), skipped/refreshed_in_this_run when another exposure already sent it,
//! otherwise triggered / already_queued (counts as a trigger) / not_applicable (nothing to
//! refresh, or no targets at all) / failed (not found, forbidden, a lost answer
//! (`answer_unreadable`, above), anything else; the service's code and message kept), as the
//! integration classifies its answer (`seam::Refusal`). With `--wait`, `job_status` is success /
//! failed / cancelled / timeout / poll_failed (polls still failing after the retry policy).
//! The cadence runs from our trigger, per target — not per exposure, not from job completion.

//!
//! The stage in two halves: `decide` (pure: rows and a clock in, the plan out, unit-tested
//! case by case; its doc says why the whole run can be decided up front) and `act` (the
//! integration and the journal). The integration is reached only through `seam` (one trait,
//! `Refresher`; which one each configured integration gets is `crate::integrations`). `run` below reads the inputs, settles what a killed run left
//! in flight (not in a dry run, which sends nothing, Query Jobs included), decides, then acts
//! step by step. The stored tags
//! are enums (`tags`): an unknown value read back fails, naming it.

pub(crate) mod act;
pub(crate) mod decide;
pub(crate) mod journal;
pub(crate) mod seam;
#[cfg(test)]
mod seam_tests;
pub(crate) mod tags;

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, TransactionBehavior};

use crate::clock::Instant;
use crate::config::{hex_xxh3, ActiveExposures, Config};
use crate::db::StageReport;
use crate::http::HttpMode;
use crate::log;
use crate::run_results::{self, RunResults};

use act::{Actor, Clients, InFlight};
use decide::{Exposure, TargetKey};
use journal::{Event, Journal};
use seam::{Refreshers, Target};
use tags::{Decision, Kind};

/// `bi_refresh_targets`' columns, in order: what each integration's extract writes (through
/// `bulk::Replace`) and this stage reads.
pub(crate) const TARGET_COLUMNS: [&str; 5] = [
    "integration",
    "asset_ref",
    "target_kind",
    "target_ref",
    "target_name",
];

pub(crate) struct Options {
    pub(crate) now: Instant,
    pub(crate) dry_run: bool,
    pub(crate) wait: bool,
    pub(crate) wait_timeout: Duration,
    pub(crate) settings: ActiveExposures,
}

#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) counts: BTreeMap<Decision, usize>,
    pub(crate) failed_jobs: usize,
}

impl Summary {
    pub(crate) fn any_failure(&self) -> bool {
        self.counts.get(&Decision::Failed).copied().unwrap_or(0) > 0 || self.failed_jobs > 0
    }

    fn of(events: &[Event]) -> Summary {
        let mut summary = Summary::default();
        for ev in events {
            *summary.counts.entry(ev.decision).or_default() += 1;
            if ev.job_status.is_some_and(tags::JobStatus::is_failure) {
                summary.failed_jobs += 1;
            }
        }
        summary
    }

    /// The last line of the stage's output.
    fn done_line(&self, opts: &Options) -> String {
        let n = |d: Decision| self.counts.get(&d).copied().unwrap_or(0);
        let mut done = format!(
            "Done. TRIGGERED={} SKIPPED={} ALREADY_QUEUED={} NOT_APPLICABLE={} FAILED={}",
            n(Decision::Triggered),
            n(Decision::Skipped),
            n(Decision::AlreadyQueued),
            n(Decision::NotApplicable),
            n(Decision::Failed)
        );
        if opts.wait && !opts.dry_run {
            done.push_str(&format!(" JOBS_FAILED={}", self.failed_jobs));
        }
        if opts.dry_run {
            done.push_str(" (dry run: nothing sent, no state written)");
        }
        done
    }
}

/// Everything the decisions are made from, read in one transaction.
struct Inputs {
    run_id: i64,
    exposures: Vec<Exposure>,
    state: BTreeMap<TargetKey, Instant>,
    in_flight: Vec<InFlight>,
    targets_of: BTreeMap<(String, String), Vec<Target>>,
}

pub(crate) fn run(
    conn: &mut Connection,
    config: &Config,
    mode: &HttpMode,
    opts: &Options,
) -> Result<(StageReport, Summary)> {
    let mut report = StageReport::default();
    let (rr, bytes) = run_results::load(&config.run_results)?;
    report.input(&config.run_results, &hex_xxh3(&bytes));
    drop(bytes);
    if rr.rebuilds_nothing() {
        log::warn(&format!(
            "{} comes from `dbt {}`, which rebuilds nothing: no exposure is due",
            config.run_results.display(),
            rr.command().unwrap_or("?")
        ));
    }
    let refreshers = crate::integrations::ConfiguredRefreshers {
        config,
        mode,
        now: opts.now,
    };
    let summary = refresh(conn, &rr, &refreshers, opts)?;
    report.row_counts = crate::db::count_rows(
        conn,
        &["dbt_run_results", "refresh_events", "refresh_state"],
    )?;
    crate::fault::point("refresh.commit");
    crate::outln!("{}  {}", opts.now.time_of_day(), summary.done_line(opts));
    Ok((report, summary))
}

/// The stage after run_results.json is read: inputs, the requests left in flight, the plan,
/// and each step carried out through `refreshers`.
fn refresh(
    conn: &mut Connection,
    rr: &RunResults,
    refreshers: &dyn Refreshers,
    opts: &Options,
) -> Result<Summary> {
    let mut inputs = read_inputs(conn, rr)?;
    crate::fault::point("refresh.inputs");

    let t = opts.now.time_of_day();
    let mut clients = Clients::new();
    if !opts.dry_run {
        act::settle_in_flight(
            conn,
            refreshers,
            &mut clients,
            &inputs.in_flight,
            &mut inputs.state,
            &t,
        )?;
    }
    let plan = decide::decide(&decide::Inputs {
        exposures: &inputs.exposures,
        run_results: rr,
        last_triggered: &inputs.state,
        targets_of: &inputs.targets_of,
        build_after_minutes: opts.settings.build_after_minutes,
        now: opts.now,
    });
    let journal = Journal::new(conn, inputs.run_id, opts.dry_run, opts.now);
    let mut actor = Actor {
        journal,
        clients,
        refreshers,
        t,
    };
    for step in &plan {
        actor.act(step)?;
    }
    actor.journal.flush()?;
    if opts.wait && !opts.dry_run {
        actor.wait_for_jobs(opts.wait_timeout)?;
    }
    actor.sign_out();
    Ok(Summary::of(&actor.journal.events))
}

/// Every input, read in one transaction, so a concurrent writer cannot hand us exposures of
/// one run and targets of another; dbt_run_results is replaced in the same transaction.
fn read_inputs(conn: &mut Connection, rr: &RunResults) -> Result<Inputs> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let run_id: i64 = tx.query_row(
        "SELECT max(run_id) FROM runs WHERE stage = 'refresh'",
        [],
        |r| r.get(0),
    )?;
    let exposures = load_exposures(&tx)?;
    let state = load_state(&tx)?;
    let in_flight = load_in_flight(&tx)?;
    let mut targets_of: BTreeMap<(String, String), Vec<Target>> = BTreeMap::new();
    for e in &exposures {
        if let Entry::Vacant(slot) = targets_of.entry((e.integration.clone(), e.asset_ref.clone()))
        {
            slot.insert(load_targets(&tx, &e.integration, &e.asset_ref)?);
        }
    }
    run_results::store(&tx, Some(rr))?;
    tx.commit()?;
    Ok(Inputs {
        run_id,
        exposures,
        state,
        in_flight,
        targets_of,
    })
}

fn load_in_flight(conn: &Connection) -> Result<Vec<InFlight>> {
    let mut st = conn.prepare(
        "SELECT run_id, seq, decided_at, integration, exposure, asset_ref, target_kind, target_ref, coalesce(target_name, '')
         FROM refresh_events WHERE decision = 'sending' AND dry_run = 0 AND target_ref IS NOT NULL ORDER BY run_id, seq",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            Event::new(
                &r.get::<_, String>(3)?,
                &r.get::<_, String>(4)?,
                &r.get::<_, String>(5)?,
                None,
                Decision::Sending,
            ),
            r.get::<_, Kind>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, String>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (run_id, seq, at, event, kind, id, name) =
            row.context("table refresh_events, a request left in flight (decision sending)")?;
        let decided_at = Instant::parse(&at).with_context(|| {
            format!("table refresh_events, column decided_at of run {run_id} seq {seq}: {at:?} is not an RFC 3339 time (a database edited by hand?)")
        })?;
        let event = Event {
            target: Some(Target { kind, id, name }),
            ..event
        };
        out.push(InFlight {
            run_id,
            seq,
            decided_at,
            event,
        });
    }
    Ok(out)
}

fn load_exposures(conn: &Connection) -> Result<Vec<Exposure>> {
    let mut st = conn.prepare(
        "SELECT integration, name, asset_ref, depends_on FROM exposures WHERE status = 'written' ORDER BY integration, name",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (integration, name, asset_ref, deps) = row?;
        let depends_on = serde_json::from_str(&deps)
            .with_context(|| format!("exposures.depends_on of {name}"))?;
        out.push(Exposure {
            integration,
            name,
            asset_ref,
            depends_on,
        });
    }
    if out.is_empty() {
        log::warn("no exposures in the database: run `autoexpose run` (or emit) first");
    }
    Ok(out)
}

fn load_state(conn: &Connection) -> Result<BTreeMap<TargetKey, Instant>> {
    let mut st = conn.prepare(
        "SELECT integration, target_kind, target_ref, last_triggered_at FROM refresh_state",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Kind>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (i, kind, id, at) = row.context("table refresh_state")?;
        let at = Instant::parse(&at).with_context(|| {
            format!("table refresh_state, column last_triggered_at of {kind} {id}: {at:?} is not an RFC 3339 time (a database edited by hand?)")
        })?;
        out.insert((i, kind, id), at);
    }
    Ok(out)
}

/// The refresh targets behind one asset, as its integration's extract wrote them, in the order
/// it chose (by kind, then ref: data sources before the workbook). A kind this autoexpose does
/// not know is an error naming the row: read as another, it would refresh the wrong thing.
fn load_targets(conn: &Connection, integration: &str, asset_ref: &str) -> Result<Vec<Target>> {
    let mut st = conn.prepare_cached(
        "SELECT target_kind, target_ref, target_name FROM bi_refresh_targets
         WHERE integration = ?1 AND asset_ref = ?2 ORDER BY target_kind, target_ref",
    )?;
    let rows = st.query_map(params![integration, asset_ref], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, id, name) = row.context("table bi_refresh_targets")?;
        let Some(kind) = <Kind as crate::tags::Tag>::parse(&kind) else {
            anyhow::bail!(
                "table bi_refresh_targets, target {id:?} ({name:?}) of integration {integration:?}, asset {asset_ref:?}: {}",
                crate::tags::UnknownTag::of::<Kind>(&kind)
            );
        };
        out.push(Target { kind, id, name });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn).unwrap();
        conn
    }

    #[track_caller]
    fn fails_naming(err: anyhow::Error, wants: &[&str]) {
        let text = format!("{err:#}");
        for want in wants {
            assert!(text.contains(want), "{want:?} not in: {text}");
        }
    }

    #[test]
    fn refresh_state_is_read_back_with_its_kinds() {
        let conn = db();
        conn.execute_batch(
            "INSERT INTO refresh_state VALUES ('site', 'workbook', 'w1', 'W', '2026-11-25T02:00:00Z', 'triggered', 'j', 1);
             INSERT INTO refresh_state VALUES ('site', 'datasource', 'd1', 'D', '2026-11-25T03:00:00Z', 'already_queued', NULL, 1);",
        )
        .unwrap();
        let state = load_state(&conn).unwrap();
        let want: BTreeMap<TargetKey, Instant> = [
            (
                ("site".into(), Kind::Datasource, "d1".into()),
                Instant::parse("2026-11-25T03:00:00Z").unwrap(),
            ),
            (
                ("site".into(), Kind::Workbook, "w1".into()),
                Instant::parse("2026-11-25T02:00:00Z").unwrap(),
            ),
        ]
        .into();
        assert_eq!(state, want);
    }

    /// An unknown kind used to be read as `datasource`: the cadence of a target nobody has.
    #[test]
    fn an_unknown_kind_in_refresh_state_fails_naming_it() {
        let conn = db();
        conn.execute("INSERT INTO refresh_state VALUES ('site', 'cube', 'c1', 'C', '2026-11-25T02:00:00Z', 'triggered', NULL, 1)", [])
            .unwrap();
        fails_naming(
            load_state(&conn).unwrap_err(),
            &[
                "table refresh_state",
                "column target_kind: unknown value \"cube\"",
            ],
        );
    }

    #[test]
    fn an_unknown_kind_of_a_request_in_flight_fails_naming_it() {
        let conn = db();
        conn.execute(
            "INSERT INTO refresh_events (run_id, seq, dry_run, decided_at, integration, exposure, asset_ref, target_kind,
                target_ref, target_name, decision)
             VALUES (1, 1, 0, '2026-11-25T02:00:00Z', 'site', 'e', 'w1', 'Workbook', 'w1', 'W', 'sending')",
            [],
        )
        .unwrap();
        fails_naming(
            load_in_flight(&conn).err().unwrap(),
            &["table refresh_events", "column target_kind: unknown value \"Workbook\" (this autoexpose knows datasource, workbook, dataset)"],
        );
        conn.execute("UPDATE refresh_events SET target_kind = 'workbook'", [])
            .unwrap();
        let f = load_in_flight(&conn).unwrap();
        assert_eq!(
            f[0].event.target.as_ref().map(|t| (t.kind, t.id.as_str())),
            Some((Kind::Workbook, "w1"))
        );
        assert_eq!(f[0].event.exposure, "e");
    }

    /// The targets an integration wrote, in its order; a kind this autoexpose does not know
    /// stops the stage before anything is sent, naming the row.
    #[test]
    fn refresh_targets_are_read_back_and_an_unknown_kind_fails_naming_it() {
        let conn = db();
        conn.execute_batch(
            "INSERT INTO bi_refresh_targets VALUES ('site', 'w1', 'workbook', 'w1', 'W');
             INSERT INTO bi_refresh_targets VALUES ('site', 'w1', 'datasource', 'd2', 'P2');
             INSERT INTO bi_refresh_targets VALUES ('site', 'w1', 'datasource', 'd1', 'P1');
             INSERT INTO bi_refresh_targets VALUES ('other', 'w1', 'datasource', 'd9', 'X');",
        )
        .unwrap();
        let got = load_targets(&conn, "site", "w1").unwrap();
        let kinds: Vec<(Kind, &str, &str)> = got
            .iter()
            .map(|t| (t.kind, t.id.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::Datasource, "d1", "P1"),
                (Kind::Datasource, "d2", "P2"),
                (Kind::Workbook, "w1", "W")
            ]
        );
        assert!(load_targets(&conn, "site", "w2").unwrap().is_empty());
        conn.execute(
            "UPDATE bi_refresh_targets SET target_kind = 'cube' WHERE target_ref = 'd2'",
            [],
        )
        .unwrap();
        fails_naming(
            load_targets(&conn, "site", "w1").unwrap_err(),
            &[
                "table bi_refresh_targets",
                "target \"d2\" (\"P2\")",
                "asset \"w1\"",
                "column target_kind: unknown value \"cube\"",
            ],
        );
    }
}
