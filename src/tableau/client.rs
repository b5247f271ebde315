//! Tableau REST and Metadata API calls over a `Transport`: version discovery, PAT sign-in
//! (one session per PAT, re-signed once on a 401), retries with backoff, sign-out.
//!
//! What it does not do: paging policy and what the rows mean (see `extract.rs`), SQLite.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{RawResponses, Retry, TableauSite};
use crate::http::{Request, Response, Secrets, Transport, TransportError};
use crate::log;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TableauError {
    #[error("{0}")]
    Transport(String),
    #[error("{call}: HTTP {status}{}", tableau_error_text(.code, .summary, .detail))]
    Http { call: String, status: u16, code: Option<String>, summary: Option<String>, detail: Option<String> },
    #[error("sign-in to Tableau site {site:?} on {server} failed: HTTP {status}{}. Check the personal access token in the env vars {name_env} and {secret_env} (names and secrets are case-sensitive; a PAT expires after 15 days unused) and the `site` content URL in the config", tableau_error_text(.code, .summary, .detail))]
    SignIn {
        site: String,
        server: String,
        status: u16,
        code: Option<String>,
        summary: Option<String>,
        detail: Option<String>,
        name_env: String,
        secret_env: String,
    },
    #[error("{call}: unexpected response: {message}")]
    Protocol { call: String, message: String },
    #[error("{call}: still 401 Unauthorized after signing in again; the PAT's user may have lost access to site {site:?}")]
    Unauthorized { call: String, site: String },
    #[error("{call}: not sent: the run stopped on an earlier error")]
    Cancelled { call: String },
}

fn tableau_error_text(code: &Option<String>, summary: &Option<String>, detail: &Option<String>) -> String {
    let mut out = String::new();
    if let Some(c) = code {
        out.push_str(&format!(" (Tableau error {c}"));
        if let Some(s) = summary {
            out.push_str(&format!(": {s}"));
        }
        if let Some(d) = detail {
            out.push_str(&format!(" — {d}"));
        }
        out.push(')');
    }
    out
}

/// A response as kept in `raw_responses`: scrubbed. Requests overlap, so they are ordered by
/// what was asked (`path`, a digest of the request, the try), not by when.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RawResponse {
    pub(crate) path: String,
    pub(crate) request_digest: String,
    pub(crate) attempt: u32,
    pub(crate) method: &'static str,
    pub(crate) status: u16,
    pub(crate) bytes: usize,
    /// Scrubbed; `None` when the site's `raw_responses` setting does not keep it.
    pub(crate) body: Option<String>,
}

#[derive(Clone)]
struct Session {
    token: String,
    site_luid: String,
}

/// One site's client. Shared by reference across the threads of one extraction: one PAT
/// holds one session, so every thread uses the same token, and a 401 signs in again once
/// for all of them (`generation` tells a thread whether someone already did).
pub(crate) struct Client {
    transport: Box<dyn Transport>,
    secrets: Secrets,
    server: RwLock<String>,
    api_version: RwLock<String>,
    product_version: RwLock<Option<String>>,
    content_url: String,
    pat_name: String,
    pat_secret: String,
    name_env: String,
    secret_env: String,
    retry: Retry,
    session: RwLock<Option<Session>>,
    generation: AtomicU64,
    signing_in: Mutex<()>,
    responses: Mutex<Vec<RawResponse>>,
    keep_bodies: RawResponses,
    requests_sent: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Set when the run fails elsewhere (a bad manifest read meanwhile): no more requests.
    cancelled: AtomicBool,
}

impl Client {
    pub(crate) fn new(
        site: &TableauSite,
        transport: Box<dyn Transport>,
        secrets: Secrets,
        pat_name: String,
        pat_secret: String,
    ) -> Client {
        // The secret is scrubbed wherever it occurs; the name, in the sign-in body's field only.
        secrets.add(&pat_secret);
        Client {
            transport,
            secrets,
            server: RwLock::new(site.server_url.trim_end_matches('/').to_string()),
            api_version: RwLock::new("2.4".into()),
            product_version: RwLock::new(None),
            content_url: site.site.clone(),
            pat_name,
            pat_secret,
            name_env: site.token_name_env.clone(),
            secret_env: site.token_secret_env.clone(),
            retry: site.retry,
            session: RwLock::new(None),
            generation: AtomicU64::new(0),
            signing_in: Mutex::new(()),
            responses: Mutex::new(Vec::new()),
            keep_bodies: site.raw_responses,
            requests_sent: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            cancelled: AtomicBool::new(false),
        }
    }

    /// How many requests to keep in flight: the site's `concurrency`, unless the transport
    /// knows that fewer are better (replay).
    pub(crate) fn concurrency(&self, configured: u32) -> usize {
        let configured = (configured as usize).max(1);
        self.transport.max_in_flight().map_or(configured, |most| configured.min(most.max(1)))
    }

    /// Makes every later request fail at once with `Cancelled`, without sending it.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub(crate) fn site_luid(&self) -> Option<String> {
        self.session.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.site_luid.clone())
    }

    pub(crate) fn server(&self) -> String {
        self.server.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn api_version(&self) -> String {
        self.api_version.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn product_version(&self) -> Option<String> {
        self.product_version.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn requests_sent(&self) -> usize {
        self.requests_sent.load(Ordering::SeqCst)
    }

    /// The most requests this client had waiting for an answer at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// The responses so far, in a stable order, and forgets them.
    pub(crate) fn take_responses(&self) -> Vec<RawResponse> {
        let mut all = std::mem::take(&mut *self.responses.lock().unwrap_or_else(|e| e.into_inner()));
        all.sort();
        all
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }

    fn transport_error(&self, e: TransportError) -> TableauError {
        TableauError::Transport(self.scrub(&e.to_string()))
    }

    /// Sends with retries: 408/429/5xx and connection failures back off (Retry-After wins);
    /// a 401 on an authenticated call signs in again once and repeats the request.
    pub(super) fn send(&self, call: &str, authed: bool, build: &dyn Fn(&Client) -> Request) -> Result<Response, TableauError> {
        let mut attempt = 0u32;
        let mut resigned = false;
        loop {
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(TableauError::Cancelled { call: call.into() });
            }
            attempt += 1;
            let generation = self.generation.load(Ordering::SeqCst);
            let req = build(self);
            self.requests_sent.fetch_add(1, Ordering::SeqCst);
            log::debug(&format!("{} {}", req.method, self.scrub(req.path_and_query())));
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let sent = self.transport.send(&req);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            match sent {
                Err(e) if e.is_retryable() && attempt < self.retry.attempts => {
                    let wait = self.backoff(attempt, None);
                    log::warn(&format!(
                        "{call}: {}; retrying in {:.1}s (try {} of {})",
                        self.scrub(&e.to_string()),
                        wait.as_secs_f64(),
                        attempt + 1,
                        self.retry.attempts
                    ));
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(self.transport_error(e)),
                Ok(resp) => {
                    let path = self.scrub(req.path_and_query());
                    let digest = crate::config::hex_sha256(self.scrub(&String::from_utf8_lossy(&req.body)).as_bytes());
                    self.responses.lock().unwrap_or_else(|e| e.into_inner()).push(RawResponse {
                        path,
                        request_digest: digest[..16].to_string(),
                        attempt,
                        method: req.method,
                        status: resp.status,
                        bytes: resp.body.len(),
                        body: (self.keep_bodies == RawResponses::All || !(200..300).contains(&resp.status))
                            .then(|| self.scrub(&resp.text())),
                    });
                    let retryable = matches!(resp.status, 408 | 429 | 500 | 502 | 503 | 504);
                    if retryable && attempt < self.retry.attempts {
                        let wait = self.backoff(attempt, resp.header("retry-after"));
                        log::warn(&format!(
                            "{call}: HTTP {}; retrying in {:.1}s (try {} of {})",
                            resp.status,
                            wait.as_secs_f64(),
                            attempt + 1,
                            self.retry.attempts
                        ));
                        std::thread::sleep(wait);
                        continue;
                    }
                    if resp.status == 401 && authed {
                        if resigned {
                            return Err(TableauError::Unauthorized { call: call.into(), site: self.content_url.clone() });
                        }
                        resigned = true;
                        self.sign_in_again(call, generation)?;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    /// Signs in again after a 401, unless another thread already did since `seen` (then its
    /// new token is simply used): two sign-ins with one PAT would end each other's sessions.
    fn sign_in_again(&self, call: &str, seen: u64) -> Result<(), TableauError> {
        let _one_at_a_time = self.signing_in.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) != seen {
            return Ok(());
        }
        log::warn(&format!("{call}: HTTP 401, the session expired; signing in again"));
        self.sign_in()
    }

    fn backoff(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            return Duration::from_secs(secs.min(300));
        }
        let ms = self.retry.base_delay_ms.saturating_mul(1u64 << (attempt - 1).min(16));
        Duration::from_millis(ms.min(60_000))
    }

    fn error_from(&self, call: &str, resp: &Response) -> TableauError {
        let (code, summary, detail) = parse_error(&resp.text());
        TableauError::Http {
            call: call.into(),
            status: resp.status,
            code,
            summary: summary.map(|s| self.scrub(&s)),
            detail: detail.map(|s| self.scrub(&s)),
        }
    }

    fn api(&self, tail: &str) -> String {
        format!("{}/api/{}/{}", self.server(), self.api_version(), tail)
    }

    pub(super) fn site_path(&self, tail: &str) -> String {
        let site = self.site_luid().unwrap_or_default();
        self.api(&format!("sites/{site}/{tail}"))
    }

    pub(super) fn auth_header(&self) -> String {
        self.session.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.token.clone()).unwrap_or_default()
    }

    /// `GET /api/2.4/serverInfo`: the REST API version every later path uses.
    pub(crate) fn server_info(&self) -> Result<(), TableauError> {
        let call = "GET /api/2.4/serverInfo";
        let url = format!("{}/api/2.4/serverInfo", self.server());
        let resp = self.send(call, false, &|_| Request::new("GET", url.clone()).header("Accept", "application/xml"))?;
        if resp.status != 200 {
            return Err(self.error_from(call, &resp));
        }
        let text = resp.text();
        let doc = roxmltree::Document::parse(&text)
            .map_err(|e| TableauError::Protocol { call: call.into(), message: format!("not XML: {e}") })?;
        let find = |tag: &str| {
            doc.descendants().find(|n| n.has_tag_name(tag)).and_then(|n| n.text()).map(|t| t.trim().to_string())
        };
        let version = find("restApiVersion")
            .ok_or_else(|| TableauError::Protocol { call: call.into(), message: "no restApiVersion".into() })?;
        if !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(TableauError::Protocol { call: call.into(), message: format!("odd restApiVersion {version:?}") });
        }
        *self.api_version.write().unwrap_or_else(|e| e.into_inner()) = version;
        *self.product_version.write().unwrap_or_else(|e| e.into_inner()) = find("productVersion");
        Ok(())
    }

    /// `POST /api/{v}/auth/signin` with the PAT. A 301 (Tableau Cloud's bare host to a pod) is
    /// POSTed again by hand to its `Location`, and that host is used from then on.
    pub(crate) fn sign_in(&self) -> Result<(), TableauError> {
        let call = format!("POST /api/{}/auth/signin", self.api_version());
        let body = json!({"credentials": {
            "personalAccessTokenName": self.pat_name,
            "personalAccessTokenSecret": self.pat_secret,
            "site": {"contentUrl": self.content_url}}})
        .to_string();
        let mut url = self.api("auth/signin");
        let mut redirected = false;
        let resp = loop {
            let target = url.clone();
            let b = body.clone();
            let resp = self.send(&call, false, &|_| {
                Request::new("POST", target.clone())
                    .header("Content-Type", "application/json")
                    .header("Accept", "application/json")
                    .body(b.clone())
            })?;
            if matches!(resp.status, 301 | 302 | 307 | 308) && !redirected {
                let location = resp.header("location").unwrap_or_default().to_string();
                let Some(origin) = origin_of(&location) else {
                    return Err(TableauError::Protocol { call, message: format!("redirect without a usable Location {location:?}") });
                };
                log::info(&format!("Tableau sign-in redirected from {} to {origin}", self.server()));
                *self.server.write().unwrap_or_else(|e| e.into_inner()) = origin;
                url = location;
                redirected = true;
                continue;
            }
            break resp;
        };
        if resp.status == 401 || resp.status == 403 {
            let (code, summary, detail) = parse_error(&resp.text());
            return Err(TableauError::SignIn {
                site: self.content_url.clone(),
                server: self.server(),
                status: resp.status,
                code,
                summary,
                detail: detail.map(|d| self.scrub(&d)),
                name_env: self.name_env.clone(),
                secret_env: self.secret_env.clone(),
            });
        }
        if !(200..300).contains(&resp.status) {
            return Err(self.error_from(&call, &resp));
        }
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| TableauError::Protocol { call: call.clone(), message: format!("not JSON: {e}") })?;
        let creds = &v["credentials"];
        let (Some(token), Some(site_luid)) = (creds["token"].as_str(), creds["site"]["id"].as_str()) else {
            return Err(TableauError::Protocol { call, message: "no credentials.token or credentials.site.id".into() });
        };
        self.secrets.add(token);
        *self.session.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Session { token: token.to_string(), site_luid: site_luid.to_string() });
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// `POST /api/{v}/auth/signout`. Failures are logged, never fatal: the session expires anyway.
    pub(crate) fn sign_out(&self) {
        if self.site_luid().is_none() {
            return;
        }
        let call = format!("POST /api/{}/auth/signout", self.api_version());
        let url = self.api("auth/signout");
        let result = self.send(&call, false, &|c| {
            Request::new("POST", url.clone()).header("X-Tableau-Auth", c.auth_header())
        });
        match result {
            Ok(r) if (200..300).contains(&r.status) => {}
            Ok(r) => log::warn(&format!("{call}: HTTP {}", r.status)),
            Err(e) => log::warn(&format!("{e}")),
        }
        *self.session.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// `POST /api/metadata/graphql`; returns the JSON body (data and errors as Tableau sent).
    pub(crate) fn graphql(&self, name: &str, query: &str, variables: &Value) -> Result<Vec<u8>, TableauError> {
        let call = format!("POST /api/metadata/graphql ({name})");
        let url = format!("{}/api/metadata/graphql", self.server());
        let body = json!({"query": query, "variables": variables}).to_string();
        let resp = self.send(&call, true, &|c| {
            Request::new("POST", url.clone())
                .header("X-Tableau-Auth", c.auth_header())
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(body.clone())
        })?;
        if resp.status != 200 {
            return Err(self.error_from(&call, &resp));
        }
        if !resp.body.trim_ascii_start().starts_with(b"{") {
            return Err(TableauError::Protocol {
                call,
                message: "not a JSON object; Tableau sometimes answers an oversized query with an empty body: lower page_size".into(),
            });
        }
        Ok(resp.body)
    }

    /// Every project on the site, following REST paging to `totalAvailable`.
    pub(crate) fn projects(&self) -> Result<Vec<Project>, TableauError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        let size = 100u32;
        loop {
            let call = format!("GET /api/{}/sites/{{site}}/projects?pageNumber={page}", self.api_version());
            let url = self.site_path(&format!("projects?pageSize={size}&pageNumber={page}"));
            let resp = self.send(&call, true, &|c| {
                Request::new("GET", url.clone()).header("X-Tableau-Auth", c.auth_header()).header("Accept", "application/xml")
            })?;
            if resp.status != 200 {
                return Err(self.error_from(&call, &resp));
            }
            let text = resp.text();
            let doc = roxmltree::Document::parse(&text)
                .map_err(|e| TableauError::Protocol { call: call.clone(), message: format!("not XML: {e}") })?;
            let mut n = 0;
            for p in doc.descendants().filter(|n| n.has_tag_name("project")) {
                n += 1;
                out.push(Project {
                    luid: p.attribute("id").unwrap_or_default().to_string(),
                    name: p.attribute("name").unwrap_or_default().to_string(),
                    parent_luid: p.attribute("parentProjectId").filter(|s| !s.is_empty()).map(str::to_string),
                });
            }
            let total: u64 = doc
                .descendants()
                .find(|n| n.has_tag_name("pagination"))
                .and_then(|p| p.attribute("totalAvailable"))
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            if n == 0 || u64::from(page) * u64::from(size) >= total {
                break;
            }
            page += 1;
        }
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) luid: String,
    pub(crate) name: String,
    pub(crate) parent_luid: Option<String>,
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    if host.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

/// Tableau's error element, XML (`<error code=…><summary/><detail/>`) or its JSON mirror.
pub(crate) fn parse_error(body: &str) -> (Option<String>, Option<String>, Option<String>) {
    if let Ok(doc) = roxmltree::Document::parse(body) {
        if let Some(e) = doc.descendants().find(|n| n.has_tag_name("error")) {
            let child = |tag: &str| {
                e.children().find(|n| n.has_tag_name(tag)).and_then(|n| n.text()).map(|t| t.trim().to_string())
            };
            return (e.attribute("code").map(str::to_string), child("summary"), child("detail"));
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let e = &v["error"];
        let s = |k: &str| match &e[k] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if e.is_object() {
            return (s("code"), s("summary"), s("detail"));
        }
    }
    (None, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xml_and_json_errors() {
        let xml = r#"<tsResponse xmlns="http://tableau.com/api"><error code="401001"><summary>Signin Error</summary><detail>Error signing in</detail></error></tsResponse>"#;
        assert_eq!(
            parse_error(xml),
            (Some("401001".into()), Some("Signin Error".into()), Some("Error signing in".into()))
        );
        let json = r#"{"error":{"code":"409093","summary":"Resource Conflict","detail":"queued"}}"#;
        assert_eq!(parse_error(json).0.as_deref(), Some("409093"));
        assert_eq!(parse_error("{\"status\":401}"), (None, None, None));
    }

    #[test]
    fn origin_keeps_scheme_host_and_port() {
        assert_eq!(origin_of("https://10az.online.tableau.com/api/3.23/auth/signin").as_deref(), Some("https://10az.online.tableau.com"));
        assert_eq!(origin_of("http://localhost:8080/x").as_deref(), Some("http://localhost:8080"));
        assert_eq!(origin_of("/relative"), None);
    }
}
