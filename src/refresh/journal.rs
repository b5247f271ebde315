//! The refresh journal: refresh_events (every decision) and refresh_state (the last trigger
//! per target), written in short transactions so that a kill loses nothing already answered.

use anyhow::Result;
use rusqlite::{params, Connection};

use crate::clock::Instant;
use crate::refresh::decide::Exposure;
use crate::refresh::seam::Target;
use crate::refresh::tags::{Decision, JobStatus, MatchedBy, Reason};

/// One decision, as it goes into `refresh_events`.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) integration: String,
    pub(crate) exposure: String,
    pub(crate) asset_ref: String,
    pub(crate) target: Option<Target>,
    pub(crate) decision: Decision,
    pub(crate) reason: Option<Reason>,
    pub(crate) detail: Option<String>,
    pub(crate) eligible_at: Option<String>,
    pub(crate) job_id: Option<String>,
    pub(crate) http_status: Option<u16>,
    pub(crate) service_code: Option<String>,
    pub(crate) service_message: Option<String>,
    pub(crate) job_status: Option<JobStatus>,
    pub(crate) job_finish_code: Option<i32>,
    pub(crate) job_notes: Option<String>,
    pub(crate) job_completed_at: Option<String>,
    /// How the polled job was known to be ours (`--wait`).
    pub(crate) matched_by: Option<MatchedBy>,
}

impl Event {
    pub(crate) fn new(
        integration: &str,
        exposure: &str,
        asset_ref: &str,
        target: Option<Target>,
        decision: Decision,
    ) -> Event {
        Event {
            integration: integration.to_string(),
            exposure: exposure.to_string(),
            asset_ref: asset_ref.to_string(),
            target,
            decision,
            reason: None,
            detail: None,
            eligible_at: None,
            job_id: None,
            http_status: None,
            service_code: None,
            service_message: None,
            job_status: None,
            job_finish_code: None,
            job_notes: None,
            job_completed_at: None,
            matched_by: None,
        }
    }

    pub(crate) fn of(e: &Exposure, target: Option<&Target>, decision: Decision) -> Event {
        Event::new(
            &e.integration,
            &e.name,
            &e.asset_ref,
            target.cloned(),
            decision,
        )
    }
}

/// Decisions in the order they are made. A request to the service is written as `sending` before
/// it leaves and settled by its answer, each in a short transaction of its own (carrying the
/// decisions made since the last one); each job outcome is written as it arrives.
pub(crate) struct Journal<'c> {
    pub(crate) conn: &'c mut Connection,
    pub(crate) run_id: i64,
    pub(crate) dry_run: bool,
    pub(crate) now: Instant,
    pub(crate) events: Vec<Event>,
    /// How many of `events` are in refresh_events.
    written: usize,
}

impl<'c> Journal<'c> {
    pub(crate) fn new(conn: &'c mut Connection, run_id: i64, dry_run: bool, now: Instant) -> Self {
        Journal {
            conn,
            run_id,
            dry_run,
            now,
            events: Vec::new(),
            written: 0,
        }
    }

    /// Adds a decision; it is written by the next `flush`.
    pub(crate) fn note(&mut self, ev: Event) {
        self.events.push(ev);
    }

    /// Writes the decisions not yet written, and refresh_state for their triggers (never in a
    /// dry run), in one transaction.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.written == self.events.len() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for (i, ev) in self.events.iter().enumerate().skip(self.written) {
            insert_event(&tx, self.run_id, seq(i), self.dry_run, self.now, ev)?;
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
    pub(crate) fn sending(&mut self, ev: Event) -> Result<usize> {
        self.events.push(Event {
            decision: Decision::Sending,
            ..ev
        });
        self.flush()?;
        Ok(self.events.len() - 1)
    }

    /// Replaces the `sending` row `i` with what came of the request, and its refresh_state
    /// row, in one transaction.
    pub(crate) fn settle(&mut self, i: usize, ev: Event) -> Result<()> {
        let tx = self.conn.transaction()?;
        update_decision(&tx, self.run_id, seq(i), &ev)?;
        upsert_state(&tx, &ev, self.now, self.run_id)?;
        tx.commit()?;
        self.events[i] = ev;
        Ok(())
    }

    /// Writes the job outcome of decision `i` (already written by `flush`).
    pub(crate) fn job_outcome(&mut self, i: usize) -> Result<()> {
        let ev = &self.events[i];
        self.conn.execute(
            "UPDATE refresh_events SET job_status = ?1, job_finish_code = ?2, job_notes = ?3, job_completed_at = ?4, matched_by = ?5
             WHERE run_id = ?6 AND seq = ?7",
            params![ev.job_status, ev.job_finish_code, ev.job_notes, ev.job_completed_at, ev.matched_by, self.run_id, seq(i)],
        )?;
        Ok(())
    }
}

/// refresh_events.seq of `events[i]`.
fn seq(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX - 1) + 1
}

fn insert_event(
    tx: &rusqlite::Transaction,
    run_id: i64,
    seq: i64,
    dry_run: bool,
    now: Instant,
    ev: &Event,
) -> Result<()> {
    let tg = ev.target.as_ref();
    tx.prepare_cached(
        "INSERT INTO refresh_events (run_id, seq, dry_run, decided_at, integration, exposure, asset_ref, target_kind, target_ref,
            target_name, decision, reason, detail, eligible_at, job_id, http_status, service_code, service_message, job_status,
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
        ev.asset_ref,
        tg.map(|t| t.kind),
        tg.map(|t| t.id.clone()),
        tg.map(|t| t.name.clone()),
        ev.decision,
        ev.reason,
        ev.detail,
        ev.eligible_at,
        ev.job_id,
        ev.http_status,
        ev.service_code,
        ev.service_message,
        ev.job_status,
        ev.job_finish_code,
        ev.job_notes,
        ev.job_completed_at
    ])?;
    Ok(())
}

/// What came of a request, over its `sending` row.
pub(crate) fn update_decision(
    tx: &rusqlite::Transaction,
    run_id: i64,
    seq: i64,
    ev: &Event,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE refresh_events SET decision = ?1, reason = ?2, detail = ?3, job_id = ?4, http_status = ?5, service_code = ?6,
            service_message = ?7
         WHERE run_id = ?8 AND seq = ?9",
    )?
    .execute(params![ev.decision, ev.reason, ev.detail, ev.job_id, ev.http_status, ev.service_code, ev.service_message, run_id, seq])?;
    Ok(())
}

/// refresh_state for a trigger (or a refresh found already queued): the cadence's memory.
pub(crate) fn upsert_state(
    tx: &rusqlite::Transaction,
    ev: &Event,
    at: Instant,
    run_id: i64,
) -> Result<()> {
    let Some(tg) = ev.target.as_ref().filter(|_| ev.decision.is_trigger()) else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO refresh_state (integration, target_kind, target_ref, target_name, last_triggered_at, last_decision, last_job_id, last_run_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (integration, target_kind, target_ref) DO UPDATE SET target_name = excluded.target_name,
           last_triggered_at = excluded.last_triggered_at, last_decision = excluded.last_decision,
           last_job_id = excluded.last_job_id, last_run_id = excluded.last_run_id",
    )?
    .execute(params![ev.integration, tg.kind, tg.id, tg.name, at.rfc3339(), ev.decision, ev.job_id, run_id])?;
    Ok(())
}
