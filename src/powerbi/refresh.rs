//! Power BI's side of active exposures (issue #15): the REST calls that refresh a dataset and
//! follow that very refresh, as the refresh stage's `Refresher` (`crate::refresh::seam`), and
//! Power BI's answers told in the seam's terms. Protocol: shared/reference/powerbi.md section 8
//! (refresh and polling) and section 9 (429, token expiry).
//!
//! Targets (written by extract into `bi_refresh_targets`, `store::write_refresh_targets`): the
//! dataset behind each report, `target_ref` = `{workspace id}/{dataset id}`.
//!
//! Which refresh is ours. A plain refresh (`notifyOption` only) gets no refresh id back:
//! `x-ms-request-id` and `Location` are documented for enhanced refreshes only. When one comes
//! all the same, the history entry whose `requestId` is that id is ours (`matched_by` exact).
//! Otherwise ours is the newest `refreshType: ViaApi` entry whose `startTime` is at or after our
//! POST less `SKEW` (`matched_by` heuristic): a scheduled refresh landing in between is never
//! taken for ours (dagster #34218 polls "the latest refresh"), nor an older API refresh. Once an
//! entry is matched it is followed by its `requestId`, so a later refresh cannot take its place.
//! The job id the stage keeps says which: `{refresh id}@{workspace}/{dataset}`, or
//! `viaapi-after-{POST time}@{workspace}/{dataset}`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::client::{Client, PowerBiError};
use super::model::Refresh;
use crate::clock::Instant;
use crate::config::PowerBiTenant;
use crate::http::HttpMode;
use crate::refresh::seam::{
    Answer, JobState, RefreshTexts, Refresher, Refusal, SendError, Target, Torn,
};
use crate::refresh::tags::{JobStatus, MatchedBy};

/// Power BI's words in the refresh stage's output lines.
pub(crate) const TEXTS: RefreshTexts = RefreshTexts {
    target: "Power BI dataset",
    jobs: "the dataset's refresh history",
    no_targets:
        "the report's dataset is DirectQuery (nothing imported to refresh), or not in the scan",
    not_applicable: "DirectQuery only",
    job_label,
};

/// A refresh as the output lines show it: the first 8 characters of Power BI's request id,
/// or, before one is known, that it is ours found by its time in the history.
fn job_label(id: &str) -> String {
    let what = id.split('@').next().unwrap_or(id);
    if what.starts_with(AFTER) {
        "(ours, matched in the history)".into()
    } else {
        crate::refresh::seam::first_8(what)
    }
}

/// How far Power BI's clock may be behind ours when a history entry is matched to our POST
/// (reference section 8: "clock-skew tolerant"; the amount is ours).
const SKEW_SECS: i64 = 300;

/// History entries asked for per poll: enough to see past a few scheduled or other refreshes
/// landing after ours (the history keeps 20–60, reference section 8).
const HISTORY_TOP: u32 = 20;

/// A client for `tenant`, as the refresh stage's `Refresher`. `now` is the run's clock: our POST
/// time is `now` plus the time since this was opened.
pub(crate) fn open(
    tenant: &PowerBiTenant,
    mode: &HttpMode,
    now: Instant,
) -> Result<Box<dyn Refresher>, String> {
    let client = super::connect(tenant, mode).map_err(|e| format!("{e:#}"))?;
    Ok(Box::new(PowerBiRefresher {
        client,
        now,
        opened: std::time::Instant::now(),
        matched: Mutex::new(BTreeMap::new()),
    }))
}

struct PowerBiRefresher {
    client: Client,
    now: Instant,
    opened: std::time::Instant,
    /// Job id → the `requestId` of the history entry matched to it by the heuristic.
    matched: Mutex<BTreeMap<String, String>>,
}

/// What a job id names: the dataset, and either our refresh id or the time of our POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobRef {
    pub(crate) workspace: String,
    pub(crate) dataset: String,
    pub(crate) request_id: Option<String>,
    pub(crate) posted_at: Option<Instant>,
}

const AFTER: &str = "viaapi-after-";

impl JobRef {
    pub(crate) fn id(&self) -> String {
        let head = match (&self.request_id, self.posted_at) {
            (Some(r), _) => r.clone(),
            (None, Some(t)) => format!("{AFTER}{}", t.rfc3339()),
            (None, None) => String::new(),
        };
        format!("{head}@{}/{}", self.workspace, self.dataset)
    }

    pub(crate) fn parse(id: &str) -> Option<JobRef> {
        let (head, target) = id.rsplit_once('@')?;
        let (workspace, dataset) = split_target(target)?;
        let (request_id, posted_at) = match head.strip_prefix(AFTER) {
            Some(t) => (None, Some(Instant::parse(t)?)),
            None if !head.is_empty() => (Some(head.to_string()), None),
            None => return None,
        };
        Some(JobRef {
            workspace,
            dataset,
            request_id,
            posted_at,
        })
    }
}

/// `{workspace id}/{dataset id}`, as `bi_refresh_targets.target_ref` holds it.
fn split_target(target_ref: &str) -> Option<(String, String)> {
    let (w, d) = target_ref.split_once('/')?;
    (!w.is_empty() && !d.is_empty() && !d.contains('/')).then(|| (w.to_string(), d.to_string()))
}

/// Power BI's refusal of a refresh request (reference section 8). Over the daily limit is
/// recognised by the message people see ("Number of refresh requests in last 24 hours exceeded
/// limit", maikvandergaag/msft-extensions #89; its status is UNVERIFIED, so any status). A
/// refresh already running: 409 (Microsoft's "Asynchronous refresh" page), or a 400 with an "in
/// progress" message (other reports; accepted both). A 400 naming DirectQuery is a model with
/// nothing to refresh (a maintainer's suggestion in microsoft/PowerBI-CSharp #120; message
/// UNVERIFIED).
pub(crate) fn refusal(status: u16, code: Option<&str>, message: &str) -> Refusal {
    let text = format!("{} {message}", code.unwrap_or("")).to_ascii_lowercase();
    if text.contains("exceeded limit") && text.contains("refresh") {
        return Refusal::DailyLimit;
    }
    match status {
        409 => Refusal::AlreadyQueued,
        400 if text.contains("in progress") || text.contains("inprogress") => {
            Refusal::AlreadyQueued
        }
        400 if text.contains("directquery") => Refusal::NotRefreshable,
        403 => Refusal::Forbidden,
        404 => Refusal::NotFound,
        _ => Refusal::Other,
    }
}

/// A history entry's `status`, compared case-insensitively (reference section 8: `Unknown`
/// while it runs, `Completed`, `Failed`, `Disabled`; Microsoft's asynchronous-refresh page
/// spells `succeeded`, `inProgress`, `notStarted`, accepted too). `None` while it runs. A
/// status this list does not know ends the wait as failed, naming it, rather than polling it
/// until the timeout.
pub(crate) fn job_status(status: Option<&str>) -> (Option<JobStatus>, Option<String>) {
    let s = status.unwrap_or("").trim();
    match s.to_ascii_lowercase().as_str() {
        "unknown" | "inprogress" | "notstarted" | "" => (None, None),
        "completed" | "succeeded" => (Some(JobStatus::Success), None),
        "failed" => (Some(JobStatus::Failed), None),
        "disabled" => (
            Some(JobStatus::Failed),
            Some("Power BI: refresh Disabled".into()),
        ),
        "cancelled" | "canceled" => (Some(JobStatus::Cancelled), None),
        _ => (
            Some(JobStatus::Failed),
            Some(format!(
                "Power BI status {:?}, which autoexpose does not know",
                crate::refresh::act::printable(s)
            )),
        ),
    }
}

/// The refresh id of an accepted POST: `Location` (…`/refreshes/{id}`) or `x-ms-request-id`.
fn refresh_id(resp: &crate::http::Response) -> Option<String> {
    let from_location = resp.header("location").and_then(|l| {
        let tail = l
            .split('?')
            .next()?
            .trim_end_matches('/')
            .rsplit_once("/refreshes/")?
            .1;
        (!tail.is_empty() && !tail.contains('/')).then(|| tail.to_string())
    });
    from_location.or_else(|| {
        resp.header("x-ms-request-id")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    })
}

fn same_id(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.trim().eq_ignore_ascii_case(b.trim()))
}

fn via_api(r: &Refresh) -> bool {
    r.refresh_type
        .as_deref()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("ViaApi"))
}

/// The newest `ViaApi` entry started at or after `posted_at - SKEW_SECS` (the history is newest
/// first, but sorted here by `startTime` all the same).
fn newest_via_api_after(history: &[Refresh], posted_at: Instant) -> Option<&Refresh> {
    history
        .iter()
        .filter(|r| via_api(r))
        .filter_map(|r| Some((Instant::parse(r.start_time.as_deref()?)?, r)))
        .filter(|(t, _)| t.0 >= posted_at.0 - SKEW_SECS)
        .max_by_key(|(t, _)| *t)
        .map(|(_, r)| r)
}

/// A Power BI error as the seam's: after the request may have reached Power BI (a transport
/// failure once sent, an answer not readable) the answer is lost; a refusal before sending is not.
fn send_error(e: &PowerBiError) -> SendError {
    let answer_lost = matches!(
        e,
        PowerBiError::Transport(_) | PowerBiError::Protocol { .. } | PowerBiError::BadBody { .. }
    );
    SendError {
        message: e.to_string(),
        answer_lost,
    }
}

impl PowerBiRefresher {
    /// Our POST time on the run's clock.
    fn posted_now(&self) -> Instant {
        Instant(self.now.0 + i64::try_from(self.opened.elapsed().as_secs()).unwrap_or(0))
    }

    fn state_of(&self, entry: &Refresh, matched_by: MatchedBy) -> JobState {
        let (status, note) = job_status(entry.status.as_deref());
        let notes = match status {
            Some(JobStatus::Failed) => {
                let exc = entry
                    .service_exception_json
                    .as_deref()
                    .map(|j| self.client.scrub(j.trim()))
                    .filter(|j| !j.is_empty());
                note.into_iter()
                    .chain(exc)
                    .reduce(|a, b| format!("{a}: {b}"))
            }
            _ => note,
        };
        JobState {
            status,
            finish_code: None,
            completed_at: status
                .and(entry.end_time.clone())
                .filter(|t| !t.trim().is_empty()),
            notes,
            matched_by: Some(matched_by),
        }
    }
}

impl Refresher for PowerBiRefresher {
    fn refresh(&self, target: &Target) -> Result<Answer, SendError> {
        let Some((workspace, dataset)) = split_target(&target.id) else {
            let message = format!(
                "target {:?} is not `{{workspace id}}/{{dataset id}}` (not sent)",
                target.id
            );
            return Ok(Answer::Refused {
                refusal: Refusal::Other,
                status: 0,
                code: None,
                message,
            });
        };
        let posted_at = self.posted_now();
        let resp = self
            .client
            .refresh_dataset(&workspace, &dataset)
            .map_err(|e| send_error(&e))?;
        if resp.status == 202 || resp.status == 200 {
            let job = JobRef {
                workspace,
                dataset,
                request_id: refresh_id(&resp),
                posted_at: Some(posted_at),
            };
            return Ok(Answer::Job(job.id()));
        }
        let (code, message) = self.client.error_of(&resp);
        let message = message.unwrap_or_default();
        Ok(Answer::Refused {
            refusal: refusal(resp.status, code.as_deref(), &message),
            status: resp.status,
            code,
            message,
        })
    }

    /// An unfinished (`Unknown`) API refresh in the dataset's history is the request in flight
    /// (or one already running, which would have made ours `already_queued`): never sent again.
    fn check_torn(&self, target: &Target) -> Torn {
        let Some((workspace, dataset)) = split_target(&target.id) else {
            return Torn::Unknown {
                why: format!(
                    "target {:?} is not `{{workspace id}}/{{dataset id}}`",
                    target.id
                ),
            };
        };
        let history = match self
            .client
            .refresh_history(&workspace, &dataset, HISTORY_TOP)
        {
            Ok(h) => h.value,
            Err(e) => {
                return Torn::Unknown {
                    why: format!("could not read the dataset's refresh history to check: {e}"),
                }
            }
        };
        let running = history
            .iter()
            .filter(|r| via_api(r))
            .find(|r| job_status(r.status.as_deref()).0.is_none());
        match running {
            Some(r) => {
                let request_id = r.request_id.clone().filter(|v| !v.trim().is_empty());
                let posted_at = r.start_time.as_deref().and_then(Instant::parse);
                let job = JobRef {
                    workspace,
                    dataset,
                    request_id,
                    posted_at,
                };
                Torn::Found {
                    job_id: job.id(),
                    why: format!(
                        "the refresh history of {:?} shows an API refresh in progress (started {})",
                        target.name,
                        r.start_time.as_deref().unwrap_or("?")
                    ),
                }
            }
            None => Torn::NotQueued {
                why: format!(
                    "the refresh history of {:?} shows no API refresh in progress: not queued",
                    target.name
                ),
            },
        }
    }

    fn job(&self, id: &str) -> Result<JobState, SendError> {
        let Some(job) = JobRef::parse(id) else {
            return Err(SendError {
                message: format!("job id {id:?} is not one Power BI's refresher wrote"),
                answer_lost: false,
            });
        };
        // A 401 (the token expired while polling) renews the token and asks again (`fetch`).
        let history = self
            .client
            .refresh_history(&job.workspace, &job.dataset, HISTORY_TOP)
            .map_err(|e| send_error(&e))?
            .value;
        let running = JobState {
            status: None,
            finish_code: None,
            completed_at: None,
            notes: None,
            matched_by: None,
        };
        if let Some(rid) = &job.request_id {
            if let Some(entry) = history
                .iter()
                .find(|r| same_id(r.request_id.as_deref(), rid))
            {
                return Ok(self.state_of(entry, MatchedBy::Exact));
            }
            // An id Power BI gave that its history does not (yet) show: the id may not be the
            // refresh's (UNVERIFIED, section 8); the POST time decides below when it is known.
            if job.posted_at.is_none() {
                return Ok(running);
            }
        }
        let mut matched = self.matched.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rid) = matched.get(id) {
            if let Some(entry) = history
                .iter()
                .find(|r| same_id(r.request_id.as_deref(), rid))
            {
                return Ok(self.state_of(entry, MatchedBy::Heuristic));
            }
        }
        let Some(posted_at) = job.posted_at else {
            return Ok(running);
        };
        match newest_via_api_after(&history, posted_at) {
            Some(entry) => {
                if let Some(rid) = entry.request_id.as_deref().filter(|r| !r.trim().is_empty()) {
                    matched.insert(id.to_string(), rid.to_string());
                }
                Ok(self.state_of(entry, MatchedBy::Heuristic))
            }
            None => Ok(running),
        }
    }

    /// A token is not a session: nothing to end.
    fn sign_out(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, start: &str, status: &str, rid: &str) -> Refresh {
        Refresh {
            refresh_type: Some(kind.into()),
            start_time: Some(start.into()),
            end_time: None,
            status: Some(status.into()),
            request_id: Some(rid.into()),
            service_exception_json: None,
        }
    }

    #[test]
    fn job_ids_round_trip_and_hostile_ones_are_refused() {
        let t = Instant::parse("2026-11-25T02:00:00Z").unwrap();
        for j in [
            JobRef {
                workspace: "w1".into(),
                dataset: "d1".into(),
                request_id: Some("r-1".into()),
                posted_at: None,
            },
            JobRef {
                workspace: "w1".into(),
                dataset: "d1".into(),
                request_id: None,
                posted_at: Some(t),
            },
        ] {
            assert_eq!(JobRef::parse(&j.id()), Some(j));
        }
        assert_eq!(
            JobRef::parse("viaapi-after-2026-11-25T02:00:00Z@w1/d1")
                .unwrap()
                .posted_at,
            Some(t)
        );
        for bad in [
            "",
            "@w/d",
            "r@w",
            "r@/d",
            "r@w/d/x",
            "viaapi-after-nope@w/d",
            "r\u{e9}@",
        ] {
            assert_eq!(JobRef::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn refusals_are_read_from_status_and_message() {
        use Refusal::*;
        let limit = "Invalid dataset refresh request. Number of refresh requests in last 24 hours exceeded limit";
        for (status, code, msg, want) in [
            (400, None, limit, DailyLimit),
            (403, Some("x"), limit, DailyLimit),
            (409, None, "", AlreadyQueued),
            (
                400,
                None,
                "Another refresh request is already in progress (invented)",
                AlreadyQueued,
            ),
            (
                400,
                None,
                "The model is DirectQuery (invented)",
                NotRefreshable,
            ),
            (400, None, "bad body", Other),
            (403, None, "", Forbidden),
            (404, None, "", NotFound),
            (500, None, "", Other),
        ] {
            assert_eq!(refusal(status, code, msg), want, "{status} {msg}");
        }
    }

    #[test]
    fn statuses_are_compared_case_insensitively() {
        assert_eq!(job_status(Some("Unknown")), (None, None));
        assert_eq!(job_status(Some("inProgress")), (None, None));
        assert_eq!(job_status(Some("COMPLETED")).0, Some(JobStatus::Success));
        assert_eq!(job_status(Some("succeeded")).0, Some(JobStatus::Success));
        assert_eq!(job_status(Some("failed")).0, Some(JobStatus::Failed));
        assert_eq!(job_status(Some("Disabled")).0, Some(JobStatus::Failed));
        let (s, note) = job_status(Some("Exploded\n"));
        assert_eq!(s, Some(JobStatus::Failed));
        assert!(note.unwrap().contains("\"Exploded\""));
    }

    /// A scheduled refresh after our POST, and an older API refresh, are never taken for ours.
    #[test]
    fn the_newest_api_refresh_after_our_post_is_ours() {
        let posted = Instant::parse("2026-11-25T02:00:00Z").unwrap();
        let history = vec![
            entry("Scheduled", "2026-11-25T02:00:20Z", "Unknown", "sched"),
            entry("ViaApi", "2026-11-25T01:59:58.123Z", "Unknown", "ours"),
            entry("ViaApi", "2026-11-24T02:00:00Z", "Completed", "yesterday"),
        ];
        assert_eq!(
            newest_via_api_after(&history, posted).and_then(|r| r.request_id.as_deref()),
            Some("ours")
        );
        assert!(newest_via_api_after(&history[2..], posted).is_none());
        assert!(newest_via_api_after(&history[..1], posted).is_none());
    }

    #[test]
    fn the_refresh_id_comes_from_location_or_x_ms_request_id() {
        let resp = |h: Vec<(&str, &str)>| crate::http::Response {
            status: 202,
            headers: h
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: vec![],
        };
        assert_eq!(
            refresh_id(&resp(vec![(
                "location",
                "https://api.example/v1.0/myorg/groups/w/datasets/d/refreshes/r-9"
            )]))
            .as_deref(),
            Some("r-9")
        );
        assert_eq!(
            refresh_id(&resp(vec![("x-ms-request-id", " r-8 ")])).as_deref(),
            Some("r-8")
        );
        assert_eq!(
            refresh_id(&resp(vec![("location", "https://api.example/elsewhere")])),
            None
        );
        assert_eq!(refresh_id(&resp(vec![])), None);
    }
}
