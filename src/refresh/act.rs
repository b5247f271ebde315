//! The half of stage `refresh` that talks to the integration: carries out `decide`'s plan in
//! order (one line of output and one journal row per step), sends the refreshes that are due,
//! turns the service's answers into decisions, follows the jobs with `--wait`, and settles the
//! requests a killed run left in flight. Every fault point (`refresh.send`, `.answered`,
//! `.trigger`, `.job`, `.settle`) sits where the journal's commits make a kill there
//! recoverable (see the module doc of `refresh`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use rusqlite::Connection;

use crate::clock::{ago, Instant};
use crate::log;
use crate::refresh::decide::{Plan, Step, TargetKey};
use crate::refresh::journal::{update_decision, upsert_state, Event, Journal};
use crate::refresh::seam::{Answer, RefreshTexts, Refresher, Refreshers, Target, Torn};
use crate::refresh::tags::{Decision, JobStatus, Reason};

/// One refresher per integration, opened on first use; the error (as text) when it cannot be.
pub(crate) type Clients = BTreeMap<String, Result<Box<dyn Refresher>, String>>;

/// What came of a refresh request: the service's answer, or the error and, when the answer
/// may have been lost after the service acted, what its jobs list shows.
type Sent = Result<Answer, (String, Option<Torn>)>;

pub(crate) struct Actor<'c, 'x> {
    pub(crate) journal: Journal<'c>,
    pub(crate) clients: Clients,
    pub(crate) refreshers: &'x dyn Refreshers,
    /// The time of day that starts every line of output.
    pub(crate) t: String,
}

impl Actor<'_, '_> {
    /// Carries out one step of the plan.
    pub(crate) fn act(&mut self, step: &Step) -> Result<()> {
        let e = step.exposure;
        let t = &self.t;
        let words = self.refreshers.texts(&e.integration);
        let what = words.target;
        let label = match step.target {
            Some(target) => format!("{} ({} {})", e.name, target.kind, printable(&target.name)),
            None => e.name.clone(),
        };
        let skipped = Event::of(e, step.target, Decision::Skipped);
        let ev = match &step.plan {
            Plan::Skipped { reason, detail } => {
                crate::outln!(
                    "{t}  Refreshing {what} for exposure {label} ... [SKIPPED: {}]",
                    reason.as_str().replace('_', " ")
                );
                Event {
                    reason: Some(*reason),
                    detail: Some(detail.clone()),
                    ..skipped
                }
            }
            Plan::NoExtracts => {
                crate::outln!(
                    "{t}  Refreshing {what} for exposure {label} ... [NOT_APPLICABLE: {}]",
                    words.not_applicable
                );
                Event {
                    decision: Decision::NotApplicable,
                    reason: Some(Reason::NoExtracts),
                    detail: Some(words.no_targets.into()),
                    ..skipped
                }
            }
            Plan::RefreshedInThisRun { first } => {
                crate::outln!("{t}  Refreshing {what} for exposure {label} ... [SKIPPED: already refreshed in this run for {first}]");
                Event {
                    reason: Some(Reason::RefreshedInThisRun),
                    detail: Some(format!("with exposure {first}")),
                    ..skipped
                }
            }
            Plan::TooSoon { last, eligible_at } => {
                let now = self.journal.now;
                crate::outln!(
                    "{t}  Refreshing {what} for exposure {label} ... [SKIPPED: refreshed {}, eligible after {}]",
                    ago(now.0 - last.0),
                    eligible_at.rfc3339()
                );
                Event {
                    reason: Some(Reason::TooSoon),
                    detail: Some(format!("last triggered {}", last.rfc3339())),
                    eligible_at: Some(eligible_at.rfc3339()),
                    ..skipped
                }
            }
            Plan::Due if self.journal.dry_run => {
                crate::outln!(
                    "{t}  Refreshing {what} for exposure {label} ... [DRY RUN: would trigger]"
                );
                Event {
                    decision: Decision::Triggered,
                    detail: Some("dry run: nothing sent".into()),
                    ..skipped
                }
            }
            Plan::Due => match step.target {
                Some(target) => {
                    return self.send(
                        Event::of(e, Some(target), Decision::Triggered),
                        target,
                        &label,
                    )
                }
                None => return Ok(()),
            },
        };
        self.journal.note(ev);
        Ok(())
    }

    /// Sends the refresh of `target`, journaled: `sending` committed before the request leaves
    /// (a kill while it is in flight leaves that row, which the next run settles from the
    /// service's jobs list instead of sending the refresh again), the answer committed before
    /// the next target is sent.
    fn send(&mut self, mut ev: Event, target: &Target, label: &str) -> Result<()> {
        let refreshers = self.refreshers;
        let words = refreshers.texts(&ev.integration);
        let client = self
            .clients
            .entry(ev.integration.clone())
            .or_insert_with(|| refreshers.open(&ev.integration));
        let slot = if client.is_ok() {
            Some(self.journal.sending(ev.clone())?)
        } else {
            None
        };
        crate::fault::point("refresh.send");
        let sent: Sent = match client {
            Ok(c) => c.refresh(target).map_err(|err| {
                let torn = err.answer_lost.then(|| c.check_torn(target));
                (err.message, torn)
            }),
            Err(msg) => Err((msg.clone(), None)),
        };
        let shown = record(&mut ev, sent, words);
        crate::outln!(
            "{}  Refreshing {} for exposure {label} ... [{shown}]",
            self.t,
            words.target
        );
        crate::fault::point("refresh.answered");
        match slot {
            Some(i) => self.journal.settle(i, ev)?,
            None => {
                self.journal.note(ev);
                self.journal.flush()?;
            }
        }
        crate::fault::point("refresh.trigger");
        Ok(())
    }

    /// Polls every triggered job by its id until it finishes or `timeout` passes: 0.5 s, then
    /// ×1.4 per round, at most 30 s between rounds. Each outcome is committed as it arrives
    /// (`Journal::job_outcome`).
    pub(crate) fn wait_for_jobs(&mut self, timeout: Duration) -> Result<()> {
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(500);
        let events = &self.journal.events;
        let mut pending: Vec<usize> = (0..events.len())
            .filter(|&i| events[i].job_id.is_some())
            .collect();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for i in pending {
                if !self.poll(i)? {
                    still.push(i);
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if started.elapsed() + delay > timeout {
                for i in pending {
                    self.time_out(i, timeout)?;
                }
                break;
            }
            std::thread::sleep(delay);
            delay = Duration::from_secs_f64((delay.as_secs_f64() * 1.4).min(30.0));
        }
        Ok(())
    }

    /// Asks once after the job of decision `i`; true when it needs no more asking.
    fn poll(&mut self, i: usize) -> Result<bool> {
        let t = &self.t;
        let ev = &mut self.journal.events[i];
        let label = self.refreshers.texts(&ev.integration).job_label;
        let Some(Ok(client)) = self.clients.get_mut(&ev.integration) else {
            return Ok(true);
        };
        let id = ev.job_id.clone().unwrap_or_default();
        match client.job(&id) {
            Ok(job) => {
                let Some(status) = job.status else {
                    return Ok(false);
                };
                let tg = ev
                    .target
                    .as_ref()
                    .map(|t| format!(" ({} {})", t.kind, printable(&t.name)))
                    .unwrap_or_default();
                let notes = job
                    .notes
                    .as_deref()
                    .map(|n| format!(": {}", printable(n)))
                    .unwrap_or_default();
                let shown = status.as_str().to_uppercase();
                crate::outln!(
                    "{t}  Job {} for exposure {}{tg} ... [{shown}{notes}]",
                    label(&id),
                    ev.exposure
                );
                ev.job_status = Some(status);
                ev.job_finish_code = job.finish_code;
                ev.job_notes = job.notes;
                ev.job_completed_at = job.completed_at;
                ev.matched_by = job.matched_by;
            }
            Err(e) => {
                // `job` already retried per the site's retry policy (5xx, 429, network): what
                // is left is persistent, so stop polling this job rather than asking until
                // --wait-timeout.
                log::warn(&format!("job {id}: {e}; no longer polled"));
                crate::outln!(
                    "{t}  Job {} for exposure {} ... [POLL_FAILED]",
                    label(&id),
                    ev.exposure
                );
                ev.job_status = Some(JobStatus::PollFailed);
            }
        }
        self.journal.job_outcome(i)?;
        crate::fault::point("refresh.job");
        Ok(true)
    }

    fn time_out(&mut self, i: usize, timeout: Duration) -> Result<()> {
        let ev = &mut self.journal.events[i];
        let label = self.refreshers.texts(&ev.integration).job_label;
        crate::outln!(
            "{}  Job {} for exposure {} ... [TIMEOUT after {}s]",
            self.t,
            label(ev.job_id.as_deref().unwrap_or("")),
            ev.exposure,
            timeout.as_secs()
        );
        ev.job_status = Some(JobStatus::Timeout);
        self.journal.job_outcome(i)
    }

    pub(crate) fn sign_out(&mut self) {
        for c in self.clients.values().flatten() {
            c.sign_out();
        }
    }
}

/// Writes what came of a request into `ev`; returns what the output line shows of it.
fn record(ev: &mut Event, sent: Sent, words: &RefreshTexts) -> String {
    match sent {
        Ok(Answer::Job(id)) => {
            let shown = format!("TRIGGERED job {}", (words.job_label)(&id));
            ev.decision = Decision::Triggered;
            ev.http_status = Some(202);
            ev.job_id = Some(id);
            shown
        }
        Ok(Answer::Refused {
            refusal,
            status,
            code,
            message: msg,
        }) => {
            let (decision, reason) = refusal.decision();
            let shown = match decision {
                Decision::AlreadyQueued => "ALREADY_QUEUED".to_string(),
                Decision::NotApplicable => "NOT_APPLICABLE: no extract to refresh".to_string(),
                _ => format!(
                    "FAILED: HTTP {status} {} {}",
                    code.as_deref().unwrap_or(""),
                    printable(&msg)
                ),
            };
            ev.decision = decision;
            ev.reason = reason;
            ev.http_status = Some(status);
            ev.service_code = code;
            ev.service_message = Some(msg).filter(|m| !m.is_empty());
            shown
        }
        Err((msg, Some(torn))) => record_torn(ev, msg, torn, words),
        Err((msg, None)) => {
            let shown = format!("FAILED: {}", printable(&msg));
            ev.decision = Decision::Failed;
            ev.reason = Some(Reason::HttpError);
            ev.service_message = Some(msg);
            shown
        }
    }
}

/// An answer lost after the service may have acted, settled from its jobs list (`check_torn`).
fn record_torn(ev: &mut Event, msg: String, torn: Torn, words: &RefreshTexts) -> String {
    ev.reason = Some(Reason::AnswerUnreadable);
    ev.service_message = Some(msg);
    match torn {
        Torn::Found { job_id, why } => {
            let shown = format!(
                "TRIGGERED job {} (answer lost; found in {})",
                (words.job_label)(&job_id),
                words.jobs
            );
            ev.decision = Decision::Triggered;
            ev.detail = Some(format!("the answer was lost; {why}"));
            ev.job_id = Some(job_id);
            shown
        }
        Torn::NotQueued { why } | Torn::Unknown { why } => {
            let shown = format!("FAILED: answer lost, not sent again: {}", printable(&why));
            ev.decision = Decision::Failed;
            ev.detail = Some(format!("the answer was lost; {why}"));
            shown
        }
    }
}

/// A request a killed run left in flight: its `sending` row.
pub(crate) struct InFlight {
    pub(crate) run_id: i64,
    pub(crate) seq: i64,
    pub(crate) decided_at: Instant,
    pub(crate) event: Event,
}

/// Settles the requests a killed run left in flight, before anything new is decided, from
/// the service's jobs list (`Refresher::check_torn`): an unfinished refresh of the target there is
/// that run's trigger (its row becomes `triggered` with the job's id, and refresh_state takes
/// it at that run's time, so the cadence holds and nothing is sent twice); otherwise the row
/// becomes `failed` / `interrupted` and the target is decided afresh in this run. Rows stay
/// with the run that sent them; they count in this run's summary not at all.
pub(crate) fn settle_in_flight(
    conn: &mut Connection,
    refreshers: &dyn Refreshers,
    clients: &mut Clients,
    in_flight: &[InFlight],
    state: &mut BTreeMap<TargetKey, Instant>,
    t: &str,
) -> Result<()> {
    for f in in_flight {
        let Some(target) = f.event.target.clone() else {
            continue;
        };
        let words = refreshers.texts(&f.event.integration);
        let client = clients
            .entry(f.event.integration.clone())
            .or_insert_with(|| refreshers.open(&f.event.integration));
        let torn = match client {
            Ok(c) => c.check_torn(&target),
            Err(msg) => Torn::Unknown {
                why: format!("could not read {} list to check: {msg}", words.jobs),
            },
        };
        let label = format!(
            "{} ({} {})",
            f.event.exposure,
            target.kind,
            printable(&target.name)
        );
        let ev = settled(f, torn, &label, t, words);
        let tx = conn.transaction()?;
        update_decision(&tx, f.run_id, f.seq, &ev)?;
        upsert_state(&tx, &ev, f.decided_at, f.run_id)?;
        tx.commit()?;
        if ev.decision == Decision::Triggered {
            state.insert(
                (ev.integration.clone(), target.kind, target.id.clone()),
                f.decided_at,
            );
        }
        crate::fault::point("refresh.settle");
    }
    Ok(())
}

/// The row of request `f` once the service's jobs list has been read.
fn settled(f: &InFlight, torn: Torn, label: &str, t: &str, words: &RefreshTexts) -> Event {
    let mut ev = Event {
        reason: Some(Reason::Interrupted),
        ..f.event.clone()
    };
    match torn {
        Torn::Found { job_id, why } => {
            crate::outln!(
                "{t}  Refresh for exposure {label} left in flight by run {} ... [TRIGGERED job {} (found in {})]",
                f.run_id,
                (words.job_label)(&job_id),
                words.jobs
            );
            ev.decision = Decision::Triggered;
            ev.detail = Some(format!(
                "the run was killed while this request was in flight; {why}"
            ));
            ev.job_id = Some(job_id);
        }
        Torn::NotQueued { why } | Torn::Unknown { why } => {
            log::warn(&format!(
                "refresh of {label} left in flight by run {}: {why}; deciding it again",
                f.run_id
            ));
            ev.decision = Decision::Failed;
            ev.detail = Some(format!(
                "the run was killed while this request was in flight; {why}"
            ));
        }
    }
    ev
}

/// Names from the service can hold anything; keep log lines on one line.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::seam::Refusal;
    use crate::refresh::tags::Kind;

    const WORDS: RefreshTexts = RefreshTexts {
        target: "Demo extract",
        jobs: "Demo's jobs",
        no_targets: "none",
        not_applicable: "live connections only",
        job_label: crate::refresh::seam::first_8,
    };

    fn event() -> Event {
        let target = Target {
            kind: Kind::Datasource,
            id: "d1".into(),
            name: "Sales\nDS".into(),
        };
        Event::new("site", "e", "w1", Some(target), Decision::Triggered)
    }

    fn refused(refusal: Refusal, status: u16, code: Option<&str>) -> Sent {
        Ok(Answer::Refused {
            refusal,
            status,
            code: code.map(str::to_string),
            message: "Summary: detail\tx".into(),
        })
    }

    /// A case: name, what came of the request, then the decision, reason, job id and line.
    type Case<'a> = (
        &'a str,
        Sent,
        &'a str,
        Option<Reason>,
        Option<&'a str>,
        &'a str,
    );

    /// Every answer a refresh request can get, as the row and the line it becomes.
    #[test]
    fn every_answer_becomes_a_decision() {
        let why = || "the jobs list shows ...".to_string();
        let cases: Vec<Case> = vec![
            (
                "202",
                Ok(Answer::Job("0123456789ab".into())),
                "triggered",
                None,
                Some("0123456789ab"),
                "TRIGGERED job 01234567",
            ),
            (
                "queued",
                refused(Refusal::AlreadyQueued, 409, Some("1")),
                "already_queued",
                None,
                None,
                "ALREADY_QUEUED",
            ),
            (
                "not refreshable",
                refused(Refusal::NotRefreshable, 409, Some("2")),
                "not_applicable",
                Some(Reason::NotRefreshable),
                None,
                "NOT_APPLICABLE: no extract to refresh",
            ),
            (
                "404",
                refused(Refusal::NotFound, 404, Some("404031")),
                "failed",
                Some(Reason::NotFound),
                None,
                "FAILED: HTTP 404 404031 Summary: detail x",
            ),
            (
                "403",
                refused(Refusal::Forbidden, 403, None),
                "failed",
                Some(Reason::Forbidden),
                None,
                "FAILED: HTTP 403  Summary: detail x",
            ),
            (
                "500",
                refused(Refusal::Other, 500, Some("500000")),
                "failed",
                Some(Reason::HttpError),
                None,
                "FAILED: HTTP 500 500000 Summary: detail x",
            ),
            (
                "no client",
                Err(("sign-in failed".into(), None)),
                "failed",
                Some(Reason::HttpError),
                None,
                "FAILED: sign-in failed",
            ),
            (
                "torn, found",
                Err((
                    "cut short".into(),
                    Some(Torn::Found {
                        job_id: "job-4567890".into(),
                        why: why(),
                    }),
                )),
                "triggered",
                Some(Reason::AnswerUnreadable),
                Some("job-4567890"),
                "TRIGGERED job job-4567 (answer lost; found in Demo's jobs)",
            ),
            (
                "torn, not queued",
                Err((
                    "cut short".into(),
                    Some(Torn::NotQueued {
                        why: "none\nlisted".into(),
                    }),
                )),
                "failed",
                Some(Reason::AnswerUnreadable),
                None,
                "FAILED: answer lost, not sent again: none listed",
            ),
            (
                "torn, list unreadable",
                Err((
                    "cut short".into(),
                    Some(Torn::Unknown { why: "403".into() }),
                )),
                "failed",
                Some(Reason::AnswerUnreadable),
                None,
                "FAILED: answer lost, not sent again: 403",
            ),
        ];
        for (name, sent, decision, reason, job_id, shown) in cases {
            let mut ev = event();
            assert_eq!(record(&mut ev, sent, &WORDS), shown, "{name}");
            assert_eq!(
                (ev.decision.as_str(), ev.reason, ev.job_id.as_deref()),
                (decision, reason, job_id),
                "{name}"
            );
        }
    }

    #[test]
    fn a_refusal_keeps_the_services_code_and_message() {
        let mut ev = event();
        record(
            &mut ev,
            refused(Refusal::NotFound, 404, Some("404031")),
            &WORDS,
        );
        assert_eq!(ev.http_status, Some(404));
        assert_eq!(ev.service_code.as_deref(), Some("404031"));
        assert_eq!(ev.service_message.as_deref(), Some("Summary: detail\tx"));
        let mut ev = event();
        record(
            &mut ev,
            Ok(Answer::Refused {
                refusal: Refusal::Other,
                status: 500,
                code: None,
                message: String::new(),
            }),
            &WORDS,
        );
        assert_eq!(ev.service_message, None);
        let mut ev = event();
        record(
            &mut ev,
            Err((
                "cut short".into(),
                Some(Torn::NotQueued { why: "none".into() }),
            )),
            &WORDS,
        );
        assert_eq!(ev.detail.as_deref(), Some("the answer was lost; none"));
        assert_eq!(ev.service_message.as_deref(), Some("cut short"));
    }

    #[test]
    fn a_request_left_in_flight_is_settled_from_the_jobs_list() {
        let f = InFlight {
            run_id: 3,
            seq: 2,
            decided_at: Instant(0),
            event: Event {
                decision: Decision::Sending,
                ..event()
            },
        };
        let ev = settled(
            &f,
            Torn::Found {
                job_id: "j1".into(),
                why: "listed".into(),
            },
            "e",
            "00:00:00",
            &WORDS,
        );
        assert_eq!(
            (ev.decision, ev.reason, ev.job_id.as_deref()),
            (Decision::Triggered, Some(Reason::Interrupted), Some("j1"))
        );
        assert_eq!(
            ev.detail.as_deref(),
            Some("the run was killed while this request was in flight; listed")
        );
        for torn in [
            Torn::NotQueued { why: "none".into() },
            Torn::Unknown { why: "403".into() },
        ] {
            let ev = settled(&f, torn, "e", "00:00:00", &WORDS);
            assert_eq!(
                (ev.decision, ev.reason, ev.job_id),
                (Decision::Failed, Some(Reason::Interrupted), None)
            );
        }
    }
}
