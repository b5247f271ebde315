//! Tableau's side of active exposures: which extracts stand behind a workbook, and the REST
//! calls that refresh them and follow their jobs.
//!
//! Targets: every published data source with extracts that the workbook reads
//! (`POST …/datasources/{luid}/refresh`), and the workbook itself when one of its embedded data
//! sources has an extract (`POST …/workbooks/{luid}/refresh`; embedded data sources have no luid).

use anyhow::{bail, Result};
use rusqlite::{params, Connection, OptionalExtension};

use super::client::{parse_error, xml_failure, Client, Decoded, Idempotent, TableauError};
use crate::http::{Request, Response};
use crate::refresh::tags::{Decision, JobStatus, Kind, Reason};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Target {
    pub(crate) kind: Kind,
    pub(crate) luid: String,
    pub(crate) name: String,
}

/// The refresh targets behind one workbook, published data sources first, in a stable order.
/// A data source of the workbook whose kind is neither `embedded` nor `published` is an error
/// naming it: read as either, it would add or hide a target.
pub(crate) fn targets(conn: &Connection, integration: &str, workbook_luid: &str) -> Result<Vec<Target>> {
    refuse_unknown_datasource_kinds(conn, integration, workbook_luid)?;
    let mut out = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT DISTINCT d.luid, coalesce(d.name, '')
         FROM tableau_workbooks w
         JOIN tableau_workbook_datasources l ON l.integration = w.integration AND l.workbook_id = w.id
         JOIN tableau_datasources d ON d.integration = l.integration AND d.id = l.published_id
         WHERE w.integration = ?1 AND w.luid = ?2 AND d.has_extracts = 1 AND d.luid IS NOT NULL
         ORDER BY d.luid",
    )?;
    let rows = st.query_map(params![integration, workbook_luid], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (luid, name) = row?;
        out.push(Target { kind: Kind::Datasource, luid, name });
    }
    let embedded: Option<String> = conn
        .prepare_cached(
            "SELECT w.name FROM tableau_workbooks w
             WHERE w.integration = ?1 AND w.luid = ?2 AND EXISTS (
               SELECT 1 FROM tableau_datasources d
               WHERE d.integration = w.integration AND d.workbook_id = w.id AND d.kind = 'embedded' AND d.has_extracts = 1)",
        )?
        .query_row(params![integration, workbook_luid], |r| r.get(0))
        .ok();
    if let Some(name) = embedded {
        out.push(Target { kind: Kind::Workbook, luid: workbook_luid.to_string(), name });
    }
    Ok(out)
}

fn refuse_unknown_datasource_kinds(conn: &Connection, integration: &str, workbook_luid: &str) -> Result<()> {
    let unknown: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT d.id, coalesce(d.name, ''), d.kind
             FROM tableau_workbooks w
             JOIN tableau_datasources d ON d.integration = w.integration AND (d.workbook_id = w.id OR d.id IN (
               SELECT l.published_id FROM tableau_workbook_datasources l WHERE l.integration = w.integration AND l.workbook_id = w.id))
             WHERE w.integration = ?1 AND w.luid = ?2 AND d.kind NOT IN ('embedded', 'published')
             ORDER BY d.id LIMIT 1",
        )?
        .query_row(params![integration, workbook_luid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((id, name, kind)) = unknown {
        bail!(
            "table tableau_datasources, column kind of data source {id} ({name:?}, integration {integration:?}): \
             unknown data source kind {kind:?} (known: embedded, published)"
        );
    }
    Ok(())
}

/// What Tableau answered to a refresh request.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// 202 with a job.
    Job(String),
    /// Anything else: HTTP status and Tableau's error element.
    Refused { status: u16, code: Option<String>, summary: Option<String>, detail: Option<String> },
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

/// What a refresh POST whose answer was lost (cut, unreadable, timed out) turned into, as
/// found in Tableau's jobs list.
#[derive(Debug, Clone)]
pub(crate) enum Torn {
    /// An unfinished extract-refresh job of this target is listed: the POST (or a refresh
    /// already queued, which would have answered 409093) is under way.
    Found { job_id: String, why: String },
    /// The list was read and holds no unfinished refresh of this target: nothing is queued.
    NotQueued { why: String },
    /// The list could not be read (Query Jobs is for site administrators; the server may be
    /// down): nobody knows whether the refresh was queued.
    Unknown { why: String },
}

/// Tableau's refusal of a refresh request, as a decision: 409093 (already queued) is not a
/// failure and counts as a trigger; 409090 means the target has no extract to refresh.
pub(crate) fn classify(status: u16, code: Option<&str>) -> (Decision, Option<Reason>) {
    match (status, code) {
        (_, Some("409093")) => (Decision::AlreadyQueued, None),
        (_, Some("409090")) => (Decision::NotApplicable, Some(Reason::NotRefreshable)),
        (404, _) => (Decision::Failed, Some(Reason::NotFound)),
        (403, _) => (Decision::Failed, Some(Reason::Forbidden)),
        _ => (Decision::Failed, Some(Reason::HttpError)),
    }
}

/// A `backgroundJob` of the jobs list, when it is an unfinished extract refresh (a list
/// filtered on jobType/status by the server still gets checked here); `status` is the one
/// asked for, assumed when the job does not say.
fn unfinished_refresh(n: roxmltree::Node, status: &str) -> Option<ListedJob> {
    let id = n.attribute("id")?.to_string();
    if n.attribute("jobType").is_some_and(|t| t != "refresh_extracts") {
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

/// A polled job.
#[derive(Debug, Clone)]
pub(crate) struct JobState {
    pub(crate) finish_code: Option<i32>,
    pub(crate) completed_at: Option<String>,
    pub(crate) notes: Option<String>,
}

/// `<tsRequest />` below API 3.25, `<tsRequest><extractRefresh /></tsRequest>` from 3.25 on
/// (a full refresh; TSC sends the same).
pub(crate) fn refresh_body(api_version: &str) -> &'static str {
    let mut parts = api_version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (3, 25) {
        "<tsRequest><extractRefresh /></tsRequest>"
    } else {
        "<tsRequest />"
    }
}

impl JobState {
    /// A finished job's status (`None` while it runs): finishCode 0 is success, 3 is
    /// success too (nothing to do), 2 is cancelled, anything else failed.
    pub(crate) fn finished(&self) -> Option<JobStatus> {
        if self.completed_at.is_none() && self.finish_code.is_none() {
            return None;
        }
        Some(match self.finish_code {
            Some(0 | 3) => JobStatus::Success,
            Some(2) => JobStatus::Cancelled,
            _ => JobStatus::Failed,
        })
    }
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
        };
        let call = format!("POST /api/{}/sites/{{site}}/{collection}/{}/refresh", self.api_version(), target.luid);
        let url = self.site_path(&format!("{collection}/{}/refresh", target.luid));
        let body = refresh_body(&self.api_version());
        // Not idempotent: a second POST could queue a second refresh. `fetch` sends it again
        // only after a 429, a 401 or a connection never made; any other answer comes back here.
        let resp = self.fetch(&call, true, Idempotent::No, &|c| {
            Request::new("POST", url.clone())
                .header("X-Tableau-Auth", c.auth_header())
                .header("Content-Type", "text/xml")
                .header("Accept", "application/xml")
                .body(body)
        }, &|resp| Decoded::Done(Ok(resp)))?;
        let text = resp.text();
        if resp.status == 202 || resp.status == 200 {
            let id = roxmltree::Document::parse(&text)
                .ok()
                .and_then(|d| d.descendants().find(|n| n.has_tag_name("job")).and_then(|n| n.attribute("id")).map(str::to_string));
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
        let (summary, detail) = (summary.map(|t| crate::http::scrub(&t)), detail.map(|t| crate::http::scrub(&t)));
        Ok(Answer::Refused { status: resp.status, code, summary, detail })
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
                Ok(jobs) => found.extend(jobs.into_iter().filter(|j| j.title.as_deref() == Some(target.name.as_str()))),
                Err(e) => {
                    return Torn::Unknown { why: format!("could not read Tableau's jobs list to check: {e}") };
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
                    if found.len() > 1 { format!(" (newest of {})", found.len()) } else { String::new() }
                ),
            },
            None => Torn::NotQueued {
                why: format!("Tableau's jobs list shows no pending or running refresh of {:?}: not queued", target.name),
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
            let call = format!("GET /api/{}/sites/{{site}}/jobs?filter={filter}&pageNumber={page}", self.api_version());
            let url = self.site_path(&format!("jobs?filter={filter}&pageSize={size}&pageNumber={page}"));
            let decode = |resp: Response| -> Decoded<(Vec<ListedJob>, usize, u64)> {
                if resp.status != 200 {
                    let (code, summary, detail) = parse_error(&resp.text());
                    return Decoded::Done(Err(TableauError::Http { call: call.clone(), status: resp.status, code, summary, detail }));
                }
                let text = resp.text();
                let doc = match roxmltree::Document::parse(&text) {
                    Ok(d) => d,
                    Err(e) => return xml_failure(&text, &e),
                };
                if doc.root_element().tag_name().name() != "tsResponse" {
                    return Decoded::Truncated("the body is not a Tableau REST answer: its root element is not <tsResponse>".into());
                }
                let listed: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("backgroundJob")).collect();
                let jobs = listed.iter().filter_map(|n| unfinished_refresh(*n, status)).collect();
                let total = doc
                    .descendants()
                    .find(|n| n.has_tag_name("pagination"))
                    .and_then(|p| p.attribute("totalAvailable"))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                Decoded::Done(Ok((jobs, listed.len(), total)))
            };
            let build = |c: &Client| {
                Request::new("GET", url.clone()).header("X-Tableau-Auth", c.auth_header()).header("Accept", "application/xml")
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
        let call = format!("GET /api/{}/sites/{{site}}/jobs/{job_id}", self.api_version());
        let url = self.site_path(&format!("jobs/{job_id}"));
        let decode = |resp: Response| -> Decoded<JobState> {
            if resp.status != 200 {
                let (code, summary, detail) = parse_error(&resp.text());
                let (summary, detail) = (summary.map(|t| crate::http::scrub(&t)), detail.map(|t| crate::http::scrub(&t)));
                return Decoded::Done(Err(TableauError::Http { call: call.clone(), status: resp.status, code, summary, detail }));
            }
            let text = resp.text();
            let doc = match roxmltree::Document::parse(&text) {
                Ok(d) => d,
                Err(e) => return xml_failure(&text, &e),
            };
            let Some(job) = doc.descendants().find(|n| n.has_tag_name("job")) else {
                return Decoded::Done(Err(TableauError::Protocol { call: call.clone(), message: "no <job>".into() }));
            };
            Decoded::Done(Ok(JobState {
                finish_code: job.attribute("finishCode").and_then(|c| c.parse().ok()),
                completed_at: job.attribute("completedAt").map(str::to_string),
                notes: job
                    .descendants()
                    .find(|n| n.has_tag_name("notes"))
                    .and_then(|n| n.text())
                    .map(|t| crate::http::scrub(t.trim()))
                    .filter(|t| !t.is_empty()),
            }))
        };
        let build = |c: &Client| {
            Request::new("GET", url.clone()).header("X-Tableau-Auth", c.auth_header()).header("Accept", "application/xml")
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
        assert_eq!(refresh_body("3.25"), "<tsRequest><extractRefresh /></tsRequest>");
        assert_eq!(refresh_body("3.100"), "<tsRequest><extractRefresh /></tsRequest>");
        assert_eq!(refresh_body("2.8"), "<tsRequest />");
    }

    #[test]
    fn tableau_answers_are_classified() {
        use Decision::*;
        for (status, code, want) in [
            (409, Some("409093"), (AlreadyQueued, None)),
            (400, Some("409093"), (AlreadyQueued, None)),
            (409, Some("409090"), (NotApplicable, Some(Reason::NotRefreshable))),
            (404, Some("404031"), (Failed, Some(Reason::NotFound))),
            (404, None, (Failed, Some(Reason::NotFound))),
            (403, Some("403004"), (Failed, Some(Reason::Forbidden))),
            (409, Some("409000"), (Failed, Some(Reason::HttpError))),
            (500, None, (Failed, Some(Reason::HttpError))),
        ] {
            assert_eq!(classify(status, code), want, "{status} {code:?}");
        }
    }

    #[test]
    fn finish_codes_become_job_statuses() {
        let job = |finish_code, completed_at: Option<&str>| JobState { finish_code, completed_at: completed_at.map(str::to_string), notes: None };
        assert_eq!(job(None, None).finished(), None);
        assert_eq!(job(Some(0), None).finished(), Some(JobStatus::Success));
        assert_eq!(job(Some(3), Some("t")).finished(), Some(JobStatus::Success));
        assert_eq!(job(Some(2), Some("t")).finished(), Some(JobStatus::Cancelled));
        assert_eq!(job(Some(1), Some("t")).finished(), Some(JobStatus::Failed));
        assert_eq!(job(None, Some("t")).finished(), Some(JobStatus::Failed));
    }
}
