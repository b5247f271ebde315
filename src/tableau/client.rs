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
    Http {
        call: String,
        status: u16,
        code: Option<String>,
        summary: Option<String>,
        detail: Option<String>,
    },
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
    #[error("{call}: {message} (after {tries} tries; a proxy or the network may be cutting answers short)")]
    BadBody {
        call: String,
        message: String,
        tries: u32,
    },
    /// A 2xx answer to a read that is not what Tableau sends (see `Client::not_data`), after
    /// the last try: never read as an empty list. (To a request that may have acted, a
    /// refresh, it is a `Protocol` error at once: an answer lost, like a torn one.)
    #[error("{call}: {message} (after {tries} tries; a proxy, captive portal or login page may be answering in Tableau's place)")]
    NotData {
        call: String,
        message: String,
        tries: u32,
    },
}

/// Whether sending a request twice does no harm (reads, sign-in) or may act twice (a refresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotent {
    Yes,
    No,
}

/// What a caller made of a response.
pub(crate) enum Decoded<T> {
    /// The value, or an error that asking again would not fix (a wrong shape, an HTTP error).
    Done(Result<T, TableauError>),
    /// The body is cut short or not the JSON/XML it claims to be: worth asking again.
    Truncated(String),
    /// Whole, but not an answer of the documented shape (a GraphQL object without `data` or
    /// `errors`, a sign-in without `credentials`): asked again, then `TableauError::NotData`.
    NotData(String),
}

/// Where in `body` a parser stopped, as a byte offset, from its 1-based line and column
/// (serde_json counts columns in bytes; roxmltree in characters, close enough for a message).
pub(crate) fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(body.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(body.len())
}

/// A serde_json error on a response body: a body cut short or not JSON is `Truncated` (worth
/// asking again), valid JSON of the wrong shape is `Done(Err)` (asking again would not help).
pub(crate) fn json_failure<T>(call: &str, body: &[u8], e: &serde_json::Error) -> Decoded<T> {
    use serde_json::error::Category;
    // At the end of input serde_json points at the last byte; the body stops after it.
    let at = if e.is_eof() {
        body.len()
    } else {
        byte_offset(body, e.line(), e.column())
    };
    match e.classify() {
        Category::Eof | Category::Syntax | Category::Io => Decoded::Truncated(format!(
            "the body is cut short or not JSON at byte {at} of {}: {e}",
            body.len()
        )),
        Category::Data => Decoded::Done(Err(TableauError::Protocol {
            call: call.into(),
            message: format!("unexpected answer at byte {at} of {}: {e}", body.len()),
        })),
    }
}

/// A roxmltree error on a response body: a body cut short or not XML.
pub(crate) fn xml_failure<T>(text: &str, e: &roxmltree::Error) -> Decoded<T> {
    let pos = e.pos();
    let at = byte_offset(text.as_bytes(), pos.row as usize, pos.col as usize);
    Decoded::Truncated(format!(
        "the body is cut short or not XML at byte {at} of {}: {e}",
        text.len()
    ))
}

/// Tableau's REST namespace (shared/reference/tableau.md).
const TABLEAU_NS: &str = "http://tableau.com/api";

/// Why `doc` is not a Tableau REST answer, if it is not one.
fn not_ts_response(doc: &roxmltree::Document) -> Option<String> {
    let root = doc.root_element().tag_name();
    if root.name() == "tsResponse" && root.namespace() == Some(TABLEAU_NS) {
        return None;
    }
    let ns = root
        .namespace()
        .map(|n| format!(" in namespace {n:?}"))
        .unwrap_or_default();
    let name: String = root.name().chars().take(64).collect();
    Some(format!(
        "its root element is <{name}>{ns}, not <tsResponse> in {TABLEAU_NS:?}"
    ))
}

/// The media type of a `Content-Type` value, lower-cased, without its parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether `content_type` is the `asked` family: `application/xml` answers may also come as
/// `text/xml` or `…+xml`, `application/json` ones as `…+json`.
fn content_type_fits(asked: &str, content_type: Option<&str>) -> bool {
    let Some(got) = content_type.map(media_type) else {
        return false;
    };
    match asked {
        "application/xml" => got == "application/xml" || got == "text/xml" || got.ends_with("+xml"),
        "application/json" => got == "application/json" || got.ends_with("+json"),
        _ => true,
    }
}

/// The start of a body for an error message: at most 60 characters, quoted and escaped.
/// Scrubbed by the caller.
fn body_start(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(240)]);
    let head: String = text.chars().take(60).collect();
    let more = if head.len() < body.len() { "…" } else { "" };
    format!("{head:?}{more}")
}

/// Whether a GraphQL answer has `data` or `errors` at its top (null counts: the key is there).
fn has_data_or_errors(body: &[u8]) -> bool {
    #[derive(Default)]
    struct Present(bool);
    impl<'de> serde::Deserialize<'de> for Present {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d)?;
            Ok(Present(true))
        }
    }
    #[derive(serde::Deserialize)]
    struct Keys {
        #[serde(default)]
        data: Present,
        #[serde(default)]
        errors: Present,
    }
    serde_json::from_slice::<Keys>(body).is_ok_and(|k| k.data.0 || k.errors.0)
}

fn tableau_error_text(
    code: &Option<String>,
    summary: &Option<String>,
    detail: &Option<String>,
) -> String {
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
        self.transport
            .max_in_flight()
            .map_or(configured, |most| configured.min(most.max(1)))
    }

    /// Makes every later request fail at once with `Cancelled`, without sending it.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub(crate) fn site_luid(&self) -> Option<String> {
        self.session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.site_luid.clone())
    }

    pub(crate) fn server(&self) -> String {
        self.server
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn api_version(&self) -> String {
        self.api_version
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn product_version(&self) -> Option<String> {
        self.product_version
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        let mut all =
            std::mem::take(&mut *self.responses.lock().unwrap_or_else(|e| e.into_inner()));
        all.sort();
        all
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }

    fn transport_error(&self, e: TransportError) -> TableauError {
        TableauError::Transport(self.scrub(&e.to_string()))
    }

    /// Sends a read with retries and hands the final response over as it is (see `fetch`).
    pub(super) fn send(
        &self,
        call: &str,
        authed: bool,
        build: &dyn Fn(&Client) -> Request,
    ) -> Result<Response, TableauError> {
        self.fetch(call, authed, Idempotent::Yes, build, &|resp| {
            Decoded::Done(Ok(resp))
        })
    }

    /// Sends with retries, and decodes the answer with `decode`, once.
    ///
    /// - 408/429/5xx and network failures back off and send again (Retry-After wins), up to
    ///   `retry.attempts` tries in all.
    /// - A 401 on an authenticated call signs in again once and repeats the request.
    /// - A body that `decode` finds cut short or not the JSON/XML it claims to be is asked for
    ///   again like a 5xx, within the same tries; after the last it is an error naming the call
    ///   and the byte offset.
    /// - A non-idempotent call (an extract refresh) is sent again only when the server surely
    ///   did not act on it: a 429, a 401, a connection never made. After a 5xx, a timeout or a
    ///   cut answer it may have queued the refresh, so the answer goes to the caller as it is.
    pub(super) fn fetch<T>(
        &self,
        call: &str,
        authed: bool,
        idempotent: Idempotent,
        build: &dyn Fn(&Client) -> Request,
        decode: &dyn Fn(Response) -> Decoded<T>,
    ) -> Result<T, TableauError> {
        let reads = idempotent == Idempotent::Yes;
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
            log::debug(&format!(
                "{} {}",
                req.method,
                self.scrub(req.path_and_query())
            ));
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let sent = self.transport.send(&req);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let resp = match sent {
                Err(e) if e.is_retryable(reads) && attempt < self.retry.attempts => {
                    self.pause(call, &self.scrub(&e.to_string()), attempt, None);
                    continue;
                }
                Err(e) => return Err(self.transport_error(e)),
                Ok(resp) => resp,
            };
            let path = self.scrub(req.path_and_query());
            let digest = crate::config::hex_sha256(
                self.scrub(&String::from_utf8_lossy(&req.body)).as_bytes(),
            );
            self.responses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(RawResponse {
                    path,
                    request_digest: digest[..16].to_string(),
                    attempt,
                    method: req.method,
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
                if resigned {
                    return Err(TableauError::Unauthorized {
                        call: call.into(),
                        site: self.content_url.clone(),
                    });
                }
                resigned = true;
                self.sign_in_again(call, generation)?;
                continue;
            }
            let decoded = match self.not_data(&req, &resp) {
                Some(what) => Decoded::NotData(what),
                None => decode(resp),
            };
            match decoded {
                Decoded::Done(result) => return result,
                Decoded::Truncated(what) | Decoded::NotData(what)
                    if reads && attempt < self.retry.attempts =>
                {
                    self.pause(call, &what, attempt, None);
                }
                Decoded::Truncated(what) => {
                    return Err(TableauError::BadBody {
                        call: call.into(),
                        message: what,
                        tries: attempt,
                    });
                }
                Decoded::NotData(what) if reads => {
                    return Err(TableauError::NotData {
                        call: call.into(),
                        message: what,
                        tries: attempt,
                    });
                }
                Decoded::NotData(what) => {
                    return Err(TableauError::Protocol {
                        call: call.into(),
                        message: format!(
                            "{what} (the request may have been acted on, a refresh queued, so it is not sent again; a proxy, captive portal or login page may be answering in Tableau's place)"
                        ),
                    });
                }
            }
        }
    }

    /// Why a 2xx answer is not data, judged by the `Accept` the request sent: Tableau's REST API
    /// answers `application/xml` with a `<tsResponse>` root in its namespace
    /// (shared/reference/tableau.md, from the REST API reference's examples), and
    /// `application/json` (sign-in, the Metadata API) with a JSON object. Anything else, such
    /// as a proxy's or captive portal's HTML page answered 200, would otherwise read as a site
    /// with no projects or workbooks. `None` when it fits, or when there is nothing to judge
    /// (a 204, no `Accept`, an empty body); a body of the right type cut short is left to the
    /// call's decoder, which names the byte where it stops.
    ///
    /// The message names the content type and the body's first bytes, scrubbed; no header but
    /// `Content-Type` is ever echoed.
    fn not_data(&self, req: &Request, resp: &Response) -> Option<String> {
        if !(200..300).contains(&resp.status) || resp.status == 204 {
            return None;
        }
        let asked = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("accept"))
            .map(|(_, v)| media_type(v))?;
        if !matches!(asked.as_str(), "application/xml" | "application/json")
            || resp.body.trim_ascii().is_empty()
        {
            return None;
        }
        let content_type = resp.header("content-type");
        let type_fits = content_type_fits(&asked, content_type);
        let mut why = Vec::new();
        let what = if asked == "application/xml" {
            let text = resp.text();
            match roxmltree::Document::parse(&text) {
                Ok(doc) => why.extend(not_ts_response(&doc)),
                Err(_) if type_fits => return None,
                Err(_) => {}
            }
            "a Tableau REST answer"
        } else {
            let object = resp.body.trim_ascii_start().starts_with(b"{");
            if !object {
                why.push("it is not a JSON object".to_string());
            }
            if req.path_and_query().starts_with("/api/metadata/graphql") {
                "a Metadata API answer"
            } else {
                "a Tableau JSON answer"
            }
        };
        if !type_fits {
            let got = content_type.map_or_else(
                || "no Content-Type".to_string(),
                |ct| format!("Content-Type {:?}", self.scrub(ct)),
            );
            why.push(format!("HTTP {} with {got}, not {asked}", resp.status));
        }
        if why.is_empty() {
            return None;
        }
        Some(format!(
            "the body is not {what}: {}; it starts {} ({} bytes)",
            why.join("; "),
            self.scrub(&body_start(&resp.body)),
            resp.body.len()
        ))
    }

    /// Logs why a request is sent again, and waits the backoff.
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

    /// Signs in again after a 401, unless another thread already did since `seen` (then its
    /// new token is simply used): two sign-ins with one PAT would end each other's sessions.
    fn sign_in_again(&self, call: &str, seen: u64) -> Result<(), TableauError> {
        let _one_at_a_time = self.signing_in.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) != seen {
            return Ok(());
        }
        log::warn(&format!(
            "{call}: HTTP 401, the session expired; signing in again"
        ));
        self.sign_in()
    }

    fn backoff(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        self.retry.wait(attempt, retry_after)
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
        self.session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.token.clone())
            .unwrap_or_default()
    }

    /// `GET /api/2.4/serverInfo`: the REST API version every later path uses.
    pub(crate) fn server_info(&self) -> Result<(), TableauError> {
        let call = "GET /api/2.4/serverInfo";
        let url = format!("{}/api/2.4/serverInfo", self.server());
        let decode = |resp: Response| -> Decoded<(String, Option<String>)> {
            if resp.status != 200 {
                return Decoded::Done(Err(self.error_from(call, &resp)));
            }
            let text = resp.text();
            let doc = match roxmltree::Document::parse(&text) {
                Ok(d) => d,
                Err(e) => return xml_failure(&text, &e),
            };
            let find = |tag: &str| {
                doc.descendants()
                    .find(|n| n.has_tag_name(tag))
                    .and_then(|n| n.text())
                    .map(|t| t.trim().to_string())
            };
            let Some(version) = find("restApiVersion") else {
                return Decoded::Done(Err(TableauError::Protocol {
                    call: call.into(),
                    message: "no restApiVersion".into(),
                }));
            };
            if !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                let message = format!("odd restApiVersion {version:?}");
                return Decoded::Done(Err(TableauError::Protocol {
                    call: call.into(),
                    message,
                }));
            }
            Decoded::Done(Ok((version, find("productVersion"))))
        };
        let build =
            |_: &Client| Request::new("GET", url.clone()).header("Accept", "application/xml");
        let (version, product) = self.fetch(call, false, Idempotent::Yes, &build, &decode)?;
        *self.api_version.write().unwrap_or_else(|e| e.into_inner()) = version;
        *self
            .product_version
            .write()
            .unwrap_or_else(|e| e.into_inner()) = product;
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
        // Sign-in is safe to send again: a session whose token never arrived is dead anyway.
        let decode = |resp: Response| -> Decoded<(Response, Option<Value>)> {
            if !(200..300).contains(&resp.status) {
                return Decoded::Done(Ok((resp, None)));
            }
            match serde_json::from_slice::<Value>(&resp.body) {
                // Tableau's sign-in answer is `{"credentials": {...}}`; any other object is not
                // a sign-in (asked again, then an error), whatever it holds.
                Ok(v) if !v["credentials"].is_object() => Decoded::NotData(format!(
                    "the body is not a Tableau sign-in answer: it has no `credentials` object; it starts {} ({} bytes)",
                    self.scrub(&body_start(&resp.body)),
                    resp.body.len()
                )),
                Ok(v) => Decoded::Done(Ok((resp, Some(v)))),
                Err(e) => json_failure(&call, &resp.body, &e),
            }
        };
        let (resp, v) = loop {
            let target = url.clone();
            let b = body.clone();
            let (resp, v) = self.fetch(
                &call,
                false,
                Idempotent::Yes,
                &|_| {
                    Request::new("POST", target.clone())
                        .header("Content-Type", "application/json")
                        .header("Accept", "application/json")
                        .body(b.clone())
                },
                &decode,
            )?;
            if matches!(resp.status, 301 | 302 | 307 | 308) && !redirected {
                let mut location = resp.header("location").unwrap_or_default().to_string();
                if location.starts_with('/') && !location.starts_with("//") {
                    // A path-only Location stays on the host asked.
                    location = format!("{}{location}", self.server());
                }
                let Some(origin) = origin_of(&location) else {
                    return Err(TableauError::Protocol {
                        call,
                        message: format!("redirect without a usable Location {location:?}"),
                    });
                };
                // The PAT secret is only POSTed again where it may go (see `sign_in_redirect_allowed`).
                if let Err(why) = sign_in_redirect_allowed(&self.server(), &location) {
                    return Err(TableauError::Protocol {
                        call,
                        message: format!(
                            "the sign-in to {} was redirected (HTTP {}) to {}, and the PAT is not sent there: {why}. \
                             If that host is right, put it in server_url",
                            self.server(),
                            resp.status,
                            self.scrub(&origin)
                        ),
                    });
                }
                log::info(&format!(
                    "Tableau sign-in redirected from {} to {origin}",
                    self.server()
                ));
                *self.server.write().unwrap_or_else(|e| e.into_inner()) = origin;
                url = location;
                redirected = true;
                continue;
            }
            break (resp, v);
        };
        if resp.status == 401 || resp.status == 403 {
            let (code, summary, detail) = parse_error(&resp.text());
            return Err(TableauError::SignIn {
                site: self.content_url.clone(),
                server: self.server(),
                status: resp.status,
                code,
                summary: summary.map(|s| self.scrub(&s)),
                detail: detail.map(|d| self.scrub(&d)),
                name_env: self.name_env.clone(),
                secret_env: self.secret_env.clone(),
            });
        }
        let Some(v) = v.filter(|_| (200..300).contains(&resp.status)) else {
            return Err(self.error_from(&call, &resp));
        };
        let creds = &v["credentials"];
        let (Some(token), Some(site_luid)) =
            (creds["token"].as_str(), creds["site"]["id"].as_str())
        else {
            return Err(TableauError::Protocol {
                call,
                message: "no credentials.token or credentials.site.id".into(),
            });
        };
        self.secrets.add(token);
        *self.session.write().unwrap_or_else(|e| e.into_inner()) = Some(Session {
            token: token.to_string(),
            site_luid: site_luid.to_string(),
        });
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

    /// `POST /api/metadata/graphql`, decoded straight from the bytes into `R` (data and errors
    /// as Tableau sent them), once. A body cut short or not JSON is asked for again (a read);
    /// JSON of the wrong shape is an error at once.
    pub(crate) fn graphql<R: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        query: &str,
        variables: &Value,
    ) -> Result<R, TableauError> {
        let call = format!("POST /api/metadata/graphql ({name})");
        let url = format!("{}/api/metadata/graphql", self.server());
        let body = json!({"query": query, "variables": variables}).to_string();
        let decode = |resp: Response| -> Decoded<R> {
            if resp.status != 200 {
                return Decoded::Done(Err(self.error_from(&call, &resp)));
            }
            if !resp.body.trim_ascii_start().starts_with(b"{") {
                return Decoded::Truncated(format!(
                    "not a JSON object ({} bytes); Tableau sometimes answers an oversized query with an empty body: lower page_size",
                    resp.body.len()
                ));
            }
            match serde_json::from_slice::<R>(&resp.body) {
                // A GraphQL answer has `data`, `errors` or both (GraphQL spec, "Response
                // Format"); an object with neither would decode as a page with no nodes.
                Ok(_) if !has_data_or_errors(&resp.body) => Decoded::NotData(format!(
                    "the body is not a Metadata API answer: a JSON object without `data` or `errors`; it starts {} ({} bytes)",
                    self.scrub(&body_start(&resp.body)),
                    resp.body.len()
                )),
                Ok(r) => Decoded::Done(Ok(r)),
                Err(e) => json_failure(&call, &resp.body, &e),
            }
        };
        let build = |c: &Client| {
            Request::new("POST", url.clone())
                .header("X-Tableau-Auth", c.auth_header())
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(body.clone())
        };
        self.fetch(&call, true, Idempotent::Yes, &build, &decode)
    }

    /// Every project on the site, following REST paging to `totalAvailable`.
    pub(crate) fn projects(&self) -> Result<Vec<Project>, TableauError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        let size = 100u32;
        loop {
            let call = format!(
                "GET /api/{}/sites/{{site}}/projects?pageNumber={page}",
                self.api_version()
            );
            let url = self.site_path(&format!("projects?pageSize={size}&pageNumber={page}"));
            let decode = |resp: Response| -> Decoded<(Vec<Project>, u64)> {
                if resp.status != 200 {
                    return Decoded::Done(Err(self.error_from(&call, &resp)));
                }
                let text = resp.text();
                let doc = match roxmltree::Document::parse(&text) {
                    Ok(d) => d,
                    Err(e) => return xml_failure(&text, &e),
                };
                // `fetch` has checked the root (`not_data`): a `tsResponse` in Tableau's
                // namespace, so an HTML page answered 200 is not a site with no projects.
                let projects = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("project"))
                    .map(|p| Project {
                        luid: p.attribute("id").unwrap_or_default().to_string(),
                        name: p.attribute("name").unwrap_or_default().to_string(),
                        parent_luid: p
                            .attribute("parentProjectId")
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    })
                    .collect();
                let total: u64 = doc
                    .descendants()
                    .find(|n| n.has_tag_name("pagination"))
                    .and_then(|p| p.attribute("totalAvailable"))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                Decoded::Done(Ok((projects, total)))
            };
            let build = |c: &Client| {
                Request::new("GET", url.clone())
                    .header("X-Tableau-Auth", c.auth_header())
                    .header("Accept", "application/xml")
            };
            let (projects, total) = self.fetch(&call, true, Idempotent::Yes, &build, &decode)?;
            let n = projects.len();
            out.extend(projects);
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
/// Whether a sign-in redirect from `from` (the origin signed in to, `scheme://host[:port]`) to
/// the URL `to` may carry the PAT secret. curl and Python requests never resend credentials to
/// another host; Tableau Cloud, though, answers a sign-in on a bare host with a 301 to its pod
/// (reference/tableau.md 2.2; TSC re-POSTs on 301), e.g. `online.tableau.com` →
/// `10az.online.tableau.com`. The rule:
/// - the scheme stays or is upgraded (http → https), never https → http;
/// - no user info in the Location;
/// - the host is the same, a subdomain of the configured host, or (when the configured host has
///   at least four labels, so its parent has three and is neither a bare registrable domain like
///   `tableau.com` nor a public suffix like `co.uk`) a sibling under its parent:
///   `prod-useast-a.online.tableau.com` → `10az.online.tableau.com`; never
///   `online.tableau.com` → `evil.tableau.com`, nor anywhere else;
/// - loopback to loopback (127.0.0.0/8, ::1, localhost) is one machine, and allowed.
///
/// IP addresses match only themselves. Anything else is refused; the user can name the target
/// host in `server_url` themselves.
pub(crate) fn sign_in_redirect_allowed(from: &str, to: &str) -> Result<(), String> {
    let parse = |u: &str| -> Option<(String, String)> {
        let (scheme, rest) = u.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        if authority.contains('@') {
            return None;
        }
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next()?.to_string()
        } else {
            authority
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(authority)
                .to_string()
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        (!host.is_empty()).then(|| (scheme.to_ascii_lowercase(), host))
    };
    let (Some((fs, fh)), Some((ts, th))) = (parse(from), parse(to)) else {
        return Err("the Location is not a plain http(s) URL".into());
    };
    if !matches!(ts.as_str(), "http" | "https") {
        return Err(format!("scheme {ts} is not http(s)"));
    }
    if fs == "https" && ts != "https" {
        return Err("it goes from https to plain http".into());
    }
    if crate::http::is_loopback_url(from) && crate::http::is_loopback_url(to) {
        return Ok(());
    }
    let is_ip = |h: &str| h.parse::<std::net::IpAddr>().is_ok() || h.contains(':');
    if th == fh {
        return Ok(());
    }
    if !is_ip(&fh) && !is_ip(&th) {
        if th.ends_with(&format!(".{fh}")) {
            return Ok(());
        }
        if fh.matches('.').count() >= 3 {
            let parent = fh.split_once('.').map(|(_, p)| p).unwrap_or("");
            if th.ends_with(&format!(".{parent}")) {
                return Ok(());
            }
        }
    }
    Err(format!("{th} is another host than {fh} (only {fh}, its subdomains and its sibling pods are trusted)"))
}

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
                e.children()
                    .find(|n| n.has_tag_name(tag))
                    .and_then(|n| n.text())
                    .map(|t| t.trim().to_string())
            };
            return (
                e.attribute("code").map(str::to_string),
                child("summary"),
                child("detail"),
            );
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
    #[test]
    fn sign_in_redirects_keep_the_pat_with_its_host() {
        use super::sign_in_redirect_allowed as ok;
        let yes = |f: &str, t: &str| assert!(ok(f, t).is_ok(), "{f} -> {t}: {:?}", ok(f, t));
        let no = |f: &str, t: &str| assert!(ok(f, t).is_err(), "{f} -> {t} should be refused");
        yes(
            "https://online.tableau.com",
            "https://10az.online.tableau.com/api/3.23/auth/signin",
        );
        yes(
            "https://prod-useast-a.online.tableau.com",
            "https://10az.online.tableau.com/api/3.23/auth/signin",
        );
        yes(
            "https://tableau.acme.com",
            "https://TABLEAU.acme.com:8443/api/3.23/auth/signin",
        );
        yes(
            "http://127.0.0.1:8080",
            "http://localhost:8080/api/3.23/auth/signin",
        );
        yes(
            "http://tableau.acme.com",
            "https://tableau.acme.com/api/3.23/auth/signin",
        );
        no(
            "https://online.tableau.com",
            "https://evil.tableau.com/api/3.23/auth/signin",
        );
        no(
            "https://online.tableau.com",
            "http://10az.online.tableau.com/api/3.23/auth/signin",
        );
        no(
            "https://tableau.acme.com",
            "https://evil.example.com/api/3.23/auth/signin",
        );
        no(
            "https://tableau.acme.com",
            "https://tableau.acme.com.evil.com/x",
        );
        no(
            "https://tableau.acme.com",
            "https://user@tableau.acme.com/x",
        );
        no("https://tableau.acme.com", "ftp://tableau.acme.com/x");
        no("https://10.0.0.1", "https://10.0.0.2/x");
        no(
            "http://127.0.0.1:8080",
            "http://tableau.example.invalid:8080/x",
        );
    }

    use super::*;

    #[test]
    fn parses_xml_and_json_errors() {
        let xml = r#"<tsResponse xmlns="http://tableau.com/api"><error code="401001"><summary>Signin Error</summary><detail>Error signing in</detail></error></tsResponse>"#;
        assert_eq!(
            parse_error(xml),
            (
                Some("401001".into()),
                Some("Signin Error".into()),
                Some("Error signing in".into())
            )
        );
        let json = r#"{"error":{"code":"409093","summary":"Resource Conflict","detail":"queued"}}"#;
        assert_eq!(parse_error(json).0.as_deref(), Some("409093"));
        assert_eq!(parse_error("{\"status\":401}"), (None, None, None));
    }

    /// A transport answering from a script, counting what was sent.
    struct Script {
        answers: Mutex<std::collections::VecDeque<Result<Response, TransportError>>>,
        sent: std::sync::Arc<AtomicUsize>,
    }
    impl Transport for Script {
        fn send(&self, _req: &Request) -> Result<Response, TransportError> {
            self.sent.fetch_add(1, Ordering::SeqCst);
            self.answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("more requests than the script has answers")
        }
    }

    /// An answer with the content type Tableau gives its body (XML or JSON, by the first byte).
    fn ok(status: u16, body: &str) -> Result<Response, TransportError> {
        let ct = if body.starts_with('<') {
            "application/xml;charset=utf-8"
        } else {
            "application/json"
        };
        answer(status, Some(ct), body)
    }

    fn answer(
        status: u16,
        content_type: Option<&str>,
        body: &str,
    ) -> Result<Response, TransportError> {
        let headers = content_type
            .map(|ct| vec![("content-type".to_string(), ct.to_string())])
            .unwrap_or_default();
        Ok(Response {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        })
    }

    fn scripted(
        answers: Vec<Result<Response, TransportError>>,
    ) -> (Client, std::sync::Arc<AtomicUsize>) {
        let site: TableauSite = serde_yaml::from_str(
            "name: t\nserver_url: http://127.0.0.1:1\nretry: {attempts: 3, base_delay_ms: 1}\n",
        )
        .unwrap();
        let sent = std::sync::Arc::new(AtomicUsize::new(0));
        let script = Script {
            answers: Mutex::new(answers.into()),
            sent: sent.clone(),
        };
        (
            Client::new(
                &site,
                Box::new(script),
                Secrets::default(),
                "n".into(),
                "s".into(),
            ),
            sent,
        )
    }

    #[test]
    fn retry_after_is_capped() {
        let (c, _) = scripted(vec![]);
        // Default cap: 120 s, whatever the server asks.
        assert_eq!(c.backoff(1, Some("100000")), Duration::from_secs(120));
        assert_eq!(c.backoff(1, Some("7")), Duration::from_secs(7));
        let site: TableauSite = serde_yaml::from_str(
            "name: t\nserver_url: http://127.0.0.1:1\nretry: {attempts: 3, base_delay_ms: 1, max_retry_after_secs: 2}\n",
        )
        .unwrap();
        let c = Client::new(
            &site,
            Box::new(Script {
                answers: Mutex::new(Default::default()),
                sent: Default::default(),
            }),
            Secrets::default(),
            "n".into(),
            "s".into(),
        );
        assert_eq!(c.backoff(1, Some("100000")), Duration::from_secs(2));
    }

    #[test]
    fn a_cut_graphql_body_is_asked_for_again_then_named() {
        let (c, sent) = scripted(vec![
            ok(200, r#"{"data":{"x":"ab"#),
            ok(200, r#"{"data":{"x":"abc"}}"#),
        ]);
        let v: Value = c.graphql("Q", "query Q { x }", &json!({})).unwrap();
        assert_eq!(
            (v["data"]["x"].as_str(), sent.load(Ordering::SeqCst)),
            (Some("abc"), 2)
        );

        let cut = || ok(200, r#"{"data":{"x":"ab"#);
        let (c, sent) = scripted(vec![cut(), cut(), cut()]);
        let err = c
            .graphql::<Value>("Q", "query Q { x }", &json!({}))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("POST /api/metadata/graphql (Q): the body is cut short or not JSON at byte 16 of 16"), "{err}");
        assert!(err.contains("after 3 tries"), "{err}");
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    /// A refresh is sent again only when Tableau surely did not act on it.
    #[test]
    fn a_refresh_is_not_sent_again_blindly() {
        use crate::refresh::seam::{Answer, Target};
        let target = Target {
            kind: crate::refresh::tags::Kind::Datasource,
            id: "ds-1".into(),
            name: "DS".into(),
        };
        let job = r#"<tsResponse xmlns="http://tableau.com/api"><job id="job-1" /></tsResponse>"#;
        let no_answer = || {
            Err(TransportError::NoAnswer {
                method: "POST",
                url: "u".into(),
                message: "timed out".into(),
            })
        };
        let connect = || {
            Err(TransportError::Connect {
                method: "POST",
                url: "u".into(),
                message: "refused".into(),
            })
        };
        for (answers, requests, want) in [
            (vec![ok(503, ""), ok(202, job)], 1, "refused 503"),
            (vec![ok(500, ""), ok(202, job)], 1, "refused 500"),
            (vec![no_answer(), ok(202, job)], 1, "error"),
            (
                vec![ok(202, r#"<tsResponse><job id="jo"#), ok(202, job)],
                1,
                "error",
            ),
            // Not data: an HTML page, a wrong root. Not sent again either.
            (
                vec![
                    answer(202, Some("text/html"), "<html><body>Sign in</body></html>"),
                    ok(202, job),
                ],
                1,
                "error",
            ),
            (
                vec![
                    ok(202, r#"<response><job id="job-1" /></response>"#),
                    ok(202, job),
                ],
                1,
                "error",
            ),
            (vec![ok(429, ""), ok(202, job)], 2, "job"),
            (vec![connect(), ok(202, job)], 2, "job"),
        ] {
            let (c, sent) = scripted(answers);
            let got = match c.refresh(&target) {
                Ok(Answer::Job(id)) if id == "job-1" => "job".to_string(),
                Ok(Answer::Refused { status, .. }) => format!("refused {status}"),
                Ok(other) => format!("{other:?}"),
                Err(_) => "error".to_string(),
            };
            assert_eq!(
                (got.as_str(), sent.load(Ordering::SeqCst)),
                (want, requests)
            );
        }
    }

    /// A body cut short or not JSON is worth asking again; JSON of the wrong shape is not.
    #[test]
    fn json_failures_are_told_apart_with_their_offset() {
        #[derive(serde::Deserialize, Debug)]
        struct Page {
            #[allow(dead_code)]
            n: u32,
        }
        let cut = br#"{"n": 1, "name": "Sales Ov"#;
        let e = serde_json::from_slice::<Page>(cut).unwrap_err();
        match json_failure::<Page>("C", cut, &e) {
            Decoded::Truncated(m) => {
                assert!(m.contains(&format!("at byte {0} of {0}", cut.len())), "{m}")
            }
            Decoded::Done(r) => panic!("cut body taken as final: {r:?}"),
            Decoded::NotData(m) => panic!("cut body taken as not data: {m}"),
        }
        let html = b"<html>502 Bad Gateway</html>";
        let e = serde_json::from_slice::<Page>(html).unwrap_err();
        assert!(
            matches!(json_failure::<Page>("C", html, &e), Decoded::Truncated(m) if m.contains("at byte 0 of"))
        );
        let shape = b"{\n  \"n\": \"x\"}";
        let e = serde_json::from_slice::<Page>(shape).unwrap_err();
        match json_failure::<Page>("C", shape, &e) {
            Decoded::Done(Err(TableauError::Protocol { call, message })) => {
                assert_eq!(call, "C");
                assert!(message.contains("at byte 11 of 13"), "{message}");
            }
            _ => panic!("a wrong shape must be an error at once"),
        }
        assert_eq!(byte_offset(b"ab\ncd\nef", 3, 2), 7);
        assert_eq!(byte_offset(b"ab", 9, 9), 2);
    }

    /// A 2xx answer must have the content type asked for and Tableau's root: else it is asked
    /// again, and after the last try an error naming the call, the content type and the
    /// body's start, never an empty answer.
    #[test]
    fn answers_that_are_not_data_are_asked_again_then_named() {
        let ts = r#"<?xml version='1.0'?><tsResponse xmlns="http://tableau.com/api"><serverInfo><restApiVersion>3.23</restApiVersion></serverInfo></tsResponse>"#;
        let html = "<html><head><title>Sign in</title></head><body>mini-secret</body></html>";
        let xml = Some("application/xml");
        for ((ct, body), want) in [
            (
                (Some("text/html"), html),
                "its root element is <html>, not <tsResponse>",
            ),
            (
                (Some("text/html"), "<p>unclosed"),
                r#"HTTP 200 with Content-Type "text/html", not application/xml"#,
            ),
            (
                (xml, r#"<tsResponse><serverInfo/></tsResponse>"#),
                "its root element is <tsResponse>, not <tsResponse> in",
            ),
            (
                (Some("application/json"), ts),
                r#"Content-Type "application/json", not application/xml"#,
            ),
            ((None, ts), "HTTP 200 with no Content-Type"),
        ] {
            let bad = || answer(200, ct, body);
            let (c, sent) = scripted(vec![bad(), ok(200, ts)]);
            c.secrets.add("mini-secret");
            c.server_info().unwrap();
            assert_eq!(
                (c.api_version(), sent.load(Ordering::SeqCst)),
                ("3.23".to_string(), 2)
            );
            let (c, sent) = scripted(vec![bad(), bad(), bad()]);
            c.secrets.add("mini-secret");
            let err = c.server_info().unwrap_err().to_string();
            assert!(
                err.starts_with("GET /api/2.4/serverInfo: the body is not a Tableau REST answer: "),
                "{err}"
            );
            assert!(err.contains(want) && err.contains("after 3 tries"), "{err}");
            assert!(
                err.contains("it starts \"") && !err.contains("mini-secret"),
                "{err}"
            );
            assert_eq!(sent.load(Ordering::SeqCst), 3);
        }
        // GraphQL: a JSON object with `data` and/or `errors`, as application/json.
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Page {
            #[serde(default)]
            data: Option<Value>,
        }
        let js = Some("application/json");
        for ((ct, body), want) in [
            (
                (Some("text/html"), html),
                r#"Content-Type "text/html", not application/json"#,
            ),
            (
                (js, r#"{"status": "ok"}"#),
                "a JSON object without `data` or `errors`",
            ),
            ((js, "[]"), "it is not a JSON object"),
        ] {
            let bad = || answer(200, ct, body);
            let (c, sent) = scripted(vec![bad(), bad(), bad()]);
            let err = c
                .graphql::<Page>("Q", "query Q { x }", &json!({}))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("POST /api/metadata/graphql (Q): the body is not a "),
                "{err}"
            );
            assert!(err.contains(want) && err.contains("after 3 tries"), "{err}");
            assert_eq!(sent.load(Ordering::SeqCst), 3);
        }
        let (c, _) = scripted(vec![ok(
            200,
            r#"{"data": null, "errors": [{"message": "x"}]}"#,
        )]);
        assert!(c.graphql::<Page>("Q", "query Q { x }", &json!({})).is_ok());
        // Sign-in: an object with `credentials`.
        let (c, sent) = scripted(vec![
            ok(200, r#"{"status":"ok"}"#),
            ok(200, "{}"),
            ok(200, r#"{"x":1}"#),
        ]);
        let err = c.sign_in().unwrap_err().to_string();
        assert!(err.contains("auth/signin: the body is not a Tableau sign-in answer: it has no `credentials` object"), "{err}");
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn origin_keeps_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://10az.online.tableau.com/api/3.23/auth/signin").as_deref(),
            Some("https://10az.online.tableau.com")
        );
        assert_eq!(
            origin_of("http://localhost:8080/x").as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(origin_of("/relative"), None);
    }
}
