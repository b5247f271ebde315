//! Tableau's side of active exposures: the REST calls that refresh extracts and follow their
//! jobs, as the refresh stage's `Refresher` (`crate::refresh::seam`), and Tableau's codes.
//!
//! Targets (written by extract into `bi_refresh_targets`, `store::write_refresh_targets`):
//! every published data source with extracts that the workbook reads
//! (`POST …/datasources/{luid}/refresh`), and the workbook itself when one of its embedded data
//! sources has an extract (`POST …/workbooks/{luid}/refresh`; embedded data sources have no luid).

use super::client::{parse_error, xml_failure, Client, Decoded, Idempotent, TableauError};
use crate::config::TableauSite;
use crate::http::{HttpMode, Request, Response};
use crate::refresh::seam::{
    Answer, JobState, RefreshTexts, Refresher, Refusal, SendError, Target, Torn,
};
use crate::refresh::tags::{JobStatus, Kind};

/// Tableau's words in the refresh stage's output lines.
pub(crate) const TEXTS: RefreshTexts = RefreshTexts {
    target: "Tableau extract",
    jobs: "Tableau's jobs",
    no_targets: "the workbook and its published data sources have no extracts",
    not_applicable: "live connections only",
    job_label: crate::refresh::seam::first_8,
};

/// A signed-in client for `site`, as the refresh stage's `Refresher`.
pub(crate) fn open(site: &TableauSite, mode: &HttpMode) -> Result<Box<dyn Refresher>, String> {
    let client = super::connect(site, mode).map_err(|e| format!("{e:#}"))?;
    client.ensure_session().map_err(|e| format!("{e}"))?;
    Ok(Box::new(TableauRefresher(client)))
}

/// Tableau's `Refresher`: the REST calls below, their errors told in the seam's terms.
struct TableauRefresher(Client);

impl Refresher for TableauRefresher {
    fn refresh(&self, target: &Target) -> Result<Answer, SendError> {
        self.0.refresh(target).map_err(|e| send_error(&e))
    }

    fn check_torn(&self, target: &Target) -> Torn {
        self.0.check_torn(target)
    }

    fn job(&self, id: &str) -> Result<JobState, SendError> {
        self.0.job(id).map_err(|e| send_error(&e))
    }

    fn sign_out(&self) {
        self.0.sign_out();
    }
}

/// A Tableau error as the seam's: the answer may have been lost after Tableau acted when the
/// transport failed after sending (timeout, reset), the body was cut short, or a 2xx was not
/// the answer it should be (`Protocol`).
fn send_error(e: &TableauError) -> SendError {
    let answer_lost = matches!(
        e,
        TableauError::Transport(_) | TableauError::Protocol { .. } | TableauError::BadBody { .. }
    );
    SendError {
        message: e.to_string(),
        answer_lost,
    }
}

/// A job in Tableau's background jobs list (Query Jobs): what a torn refresh answer is checked
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedJob {
    pub(crate) id: String,
    /// `Pending` or `InProgress` (the only ones asked for).
    pub(crate) status: String,
    /// The name of the data source or workbook the job refreshes.
    pub(crate) title: Option<String>,
    pub(crate) created_at: Option<String>,
}

/// Tableau's refusal of a refresh request: 409093 (already queued) is not a failure and
/// counts as a trigger; 409090 means the target has no extract to refresh.
pub(crate) fn refusal(status: u16, code: Option<&str>) -> Refusal {
    match (status, code) {
        (_, Some("409093")) => Refusal::AlreadyQueued,
        (_, Some("409090")) => Refusal::NotRefreshable,
        (404, _) => Refusal::NotFound,
        (403, _) => Refusal::Forbidden,
        _ => Refusal::Other,
    }
}

/// A `backgroundJob` of the jobs list, when it is an unfinished extract refresh (a list
/// filtered on jobType/status by the server still gets checked here); `status` is the one
/// asked for, assumed when the job does not say.
fn unfinished_refresh(n: roxmltree::Node, status: &str) -> Option<ListedJob> {
    let id = n.attribute("id")?.to_string();
    if n.attribute("jobType")
        .is_some_and(|t| t != "refresh_extracts")
    {
        return None;
    }
    let st = n.attribute("status").unwrap_or(status).to_string();
    if st != "Pending" && st != "InProgress" {
        return None;
    }
    Some(ListedJob {
        id,
        status: st,
        title: n.attribute("title").map(str::to_string),
        created_at: n.attribute("createdAt").map(str::to_string),
    })
}

/// `<tsRequest />` below API 3.25, `<tsRequest><extractRefresh /></tsRequest>` from 3.25 on
/// (a full refresh; TSC sends the same).
pub(crate) fn refresh_body(api_version: &str) -> &'static str {
    let mut parts = api_version
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (3, 25) {
        "<tsRequest><extractRefresh /></tsRequest>"
    } else {
        "<tsRequest />"
    }
}

/// A job's status from Tableau's finishCode (`None` while it runs): 0 is success, 3 is
/// success too (nothing to do), 2 is cancelled, anything else failed.
pub(crate) fn finish_status(
    finish_code: Option<i32>,
    completed_at: Option<&str>,
) -> Option<JobStatus> {
    if completed_at.is_none() && finish_code.is_none() {
        return None;
    }
    Some(match finish_code {
        Some(0 | 3) => JobStatus::Success,
        Some(2) => JobStatus::Cancelled,
        _ => JobStatus::Failed,
    })
}

impl Client {
    /// Signs in unless a session is open.
    pub(crate) fn ensure_session(&self) -> Result<(), TableauError> {
        if self.site_luid().is_none() {
            self.server_info()?;
            self.sign_in()?;
        }
        Ok(())
    }

    /// Sends the refresh of `target` once. An answer that is lost after the request may have
    /// reached Tableau (the body cut or not XML, a 2xx without a job id, a timeout or a reset)
    /// is not sent again blindly: see `check_torn`.
    pub(crate) fn refresh(&self, target: &Target) -> Result<Answer, TableauError> {
        let collection = match target.kind {
            Kind::Workbook => "workbooks",
            Kind::Datasource => "datasources",
            // Never written by Tableau's extract; refused unsent rather than sent to the wrong place.
            Kind::Dataset => {
                let message = format!(
                    "target {} is a dataset, which Tableau has no refresh for (not sent)",
                    target.id
                );
                return Ok(Answer::Refused {
                    refusal: Refusal::Other,
                    status: 0,
                    code: None,
                    message,
                });
            }
        };
        let call = format!(
            "POST /api/{}/sites/{{site}}/{collection}/{}/refresh",
            self.api_version(),
            target.id
        );
        let url = self.site_path(&format!("{collection}/{}/refresh", target.id));
        let body = refresh_body(&self.api_version());
        // Not idempotent: a second POST could queue a second refresh. `fetch` sends it again
        // only after a 429, a 401 or a connection never made; any other answer comes back here.
        let resp = self.fetch(
            &call,
            true,
            Idempotent::No,
            &|c| {
                Request::new("POST", url.clone())
                    .header("X-Tableau-Auth", c.auth_header())
                    .header("Content-Type", "text/xml")
                    .header("Accept", "application/xml")
                    .body(body)
            },
            &|resp| Decoded::Done(Ok(resp)),
        )?;
        let text = resp.text();
        if resp.status == 202 || resp.status == 200 {
            let id = roxmltree::Document::parse(&text).ok().and_then(|d| {
                d.descendants()
                    .find(|n| n.has_tag_name("job"))
                    .and_then(|n| n.attribute("id"))
                    .map(str::to_string)
            });
            return match id {
                Some(id) => Ok(Answer::Job(id)),
                // Not asked again: Tableau may well have queued the refresh.
                None => Err(TableauError::Protocol {
                    call,
                    message: format!("HTTP {} without a readable <job id=…> (the refresh may have been queued; not sent again)", resp.status),
                }),
            };
        }
        let (code, summary, detail) = parse_error(&text);
        // Server text, scrubbed in full as it enters (see `http::secrets`).
        let (summary, detail) = (
            summary.map(|t| crate::http::scrub(&t)),
            detail.map(|t| crate::http::scrub(&t)),
        );
        let message = [summary, detail]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        Ok(Answer::Refused {
            refusal: refusal(resp.status, code.as_deref()),
            status: resp.status,
            code,
            message,
        })
    }

    /// Looks in Tableau's jobs list for the job a refresh POST of `target` created, when its
    /// answer was lost (or its run was killed while it was in flight). Never sends the refresh
    /// again: a second POST could queue a second refresh.
    ///
    /// Query Jobs, `GET /api/{v}/sites/{site-id}/jobs?filter=…` (help.tableau.com
    /// `rest_api_ref_jobs_tasks_and_schedules.htm#query_jobs`; filter syntax in
    /// `rest_api_concepts_filtering_and_sorting.htm`): `jobType:eq:refresh_extracts` and
    /// `status:eq:Pending` / `status:eq:InProgress` (`status` takes `eq` only, as listed in the
    /// tableau/tableau-mcp `list-jobs` tool page), paged with `pageSize`/`pageNumber` to
    /// `pagination/@totalAvailable`. Each answer holds `backgroundJobs/backgroundJob` with
    /// `@id, @status, @createdAt, @jobType, @title` (TSC `models/job_item.py`
    /// `BackgroundJobItem`); `title` is the data source's or workbook's name, the only field
    /// that names the target, so the match is on it (and the job type). `createdAt` is not
    /// filtered on: it is the server's clock, which ours (`--now`) need not agree with; only
    /// unfinished jobs count, so an older finished refresh of the same target never matches.
    pub(crate) fn check_torn(&self, target: &Target) -> Torn {
        let mut found: Vec<ListedJob> = Vec::new();
        for status in ["Pending", "InProgress"] {
            match self.jobs_list(status) {
                Ok(jobs) => found.extend(
                    jobs.into_iter()
                        .filter(|j| j.title.as_deref() == Some(target.name.as_str())),
                ),
                Err(e) => {
                    return Torn::Unknown {
                        why: format!("could not read Tableau's jobs list to check: {e}"),
                    };
                }
            }
        }
        // Newest first when several are listed (createdAt is RFC 3339 UTC: text order is time
        // order); the newest is the likeliest to be ours.
        found.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        match found.first() {
            Some(j) => Torn::Found {
                job_id: j.id.clone(),
                why: format!(
                    "Tableau's jobs list shows {} refresh job {} of {:?}{}",
                    j.status,
                    j.id,
                    target.name,
                    if found.len() > 1 {
                        format!(" (newest of {})", found.len())
                    } else {
                        String::new()
                    }
                ),
            },
            None => Torn::NotQueued {
                why: format!(
                    "Tableau's jobs list shows no pending or running refresh of {:?}: not queued",
                    target.name
                ),
            },
        }
    }

    /// Every unfinished extract-refresh job with `status` (see `check_torn`).
    fn jobs_list(&self, status: &str) -> Result<Vec<ListedJob>, TableauError> {
        let mut out = Vec::new();
        let size = 1000u32;
        let mut page = 1u32;
        loop {
            let filter = format!("jobType:eq:refresh_extracts,status:eq:{status}");
            let call = format!(
                "GET /api/{}/sites/{{site}}/jobs?filter={filter}&pageNumber={page}",
                self.api_version()
            );
            let url = self.site_path(&format!(
                "jobs?filter={filter}&pageSize={size}&pageNumber={page}"
            ));
            let decode = |resp: Response| -> Decoded<(Vec<ListedJob>, usize, u64)> {
                if resp.status != 200 {
                    let (code, summary, detail) = parse_error(&resp.text());
                    return Decoded::Done(Err(TableauError::Http {
                        call: call.clone(),
                        status: resp.status,
                        code,
                        summary,
                        detail,
                    }));
                }
                let text = resp.text();
                let doc = match roxmltree::Document::parse(&text) {
                    Ok(d) => d,
                    Err(e) => return xml_failure(&text, &e),
                };
                if doc.root_element().tag_name().name() != "tsResponse" {
                    return Decoded::Truncated("the body is not a Tableau REST answer: its root element is not <tsResponse>".into());
                }
                let listed: Vec<_> = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("backgroundJob"))
                    .collect();
                let jobs = listed
                    .iter()
                    .filter_map(|n| unfinished_refresh(*n, status))
                    .collect();
                let total = doc
                    .descendants()
                    .find(|n| n.has_tag_name("pagination"))
                    .and_then(|p| p.attribute("totalAvailable"))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                Decoded::Done(Ok((jobs, listed.len(), total)))
            };
            let build = |c: &Client| {
                Request::new("GET", url.clone())
                    .header("X-Tableau-Auth", c.auth_header())
                    .header("Accept", "application/xml")
            };
            let (jobs, n, total) = self.fetch(&call, true, Idempotent::Yes, &build, &decode)?;
            out.extend(jobs);
            if n == 0 || u64::from(page) * u64::from(size) >= total || page >= 100 {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    pub(crate) fn job(&self, job_id: &str) -> Result<JobState, TableauError> {
        let call = format!(
            "GET /api/{}/sites/{{site}}/jobs/{job_id}",
            self.api_version()
        );
        let url = self.site_path(&format!("jobs/{job_id}"));
        let decode = |resp: Response| -> Decoded<JobState> {
            if resp.status != 200 {
                let (code, summary, detail) = parse_error(&resp.text());
                let (summary, detail) = (
                    summary.map(|t| crate::http::scrub(&t)),
                    detail.map(|t| crate::http::scrub(&t)),
                );
                return Decoded::Done(Err(TableauError::Http {
                    call: call.clone(),
                    status: resp.status,
                    code,
                    summary,
                    detail,
                }));
            }
            let text = resp.text();
            let doc = match roxmltree::Document::parse(&text) {
                Ok(d) => d,
                Err(e) => return xml_failure(&text, &e),
            };
            let Some(job) = doc.descendants().find(|n| n.has_tag_name("job")) else {
                return Decoded::Done(Err(TableauError::Protocol {
                    call: call.clone(),
                    message: "no <job>".into(),
                }));
            };
            let finish_code = job.attribute("finishCode").and_then(|c| c.parse().ok());
            let completed_at = job.attribute("completedAt").map(str::to_string);
            Decoded::Done(Ok(JobState {
                status: finish_status(finish_code, completed_at.as_deref()),
                finish_code,
                completed_at,
                notes: job
                    .descendants()
                    .find(|n| n.has_tag_name("notes"))
                    .and_then(|n| n.text())
                    .map(|t| crate::http::scrub(t.trim()))
                    .filter(|t| !t.is_empty()),
                // Polled by the job id Tableau gave for our request.
                matched_by: Some(crate::refresh::tags::MatchedBy::Exact),
            }))
        };
        let build = |c: &Client| {
            Request::new("GET", url.clone())
                .header("X-Tableau-Auth", c.auth_header())
                .header("Accept", "application/xml")
        };
        self.fetch(&call, true, Idempotent::Yes, &build, &decode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_depends_on_the_api_version() {
        assert_eq!(refresh_body("3.23"), "<tsRequest />");
        assert_eq!(
            refresh_body("3.25"),
            "<tsRequest><extractRefresh /></tsRequest>"
        );
        assert_eq!(
            refresh_body("3.100"),
            "<tsRequest><extractRefresh /></tsRequest>"
        );
        assert_eq!(refresh_body("2.8"), "<tsRequest />");
    }

    #[test]
    fn tableau_answers_are_classified() {
        use Refusal::*;
        for (status, code, want) in [
            (409, Some("409093"), AlreadyQueued),
            (400, Some("409093"), AlreadyQueued),
            (409, Some("409090"), NotRefreshable),
            (404, Some("404031"), NotFound),
            (404, None, NotFound),
            (403, Some("403004"), Forbidden),
            (409, Some("409000"), Other),
            (500, None, Other),
        ] {
            assert_eq!(refusal(status, code), want, "{status} {code:?}");
        }
    }

    #[test]
    fn finish_codes_become_job_statuses() {
        assert_eq!(finish_status(None, None), None);
        assert_eq!(finish_status(Some(0), None), Some(JobStatus::Success));
        assert_eq!(finish_status(Some(3), Some("t")), Some(JobStatus::Success));
        assert_eq!(
            finish_status(Some(2), Some("t")),
            Some(JobStatus::Cancelled)
        );
        assert_eq!(finish_status(Some(1), Some("t")), Some(JobStatus::Failed));
        assert_eq!(finish_status(None, Some("t")), Some(JobStatus::Failed));
    }

    /// Only errors after which Tableau may have acted are a lost answer (checked in the jobs
    /// list, never sent again); a refusal or an error before sending is not.
    #[test]
    fn errors_that_may_have_come_after_tableau_acted_are_lost_answers() {
        let call = || "POST x".to_string();
        for (e, lost) in [
            (TableauError::Transport("timed out".into()), true),
            (
                TableauError::Protocol {
                    call: call(),
                    message: "no job".into(),
                },
                true,
            ),
            (
                TableauError::BadBody {
                    call: call(),
                    message: "cut".into(),
                    tries: 1,
                },
                true,
            ),
            (
                TableauError::Http {
                    call: call(),
                    status: 500,
                    code: None,
                    summary: None,
                    detail: None,
                },
                false,
            ),
            (TableauError::Cancelled { call: call() }, false),
            (
                TableauError::Unauthorized {
                    call: call(),
                    site: "s".into(),
                },
                false,
            ),
            (
                TableauError::NotData {
                    call: call(),
                    message: "html".into(),
                    tries: 3,
                },
                false,
            ),
        ] {
            let got = send_error(&e);
            assert_eq!(
                (got.answer_lost, got.message),
                (lost, e.to_string()),
                "{e:?}"
            );
        }
    }
}
