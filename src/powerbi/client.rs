//! Power BI REST calls over a `Transport`: a client-credentials token from Entra ID (renewed
//! before it expires and once on a 401), retries with backoff (429 + `Retry-After`, 5xx,
//! bodies cut short), and the calls of the scanner flow (shared/reference/powerbi.md
//! sections 0, 1, 2, 7, 9 and 11).
//!
//! What it does not do: which workspaces to scan, batching and polling policy (`extract.rs`),
//! SQLite. The client secret and every access token are registered with the run's `Secrets`
//! before they can reach a log line, an error, a recording or `raw_responses`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::model;
use crate::config::{PowerBiTenant, RawResponses, Retry};
use crate::http::{Request, Response, Secrets, Transport, TransportError};
use crate::log;

/// The scope of a token for the Power BI REST API (reference section 1; DH-pbi `SCOPE`).
pub(crate) const SCOPE: &str = "https://analysis.windows.net/powerbi/api/.default";

/// How long before its expiry a token is renewed, at most (DH-pbi renews 300 s early); a
/// token that lives less than twice this is renewed at half its life.
const RENEW_EARLY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub(crate) enum PowerBiError {
    #[error("{0}")]
    Transport(String),
    #[error("{call}: HTTP {status}{}", error_text(.code, .message))]
    Http {
        call: String,
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    #[error("token for Power BI tenant {tenant:?} from {login} failed: HTTP {status}{}. Check the service principal in the env vars {id_env} (application id) and {secret_env} (client secret), and that the tenant allows service principals to use read-only admin APIs", error_text(.code, .message))]
    Token {
        tenant: String,
        login: String,
        status: u16,
        code: Option<String>,
        message: Option<String>,
        id_env: String,
        secret_env: String,
    },
    #[error("{call}: unexpected response: {message}")]
    Protocol { call: String, message: String },
    #[error(
        "{call}: still 401 Unauthorized with a new token; the service principal may lack access"
    )]
    Unauthorized { call: String },
    #[error("{call}: not sent: the run stopped on an earlier error")]
    Cancelled { call: String },
    #[error("{call}: {message} (after {tries} tries; a proxy or the network may be cutting answers short)")]
    BadBody {
        call: String,
        message: String,
        tries: u32,
    },
}

impl PowerBiError {
    /// The HTTP status of an answered call, if that is what failed.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            PowerBiError::Http { status, .. } => Some(*status),
            PowerBiError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }
}

fn error_text(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(" ({c}: {m})"),
        (Some(c), None) => format!(" ({c})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    }
}

/// The code and message of an error body: Power BI's `{"error": {"code", "message"}}`
/// (`PowerBIApiErrorResponseDetail`), or OAuth's `{"error": "invalid_client",
/// "error_description": "AADSTS…: …"}` (RFC 6749 §5.2), of which only the AADSTS code is
/// kept: the description may echo what was sent.
fn parse_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let short = |s: &str| s.chars().take(300).collect::<String>();
    match &v["error"] {
        serde_json::Value::Object(o) => (
            o.get("code").and_then(|c| c.as_str()).map(short),
            o.get("message").and_then(|c| c.as_str()).map(short),
        ),
        serde_json::Value::String(code) => {
            let aadsts = v["error_description"].as_str().and_then(|d| {
                let at = d.find("AADSTS")?;
                let digits: String = d[at + 6..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
            });
            (Some(short(code)), aadsts)
        }
        _ => (None, None),
    }
}

/// `application/x-www-form-urlencoded` of one value: unreserved bytes as they are, a space as
/// `+`, the rest `%XX` (the WHATWG form encoding).
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A response as kept in `raw_responses`, scrubbed, in the order the requests were sent (one
/// request at a time: the order is the run's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawResponse {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) bytes: usize,
    /// Scrubbed; `None` when `raw_responses` does not keep it.
    pub(crate) body: Option<String>,
}

struct Token {
    value: String,
    /// When to ask for a new one: before it expires (`RENEW_EARLY`).
    renew_at: Instant,
}

/// What a caller made of a 2xx-or-not response.
pub(crate) enum Decoded<T> {
    Done(Result<T, PowerBiError>),
    /// The body is cut short or not JSON: asked again within the retries.
    Truncated(String),
}

/// Whether a request may be sent twice: reads may; starting a scan may not after the server
/// may have seen it (it would start a second scan and count against the hourly quota).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotent {
    Yes,
    No,
}

type Clock = Box<dyn Fn() -> Instant + Send + Sync>;

/// The scanner calls Power BI limits per hour (reference section 2: `WorkspaceInfo_*` pages of
/// the REST reference): 30 `modified`, 500 `getInfo`, 10,000 `scanStatus`, 500 `scanResult`.
/// The client counts them itself, so a large tenant waits for its quota rather than spending
/// calls on 429s (which count too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quota {
    Modified,
    GetInfo,
    ScanStatus,
    ScanResult,
}

impl Quota {
    /// The quota a request's path counts against, if any.
    fn of(path: &str) -> Option<Quota> {
        let path = path.split('?').next().unwrap_or_default();
        let tail = path.split("/admin/workspaces/").nth(1)?;
        match tail.split('/').next()? {
            "modified" => Some(Quota::Modified),
            "getInfo" => Some(Quota::GetInfo),
            "scanStatus" => Some(Quota::ScanStatus),
            "scanResult" => Some(Quota::ScanResult),
            _ => None,
        }
    }

    fn per_hour(self) -> usize {
        match self {
            Quota::Modified => 30,
            Quota::GetInfo | Quota::ScanResult => 500,
            Quota::ScanStatus => 10_000,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Quota::Modified => "workspaces/modified",
            Quota::GetInfo => "getInfo",
            Quota::ScanStatus => "scanStatus",
            Quota::ScanResult => "scanResult",
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// When each quota's calls of the last hour were sent.
#[derive(Default)]
struct Hourly {
    sent: [std::collections::VecDeque<Instant>; 4],
}

impl Hourly {
    /// Counts a call of `q` sent at `now` and says go (`Ok`), or how long until the oldest
    /// call of the last hour leaves the window (`Err`, nothing counted).
    fn admit(&mut self, q: Quota, now: Instant) -> Result<(), Duration> {
        let sent = &mut self.sent[q as usize];
        while sent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= HOUR)
        {
            sent.pop_front();
        }
        if sent.len() < q.per_hour() {
            sent.push_back(now);
            return Ok(());
        }
        let oldest = *sent.front().expect("a full window has a first call");
        Err((oldest + HOUR)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1)))
    }
}

pub(crate) struct Client {
    transport: Box<dyn Transport>,
    secrets: Secrets,
    api_url: String,
    login_url: String,
    tenant: String,
    client_id: String,
    client_secret: String,
    id_env: String,
    secret_env: String,
    retry: Retry,
    token: Mutex<Option<Token>>,
    responses: Mutex<Vec<RawResponse>>,
    keep_bodies: RawResponses,
    requests_sent: AtomicUsize,
    tokens_fetched: AtomicUsize,
    cancelled: AtomicBool,
    /// Now, for token expiry and the hourly quotas: the system's monotonic clock, or a test's.
    clock: Clock,
    hourly: Mutex<Hourly>,
}

impl Client {
    pub(crate) fn new(
        t: &PowerBiTenant,
        transport: Box<dyn Transport>,
        secrets: Secrets,
        client_id: String,
        client_secret: String,
    ) -> Client {
        Client {
            transport,
            secrets,
            api_url: t.api_url.trim_end_matches('/').to_string(),
            login_url: t.login_url.trim_end_matches('/').to_string(),
            tenant: t.tenant_id.clone(),
            client_id,
            client_secret,
            id_env: t.client_id_env.clone(),
            secret_env: t.client_secret_env.clone(),
            retry: t.retry,
            token: Mutex::new(None),
            responses: Mutex::new(Vec::new()),
            keep_bodies: t.raw_responses,
            requests_sent: AtomicUsize::new(0),
            tokens_fetched: AtomicUsize::new(0),
            cancelled: AtomicBool::new(false),
            clock: Box::new(Instant::now),
            hourly: Mutex::new(Hourly::default()),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: Clock) -> Client {
        self.clock = clock;
        self
    }

    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub(crate) fn requests_sent(&self) -> usize {
        self.requests_sent.load(Ordering::SeqCst)
    }

    pub(crate) fn tokens_fetched(&self) -> usize {
        self.tokens_fetched.load(Ordering::SeqCst)
    }

    pub(crate) fn take_responses(&self) -> Vec<RawResponse> {
        std::mem::take(&mut *self.responses.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }

    /// `{api_url}/v1.0/myorg/{tail}`.
    fn api(&self, tail: &str) -> String {
        format!("{}/v1.0/myorg/{tail}", self.api_url)
    }

    /// The bearer token, fetched first or renewed when it is near its expiry.
    fn bearer(&self) -> Result<String, PowerBiError> {
        let mut token = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = token.as_ref() {
            if (self.clock)() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        let fresh = self.fetch_token()?;
        let value = fresh.value.clone();
        *token = Some(fresh);
        Ok(value)
    }

    fn drop_token(&self) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// `POST {login}/{tenant}/oauth2/v2.0/token`, client credentials, form-encoded
    /// (reference section 1; Microsoft identity platform client-credentials flow).
    fn fetch_token(&self) -> Result<Token, PowerBiError> {
        let call = format!("POST /{}/oauth2/v2.0/token", self.tenant);
        let url = format!("{}/{}/oauth2/v2.0/token", self.login_url, self.tenant);
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            form_encode(&self.client_id),
            form_encode(&self.client_secret),
            form_encode(SCOPE)
        );
        let decode = |resp: Response| -> Decoded<model::TokenAnswer> {
            if !(200..300).contains(&resp.status) {
                let (code, message) = parse_error(&resp.body);
                return Decoded::Done(Err(PowerBiError::Token {
                    tenant: self.tenant.clone(),
                    login: self.login_url.clone(),
                    status: resp.status,
                    code: code.map(|c| self.scrub(&c)),
                    message: message.map(|m| self.scrub(&m)),
                    id_env: self.id_env.clone(),
                    secret_env: self.secret_env.clone(),
                }));
            }
            json(&call, &resp)
        };
        let build = |_: Option<&str>| {
            Request::new("POST", url.clone())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Accept", "application/json")
                .body(body.clone())
        };
        let answer = self.fetch(&call, false, Idempotent::Yes, &build, &decode)?;
        self.tokens_fetched.fetch_add(1, Ordering::SeqCst);
        // Scrubbed from here on, wherever it goes (it is also a credential field: see `mod.rs`).
        self.secrets.add(&answer.access_token);
        if answer
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(PowerBiError::Protocol {
                call,
                message: format!(
                    "token_type {:?}, not Bearer",
                    answer.token_type.unwrap_or_default()
                ),
            });
        }
        if answer.access_token.trim().is_empty() {
            return Err(PowerBiError::Protocol {
                call,
                message: "the token answer has an empty access_token".into(),
            });
        }
        let Some(life) = answer.expires_in_secs() else {
            return Err(PowerBiError::Protocol {
                call,
                message: "the token answer has no numeric expires_in".into(),
            });
        };
        let life = Duration::from_secs(life);
        let early = RENEW_EARLY.min(life / 2);
        Ok(Token {
            value: answer.access_token,
            renew_at: (self.clock)() + (life - early),
        })
    }

    /// Sends with retries and decodes the answer once.
    ///
    /// - 408/429/5xx and network failures back off and send again (`Retry-After` wins, capped
    ///   by `retry.max_retry_after_secs`), up to `retry.attempts` tries; a request that may have
    ///   acted (`Idempotent::No`) only after a 429 or a connection never made.
    /// - A 401 on an authenticated call drops the token, fetches a new one and repeats, once.
    /// - A body `decode` finds cut short is asked for again within the same tries.
    pub(crate) fn fetch<T>(
        &self,
        call: &str,
        authed: bool,
        idempotent: Idempotent,
        build: &dyn Fn(Option<&str>) -> Request,
        decode: &dyn Fn(Response) -> Decoded<T>,
    ) -> Result<T, PowerBiError> {
        let reads = idempotent == Idempotent::Yes;
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(PowerBiError::Cancelled { call: call.into() });
            }
            attempt += 1;
            let token = if authed { Some(self.bearer()?) } else { None };
            let mut req = build(token.as_deref());
            if let Some(t) = &token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            if let Some(q) = Quota::of(&req.url) {
                self.within_quota(call, q)?;
            }
            self.requests_sent.fetch_add(1, Ordering::SeqCst);
            log::debug(&format!(
                "{} {}",
                req.method,
                self.scrub(req.path_and_query())
            ));
            let resp = match self.transport.send(&req) {
                Err(e) if e.is_retryable(reads) && attempt < self.retry.attempts => {
                    self.pause(call, &self.scrub(&e.to_string()), attempt, None);
                    continue;
                }
                Err(e) => return Err(self.transport_error(e)),
                Ok(resp) => resp,
            };
            self.responses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(RawResponse {
                    method: req.method,
                    path: self.scrub(req.path_and_query()),
                    status: resp.status,
                    bytes: resp.body.len(),
                    body: (self.keep_bodies == RawResponses::All
                        || !(200..300).contains(&resp.status))
                    .then(|| self.scrub(&resp.text())),
                });
            let retryable = if reads {
                matches!(resp.status, 408 | 429 | 500 | 502 | 503 | 504)
            } else {
                resp.status == 429
            };
            if retryable && attempt < self.retry.attempts {
                self.pause(
                    call,
                    &format!("HTTP {}", resp.status),
                    attempt,
                    resp.header("retry-after"),
                );
                continue;
            }
            if resp.status == 401 && authed {
                if renewed {
                    return Err(PowerBiError::Unauthorized { call: call.into() });
                }
                renewed = true;
                log::warn(&format!(
                    "{call}: HTTP 401, the token expired or was revoked; fetching a new one"
                ));
                self.drop_token();
                continue;
            }
            match decode(resp) {
                Decoded::Done(result) => return result,
                Decoded::Truncated(what) if reads && attempt < self.retry.attempts => {
                    self.pause(call, &what, attempt, None)
                }
                Decoded::Truncated(what) => {
                    return Err(PowerBiError::BadBody {
                        call: call.into(),
                        message: what,
                        tries: attempt,
                    })
                }
            }
        }
    }

    /// Waits, if it must, until a call of `q` fits in Power BI's hourly quota, checking for
    /// cancellation every second.
    fn within_quota(&self, call: &str, q: Quota) -> Result<(), PowerBiError> {
        let mut warned = false;
        loop {
            let admitted = self
                .hourly
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .admit(q, (self.clock)());
            let Err(wait) = admitted else { return Ok(()) };
            if !warned {
                log::warn(&format!(
                    "{call}: Power BI allows {} {} calls an hour and this run has sent them; waiting {:.0}s for the quota",
                    q.per_hour(),
                    q.name(),
                    wait.as_secs_f64()
                ));
                warned = true;
            }
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(PowerBiError::Cancelled { call: call.into() });
            }
            std::thread::sleep(wait.min(Duration::from_secs(1)));
        }
    }

    /// Whether a poll's wait can change the answer (not in replay: `Transport`).
    pub(crate) fn answers_change_with_time(&self) -> bool {
        self.transport.answers_change_with_time()
    }

    fn transport_error(&self, e: TransportError) -> PowerBiError {
        PowerBiError::Transport(self.scrub(&e.to_string()))
    }

    fn pause(&self, call: &str, why: &str, attempt: u32, retry_after: Option<&str>) {
        let wait = self.backoff(attempt, retry_after);
        log::warn(&format!(
            "{call}: {why}; retrying in {:.1}s (try {} of {})",
            wait.as_secs_f64(),
            attempt + 1,
            self.retry.attempts
        ));
        std::thread::sleep(wait);
    }

    fn backoff(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        self.retry.wait(attempt, retry_after)
    }

    fn error_from(&self, call: &str, resp: &Response) -> PowerBiError {
        let (code, message) = parse_error(&resp.body);
        PowerBiError::Http {
            call: call.into(),
            status: resp.status,
            code: code.map(|c| self.scrub(&c)),
            message: message.map(|m| self.scrub(&m)),
        }
    }

    /// A GET of JSON, 200 expected.
    fn get_json<T: DeserializeOwned>(&self, call: &str, url: &str) -> Result<T, PowerBiError> {
        let build = |_: Option<&str>| {
            Request::new("GET", url.to_string()).header("Accept", "application/json")
        };
        let decode = |resp: Response| {
            if resp.status != 200 {
                return Decoded::Done(Err(self.error_from(call, &resp)));
            }
            json(call, &resp)
        };
        self.fetch(call, true, Idempotent::Yes, &build, &decode)
    }

    /// `GET admin/workspaces/modified?excludePersonalWorkspaces=True&excludeInActiveWorkspaces=True`,
    /// without `modifiedSince`: every workspace id the principal may scan (reference section 2,
    /// `WorkspaceInfo_GetModifiedWorkspaces`; 30 calls an hour).
    pub(crate) fn modified_workspaces(
        &self,
    ) -> Result<Vec<model::ModifiedWorkspace>, PowerBiError> {
        let call = "GET admin/workspaces/modified";
        self.get_json(call, &self.api("admin/workspaces/modified?excludePersonalWorkspaces=True&excludeInActiveWorkspaces=True"))
    }

    /// `GET admin/workspaces/modified?modifiedSince=…&excludePersonalWorkspaces=True&excludeInActiveWorkspaces=True`:
    /// the workspaces modified since `since` (reference section 2: `modifiedSince` must be 30
    /// minutes to 30 days ago, else 400 `InvalidRequest`; written as the reference's example,
    /// `2025-03-01T00:00:00.0000000Z`). The caller keeps `since` in that window.
    pub(crate) fn modified_workspaces_since(
        &self,
        since: crate::clock::Instant,
    ) -> Result<Vec<model::ModifiedWorkspace>, PowerBiError> {
        let call = "GET admin/workspaces/modified?modifiedSince";
        let since = modified_since_text(since);
        let url = format!("admin/workspaces/modified?modifiedSince={}&excludePersonalWorkspaces=True&excludeInActiveWorkspaces=True", form_encode(&since));
        self.get_json(call, &self.api(&url))
    }

    /// `POST admin/workspaces/getInfo?lineage=True&datasourceDetails=True&datasetSchema=True&datasetExpressions=True`
    /// with `{"workspaces": [ids]}` (1–100), answered 202 with the scan (reference sections 2
    /// and 11: JSON, not DataHub's form body).
    pub(crate) fn start_scan(&self, ids: &[String]) -> Result<model::ScanRequest, PowerBiError> {
        let call = format!("POST admin/workspaces/getInfo ({} workspaces)", ids.len());
        let url = self.api("admin/workspaces/getInfo?lineage=True&datasourceDetails=True&datasetSchema=True&datasetExpressions=True");
        let body = serde_json::json!({ "workspaces": ids }).to_string();
        let build = |_: Option<&str>| {
            Request::new("POST", url.clone())
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(body.clone())
        };
        let decode = |resp: Response| {
            if resp.status != 202 && resp.status != 200 {
                return Decoded::Done(Err(self.error_from(&call, &resp)));
            }
            json(&call, &resp)
        };
        self.fetch(&call, true, Idempotent::No, &build, &decode)
    }

    /// `GET admin/workspaces/scanStatus/{id}` (10,000 an hour).
    pub(crate) fn scan_status(&self, scan: &str) -> Result<model::ScanRequest, PowerBiError> {
        let call = format!("GET admin/workspaces/scanStatus/{scan}");
        self.get_json(
            &call,
            &self.api(&format!("admin/workspaces/scanStatus/{}", path_part(scan))),
        )
    }

    /// `GET admin/workspaces/scanResult/{id}`, only after the scan succeeded (500 an hour).
    pub(crate) fn scan_result(&self, scan: &str) -> Result<model::ScanResult, PowerBiError> {
        let call = format!("GET admin/workspaces/scanResult/{scan}");
        self.get_json(
            &call,
            &self.api(&format!("admin/workspaces/scanResult/{}", path_part(scan))),
        )
    }

    /// `GET groups/{id}/reports`: the reports' `webUrl` (reference section 7). `Ok(None)` when
    /// the principal may not read the workspace (401 with a fresh token, 403, 404: it is not
    /// a member; the exact answer is UNVERIFIED), so the caller builds the URL instead.
    pub(crate) fn group_reports(
        &self,
        workspace: &str,
    ) -> Result<Option<model::GroupReports>, PowerBiError> {
        let call = format!("GET groups/{workspace}/reports");
        self.allowed(self.get_json(
            &call,
            &self.api(&format!("groups/{}/reports", path_part(workspace))),
        ))
    }

    /// `GET groups/{g}/datasets/{d}/parameters` (reference section 11,
    /// `Datasets_GetParametersInGroup`); `Ok(None)` when not allowed, as for `group_reports`.
    pub(crate) fn dataset_parameters(
        &self,
        workspace: &str,
        dataset: &str,
    ) -> Result<Option<model::Parameters>, PowerBiError> {
        let call = format!("GET groups/{workspace}/datasets/{dataset}/parameters");
        let url = self.api(&format!(
            "groups/{}/datasets/{}/parameters",
            path_part(workspace),
            path_part(dataset)
        ));
        self.allowed(self.get_json(&call, &url))
    }

    /// `POST groups/{g}/datasets/{d}/refreshes` with `{"notifyOption":"NoNotification"}`
    /// (reference section 8, PBI-swagger `Datasets_RefreshDatasetInGroup`: the one option a
    /// service principal may send). Sent once: it is not idempotent (a second POST would spend
    /// a second of the day's refreshes), so `fetch` repeats it only after a 429 (honouring
    /// `Retry-After`, section 9), a 401 or a connection never made. Any answered status comes
    /// back for the caller to read.
    pub(crate) fn refresh_dataset(
        &self,
        workspace: &str,
        dataset: &str,
    ) -> Result<Response, PowerBiError> {
        let call = format!("POST groups/{workspace}/datasets/{dataset}/refreshes");
        let url = self.api(&format!(
            "groups/{}/datasets/{}/refreshes",
            path_part(workspace),
            path_part(dataset)
        ));
        let build = |_: Option<&str>| {
            Request::new("POST", url.clone())
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(r#"{"notifyOption":"NoNotification"}"#)
        };
        self.fetch(&call, true, Idempotent::No, &build, &|resp| {
            Decoded::Done(Ok(resp))
        })
    }

    /// `GET groups/{g}/datasets/{d}/refreshes?$top=N`, the refresh history, newest first
    /// (reference section 8, `Datasets_GetRefreshHistoryInGroup`).
    pub(crate) fn refresh_history(
        &self,
        workspace: &str,
        dataset: &str,
        top: u32,
    ) -> Result<model::Refreshes, PowerBiError> {
        let call = format!("GET groups/{workspace}/datasets/{dataset}/refreshes");
        let url = self.api(&format!(
            "groups/{}/datasets/{}/refreshes?$top={top}",
            path_part(workspace),
            path_part(dataset)
        ));
        self.get_json(&call, &url)
    }

    /// The code and message of an error body, scrubbed.
    pub(crate) fn error_of(&self, resp: &Response) -> (Option<String>, Option<String>) {
        let (code, message) = parse_error(&resp.body);
        (
            code.map(|c| self.scrub(&c)),
            message.map(|m| self.scrub(&m)),
        )
    }

    fn allowed<T>(&self, r: Result<T, PowerBiError>) -> Result<Option<T>, PowerBiError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An id from an answer, as one path segment: anything but letters, digits, `-` and `_`
/// encoded (dots too: `..` would climb), so a hostile id cannot change the path.
/// `2025-03-01T00:00:00.0000000Z`: how reference section 2 writes `modifiedSince`.
pub(crate) fn modified_since_text(t: crate::clock::Instant) -> String {
    let text = t.rfc3339();
    format!("{}.0000000Z", text.trim_end_matches('Z'))
}

fn path_part(id: &str) -> String {
    form_encode(id)
        .replace('+', "%20")
        .replace('.', "%2E")
        .replace('*', "%2A")
}

/// Decodes a JSON body: cut short or not JSON is worth asking again; JSON of another shape
/// is an error naming where.
fn json<T: DeserializeOwned>(call: &str, resp: &Response) -> Decoded<T> {
    use serde_json::error::Category;
    match serde_json::from_slice::<T>(&resp.body) {
        Ok(v) => Decoded::Done(Ok(v)),
        Err(e) => match e.classify() {
            Category::Eof | Category::Syntax | Category::Io => Decoded::Truncated(format!(
                "the body is cut short or not JSON ({} bytes): {e}",
                resp.body.len()
            )),
            Category::Data => Decoded::Done(Err(PowerBiError::Protocol {
                call: call.into(),
                message: format!("unexpected answer ({} bytes): {e}", resp.body.len()),
            })),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Each scanner call counts against its own hourly quota; a full window says how long until
    /// its oldest call leaves it, and counts nothing meanwhile.
    #[test]
    fn scanner_calls_wait_for_their_hourly_quota() {
        let q = |path: &str| Quota::of(path);
        assert_eq!(
            q("https://api.example/v1.0/myorg/admin/workspaces/getInfo?lineage=True"),
            Some(Quota::GetInfo)
        );
        assert_eq!(q("https://api.example/v1.0/myorg/admin/workspaces/modified?excludePersonalWorkspaces=True"), Some(Quota::Modified));
        assert_eq!(
            q("https://api.example/v1.0/myorg/admin/workspaces/scanStatus/s-1"),
            Some(Quota::ScanStatus)
        );
        assert_eq!(
            q("https://api.example/v1.0/myorg/admin/workspaces/scanResult/s-1"),
            Some(Quota::ScanResult)
        );
        assert_eq!(q("https://api.example/v1.0/myorg/groups/g/reports"), None);
        assert_eq!(q("https://login.example/t/oauth2/v2.0/token"), None);

        let start = Instant::now();
        let mut h = Hourly::default();
        for i in 0..30 {
            assert_eq!(
                h.admit(Quota::Modified, start + Duration::from_secs(i)),
                Ok(())
            );
        }
        let later = start + Duration::from_secs(600);
        assert_eq!(
            h.admit(Quota::Modified, later),
            Err(Duration::from_secs(3000)),
            "until the first call is an hour old"
        );
        assert_eq!(
            h.admit(Quota::GetInfo, later),
            Ok(()),
            "another call's quota is its own"
        );
        assert_eq!(
            h.admit(Quota::Modified, start + HOUR),
            Ok(()),
            "the first call left the window"
        );
        assert_eq!(
            h.admit(Quota::Modified, start + HOUR),
            Err(Duration::from_secs(1))
        );
    }

    /// Answers from a list, and keeps what was sent.
    struct Script {
        answers: Mutex<Vec<Response>>,
        sent: Arc<Mutex<Vec<Request>>>,
    }

    impl Transport for Script {
        fn send(&self, req: &Request) -> Result<Response, TransportError> {
            self.sent.lock().unwrap().push(req.clone());
            let mut a = self.answers.lock().unwrap();
            assert!(
                !a.is_empty(),
                "unexpected request {} {}",
                req.method,
                req.url
            );
            Ok(a.remove(0))
        }
    }

    fn ok(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn token(value: &str, life: u64) -> Response {
        ok(
            200,
            &format!(
                r#"{{"token_type":"Bearer","expires_in":{life},"ext_expires_in":{life},"access_token":"{value}"}}"#
            ),
        )
    }

    fn tenant() -> PowerBiTenant {
        serde_yaml::from_str("name: corp\ntenant_id: t-1\napi_url: https://api.example\nlogin_url: https://login.example\nretry: {attempts: 3, base_delay_ms: 1}\n").unwrap()
    }

    fn client(answers: Vec<Response>, clock: Clock) -> (Client, Arc<Mutex<Vec<Request>>>, Secrets) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let secrets = Secrets::default();
        secrets.add_credential_fields(super::super::CREDENTIAL_FIELDS);
        secrets.add("the-client-secret");
        let t = Script {
            answers: Mutex::new(answers),
            sent: Arc::clone(&sent),
        };
        let c = Client::new(
            &tenant(),
            Box::new(t),
            secrets.clone(),
            "app-id-1".into(),
            "the-client-secret".into(),
        )
        .with_clock(clock);
        (c, sent, secrets)
    }

    /// A clock tests move by hand.
    fn manual() -> (Arc<Mutex<Duration>>, Clock) {
        let start = Instant::now();
        let offset = Arc::new(Mutex::new(Duration::ZERO));
        let o = Arc::clone(&offset);
        (offset, Box::new(move || start + *o.lock().unwrap()))
    }

    #[test]
    fn the_token_request_is_client_credentials_with_the_power_bi_scope() {
        let (_, clock) = manual();
        let (c, sent, _) = client(
            vec![token("tok-AAAA", 3599), ok(200, r#"[{"id":"w1"}]"#)],
            clock,
        );
        assert_eq!(c.modified_workspaces().unwrap()[0].id, "w1");
        let sent = sent.lock().unwrap();
        assert_eq!(sent[0].url, "https://login.example/t-1/oauth2/v2.0/token");
        assert_eq!(
            String::from_utf8_lossy(&sent[0].body),
            "grant_type=client_credentials&client_id=app-id-1&client_secret=the-client-secret&scope=https%3A%2F%2Fanalysis.windows.net%2Fpowerbi%2Fapi%2F.default"
        );
        assert!(sent[0]
            .headers
            .iter()
            .any(|(k, v)| *k == "Content-Type" && v == "application/x-www-form-urlencoded"));
        assert_eq!(sent[1].url, "https://api.example/v1.0/myorg/admin/workspaces/modified?excludePersonalWorkspaces=True&excludeInActiveWorkspaces=True");
        assert!(sent[1]
            .headers
            .iter()
            .any(|(k, v)| *k == "Authorization" && v == "Bearer tok-AAAA"));
    }

    /// The incremental listing as shared/reference/powerbi.md section 2 documents it:
    /// `modifiedSince=2025-03-01T00:00:00.0000000Z` (seven fractional digits, UTC), URL-encoded,
    /// with the two exclusions as for the full listing.
    #[test]
    fn the_modified_since_listing_has_the_documented_shape() {
        let t = crate::clock::Instant::parse("2025-03-01T00:00:00Z").unwrap();
        assert_eq!(modified_since_text(t), "2025-03-01T00:00:00.0000000Z");
        let (_, clock) = manual();
        let (c, sent, _) = client(
            vec![token("tok-AAAA", 3599), ok(200, r#"[{"id":"w1"}]"#)],
            clock,
        );
        assert_eq!(c.modified_workspaces_since(t).unwrap()[0].id, "w1");
        assert_eq!(
            sent.lock().unwrap()[1].url,
            "https://api.example/v1.0/myorg/admin/workspaces/modified?modifiedSince=2025-03-01T00%3A00%3A00.0000000Z&excludePersonalWorkspaces=True&excludeInActiveWorkspaces=True"
        );
    }

    #[test]
    fn the_token_is_renewed_before_it_expires_and_once_on_a_401() {
        let (offset, clock) = manual();
        let answers = vec![
            token("tok-one1", 3599),
            ok(200, "[]"),
            // 3599 - 300 s later: renewed before the call.
            token("tok-two2", 3599),
            ok(200, "[]"),
            // A 401 with a token still fresh: a new one, the call repeated once.
            ok(
                401,
                r#"{"error":{"code":"TokenExpired","message":"expired"}}"#,
            ),
            token("tok-three", 3599),
            ok(200, "[]"),
            // Still 401 with the new token: an error, not a loop.
            ok(401, "{}"),
            token("tok-four", 3599),
            ok(401, "{}"),
        ];
        let (c, sent, _) = client(answers, clock);
        c.modified_workspaces().unwrap();
        *offset.lock().unwrap() = Duration::from_secs(3299);
        c.modified_workspaces().unwrap();
        c.modified_workspaces().unwrap();
        let err = c.modified_workspaces().unwrap_err().to_string();
        assert!(err.contains("still 401"), "{err}");
        let auth: Vec<String> = sent
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| {
                r.headers
                    .iter()
                    .find(|(k, _)| *k == "Authorization")
                    .map(|(_, v)| v.clone())
            })
            .collect();
        assert_eq!(
            auth,
            [
                "Bearer tok-one1",
                "Bearer tok-two2",
                "Bearer tok-two2",
                "Bearer tok-three",
                "Bearer tok-three",
                "Bearer tok-four"
            ]
        );
        assert_eq!(c.tokens_fetched(), 4);
    }

    #[test]
    fn a_rejected_secret_is_an_error_naming_the_env_vars_never_the_secret() {
        let (_, clock) = manual();
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is 'the-client-secret'. Trace ID: x"}"#;
        let (c, _, _) = client(vec![ok(401, body)], clock);
        let err = c.modified_workspaces().unwrap_err().to_string();
        assert!(
            err.contains("invalid_client: AADSTS7000215") && err.contains("POWERBI_CLIENT_SECRET"),
            "{err}"
        );
        assert!(!err.contains("the-client-secret"), "{err}");
        let raw = c.take_responses();
        assert_eq!(raw[0].status, 401);
        assert!(
            !raw[0]
                .body
                .as_deref()
                .unwrap()
                .contains("the-client-secret"),
            "{raw:?}"
        );
    }

    #[test]
    fn retries_honour_retry_after_and_bodies_cut_short() {
        let (_, clock) = manual();
        let mut limited = ok(429, "");
        limited.headers.push(("retry-after".into(), "0".into()));
        let answers = vec![
            token("tok-AAAA", 3599),
            limited,
            ok(200, r#"[{"id":"w"#),
            ok(200, r#"[{"id":"w1"}]"#),
        ];
        let (c, sent, _) = client(answers, clock);
        assert_eq!(c.modified_workspaces().unwrap().len(), 1);
        assert_eq!(sent.lock().unwrap().len(), 4);
        // The token never reaches what is kept.
        assert!(c.take_responses().iter().all(|r| !r
            .body
            .as_deref()
            .unwrap_or("")
            .contains("tok-AAAA")));
    }

    #[test]
    fn a_scan_start_is_not_sent_twice_after_a_5xx() {
        let (_, clock) = manual();
        let (c, sent, _) = client(vec![token("tok-AAAA", 3599), ok(503, "")], clock);
        let err = c.start_scan(&["w1".into()]).unwrap_err().to_string();
        assert!(err.contains("HTTP 503"), "{err}");
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(
            String::from_utf8_lossy(&sent[1].body),
            r#"{"workspaces":["w1"]}"#
        );
        assert!(sent[1].url.ends_with("getInfo?lineage=True&datasourceDetails=True&datasetSchema=True&datasetExpressions=True"));
    }

    #[test]
    fn not_allowed_is_none_and_hostile_ids_stay_one_segment() {
        let (_, clock) = manual();
        let (c, sent, _) = client(
            vec![
                token("tok-AAAA", 3599),
                ok(403, r#"{"error":{"code":"Forbidden"}}"#),
            ],
            clock,
        );
        assert!(c.group_reports("../admin x").unwrap().is_none());
        assert_eq!(
            sent.lock().unwrap()[1].url,
            "https://api.example/v1.0/myorg/groups/%2E%2E%2Fadmin%20x/reports"
        );
    }
}
