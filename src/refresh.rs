//! Stage `refresh` (active exposures): after a dbt build, refresh the extracts behind every
//! exposure whose upstream nodes were rebuilt, no more often than `build_after_minutes` per
//! target.
//!
//! Reads: run_results.json (into dbt_run_results), exposures, refresh_state, and the Tableau
//! tables for targets, all in one transaction before anything is sent (a concurrent writer
//! cannot mix two runs' tables into one decision). Writes: dbt_run_results (in that same
//! transaction), refresh_events (every decision), refresh_state (the last trigger per target;
//! never in a dry run).
//!
//! Journaled: before a refresh request leaves, its row is committed as `sending` (with the
//! decisions made since the previous commit); its answer replaces it, with its refresh_state
//! row, in a short transaction of its own before the next target is sent; with `--wait` every
//! job outcome is committed as it arrives. The next run sees the triggers already sent as
//! `too_soon`. A kill while a request is in flight leaves its `sending` row: the next run first
//! settles it from Tableau's jobs list (`settle_in_flight`: triggered with the job found, or
//! failed, reason `interrupted`) instead of sending it again. The rows belong to this stage's
//! `runs` row (`db::run_stage`), which ends `ok` or `failed`, or stays `running` after a kill
//! until the next autoexpose marks it `interrupted` (`db::mark_interrupted`). A target that
//! fails is a row, not an abort.
//!
//! A refresh request whose answer is lost after it may have reached Tableau (cut short, not
//! XML, a 2xx without a job id, timed out, reset) is never sent again blindly: Tableau's jobs
//! list is checked (`Client::check_torn`). An unfinished refresh of the target listed there is
//! recorded as `triggered` with that job's id (reason `answer_unreadable`). Otherwise the
//! target is `failed` / `answer_unreadable`, exit code 4, and refresh_state is not touched, so
//! the next run sends it again: when the list shows nothing queued that is right; when the list
//! cannot be read (Query Jobs is for site administrators) it risks one duplicate refresh on the
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
//! otherwise triggered / already_queued (409093, counts as a trigger) / not_applicable (409090,
//! or no extracts at all) / failed (404, 403, a lost answer (`answer_unreadable`, above),
//! anything else; Tableau's code and message kept). With `--wait`, `job_status` is success /
//! failed / cancelled / timeout / poll_failed (polls still failing after the retry policy).
//! The cadence runs from our trigger, per target — not per exposure, not from job completion.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, TransactionBehavior};

use crate::clock::{ago, Instant};
use crate::config::{hex_xxh3, ActiveExposures, Config};
use crate::db::StageReport;
use crate::http::HttpMode;
use crate::log;
use crate::run_results::{self, RunResults};
use crate::tableau::client::{Client, TableauError};
use crate::tableau::refresh::{Answer, Target, Torn};
use crate::tableau;

pub(crate) struct Options {
    pub(crate) now: Instant,
    pub(crate) dry_run: bool,
    pub(crate) wait: bool,
    pub(crate) wait_timeout: Duration,
    pub(crate) settings: ActiveExposures,
}

/// One decision, as it goes into `refresh_events`.
#[derive(Debug, Default, Clone)]
struct Event {
    integration: String,
    exposure: String,
    workbook_luid: String,
    target: Option<Target>,
    decision: &'static str,
    reason: Option<&'static str>,
    detail: Option<String>,
    eligible_at: Option<String>,
    job_id: Option<String>,
    http_status: Option<u16>,
    tableau_code: Option<String>,
    tableau_message: Option<String>,
    job_status: Option<&'static str>,
    job_finish_code: Option<i32>,
    job_notes: Option<String>,
    job_completed_at: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) counts: BTreeMap<&'static str, usize>,
    pub(crate) failed_jobs: usize,
}

impl Summary {
    pub(crate) fn any_failure(&self) -> bool {
        self.counts.get("failed").copied().unwrap_or(0) > 0 || self.failed_jobs > 0
    }
}

struct Exposure {
    integration: String,
    name: String,
    workbook_luid: String,
    depends_on: Vec<String>,
}

pub(crate) fn run(conn: &mut Connection, config: &Config, mode: &HttpMode, opts: &Options) -> Result<(StageReport, Summary)> {
    let mut report = StageReport::default();
    let (rr, bytes) = run_results::load(&config.run_results)?;
    report.input(&config.run_results, &hex_xxh3(&bytes));
    drop(bytes);

    let statuses: BTreeMap<&str, &str> = rr.results.iter().map(|r| (r.unique_id.as_str(), r.status.as_str())).collect();
    let rebuilt: BTreeSet<&str> = rr.results.iter().filter(|r| r.rebuilt()).map(|r| r.unique_id.as_str()).collect();
    let failed: BTreeSet<&str> =
        rr.results.iter().filter(|r| r.failed_or_skipped()).map(|r| r.unique_id.as_str()).collect();
    if rr.rebuilds_nothing() {
        log::warn(&format!(
            "{} comes from `dbt {}`, which rebuilds nothing: no exposure is due",
            config.run_results.display(),
            rr.command().unwrap_or("?")
        ));
    }

    // Every input, read in one transaction, so a concurrent writer cannot hand us exposures of
    // one run and targets of another; dbt_run_results is replaced in the same transaction.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let run_id: i64 = tx.query_row("SELECT max(run_id) FROM runs WHERE stage = 'refresh'", [], |r| r.get(0))?;
    let exposures = load_exposures(&tx)?;
    let mut state = load_state(&tx)?;
    let in_flight = load_in_flight(&tx)?;
    let mut targets_of: BTreeMap<(String, String), Vec<Target>> = BTreeMap::new();
    for e in &exposures {
        if let std::collections::btree_map::Entry::Vacant(slot) = targets_of.entry((e.integration.clone(), e.workbook_luid.clone())) {
            slot.insert(tableau::refresh::targets(&tx, &e.integration, &e.workbook_luid)?);
        }
    }
    write_run_results(&tx, &rr)?;
    tx.commit()?;
    crate::fault::point("refresh.inputs");

    // The cadence comes from the config or an env var: a huge value means "never again", not
    // an overflow (which panicked in debug builds and went negative in release ones).
    let build_after = i64::try_from(opts.settings.build_after_minutes).ok().and_then(|m| m.checked_mul(60)).unwrap_or(i64::MAX);
    let now = opts.now;
    let t = now.time_of_day();

    let mut clients: BTreeMap<String, Result<Client, String>> = BTreeMap::new();
    if !opts.dry_run {
        settle_in_flight(conn, config, mode, &mut clients, &in_flight, &mut state, &t)?;
    }
    let mut handled: BTreeMap<(String, &'static str, String), String> = BTreeMap::new();
    let mut journal = Journal { conn, run_id, dry_run: opts.dry_run, now, events: Vec::new(), written: 0 };

    for e in &exposures {
        let base = Event {
            integration: e.integration.clone(),
            exposure: e.name.clone(),
            workbook_luid: e.workbook_luid.clone(),
            ..Event::default()
        };
        let bad: Vec<String> = e
            .depends_on
            .iter()
            .filter(|d| failed.contains(d.as_str()))
            .map(|d| format!("{d} ({})", statuses[d.as_str()]))
            .collect();
        let fresh: Vec<&String> = e.depends_on.iter().filter(|d| rebuilt.contains(d.as_str())).collect();
        if !bad.is_empty() || fresh.is_empty() || rr.rebuilds_nothing() {
            let (reason, detail) = if !bad.is_empty() {
                ("upstream_failed", bad.join(", "))
            } else {
                ("not_rebuilt", "no dependency was rebuilt in this invocation".to_string())
            };
            crate::outln!("{t}  Refreshing Tableau extract for exposure {} ... [SKIPPED: {}]", e.name, reason.replace('_', " "));
            journal.note(Event { decision: "skipped", reason: Some(reason), detail: Some(detail), ..base });
            continue;
        }
        let targets = targets_of.get(&(e.integration.clone(), e.workbook_luid.clone())).cloned().unwrap_or_default();
        if targets.is_empty() {
            crate::outln!("{t}  Refreshing Tableau extract for exposure {} ... [NOT_APPLICABLE: live connections only]", e.name);
            journal.note(Event {
                decision: "not_applicable",
                reason: Some("no_extracts"),
                detail: Some("the workbook and its published data sources have no extracts".into()),
                ..base
            });
            continue;
        }
        for target in targets {
            let label = format!("{} ({} {})", e.name, target.kind, printable(&target.name));
            let key = (e.integration.clone(), target.kind, target.luid.clone());
            let mut ev = Event { target: Some(target.clone()), ..base.clone() };
            if let Some(first) = handled.get(&key) {
                crate::outln!("{t}  Refreshing Tableau extract for exposure {label} ... [SKIPPED: already refreshed in this run for {first}]");
                journal.note(Event {
                    decision: "skipped",
                    reason: Some("refreshed_in_this_run"),
                    detail: Some(format!("with exposure {first}")),
                    ..ev
                });
                continue;
            }
            handled.insert(key.clone(), e.name.clone());
            if let Some(last) = state.get(&key) {
                let eligible = Instant(last.0.saturating_add(build_after));
                if now < eligible {
                    crate::outln!(
                        "{t}  Refreshing Tableau extract for exposure {label} ... [SKIPPED: refreshed {}, eligible after {}]",
                        ago(now.0 - last.0),
                        eligible.rfc3339()
                    );
                    journal.note(Event {
                        decision: "skipped",
                        reason: Some("too_soon"),
                        detail: Some(format!("last triggered {}", last.rfc3339())),
                        eligible_at: Some(eligible.rfc3339()),
                        ..ev
                    });
                    continue;
                }
            }
            if opts.dry_run {
                crate::outln!("{t}  Refreshing Tableau extract for exposure {label} ... [DRY RUN: would trigger]");
                journal.note(Event { decision: "triggered", detail: Some("dry run: nothing sent".into()), ..ev });
                continue;
            }
            let client = clients.entry(e.integration.clone()).or_insert_with(|| open_client(config, mode, &e.integration));
            // Committed before the request leaves (with the decisions made since the last
            // commit): a kill while it is in flight leaves this `sending` row, which the next
            // run settles from Tableau's jobs list instead of sending the refresh again.
            let slot = if client.is_ok() { Some(journal.sending(ev.clone())?) } else { None };
            crate::fault::point("refresh.send");
            let answer = match client {
                Ok(c) => c.refresh(&target).map_err(|err| {
                    let torn = matches!(err, TableauError::Transport(_) | TableauError::Protocol { .. } | TableauError::BadBody { .. });
                    (format!("{err}"), torn.then(|| c.check_torn(&target)))
                }),
                Err(msg) => Err((msg.clone(), None)),
            };
            match answer {
                Ok(Answer::Job(id)) => {
                    crate::outln!("{t}  Refreshing Tableau extract for exposure {label} ... [TRIGGERED job {}]", short(&id));
                    ev.decision = "triggered";
                    ev.http_status = Some(202);
                    ev.job_id = Some(id);
                }
                Ok(Answer::Refused { status, code, summary, detail }) => {
                    let (decision, reason) = classify(status, code.as_deref());
                    let msg = [summary.clone(), detail.clone()].into_iter().flatten().collect::<Vec<_>>().join(": ");
                    let shown = match decision {
                        "already_queued" => "ALREADY_QUEUED".to_string(),
                        "not_applicable" => "NOT_APPLICABLE: no extract to refresh".to_string(),
                        _ => format!("FAILED: HTTP {status} {} {}", code.as_deref().unwrap_or(""), printable(&msg)),
                    };
                    crate::outln!("{t}  Refreshing Tableau extract for exposure {label} ... [{shown}]");
                    ev.decision = decision;
                    ev.reason = reason;
                    ev.http_status = Some(status);
                    ev.tableau_code = code;
                    ev.tableau_message = Some(msg).filter(|m| !m.is_empty());
                }
                Err((msg, Some(Torn::Found { job_id, why }))) => {
                    crate::outln!(
                        "{t}  Refreshing Tableau extract for exposure {label} ... [TRIGGERED job {} (answer lost; found in Tableau's jobs)]",
                        short(&job_id)
                    );
                    ev.decision = "triggered";
                    ev.reason = Some("answer_unreadable");
                    ev.detail = Some(format!("the answer was lost; {why}"));
                    ev.tableau_message = Some(msg);
                    ev.job_id = Some(job_id);
                }
                Err((msg, Some(Torn::NotQueued { why } | Torn::Unknown { why }))) => {
                    crate::outln!(
                        "{t}  Refreshing Tableau extract for exposure {label} ... [FAILED: answer lost, not sent again: {}]",
                        printable(&why)
                    );
                    ev.decision = "failed";
                    ev.reason = Some("answer_unreadable");
                    ev.detail = Some(format!("the answer was lost; {why}"));
                    ev.tableau_message = Some(msg);
                }
                Err((msg, None)) => {
                    crate::outln!("{t}  Refreshing Tableau extract for exposure {label} ... [FAILED: {}]", printable(&msg));
                    ev.decision = "failed";
                    ev.reason = Some("http_error");
                    ev.tableau_message = Some(msg);
                }
            }
            // The answer is committed before the next target is sent: a kill from here on
            // loses none of it.
            crate::fault::point("refresh.answered");
            match slot {
                Some(i) => journal.settle(i, ev)?,
                None => {
                    journal.note(ev);
                    journal.flush()?;
                }
            }
            crate::fault::point("refresh.trigger");
        }
    }
    journal.flush()?;

    let mut summary = Summary::default();
    if opts.wait && !opts.dry_run {
        wait_for_jobs(&mut clients, &mut journal, opts, &t)?;
    }
    for c in clients.values_mut().flatten() {
        c.sign_out();
    }
    for ev in &journal.events {
        *summary.counts.entry(ev.decision).or_default() += 1;
        if matches!(ev.job_status, Some("failed" | "cancelled" | "timeout" | "poll_failed")) {
            summary.failed_jobs += 1;
        }
    }
    report.row_counts = crate::db::count_rows(journal.conn, &["dbt_run_results", "refresh_events", "refresh_state"])?;
    crate::fault::point("refresh.commit");

    let n = |k: &str| summary.counts.get(k).copied().unwrap_or(0);
    let mut done = format!(
        "Done. TRIGGERED={} SKIPPED={} ALREADY_QUEUED={} NOT_APPLICABLE={} FAILED={}",
        n("triggered"),
        n("skipped"),
        n("already_queued"),
        n("not_applicable"),
        n("failed")
    );
    if opts.wait && !opts.dry_run {
        done.push_str(&format!(" JOBS_FAILED={}", summary.failed_jobs));
    }
    if opts.dry_run {
        done.push_str(" (dry run: nothing sent, no state written)");
    }
    crate::outln!("{t}  {done}");
    Ok((report, summary))
}

/// The refresh journal: decisions in the order they are made. A request to Tableau is written
/// as `sending` before it leaves and settled by its answer, each in a short transaction of its
/// own (carrying the decisions made since the last one); each job outcome is written as it
/// arrives.
struct Journal<'c> {
    conn: &'c mut Connection,
    run_id: i64,
    dry_run: bool,
    now: Instant,
    events: Vec<Event>,
    /// How many of `events` are in refresh_events.
    written: usize,
}

impl Journal<'_> {
    /// Adds a decision; it is written by the next `flush`.
    fn note(&mut self, ev: Event) {
        self.events.push(ev);
    }

    /// Writes the decisions not yet written, and refresh_state for their triggers (never in a
    /// dry run), in one transaction.
    fn flush(&mut self) -> Result<()> {
        if self.written == self.events.len() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for (i, ev) in self.events.iter().enumerate().skip(self.written) {
            insert_event(&tx, self.run_id, i as i64 + 1, self.dry_run, self.now, ev)?;
            if !self.dry_run {
                upsert_state(&tx, ev, self.now, self.run_id)?;
            }
        }
        tx.commit()?;
        self.written = self.events.len();
        Ok(())
    }

    /// Writes `ev` as a request in flight (decision `sending`), with the decisions not yet
    /// written, and returns its index for `settle`.
    fn sending(&mut self, ev: Event) -> Result<usize> {
        self.events.push(Event { decision: "sending", ..ev });
        self.flush()?;
        Ok(self.events.len() - 1)
    }

    /// Replaces the `sending` row `i` with what came of the request, and its refresh_state
    /// row, in one transaction.
    fn settle(&mut self, i: usize, ev: Event) -> Result<()> {
        let tx = self.conn.transaction()?;
        update_decision(&tx, self.run_id, i as i64 + 1, &ev)?;
        upsert_state(&tx, &ev, self.now, self.run_id)?;
        tx.commit()?;
        self.events[i] = ev;
        Ok(())
    }

    /// Writes the job outcome of decision `i` (already written by `flush`).
    fn job_outcome(&mut self, i: usize) -> Result<()> {
        let ev = &self.events[i];
        self.conn.execute(
            "UPDATE refresh_events SET job_status = ?1, job_finish_code = ?2, job_notes = ?3, job_completed_at = ?4
             WHERE run_id = ?5 AND seq = ?6",
            params![ev.job_status, ev.job_finish_code, ev.job_notes, ev.job_completed_at, self.run_id, i as i64 + 1],
        )?;
        Ok(())
    }
}

/// 409093 (already queued) is not a failure and counts as a trigger; 409090 means no extract.
fn classify(status: u16, code: Option<&str>) -> (&'static str, Option<&'static str>) {
    match (status, code) {
        (_, Some("409093")) => ("already_queued", None),
        (_, Some("409090")) => ("not_applicable", Some("not_refreshable")),
        (404, _) => ("failed", Some("not_found")),
        (403, _) => ("failed", Some("forbidden")),
        _ => ("failed", Some("http_error")),
    }
}

fn open_client(config: &Config, mode: &HttpMode, integration: &str) -> Result<Client, String> {
    let site = config
        .tableau
        .iter()
        .find(|s| s.name == integration)
        .ok_or_else(|| format!("integration {integration:?} is not in the config any more"))?;
    let client = tableau::connect(site, mode).map_err(|e| format!("{e:#}"))?;
    client.ensure_session().map_err(|e| format!("{e}"))?;
    Ok(client)
}

/// Polls every triggered job by its id until it finishes or `wait_timeout` passes: 0.5 s, then
/// ×1.4 per round, at most 30 s between rounds (TSC's `wait_for_job` schedule). Each outcome
/// is committed as it arrives (`Journal::job_outcome`).
fn wait_for_jobs(clients: &mut BTreeMap<String, Result<Client, String>>, journal: &mut Journal, opts: &Options, t: &str) -> Result<()> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    let mut pending: Vec<usize> = (0..journal.events.len()).filter(|&i| journal.events[i].job_id.is_some()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for i in pending {
            let ev = &mut journal.events[i];
            let Some(Ok(client)) = clients.get_mut(&ev.integration) else { continue };
            let id = ev.job_id.clone().unwrap_or_default();
            match client.job(&id) {
                Ok(job) if job.completed_at.is_some() || job.finish_code.is_some() => {
                    let status = match job.finish_code {
                        Some(0 | 3) => "success",
                        Some(2) => "cancelled",
                        _ => "failed",
                    };
                    let tg = ev.target.as_ref().map(|t| format!(" ({} {})", t.kind, printable(&t.name))).unwrap_or_default();
                    let notes = job.notes.as_deref().map(|n| format!(": {}", printable(n))).unwrap_or_default();
                    crate::outln!("{t}  Job {} for exposure {}{tg} ... [{}{notes}]", short(&id), ev.exposure, status.to_uppercase());
                    ev.job_status = Some(status);
                    ev.job_finish_code = job.finish_code;
                    ev.job_notes = job.notes;
                    ev.job_completed_at = job.completed_at;
                    journal.job_outcome(i)?;
                    crate::fault::point("refresh.job");
                }
                Ok(_) => still.push(i),
                Err(e) => {
                    // `job` already retried per the site's retry policy (5xx, 429, network):
                    // what is left is persistent, so stop polling this job rather than
                    // asking until --wait-timeout.
                    log::warn(&format!("job {id}: {e}; no longer polled"));
                    crate::outln!("{t}  Job {} for exposure {} ... [POLL_FAILED]", short(&id), ev.exposure);
                    ev.job_status = Some("poll_failed");
                    journal.job_outcome(i)?;
                    crate::fault::point("refresh.job");
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() + delay > opts.wait_timeout {
            for i in pending {
                let ev = &mut journal.events[i];
                crate::outln!(
                    "{t}  Job {} for exposure {} ... [TIMEOUT after {}s]",
                    short(ev.job_id.as_deref().unwrap_or("")),
                    ev.exposure,
                    opts.wait_timeout.as_secs()
                );
                ev.job_status = Some("timeout");
                journal.job_outcome(i)?;
            }
            break;
        }
        std::thread::sleep(delay);
        delay = Duration::from_secs_f64((delay.as_secs_f64() * 1.4).min(30.0));
    }
    Ok(())
}

fn insert_event(tx: &rusqlite::Transaction, run_id: i64, seq: i64, dry_run: bool, now: Instant, ev: &Event) -> Result<()> {
    let tg = ev.target.as_ref();
    tx.prepare_cached(
        "INSERT INTO refresh_events (run_id, seq, dry_run, decided_at, integration, exposure, workbook_luid, target_kind, target_luid,
            target_name, decision, reason, detail, eligible_at, job_id, http_status, tableau_code, tableau_message, job_status,
            job_finish_code, job_notes, job_completed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    )?
    .execute(params![
        run_id,
        seq,
        dry_run,
        now.rfc3339(),
        ev.integration,
        ev.exposure,
        ev.workbook_luid,
        tg.map(|t| t.kind),
        tg.map(|t| t.luid.clone()),
        tg.map(|t| t.name.clone()),
        ev.decision,
        ev.reason,
        ev.detail,
        ev.eligible_at,
        ev.job_id,
        ev.http_status,
        ev.tableau_code,
        ev.tableau_message,
        ev.job_status,
        ev.job_finish_code,
        ev.job_notes,
        ev.job_completed_at
    ])?;
    Ok(())
}

/// What came of a request, over its `sending` row.
fn update_decision(tx: &rusqlite::Transaction, run_id: i64, seq: i64, ev: &Event) -> Result<()> {
    tx.prepare_cached(
        "UPDATE refresh_events SET decision = ?1, reason = ?2, detail = ?3, job_id = ?4, http_status = ?5, tableau_code = ?6,
            tableau_message = ?7
         WHERE run_id = ?8 AND seq = ?9",
    )?
    .execute(params![ev.decision, ev.reason, ev.detail, ev.job_id, ev.http_status, ev.tableau_code, ev.tableau_message, run_id, seq])?;
    Ok(())
}

/// refresh_state for a trigger (or a refresh found already queued): the cadence's memory.
fn upsert_state(tx: &rusqlite::Transaction, ev: &Event, at: Instant, run_id: i64) -> Result<()> {
    let Some(tg) = ev.target.as_ref().filter(|_| matches!(ev.decision, "triggered" | "already_queued")) else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO refresh_state (integration, target_kind, target_luid, target_name, last_triggered_at, last_decision, last_job_id, last_run_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (integration, target_kind, target_luid) DO UPDATE SET target_name = excluded.target_name,
           last_triggered_at = excluded.last_triggered_at, last_decision = excluded.last_decision,
           last_job_id = excluded.last_job_id, last_run_id = excluded.last_run_id",
    )?
    .execute(params![ev.integration, tg.kind, tg.luid, tg.name, at.rfc3339(), ev.decision, ev.job_id, run_id])?;
    Ok(())
}

/// A request a killed run left in flight: its `sending` row.
struct InFlight {
    run_id: i64,
    seq: i64,
    decided_at: Instant,
    event: Event,
}

fn load_in_flight(conn: &Connection) -> Result<Vec<InFlight>> {
    let mut st = conn.prepare(
        "SELECT run_id, seq, decided_at, integration, exposure, workbook_luid, target_kind, target_luid, coalesce(target_name, '')
         FROM refresh_events WHERE decision = 'sending' AND dry_run = 0 AND target_luid IS NOT NULL ORDER BY run_id, seq",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, String>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (run_id, seq, at, integration, exposure, workbook_luid, kind, luid, name) = row?;
        let decided_at = Instant::parse(&at).with_context(|| {
            format!("table refresh_events, column decided_at of run {run_id} seq {seq}: {at:?} is not an RFC 3339 time (a database edited by hand?)")
        })?;
        let kind: &'static str = if kind == "workbook" { "workbook" } else { "datasource" };
        out.push(InFlight {
            run_id,
            seq,
            decided_at,
            event: Event {
                integration,
                exposure,
                workbook_luid,
                target: Some(Target { kind, luid, name }),
                ..Event::default()
            },
        });
    }
    Ok(out)
}

/// Settles the requests a killed run left in flight, before anything new is decided, from
/// Tableau's jobs list (`Client::check_torn`): an unfinished refresh of the target there is
/// that run's trigger (its row becomes `triggered` with the job's id, and refresh_state takes
/// it at that run's time, so the cadence holds and nothing is sent twice); otherwise the row
/// becomes `failed` / `interrupted` and the target is decided afresh in this run. Rows stay
/// with the run that sent them; they count in this run's summary not at all.
fn settle_in_flight(
    conn: &mut Connection,
    config: &Config,
    mode: &HttpMode,
    clients: &mut BTreeMap<String, Result<Client, String>>,
    in_flight: &[InFlight],
    state: &mut BTreeMap<(String, &'static str, String), Instant>,
    t: &str,
) -> Result<()> {
    for f in in_flight {
        let Some(target) = f.event.target.clone() else { continue };
        let client = clients.entry(f.event.integration.clone()).or_insert_with(|| open_client(config, mode, &f.event.integration));
        let torn = match client {
            Ok(c) => c.check_torn(&target),
            Err(msg) => Torn::Unknown { why: format!("could not read Tableau's jobs list to check: {msg}") },
        };
        let label = format!("{} ({} {})", f.event.exposure, target.kind, printable(&target.name));
        let mut ev = Event { reason: Some("interrupted"), ..f.event.clone() };
        match torn {
            Torn::Found { job_id, why } => {
                crate::outln!(
                    "{t}  Refresh for exposure {label} left in flight by run {} ... [TRIGGERED job {} (found in Tableau's jobs)]",
                    f.run_id,
                    short(&job_id)
                );
                ev.decision = "triggered";
                ev.detail = Some(format!("the run was killed while this request was in flight; {why}"));
                ev.job_id = Some(job_id);
            }
            Torn::NotQueued { why } | Torn::Unknown { why } => {
                log::warn(&format!("refresh of {label} left in flight by run {}: {why}; deciding it again", f.run_id));
                ev.decision = "failed";
                ev.detail = Some(format!("the run was killed while this request was in flight; {why}"));
            }
        }
        let tx = conn.transaction()?;
        update_decision(&tx, f.run_id, f.seq, &ev)?;
        upsert_state(&tx, &ev, f.decided_at, f.run_id)?;
        tx.commit()?;
        if ev.decision == "triggered" {
            state.insert((ev.integration.clone(), target.kind, target.luid.clone()), f.decided_at);
        }
        crate::fault::point("refresh.settle");
    }
    Ok(())
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Names from Tableau can hold anything; keep log lines on one line.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn load_exposures(conn: &Connection) -> Result<Vec<Exposure>> {
    let mut st = conn.prepare(
        "SELECT integration, name, workbook_luid, depends_on FROM exposures WHERE status = 'written' ORDER BY integration, name",
    )?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (integration, name, workbook_luid, deps) = row?;
        let depends_on = serde_json::from_str(&deps).with_context(|| format!("exposures.depends_on of {name}"))?;
        out.push(Exposure { integration, name, workbook_luid, depends_on });
    }
    if out.is_empty() {
        log::warn("no exposures in the database: run `autoexpose run` (or emit) first");
    }
    Ok(out)
}

fn load_state(conn: &Connection) -> Result<BTreeMap<(String, &'static str, String), Instant>> {
    let mut st = conn.prepare("SELECT integration, target_kind, target_luid, last_triggered_at FROM refresh_state")?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (i, kind, luid, at) = row?;
        let kind: &'static str = if kind == "workbook" { "workbook" } else { "datasource" };
        let at = Instant::parse(&at).with_context(|| {
            format!("table refresh_state, column last_triggered_at of {kind} {luid}: {at:?} is not an RFC 3339 time (a database edited by hand?)")
        })?;
        out.insert((i, kind, luid), at);
    }
    Ok(out)
}

fn write_run_results(tx: &rusqlite::Transaction, rr: &RunResults) -> Result<()> {
    tx.execute("DELETE FROM dbt_run_results", [])?;
    let mut ins = tx.prepare_cached(
        "INSERT OR REPLACE INTO dbt_run_results (invocation_id, generated_at, command, unique_id, resource_type, status, started_at,
            completed_at, execution_time, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for r in &rr.results {
        let exec = r.timing.iter().find(|t| t.name == "execute");
        ins.execute(params![
            rr.metadata.invocation_id,
            rr.metadata.generated_at,
            rr.command(),
            r.unique_id,
            r.resource_type(),
            r.status,
            exec.and_then(|t| t.started_at.clone()),
            exec.and_then(|t| t.completed_at.clone()),
            r.execution_time,
            r.message
        ])?;
    }
    Ok(())
}
