//! The seam between stage `refresh` and an integration: the neutral types a refresh request
//! and its answer are told in, and the one trait an integration implements to be refreshed
//! (`Refresher`), opened through `Refreshers` (the wiring in `crate::integrations` chooses
//! which implementation an integration gets, from the config).
//!
//! The generic stage decides and journals; the integration speaks its protocol: it sends the
//! request, classifies a refusal (`Refusal`), says whether an error may have come after the
//! service acted (`SendError::answer_lost`), finds such a request in the service's jobs list
//! (`Torn`) and reads a job's outcome (`JobState`). Its own words for the output lines come
//! with it (`RefreshTexts`).

use crate::refresh::tags::{Decision, JobStatus, Kind, MatchedBy, Reason};

/// A refresh target: what one refresh request names. Stored in `bi_refresh_targets`
/// (written by each integration's extract) and in refresh_events / refresh_state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Target {
    pub(crate) kind: Kind,
    /// The service's id of the target (`target_ref`).
    pub(crate) id: String,
    pub(crate) name: String,
}

/// The service's refusal of a refresh request, as the integration reads its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A refresh of the target is already queued: not a failure; it counts as a trigger.
    AlreadyQueued,
    /// The target has nothing to refresh.
    NotRefreshable,
    NotFound,
    Forbidden,
    /// Over the service's daily quota of refreshes: failed, not retried.
    DailyLimit,
    /// Anything else.
    Other,
}

impl Refusal {
    /// The decision and reason recorded for the refusal.
    pub(crate) fn decision(self) -> (Decision, Option<Reason>) {
        match self {
            Refusal::AlreadyQueued => (Decision::AlreadyQueued, None),
            Refusal::NotRefreshable => (Decision::NotApplicable, Some(Reason::NotRefreshable)),
            Refusal::NotFound => (Decision::Failed, Some(Reason::NotFound)),
            Refusal::Forbidden => (Decision::Failed, Some(Reason::Forbidden)),
            Refusal::DailyLimit => (Decision::Failed, Some(Reason::DailyLimit)),
            Refusal::Other => (Decision::Failed, Some(Reason::HttpError)),
        }
    }
}

/// What the service answered to a refresh request.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// Accepted, with the job that does the refresh.
    Job(String),
    /// Anything else: the refusal as classified, the HTTP status, and the service's own code
    /// and message (kept in `service_code` / `service_message`; empty when it sent none).
    Refused {
        refusal: Refusal,
        status: u16,
        code: Option<String>,
        message: String,
    },
}

/// A request that got no answer to read. `answer_lost` says whether the service may have acted
/// on it all the same (the body cut or unreadable, a success without a job id, a timeout, a
/// reset): such a refresh is never sent again blindly, the jobs list is checked instead
/// (`Refresher::check_torn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendError {
    pub(crate) message: String,
    pub(crate) answer_lost: bool,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a refresh request whose answer was lost (or whose run was killed while it was in
/// flight) turned into, as found in the service's jobs list.
#[derive(Debug, Clone)]
pub(crate) enum Torn {
    /// An unfinished refresh job of this target is listed: the request (or a refresh already
    /// queued) is under way.
    Found { job_id: String, why: String },
    /// The list was read and holds no unfinished refresh of this target: nothing is queued.
    NotQueued { why: String },
    /// The list could not be read: nobody knows whether the refresh was queued.
    Unknown { why: String },
}

/// A polled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobState {
    /// How it ended; `None` while it runs.
    pub(crate) status: Option<JobStatus>,
    /// The service's own code for how it ended (`job_finish_code`).
    pub(crate) finish_code: Option<i32>,
    pub(crate) completed_at: Option<String>,
    pub(crate) notes: Option<String>,
    /// How the job was known to be ours (refresh_events.matched_by); `None` while it is not
    /// found yet.
    pub(crate) matched_by: Option<MatchedBy>,
}

/// An integration's own words in the stage's output lines.
#[derive(Debug)]
pub(crate) struct RefreshTexts {
    /// What is refreshed: "Refreshing {target} for exposure …".
    pub(crate) target: &'static str,
    /// Where a lost answer is looked for: "found in {jobs}", "could not read {jobs} list".
    pub(crate) jobs: &'static str,
    /// The detail of an exposure due with no target (reason `no_extracts`).
    pub(crate) no_targets: &'static str,
    /// The same, in a few words for the output line: `[NOT_APPLICABLE: {not_applicable}]`.
    pub(crate) not_applicable: &'static str,
    /// How a job id is shown in output lines (the whole id stays in refresh_events).
    pub(crate) job_label: fn(&str) -> String,
}

/// The first 8 characters of a job id: enough to tell Tableau's job UUIDs apart in a log.
pub(crate) fn first_8(id: &str) -> String {
    id.get(..8).unwrap_or(id).to_string()
}

impl RefreshTexts {
    /// For an integration the config does not name (any more).
    pub(crate) const NEUTRAL: RefreshTexts = RefreshTexts {
        target: "extract",
        jobs: "the service's jobs",
        no_targets: "the asset has no refresh targets",
        not_applicable: "nothing to refresh",
        job_label: first_8,
    };
}

/// One integration's refresh client, signed in.
pub(crate) trait Refresher {
    /// Sends the refresh of `target` once. A request that may have reached the service is
    /// never sent again here: an error after which it may have acted has `answer_lost`.
    fn refresh(&self, target: &Target) -> Result<Answer, SendError>;
    /// Looks in the service's jobs list for an unfinished refresh of `target`; never sends
    /// the refresh again.
    fn check_torn(&self, target: &Target) -> Torn;
    /// Asks once after job `id` (retries of the transport already spent when this fails).
    fn job(&self, id: &str) -> Result<JobState, SendError>;
    /// Ends the session; failures are the integration's to log, never fatal.
    fn sign_out(&self);
}

/// The integrations the stage can reach: each one's words, and its `Refresher`, opened on
/// first use (the error as text when it cannot be: a row, not an abort).
pub(crate) trait Refreshers {
    fn texts(&self, integration: &str) -> &'static RefreshTexts;
    fn open(&self, integration: &str) -> Result<Box<dyn Refresher>, String>;
}
