//! A local stand-in for Tableau Server / Tableau Cloud, for tests.
//!
//! It serves a site fixture (`testdata/tableau/*.site.json`, format in
//! `testdata/tableau/README.md`) through the REST and Metadata (GraphQL) API shapes described in
//! `shared/reference/tableau.md` (sections 1, 2, 3, 5, 7 and 8), and can inject the faults a real
//! server shows (rate limits, 5xx, expiring tokens, node limits, timeouts, a sign-in redirect,
//! refresh conflicts, failing jobs). Every request is logged, without token values or PAT
//! secrets.
//!
//! Every GraphQL document is validated against Tableau's schema
//! (`testdata/tableau/metadata.graphql`, through `graphql_check.rs`) before anything else, as
//! Tableau does; an invalid one is answered HTTP 200 with `errors` and no `data`. Valid ones are
//! dispatched on the operation's root field and its arguments, read from the parsed document.
//!
//! Used by the integration tests (`mod support;` in tests/main.rs) and by
//! `examples/tableau_server.rs` (`#[path]` include), so it depends only on dev-dependencies:
//! serde, serde_json, roxmltree and apollo-compiler (HTTP itself is `http1.rs`, on std).
//!
//! All ids, tokens and error codes marked "invented" below are made up for this server.
#![allow(dead_code)]

#[path = "query.rs"]
mod query;
use query::parse_query;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

#[path = "graphql_check.rs"]
mod graphql_check;
#[path = "http1.rs"]
mod http1;

const API_NS: &str = "http://tableau.com/api";
const SPRING_PATH: &str = "/relationship-service-war/graphql";
const MAX_REST_PAGE_SIZE: usize = 1000;
/// The node limit quoted in Tableau's NODE_LIMIT_EXCEEDED message.
const NODE_LIMIT_IN_MESSAGE: u32 = 20000;
/// Fake clock: request number n happens at BASE_EPOCH + n seconds (2025-03-04T05:06:07Z + n s).
const BASE_EPOCH: i64 = 1_741_064_767;

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// A site fixture, as described in testdata/tableau/README.md.
#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    pub product_version: String,
    pub rest_api_version: String,
    /// Optional build number for serverInfo's `productVersion/@build`.
    #[serde(default)]
    pub product_build: Option<String>,
    pub sites: Vec<FixtureSite>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FixtureSite {
    pub content_url: String,
    pub luid: String,
    #[serde(default)]
    pub pats: Vec<FixturePat>,
    #[serde(default)]
    pub projects: Vec<FixtureProject>,
    /// Metadata API workbook nodes, served verbatim.
    #[serde(default)]
    pub workbooks: Vec<Value>,
    /// Metadata API customSQLTablesConnection nodes, served verbatim.
    #[serde(default)]
    pub custom_sql: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FixturePat {
    pub name: String,
    pub secret: String,
    pub user_luid: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FixtureProject {
    pub id: String,
    pub name: String,
    #[serde(rename = "parentProjectId", default)]
    pub parent_project_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "contentPermissions", default)]
    pub content_permissions: Option<String>,
    /// The project owner's user LUID; default: the site's first PAT user.
    #[serde(rename = "ownerId", default)]
    pub owner_id: Option<String>,
}

impl Fixture {
    pub fn load(path: &Path) -> Fixture {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read site fixture {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("invalid site fixture {}: {e}", path.display()))
    }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Faults to inject. `Faults::default()` is a well-behaved server.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// 1-based global request numbers answered 429 with `Retry-After: 1` (no side effects).
    pub rate_limit_at: Vec<usize>,
    /// 1-based global request numbers answered 200 with a 2 MiB + 1 byte body (no side effects):
    /// above a client's `limits.max_response_mb: 1`.
    pub huge_body_at: Vec<usize>,
    /// 1-based global request numbers answered 503 (no side effects).
    pub server_error_at: Vec<usize>,
    /// A session token stops working after N authenticated requests: REST answers 401 +
    /// `<error code="401000">`, GraphQL the Spring-style 401 JSON body.
    pub expire_token_after: Option<usize>,
    /// A workbooksConnection page with `first` > N returns only N nodes plus the
    /// NODE_LIMIT_EXCEEDED warning.
    pub node_limit_above: Option<u32>,
    /// `first` above it: the page limited to this many nodes + the MAX_PAGE_SIZE_EXCEEDED
    /// warning in Tableau's documented wording, which names no number (both connections).
    pub max_page_size: Option<u32>,
    /// With `max_page_size`: the warning also carries `properties: {maxPageSize: N}` and names
    /// N in its message (a server that says its maximum; shape invented).
    pub max_page_size_named: bool,
    /// 1-based request numbers (GraphQL POSTs and REST GETs) whose answer is cut to half its
    /// body, mid-JSON or mid-XML, with a Content-Length that matches what is sent: what a
    /// proxy or a dropped connection leaves. The request itself is handled normally.
    pub cut_body_at: Vec<usize>,
    /// Adds the PERMISSIONS_MODE_SWITCHED warning to workbook pages.
    pub permissions_mode_switched: bool,
    /// Request numbers whose GraphQL answer is the partial-data
    /// "Reached time limit of PT5S for query execution." error (no extensions).
    pub metadata_timeout_at: Vec<usize>,
    /// Request numbers whose GraphQL answer is
    /// "Execution canceled because timeout of 30000 millis was reached" (no data).
    pub metadata_cancel_timeout_at: Vec<usize>,
    /// Request numbers whose GraphQL answer is a RATE_EXCEEDED error (no data).
    pub metadata_rate_exceeded_at: Vec<usize>,
    /// Sign-in on `http://127.0.0.1:PORT` answers 301 to `http://localhost:PORT/api/{v}/auth/signin`.
    pub redirect_signin: bool,
    /// Sign-in on `http://127.0.0.1:PORT` answers 302 to this origin + `/api/{v}/auth/signin`
    /// (another host, to check the PAT is not sent after it).
    pub redirect_signin_to: Option<String>,
    /// Target luids whose refresh answers 403.
    pub refresh_forbidden: Vec<String>,
    /// Target luid → (finishCode, notes) of its refresh jobs; default (0, None).
    pub job_outcomes: HashMap<String, (i32, Option<String>)>,
    /// Every job GET answers 503 (Tableau down while jobs run).
    pub job_poll_unavailable: bool,
    /// A job reports completedAt/finishCode after this many GETs (0 = done on the first poll).
    pub job_polls_to_finish: usize,
    /// Tableau Cloud's cap on long-running requests: a refresh start while this many jobs are
    /// unfinished answers 429 with `Retry-After: 1` (no job is created).
    pub refresh_in_flight_limit: Option<usize>,
    /// Serve every table (`upstreamTables`, `tables`) redacted, as for a user without Catalog
    /// permissions: `name`, `fullName`, `schema` and `database.name` null.
    pub redact_tables: bool,
    /// 1-based request numbers answered 200 `text/html` with a well-formed XHTML sign-in page
    /// (what a captive portal or a proxy's login page sends), whatever was asked; no side
    /// effects. Real Tableau never does this; the fault tests the client's root check.
    pub html_ok_at: Vec<usize>,
    /// Not-data faults (see `State::not_data_fault`), answered without side effects unless said.
    pub not_data: NotDataFaults,
    /// Target luids whose refresh creates its job and then answers 202 with the body cut to
    /// half (a torn answer: the client cannot read the job id, but the job exists and is
    /// listed by Query Jobs).
    pub torn_refresh: Vec<String>,
    /// Query Jobs answers 403, as for a PAT whose user is no site administrator (the
    /// tableau-mcp `list-jobs` page: site administrators only; code 403xxx UNVERIFIED).
    pub query_jobs_forbidden: bool,
    /// Every workbooksConnection page carries a WARNING whose message echoes the session token,
    /// the PAT name and its secret, raw, inside a JSON string and percent- and XML-encoded
    /// (`echo_text`): what a careless server's diagnostics do. Code `ECHO` invented.
    pub echo_secrets_in_warnings: bool,
    /// 1-based request numbers answered 400 with a REST error whose summary and detail echo
    /// the caller's token, PAT name and secret (`echo_text`); no side effects.
    pub echo_secrets_error_at: Vec<usize>,
}

/// How to run the server besides its faults.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Port to bind on 127.0.0.1; 0 = any free port.
    pub port: u16,
    /// Print one line per request to stderr.
    pub echo_requests: bool,
    /// Added to every answer, after the state is updated and outside its lock, so requests
    /// that overlap are answered concurrently (a thread per request): for measuring how well a
    /// client keeps requests in flight against a slow server.
    pub latency_ms: u64,
}

/// Which body a refresh request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshBody {
    /// `<tsRequest />` (or an empty body): API < 3.25 form.
    Empty,
    /// `<tsRequest><extractRefresh /></tsRequest>`: full refresh, API >= 3.25.
    Full,
    /// `<tsRequest><extractRefresh incremental="true" /></tsRequest>`.
    Incremental,
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// 1-based global request number (the numbering the faults use).
    pub number: usize,
    pub method: String,
    /// Path plus query string, as sent.
    pub path: String,
    /// The Host header, e.g. `127.0.0.1:PORT` or `localhost:PORT`.
    pub host: String,
    /// Status answered.
    pub status: u16,
    /// Whether an X-Tableau-Auth header was sent (its value is never recorded).
    pub sent_auth: bool,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    /// Body of POST requests, PAT secrets replaced by `***`.
    pub body: Option<String>,
    /// For refresh requests whose body parsed: which form it was.
    pub refresh: Option<RefreshBody>,
}

impl std::fmt::Display for LoggedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{} {} {} -> {}",
            self.number, self.method, self.path, self.status
        )?;
        if self.sent_auth {
            write!(f, " [auth]")?;
        }
        if let Some(r) = self.refresh {
            write!(f, " [{r:?}]")?;
        }
        Ok(())
    }
}

pub struct TableauServer {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop_flag: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    in_flight: Arc<InFlight>,
    /// Set by tests that send a refused document on purpose; otherwise a refusal fails the
    /// test when the server is dropped (see `Drop`).
    refusals_expected: bool,
}

/// Requests being answered right now, and the most there ever were at once.
#[derive(Default)]
struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
}

impl TableauServer {
    /// Binds 127.0.0.1 on a free port and serves `fixture` on a background thread.
    pub fn start(fixture: &Path, faults: Faults) -> TableauServer {
        Self::start_with(fixture, faults, ServerOptions::default())
    }

    pub fn start_with(fixture: &Path, faults: Faults, options: ServerOptions) -> TableauServer {
        let fixture = Fixture::load(fixture);
        let listener = http1::Listener::bind(options.port)
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:{}: {e}", options.port));
        let port = listener.port();
        let base_url = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State::new(
            fixture,
            faults,
            base_url.clone(),
            port,
        )));
        let stop_flag = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(InFlight::default());
        let thread = {
            let state = Arc::clone(&state);
            let stop_flag = Arc::clone(&stop_flag);
            let in_flight = Arc::clone(&in_flight);
            let echo = options.echo_requests;
            let latency = Duration::from_millis(options.latency_ms);
            std::thread::Builder::new()
                .name(format!("tableau-server-{port}"))
                .spawn(move || serve(listener, state, stop_flag, echo, latency, in_flight))
                .expect("cannot spawn the tableau server thread")
        };
        TableauServer {
            base_url,
            port,
            state,
            stop_flag,
            thread: Some(thread),
            in_flight,
            refusals_expected: false,
        }
    }

    /// The most requests that were being answered at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.max.load(Ordering::SeqCst)
    }

    /// `http://localhost:PORT`: the "pod host" a redirected sign-in lands on.
    pub fn localhost_url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// Every request seen so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.lock().unwrap().log.clone()
    }

    /// Every session token this server issued, so tests can check none leaked anywhere.
    pub fn issued_tokens(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .state
            .lock()
            .unwrap()
            .sessions
            .keys()
            .cloned()
            .collect();
        all.sort();
        all
    }

    /// GraphQL documents that passed schema validation so far.
    pub fn graphql_valid(&self) -> usize {
        self.state.lock().unwrap().graphql_valid
    }

    /// The validator's messages for every GraphQL document refused so far (one string per
    /// request, its problems joined by "; ").
    pub fn graphql_refused(&self) -> Vec<String> {
        self.state.lock().unwrap().graphql_refused.clone()
    }

    /// This test sends a document the schema rejects on purpose: dropping the server after a
    /// refusal is then not a failure.
    pub fn expect_refusals(&mut self) {
        self.refusals_expected = true;
    }

    /// Number of requests seen so far (the last global request number).
    pub fn request_count(&self) -> usize {
        self.state.lock().unwrap().count
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop_flag.store(true, Ordering::SeqCst);
        http1::wake(self.port);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A document the real Metadata API would refuse is the worst defect a test can hide: every
/// test using this server fails on one, whether or not it asks `graphql_refused()` itself.
impl Drop for TableauServer {
    fn drop(&mut self) {
        self.shutdown();
        let refused = self.graphql_refused();
        if !refused.is_empty() && !self.refusals_expected && !std::thread::panicking() {
            panic!("the Tableau test server refused {} GraphQL document(s) the schema rejects: {refused:?}", refused.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serving loop
// ---------------------------------------------------------------------------------------------

/// Each connection is answered on its own thread (see `http1`), after `latency`.
fn serve(
    listener: http1::Listener,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    echo: bool,
    latency: Duration,
    in_flight: Arc<InFlight>,
) {
    listener.serve(
        stop,
        Arc::new(move |rq: http1::Request| {
            let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            in_flight.max.fetch_max(now, Ordering::SeqCst);
            answer(rq, &state, echo, latency);
            in_flight.now.fetch_sub(1, Ordering::SeqCst);
        }),
    );
}

fn answer(rq: http1::Request, state: &Mutex<State>, echo: bool, latency: Duration) {
    let incoming = Incoming::read(&rq);
    let (reply, entry) = {
        let mut st = state.lock().unwrap();
        let reply = st.handle(&incoming);
        let entry = LoggedRequest {
            number: st.count,
            method: incoming.method.clone(),
            path: incoming.url.clone(),
            host: incoming.header("host").unwrap_or("").to_string(),
            status: reply.status,
            sent_auth: incoming.header("x-tableau-auth").is_some(),
            accept: incoming.header("accept").map(str::to_string),
            content_type: incoming.header("content-type").map(str::to_string),
            body: (incoming.method == "POST").then(|| mask_secrets(&incoming.body_text())),
            refresh: reply.refresh,
        };
        st.log.push(entry.clone());
        (reply, entry)
    };
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    if echo {
        eprintln!("{entry}");
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(ct) = reply.content_type {
        headers.push(("Content-Type".to_string(), ct.to_string()));
    }
    headers.extend(reply.headers.iter().cloned());
    rq.respond(reply.status, &headers, &reply.body);
}

struct Incoming {
    method: String,
    url: String,
    path: String,
    query: Vec<(String, String)>,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Incoming {
    fn read(rq: &http1::Request) -> Incoming {
        let url = rq.url.clone();
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p.to_string(), parse_query(q)),
            None => (url.clone(), Vec::new()),
        };
        Incoming {
            method: rq.method.clone(),
            url,
            path,
            query,
            headers: rq.headers.clone(),
            body: rq.body.clone(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn wants_json(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.to_ascii_lowercase().contains("application/json"))
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Replaces the value of every `personalAccessTokenSecret` (JSON member or XML attribute).
fn mask_secrets(body: &str) -> String {
    const KEY: &str = "personalAccessTokenSecret";
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find(KEY) {
        let after_key = i + KEY.len();
        out.push_str(&rest[..after_key]);
        let tail = &rest[after_key..];
        let b = tail.as_bytes();
        let mut j = 0;
        if b.first() == Some(&b'"') {
            j += 1; // closing quote of a JSON member name
        }
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let json_style = match b.get(j) {
            Some(b':') => true,
            Some(b'=') => false,
            _ => {
                rest = tail;
                continue;
            }
        };
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let quote = match b.get(j) {
            Some(&q) if q == b'"' || q == b'\'' => q,
            _ => {
                rest = tail;
                continue;
            }
        };
        j += 1;
        let mut end = j;
        while end < b.len() && b[end] != quote {
            if json_style && b[end] == b'\\' {
                end += 1;
            }
            end += 1;
        }
        let end = end.min(b.len());
        out.push_str(&tail[..j]);
        out.push_str("***");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// State and routing
// ---------------------------------------------------------------------------------------------

struct Reply {
    status: u16,
    content_type: Option<&'static str>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    refresh: Option<RefreshBody>,
}

impl Reply {
    fn new(status: u16, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            refresh: None,
        }
    }
    fn xml(status: u16, inner: &str, api_version: &str) -> Reply {
        Reply::new(
            status,
            Some("application/xml;charset=utf-8"),
            ts_response(inner, api_version),
        )
    }
    fn json(status: u16, v: &Value) -> Reply {
        Reply::new(
            status,
            Some("application/json;charset=utf-8"),
            v.to_string(),
        )
    }
    fn with_header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

struct Session {
    site: usize,
    pat: String,
    user_luid: String,
    uses: usize,
    valid: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TargetKind {
    Datasource,
    Workbook,
}

struct Job {
    id: String,
    site: usize,
    kind: TargetKind,
    target_luid: String,
    target_name: String,
    created_at: String,
    polls: usize,
}

struct State {
    fixture: Fixture,
    faults: Faults,
    base_url: String,
    port: u16,
    count: usize,
    log: Vec<LoggedRequest>,
    /// token → session
    sessions: HashMap<String, Session>,
    /// (site index, PAT name) → its current token
    pat_tokens: HashMap<(usize, String), String>,
    jobs: Vec<Job>,
    rng: u64,
    /// GraphQL documents that passed schema validation, and the messages of those refused.
    graphql_valid: usize,
    graphql_refused: Vec<String>,
}

impl State {
    fn new(fixture: Fixture, faults: Faults, base_url: String, port: u16) -> State {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        State {
            fixture,
            faults,
            base_url,
            port,
            count: 0,
            log: Vec::new(),
            sessions: HashMap::new(),
            pat_tokens: HashMap::new(),
            jobs: Vec::new(),
            graphql_valid: 0,
            graphql_refused: Vec::new(),
            rng: nanos ^ ((port as u64) << 40) ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn api(&self) -> &str {
        &self.fixture.rest_api_version
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn new_token(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::with_capacity(32);
        for _ in 0..4 {
            let mut r = self.next_random();
            for _ in 0..8 {
                s.push(ALPHABET[(r & 63) as usize] as char);
                r >>= 6;
            }
        }
        s
    }

    fn new_uuid(&mut self) -> String {
        let a = self.next_random();
        let b = self.next_random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    fn now(&self) -> String {
        format_utc(BASE_EPOCH + self.count as i64, false)
    }

    fn handle(&mut self, rq: &Incoming) -> Reply {
        self.count += 1;
        let n = self.count;
        // Faults that apply before routing, without side effects.
        if self.faults.rate_limit_at.contains(&n) {
            // Body and code 429000 invented: the reference documents only the status.
            return self
                .rest_error(
                    429,
                    "429000",
                    "Too Many Requests",
                    "Rate limit exceeded (test server fault).",
                    rq.wants_json(),
                )
                .with_header("Retry-After", "1");
        }
        if self.faults.html_ok_at.contains(&n) {
            return Reply::new(200, Some("text/html"), "<html><head><title>Sign in</title></head><body><p>Please sign in to continue.</p></body></html>");
        }
        if let Some(reply) = self.not_data_fault(n, rq) {
            return reply;
        }
        if self.faults.huge_body_at.contains(&n) {
            return Reply::new(
                200,
                Some("application/xml"),
                "x".repeat(2 * 1024 * 1024 + 1),
            );
        }
        if self.faults.echo_secrets_error_at.contains(&n) {
            return self.echo_error(rq);
        }
        if self.faults.server_error_at.contains(&n) {
            return Reply::new(
                503,
                Some("text/html"),
                "<html><body><h1>503 Service Unavailable</h1></body></html>",
            );
        }
        let mut reply = self.route(rq);
        if self.faults.not_data.wrong_content_type_at.contains(&n) {
            reply.content_type = Some("text/html; charset=utf-8");
        }
        let read = rq.method == "GET" || rq.path.trim_end_matches('/') == "/api/metadata/graphql";
        if read && self.faults.cut_body_at.contains(&n) {
            let half = reply.body.len() / 2;
            reply.body.truncate(half);
        }
        reply
    }

    fn route(&mut self, rq: &Incoming) -> Reply {
        let segs: Vec<&str> = rq.path.trim_matches('/').split('/').collect();
        let m = rq.method.as_str();
        let json = rq.wants_json();
        match segs.as_slice() {
            ["api", "metadata", "graphql"] => self
                .guard(m, "POST", json)
                .unwrap_or_else(|| self.graphql(rq)),
            ["api", v, "serverInfo"] if is_version(v) => self
                .guard(m, "GET", json)
                .unwrap_or_else(|| self.server_info(v, json)),
            ["api", v, "auth", "signin"] if is_version(v) => self
                .guard(m, "POST", json)
                .unwrap_or_else(|| self.sign_in(rq, v)),
            ["api", v, "auth", "signout"] if is_version(v) => self
                .guard(m, "POST", json)
                .unwrap_or_else(|| self.sign_out(rq, v)),
            ["api", v, "sites", site, "projects"] if is_version(v) => self
                .guard(m, "GET", json)
                .unwrap_or_else(|| self.projects(rq, v, site)),
            ["api", v, "sites", site, "workbooks", luid] if is_version(v) => self
                .guard(m, "GET", json)
                .unwrap_or_else(|| self.workbook(rq, v, site, luid)),
            ["api", v, "sites", site, kind @ ("datasources" | "workbooks"), luid, "refresh"]
                if is_version(v) =>
            {
                let kind = if *kind == "datasources" {
                    TargetKind::Datasource
                } else {
                    TargetKind::Workbook
                };
                self.guard(m, "POST", json)
                    .unwrap_or_else(|| self.refresh(rq, v, site, kind, luid))
            }
            ["api", v, "sites", site, "jobs"] if is_version(v) => self
                .guard(m, "GET", json)
                .unwrap_or_else(|| self.query_jobs(rq, v, site)),
            ["api", v, "sites", site, "jobs", id] if is_version(v) => self
                .guard(m, "GET", json)
                .unwrap_or_else(|| self.job(rq, v, site, id)),
            _ => self.unknown_endpoint(rq),
        }
    }

    fn guard(&self, method: &str, expected: &str, json: bool) -> Option<Reply> {
        (method != expected).then(|| {
            // Code 405000 invented.
            self.rest_error(
                405,
                "405000",
                "Method Not Allowed",
                &format!("Use {expected} for this endpoint."),
                json,
            )
            .with_header("Allow", expected)
        })
    }

    fn unknown_endpoint(&self, rq: &Incoming) -> Reply {
        // Code 404999 invented so that an unexpected call is easy to spot.
        self.rest_error(
            404,
            "404999",
            "Resource Not Found",
            &format!("The test server has no endpoint {} {}", rq.method, rq.path),
            rq.wants_json(),
        )
    }

    fn rest_error(
        &self,
        status: u16,
        code: &str,
        summary: &str,
        detail: &str,
        json: bool,
    ) -> Reply {
        if json {
            Reply::json(
                status,
                &json!({"error": {"code": code, "summary": summary, "detail": detail}}),
            )
        } else {
            Reply::xml(
                status,
                &format!(
                    r#"<error code="{}"><summary>{}</summary><detail>{}</detail></error>"#,
                    xml_escape(code),
                    xml_escape(summary),
                    xml_escape(detail)
                ),
                self.api(),
            )
        }
    }

    fn version_above_server(&self, v: &str) -> bool {
        version_key(v) > version_key(self.api())
    }

    /// REST endpoints: a version above the server's is "endpoint unavailable" (404001, the code
    /// TSC names; that a too-new version gets it is UNVERIFIED).
    fn check_version(&self, v: &str, json: bool) -> Result<(), Reply> {
        if self.version_above_server(v) {
            return Err(self.rest_error(
                404,
                "404001",
                "Resource Not Found",
                &format!(
                    "API version {v} is not available on this server (max {}).",
                    self.api()
                ),
                json,
            ));
        }
        Ok(())
    }

    /// Validates X-Tableau-Auth; counts the use; returns the session's site index.
    fn authenticate(&mut self, rq: &Incoming) -> Option<usize> {
        let token = rq.header("x-tableau-auth")?;
        let limit = self.faults.expire_token_after;
        let session = self.sessions.get_mut(token)?;
        if !session.valid {
            return None;
        }
        if let Some(limit) = limit {
            if session.uses >= limit {
                session.valid = false;
                return None;
            }
        }
        session.uses += 1;
        Some(session.site)
    }

    fn rest_unauthorized(&self, json: bool) -> Reply {
        self.rest_error(
            401,
            "401000",
            "Unauthorized",
            "No authentication credentials were provided.",
            json,
        )
    }

    /// REST auth + version + site checks shared by the `/sites/{site}/…` endpoints.
    fn rest_site(&mut self, rq: &Incoming, v: &str, site: &str) -> Result<usize, Reply> {
        let json = rq.wants_json();
        self.check_version(v, json)?;
        let idx = self
            .authenticate(rq)
            .ok_or_else(|| self.rest_unauthorized(json))?;
        if self.fixture.sites[idx].luid != site {
            // 404000 "Site not found" for a site other than the session's: UNVERIFIED (real
            // servers may answer 403 here).
            return Err(self.rest_error(
                404,
                "404000",
                "Resource Not Found",
                &format!("Site '{site}' could not be found."),
                json,
            ));
        }
        Ok(idx)
    }

    // --- 1. serverInfo ------------------------------------------------------------------------

    /// Shape: help.tableau.com REST reference `rest_api_ref_server.htm` (Server Info) and TSC
    /// `models/server_info_item.py` (XML). The JSON form, `{"serverInfo": {"productVersion":
    /// {"value", "build"}, "restApiVersion"}}`, is how the `tableau_rest_api` Ruby gem reads it
    /// (`resources/server.rb`): UNVERIFIED against Tableau's page; our client asks for XML.
    fn server_info(&self, v: &str, json: bool) -> Reply {
        if version_key(v) < version_key("2.4") {
            return self.rest_error(
                404,
                "404003",
                "Resource Not Found",
                "Server info not found.",
                json,
            );
        }
        let build = self
            .fixture
            .product_build
            .clone()
            .unwrap_or_else(|| "20242.24.0101.0000".to_string());
        if json {
            return Reply::json(
                200,
                &json!({"serverInfo": {
                    "productVersion": {"value": self.fixture.product_version, "build": build},
                    "restApiVersion": self.fixture.rest_api_version
                }}),
            );
        }
        Reply::xml(
            200,
            &format!(
                r#"<serverInfo><productVersion build="{}">{}</productVersion><restApiVersion>{}</restApiVersion></serverInfo>"#,
                xml_escape(&build),
                xml_escape(&self.fixture.product_version),
                xml_escape(&self.fixture.rest_api_version)
            ),
            self.api(),
        )
    }

    // --- 2. sign-in / sign-out ------------------------------------------------------------------

    /// Shape: help.tableau.com `rest_api_ref_authentication.htm` (Sign In) and
    /// `rest_api_concepts_auth.htm`: `credentials/@token`, `site/@id`, `site/@contentUrl`,
    /// `user/@id`, in XML or (Accept: application/json) JSON; `estimatedTimeToExpiration` as in
    /// reference/tableau.md 2.1 (its format is UNVERIFIED, informational only).
    fn sign_in(&mut self, rq: &Incoming, v: &str) -> Reply {
        let json = rq.wants_json();
        if let Some(origin) = self.faults.redirect_signin_to.as_deref() {
            if rq
                .header("host")
                .is_some_and(|h| h.starts_with("127.0.0.1"))
            {
                let location = format!("{origin}/api/{v}/auth/signin");
                return Reply::new(
                    302,
                    Some("text/html"),
                    format!("<html><body>Moved to {location}</body></html>"),
                )
                .with_header("Location", &location);
            }
        }
        if self.faults.redirect_signin
            && rq
                .header("host")
                .is_some_and(|h| h.starts_with("127.0.0.1"))
        {
            let location = format!("http://localhost:{}/api/{}/auth/signin", self.port, v);
            return Reply::new(
                301,
                Some("text/html"),
                format!("<html><body>Moved to {location}</body></html>"),
            )
            .with_header("Location", &location);
        }
        if let Err(r) = self.check_version(v, json) {
            return r;
        }
        let creds = match parse_credentials(&rq.body) {
            Ok(c) => c,
            Err(why) => return self.rest_error(400, "400000", "Bad Request", &why, json),
        };
        let signin_error = |st: &State| {
            st.rest_error(
                401,
                "401001",
                "Signin Error",
                "Error signing in to Tableau Server",
                json,
            )
        };
        let (Some(name), Some(secret)) = (creds.pat_name.as_deref(), creds.pat_secret.as_deref())
        else {
            // Username/password sign-in is not offered by this server.
            return signin_error(self);
        };
        let Some(site_idx) = self
            .fixture
            .sites
            .iter()
            .position(|s| s.content_url == creds.content_url)
        else {
            return signin_error(self);
        };
        let site = &self.fixture.sites[site_idx];
        let Some(pat) = site
            .pats
            .iter()
            .find(|p| p.name == name && p.secret == secret)
        else {
            return signin_error(self);
        };
        let (pat_name, user_luid) = (pat.name.clone(), pat.user_luid.clone());
        let (site_luid, content_url) = (site.luid.clone(), site.content_url.clone());

        // One session per PAT: a new sign-in ends the previous session.
        let token = self.new_token();
        if let Some(old) = self
            .pat_tokens
            .insert((site_idx, pat_name.clone()), token.clone())
        {
            if let Some(s) = self.sessions.get_mut(&old) {
                s.valid = false;
            }
        }
        self.sessions.insert(
            token.clone(),
            Session {
                site: site_idx,
                pat: pat_name,
                user_luid: user_luid.clone(),
                uses: 0,
                valid: true,
            },
        );
        if json {
            Reply::json(
                200,
                &json!({"credentials": {
                    "token": token,
                    "estimatedTimeToExpiration": "2:00:00",
                    "site": {"id": site_luid, "contentUrl": content_url},
                    "user": {"id": user_luid}
                }}),
            )
        } else {
            Reply::xml(
                200,
                &format!(
                    r#"<credentials token="{}" estimatedTimeToExpiration="2:00:00"><site id="{}" contentUrl="{}"/><user id="{}"/></credentials>"#,
                    xml_escape(&token),
                    xml_escape(&site_luid),
                    xml_escape(&content_url),
                    xml_escape(&user_luid)
                ),
                self.api(),
            )
        }
    }

    fn sign_out(&mut self, rq: &Incoming, v: &str) -> Reply {
        let json = rq.wants_json();
        if let Err(r) = self.check_version(v, json) {
            return r;
        }
        if self.authenticate(rq).is_none() {
            return self.rest_unauthorized(json);
        }
        let token = rq.header("x-tableau-auth").unwrap_or_default().to_string();
        if let Some(s) = self.sessions.get_mut(&token) {
            s.valid = false;
        }
        Reply::new(204, None, Vec::new())
    }

    // --- 5. projects -----------------------------------------------------------------------------

    /// Shape: help.tableau.com `rest_api_ref_projects.htm` (Query Projects): `pagination`
    /// (pageNumber, pageSize, totalAvailable; paging per `rest_api_concepts_paging.htm`), then
    /// `projects/project` with id, name, description, createdAt, updatedAt, contentPermissions,
    /// parentProjectId (nested projects only) and an `owner` child with its id (the fields
    /// tableau-mcp's list-projects documents from this call). XML, or JSON when asked.
    fn projects(&mut self, rq: &Incoming, v: &str, site: &str) -> Reply {
        let idx = match self.rest_site(rq, v, site) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let json = rq.wants_json();
        // 400006 / 400007 for a bad page number / size: from memory of Tableau's docs, UNVERIFIED.
        let page_size = match rq.query_param("pageSize").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) if (1..=MAX_REST_PAGE_SIZE).contains(&n) => n,
            Some(_) => {
                return self.rest_error(400, "400007", "Bad Request", "Invalid page size.", json)
            }
        };
        let page_number = match rq.query_param("pageNumber").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => {
                return self.rest_error(400, "400006", "Bad Request", "Invalid page number.", json)
            }
        };
        let site = &self.fixture.sites[idx];
        let all = &site.projects;
        let default_owner = site
            .pats
            .first()
            .map(|p| p.user_luid.clone())
            .unwrap_or_default();
        let start = (page_number - 1).saturating_mul(page_size).min(all.len());
        let end = start.saturating_add(page_size).min(all.len());
        // Timestamps are the fixture's epoch: the fixture has none, and clients need not read them.
        let stamp = format_utc(BASE_EPOCH, false);
        if json {
            let projects: Vec<Value> = all[start..end]
                .iter()
                .map(|p| {
                    let mut o = json!({
                        "id": p.id,
                        "name": p.name,
                        "description": p.description.as_deref().unwrap_or(""),
                        "contentPermissions": p.content_permissions.as_deref().unwrap_or("ManagedByOwner"),
                        "createdAt": stamp,
                        "updatedAt": stamp,
                        "owner": {"id": p.owner_id.as_deref().unwrap_or(&default_owner)}
                    });
                    if let Some(parent) = &p.parent_project_id {
                        o["parentProjectId"] = json!(parent);
                    }
                    o
                })
                .collect();
            // Pagination numbers as strings, as Tableau's JSON gives them: UNVERIFIED (from
            // memory of real answers; the XML attributes are strings anyway).
            return Reply::json(
                200,
                &json!({
                    "pagination": {"pageNumber": page_number.to_string(), "pageSize": page_size.to_string(), "totalAvailable": all.len().to_string()},
                    "projects": {"project": projects}
                }),
            );
        }
        let mut xml = format!(
            r#"<pagination pageNumber="{page_number}" pageSize="{page_size}" totalAvailable="{}"/><projects>"#,
            all.len()
        );
        for p in &all[start..end] {
            xml.push_str(&format!(
                r#"<project id="{}" name="{}" description="{}" createdAt="{stamp}" updatedAt="{stamp}" contentPermissions="{}""#,
                xml_escape(&p.id),
                xml_escape(&p.name),
                xml_escape(p.description.as_deref().unwrap_or("")),
                xml_escape(p.content_permissions.as_deref().unwrap_or("ManagedByOwner"))
            ));
            if let Some(parent) = &p.parent_project_id {
                xml.push_str(&format!(r#" parentProjectId="{}""#, xml_escape(parent)));
            }
            xml.push_str(&format!(
                r#"><owner id="{}"/></project>"#,
                xml_escape(p.owner_id.as_deref().unwrap_or(&default_owner))
            ));
        }
        xml.push_str("</projects>");
        Reply::xml(200, &xml, self.api())
    }

    // --- 6. workbook -----------------------------------------------------------------------------

    fn workbook(&mut self, rq: &Incoming, v: &str, site: &str, luid: &str) -> Reply {
        let idx = match self.rest_site(rq, v, site) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let site = &self.fixture.sites[idx];
        let Some(wb) = site
            .workbooks
            .iter()
            .find(|w| str_field(w, "luid") == Some(luid))
        else {
            // 404006 "workbook not found": UNVERIFIED (reference 7.5).
            return self.rest_error(
                404,
                "404006",
                "Resource Not Found",
                &format!("Workbook '{luid}' could not be found."),
                rq.wants_json(),
            );
        };
        let origin = rq
            .header("host")
            .map(|h| format!("http://{h}"))
            .unwrap_or_else(|| self.base_url.clone());
        let url_id = scalar_string(wb.get("vizportalUrlId")).unwrap_or_default();
        let site_part = if site.content_url.is_empty() {
            String::new()
        } else {
            format!("/site/{}", site.content_url)
        };
        let webpage_url = format!("{origin}/#{site_part}/workbooks/{url_id}");
        let name = str_field(wb, "name").unwrap_or("");
        let content_url: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let mut xml = format!(
            r#"<workbook id="{}" name="{}" contentUrl="{}" webpageUrl="{}" showTabs="true" size="1" createdAt="{}" updatedAt="{}""#,
            xml_escape(luid),
            xml_escape(name),
            xml_escape(&content_url),
            xml_escape(&webpage_url),
            xml_escape(str_field(wb, "createdAt").unwrap_or("")),
            xml_escape(str_field(wb, "updatedAt").unwrap_or(""))
        );
        if let Some(d) = str_field(wb, "description") {
            xml.push_str(&format!(r#" description="{}""#, xml_escape(d)));
        }
        xml.push('>');
        if let Some(p) = str_field(wb, "projectLuid") {
            xml.push_str(&format!(
                r#"<project id="{}" name="{}"/>"#,
                xml_escape(p),
                xml_escape(str_field(wb, "projectName").unwrap_or(""))
            ));
        }
        xml.push_str("<tags>");
        for t in wb
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(label) = str_field(t, "name") {
                xml.push_str(&format!(r#"<tag label="{}"/>"#, xml_escape(label)));
            }
        }
        xml.push_str("</tags></workbook>");
        Reply::xml(200, &xml, self.api())
    }

    // --- 7. refresh and jobs ---------------------------------------------------------------------

    fn refresh(
        &mut self,
        rq: &Incoming,
        v: &str,
        site: &str,
        kind: TargetKind,
        luid: &str,
    ) -> Reply {
        let json = rq.wants_json();
        let idx = match self.rest_site(rq, v, site) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let body = match parse_refresh_body(&rq.body) {
            Ok(b) => b,
            Err(why) => return self.rest_error(400, "400000", "Bad Request", &why, json),
        };
        if let Some(refused) = self.refuse_body_below_its_version(v, body, json) {
            return refused;
        }
        let mut reply = self.refresh_target(idx, kind, luid, json);
        reply.refresh = Some(body);
        if reply.status == 202 && self.faults.torn_refresh.iter().any(|t| t == luid) {
            let half = reply.body.len() / 2;
            reply.body.truncate(half);
        }
        reply
    }

    fn refresh_target(&mut self, idx: usize, kind: TargetKind, luid: &str, json: bool) -> Reply {
        let polls_needed = self.faults.job_polls_to_finish;
        if let Some(limit) = self.faults.refresh_in_flight_limit {
            if self.jobs.iter().filter(|j| j.polls < polls_needed).count() >= limit {
                // Code 429000 invented; the limit itself is Tableau Cloud's (reference 7.5).
                return self
                    .rest_error(
                        429,
                        "429000",
                        "Too Many Requests",
                        &format!("Concurrent requests to endpoints that start long-running jobs are limited to {limit} at a time."),
                        json,
                    )
                    .with_header("Retry-After", "1");
            }
        }
        let site = &self.fixture.sites[idx];
        let found = match kind {
            TargetKind::Workbook => site
                .workbooks
                .iter()
                .find(|w| str_field(w, "luid") == Some(luid))
                .map(|w| {
                    let has_extract = w
                        .get("embeddedDatasources")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|d| d.get("hasExtracts").and_then(Value::as_bool) == Some(true));
                    (str_field(w, "name").unwrap_or("").to_string(), has_extract)
                }),
            TargetKind::Datasource => find_published_datasource(site, luid),
        };
        let (noun, code404) = match kind {
            // 404005 / 404006 for datasource / workbook: UNVERIFIED (reference 7.5).
            TargetKind::Datasource => ("data source", "404005"),
            TargetKind::Workbook => ("workbook", "404006"),
        };
        let Some((name, has_extract)) = found else {
            return self.rest_error(
                404,
                code404,
                "Resource Not Found",
                &format!("The {noun} '{luid}' could not be found."),
                json,
            );
        };
        if self.faults.refresh_forbidden.iter().any(|f| f == luid) {
            // Code 403021 invented: the reference only knows "403xxx".
            return self.rest_error(
                403,
                "403021",
                "Forbidden",
                &format!("The user does not have permission to refresh the {noun} '{name}'."),
                json,
            );
        }
        if !has_extract {
            return self.rest_error(
                409,
                "409090",
                "Bad Request",
                &format!("Extract operation for the {noun} '{name}' is not allowed."),
                json,
            );
        }
        if self.jobs.iter().any(|j| {
            j.site == idx && j.kind == kind && j.target_luid == luid && j.polls < polls_needed
        }) {
            return self.rest_error(
                409,
                "409093",
                "Resource Conflict",
                &format!("EXTRACT_OPERATION_ALREADY_QUEUED: a refresh of the {noun} '{name}' is already queued."),
                json,
            );
        }
        let job = Job {
            id: self.new_uuid(),
            site: idx,
            kind,
            target_luid: luid.to_string(),
            target_name: name,
            created_at: self.now(),
            polls: 0,
        };
        // Shape: help.tableau.com `rest_api_ref_data_sources.htm` (Update Data Source Now) and
        // `rest_api_ref_workbooks_and_views.htm` (Update Workbook Now): 202 with
        // `job/@id,@mode,@type,@createdAt` and `extractRefreshJob/{datasource|workbook}`; TSC
        // `models/job_item.py`. JSON as a Tableau answer quoted on the Tableau community forum
        // (trailblazer feed 0D5KX00000kQw0a0AC: `{"job": {"extractRefreshJob": {"workbook":
        // {"id", "name"}}, "id", "mode", "type", "createdAt"}}`).
        let reply = if json {
            let mut j = json!({"id": job.id, "mode": "Asynchronous", "type": "RefreshExtract", "createdAt": job.created_at});
            j["extractRefreshJob"] = job_target_json(&job);
            Reply::json(202, &json!({"job": j}))
        } else {
            let xml = format!(
                r#"<job id="{}" mode="Asynchronous" type="RefreshExtract" createdAt="{}"><extractRefreshJob>{}</extractRefreshJob></job>"#,
                xml_escape(&job.id),
                job.created_at,
                job_target_xml(&job)
            );
            Reply::xml(202, &xml, self.api())
        };
        self.jobs.push(job);
        reply
    }

    fn job(&mut self, rq: &Incoming, v: &str, site: &str, id: &str) -> Reply {
        let idx = match self.rest_site(rq, v, site) {
            Ok(i) => i,
            Err(r) => return r,
        };
        if self.faults.job_poll_unavailable {
            return Reply::new(
                503,
                Some("text/html"),
                "<html><body><h1>503 Service Unavailable</h1></body></html>",
            );
        }
        let now = self.now();
        let polls_needed = self.faults.job_polls_to_finish;
        let Some(job) = self.jobs.iter_mut().find(|j| j.id == id && j.site == idx) else {
            // Code 404031 invented.
            return self.rest_error(
                404,
                "404031",
                "Resource Not Found",
                &format!("Job '{id}' could not be found."),
                rq.wants_json(),
            );
        };
        let done = job.polls >= polls_needed;
        let progress = if done {
            100
        } else {
            (100 * (job.polls + 1) / (polls_needed + 2)).max(1)
        };
        job.polls += 1;
        // Shape: help.tableau.com `rest_api_ref_jobs_tasks_and_schedules.htm#query_job` as TSC
        // `models/job_item.py` reads it: progress, createdAt, startedAt; once done completedAt
        // and finishCode; failure text in extractRefreshJob/notes. JSON: the same members under
        // "job" (UNVERIFIED beyond the refresh answer's form above; our client asks for XML).
        if rq.wants_json() {
            let mut j = json!({
                "id": job.id, "mode": "Asynchronous", "type": "RefreshExtract", "progress": progress.to_string(),
                "createdAt": job.created_at, "startedAt": job.created_at
            });
            let mut target = job_target_json(job);
            if done {
                let (code, n) = self
                    .faults
                    .job_outcomes
                    .get(&job.target_luid)
                    .cloned()
                    .unwrap_or((0, None));
                j["completedAt"] = json!(now);
                j["finishCode"] = json!(code.to_string());
                if let Some(n) = n {
                    target["notes"] = json!(n);
                }
            }
            j["extractRefreshJob"] = target;
            return Reply::json(200, &json!({"job": j}));
        }
        let mut xml = format!(
            r#"<job id="{}" mode="Asynchronous" type="RefreshExtract" progress="{}" createdAt="{}" startedAt="{}""#,
            xml_escape(&job.id),
            progress,
            job.created_at,
            job.created_at
        );
        let mut notes = None;
        if done {
            let (code, n) = self
                .faults
                .job_outcomes
                .get(&job.target_luid)
                .cloned()
                .unwrap_or((0, None));
            xml.push_str(&format!(r#" completedAt="{now}" finishCode="{code}""#));
            notes = n;
        }
        xml.push_str("><extractRefreshJob>");
        xml.push_str(&job_target_xml(job));
        if let Some(n) = notes {
            xml.push_str(&format!("<notes>{}</notes>", xml_escape(&n)));
        }
        xml.push_str("</extractRefreshJob></job>");
        Reply::xml(200, &xml, &self.fixture.rest_api_version)
    }

    // --- 3. Metadata API -------------------------------------------------------------------------

    fn graphql(&mut self, rq: &Incoming) -> Reply {
        let n = self.count;
        let Some(site_idx) = self.authenticate(rq) else {
            return Reply::json(
                401,
                &json!({
                    "timestamp": format_utc(BASE_EPOCH + n as i64, true),
                    "status": 401,
                    "error": "Unauthorized",
                    "path": SPRING_PATH
                }),
            );
        };
        let body: Value = match serde_json::from_slice(&rq.body) {
            Ok(v) => v,
            Err(e) => {
                return Reply::json(
                    400,
                    &json!({"errors": [{"message": format!("Invalid JSON request body: {e}")}]}),
                )
            }
        };
        let query = body
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let variables = body.get("variables").cloned().unwrap_or(Value::Null);
        let operation_name = body.get("operationName").and_then(Value::as_str);

        // Tableau validates the whole document against its schema before it runs anything.
        let checked = match graphql_check::check(&query, &variables, operation_name) {
            Ok(c) => c,
            Err(problems) => {
                self.graphql_refused.push(
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                return validation_errors(&problems);
            }
        };
        self.graphql_valid += 1;
        let roots = checked.root_fields();
        let [root] = roots.as_slice() else {
            // Valid GraphQL, but more than this server serves (invented message).
            return graphql_error(
                "The test server answers one root field per document",
                json!({"severity": "ERROR", "code": "TEST_SERVER_UNSUPPORTED"}),
            );
        };
        let conn = match root.name.as_str() {
            "workbooksConnection" => Connection::Workbooks,
            "customSQLTablesConnection" => Connection::CustomSql,
            "publishedDatasourcesConnection" => Connection::PublishedDatasources,
            other => {
                return graphql_error(
                    &format!("The test server does not serve {other}; it answers workbooksConnection, customSQLTablesConnection and publishedDatasourcesConnection"),
                    json!({"severity": "ERROR", "code": "TEST_SERVER_UNSUPPORTED"}),
                )
            }
        };
        // The answer's key is the field's alias when it has one, as in any GraphQL response.
        let field = root.alias.as_ref().unwrap_or(&root.name).to_string();
        let field = field.as_str();

        if self.faults.metadata_timeout_at.contains(&n) {
            return Reply::json(
                200,
                &json!({
                    "data": {field: null},
                    "errors": [{"message": "Reached time limit of PT5S for query execution.", "path": null, "extensions": null}]
                }),
            );
        }
        if self.faults.metadata_cancel_timeout_at.contains(&n) {
            return Reply::json(
                200,
                &json!({"errors": [{"message": "Execution canceled because timeout of 30000 millis was reached", "path": null, "extensions": null}]}),
            );
        }
        if self.faults.metadata_rate_exceeded_at.contains(&n) {
            // Message invented; the code is the one DH reports for Tableau Cloud.
            return graphql_error(
                "Query cost budget exceeded. Try again later.",
                json!({"severity": "ERROR", "code": "RATE_EXCEEDED"}),
            );
        }

        // Arguments as the document gives them, variables resolved after coercion.
        let args = checked.arguments(root);
        let filter = args
            .get("filter")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let invalid = |msg: &str| {
            graphql_error(
                msg,
                json!({"severity": "ERROR", "code": "INVALID_ARGUMENT"}),
            )
        };

        let first = match args.get("first") {
            None | Some(Value::Null) => 100u64,
            Some(v) => match v.as_i64() {
                Some(f) if f >= 0 => f as u64,
                _ => return invalid("Argument 'first' must be a non-negative integer"),
            },
        };
        let after = match args.get("after") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return invalid("Argument 'after' must be a cursor string"),
        };
        let offset = match args.get("offset") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(o) if o >= 0 => Some(o as usize),
                _ => return invalid("Argument 'offset' must be a non-negative integer"),
            },
        };
        if after.is_some() && offset.is_some() {
            return invalid("Can’t use “after” and “offset” pagination at the same time");
        }
        // Validation and coercion made these lists of strings (or null) already.
        let list_arg = |name: &str| -> Option<Vec<String>> {
            match filter.get(name) {
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect(),
                ),
                _ => None,
            }
        };
        let (project_luids, project_names) = if conn == Connection::Workbooks {
            (list_arg("projectLuidWithin"), list_arg("projectNameWithin"))
        } else {
            (None, None)
        };
        let ids: Option<std::collections::HashSet<String>> =
            list_arg("idWithin").map(|v| v.into_iter().collect());
        // A query whose nodes select only scalars (`id updatedAt`: the listing pass of a client)
        // costs a node per item.
        let ids_only = graphql_check::sub_field(root, "nodes")
            .is_some_and(|n| graphql_check::selects_only_scalars(&n.selection_set));

        let site = &self.fixture.sites[site_idx];
        let site_luid = site.luid.clone();
        let published;
        let source = match conn {
            Connection::Workbooks => &site.workbooks,
            Connection::CustomSql => &site.custom_sql,
            Connection::PublishedDatasources => {
                published = published_datasources(site);
                &published
            }
        };
        let mut items: Vec<&Value> = source
            .iter()
            .filter(|w| match &project_luids {
                Some(list) => {
                    str_field(w, "projectLuid").is_some_and(|p| list.iter().any(|l| l == p))
                }
                None => true,
            })
            .filter(|w| match &project_names {
                Some(list) => {
                    str_field(w, "projectName").is_some_and(|p| list.iter().any(|l| l == p))
                }
                None => true,
            })
            .filter(|w| match &ids {
                Some(set) => str_field(w, "id").is_some_and(|i| set.contains(i)),
                None => true,
            })
            .collect();
        items.sort_by(|a, b| {
            str_field(a, "id")
                .unwrap_or("")
                .cmp(str_field(b, "id").unwrap_or(""))
        });

        let start = match (&after, offset) {
            (Some(cursor), _) => match decode_cursor(cursor, conn.cursor_type(), &site_luid) {
                Some(last_id) => items
                    .iter()
                    .position(|i| str_field(i, "id").unwrap_or("") > last_id.as_str())
                    .unwrap_or(items.len()),
                None => {
                    return invalid(
                        "Invalid cursor: it was not issued for this query type and site",
                    )
                }
            },
            (None, Some(o)) => o.min(items.len()),
            (None, None) => 0,
        };

        let mut errors = Vec::new();
        let mut take = first;
        if let Some(max) = self.faults.max_page_size {
            if first > max as u64 {
                take = take.min(max as u64);
                // The message is Tableau's documented text (help.tableau.com
                // meta_api_errors.html, MAX_PAGE_SIZE_EXCEEDED, Warning); it names no number.
                // Whether real answers carry `properties` is UNVERIFIED, so only
                // `max_page_size_named` adds them (and the number, in the message).
                let mut message = "The value chosen for \u{201c}first\u{201d} exceeded the maximum page size, so the query results will be limited to the maximum page size instead of the value chosen for \u{201c}first\u{201d}. It is recommended that the value chosen for \u{201c}first\u{201d} be smaller than the maximum page size, or incomplete results may be returned.".to_string();
                let mut extensions =
                    json!({"severity": "WARNING", "code": "MAX_PAGE_SIZE_EXCEEDED"});
                if self.faults.max_page_size_named {
                    message = format!("The value chosen for \u{201c}first\u{201d} ({first}) exceeded the maximum page size of {max}, so the query results will be limited to {max} nodes.");
                    extensions["properties"] = json!({"maxPageSize": max});
                }
                errors.push(json!({"message": message, "extensions": extensions}));
            }
        }
        if conn == Connection::Workbooks {
            // The node limit models whole workbook nodes with their tables; an id-only listing
            // costs one node per workbook and stays far below it.
            if let Some(limit) = self.faults.node_limit_above.filter(|_| !ids_only) {
                if first > limit as u64 {
                    take = take.min(limit as u64);
                    errors.push(json!({
                        "message": format!("Showing partial results. The request exceeded the {NODE_LIMIT_IN_MESSAGE} node limit. Use pagination, additional filtering, or both in the query to adjust results."),
                        "extensions": {"severity": "WARNING", "code": "NODE_LIMIT_EXCEEDED", "properties": {"nodeLimit": NODE_LIMIT_IN_MESSAGE}}
                    }));
                }
            }
            if self.faults.echo_secrets_in_warnings {
                errors.push(self.echo_warning(rq));
            }
            if self.faults.permissions_mode_switched {
                errors.push(json!({
                    "message": "One or more of the attributes used in your filter contain sensitive data so your results have been automatically filtered to contain only the results you have permissions to see",
                    "extensions": {"severity": "WARNING", "code": "PERMISSIONS_MODE_SWITCHED", "properties": {field: ["projectLuidWithin"]}}
                }));
            }
        }
        let end = start.saturating_add(take as usize).min(items.len());
        let mut page: Vec<Value> = items[start..end].iter().map(|v| (*v).clone()).collect();
        if self.faults.redact_tables {
            page.iter_mut().for_each(redact_tables);
        }
        let end_cursor = page
            .last()
            .map(|last| {
                Value::String(encode_cursor(
                    conn.cursor_type(),
                    &site_luid,
                    str_field(last, "id").unwrap_or(""),
                ))
            })
            .unwrap_or(Value::Null);
        // Each node carries what the document selects and nothing else, so a client that reads
        // a field it never asked for gets null here as it would from Tableau.
        if let Some(nodes) = graphql_check::sub_field(root, "nodes") {
            page = page
                .iter()
                .map(|n| checked.select(n, &nodes.selection_set))
                .collect();
        }
        let mut out = json!({"data": {field: {
            "totalCount": items.len(),
            "pageInfo": {"hasNextPage": end < items.len(), "endCursor": end_cursor},
            "nodes": page
        }}});
        if !errors.is_empty() {
            out["errors"] = Value::Array(errors);
        }
        Reply::json(200, &out)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Connection {
    Workbooks,
    CustomSql,
    PublishedDatasources,
}

/// The site's published data sources: every one a workbook reads
/// (`embeddedDatasources.upstreamDatasources`), the first node of each id, as Tableau lists
/// them in `publishedDatasourcesConnection` (a fixture has no list of its own).
fn published_datasources(site: &FixtureSite) -> Vec<Value> {
    let mut seen = std::collections::BTreeMap::new();
    for w in &site.workbooks {
        let embedded = w
            .get("embeddedDatasources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for p in embedded.flat_map(|e| {
            e.get("upstreamDatasources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        }) {
            if let Some(id) = str_field(p, "id") {
                seen.entry(id.to_string()).or_insert_with(|| p.clone());
            }
        }
    }
    seen.into_values().collect()
}

impl Connection {
    fn field(self) -> &'static str {
        match self {
            Connection::Workbooks => "workbooksConnection",
            Connection::CustomSql => "customSQLTablesConnection",
            Connection::PublishedDatasources => "publishedDatasourcesConnection",
        }
    }
    fn cursor_type(self) -> &'static str {
        match self {
            Connection::Workbooks => "Workbook",
            Connection::CustomSql => "CustomSQLTable",
            Connection::PublishedDatasources => "PublishedDatasource",
        }
    }
}

/// Nulls `name`, `fullName`, `schema` and `database.name` of every table under `upstreamTables`
/// or `tables`, at any depth.
fn redact_tables(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "upstreamTables" || key == "tables" {
                    for table in child.as_array_mut().into_iter().flatten() {
                        for field in ["name", "fullName", "schema"] {
                            if let Some(f) = table.get_mut(field) {
                                *f = Value::Null;
                            }
                        }
                        if let Some(name) =
                            table.get_mut("database").and_then(|d| d.get_mut("name"))
                        {
                            *name = Value::Null;
                        }
                    }
                } else {
                    redact_tables(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_tables),
        _ => {}
    }
}

/// A document refused by schema validation: HTTP 200, one error per problem, and no `data`
/// (Tableau validates before it executes anything, so there is nothing partial to return).
/// Shape as Tableau answered DataHub's invalid field (datahub-project/datahub #4119, 2022):
/// `message`, `locations` (`line`, `column`, `sourceName`), `errorType: "ValidationError"`,
/// `extensions: null`, `path: null`. UNVERIFIED: the message wording (ours is
/// apollo-compiler's, Tableau's is graphql-java's "Validation error of type FieldUndefined:
/// …"), and the `description`, `validationErrorType` and `queryPath` members DataHub also
/// printed, left out here. Clients should key on the error being there, not on its text.
fn validation_errors(problems: &[graphql_check::Problem]) -> Reply {
    let errors: Vec<Value> = problems
        .iter()
        .map(|p| {
            let locations: Vec<Value> = p
                .location
                .iter()
                .map(|(line, column)| json!({"line": line, "column": column, "sourceName": null}))
                .collect();
            json!({"message": p.message, "locations": locations, "errorType": "ValidationError", "extensions": null, "path": null})
        })
        .collect();
    Reply::json(200, &json!({"errors": errors}))
}

fn graphql_error(message: &str, extensions: Value) -> Reply {
    Reply::json(
        200,
        &json!({"data": null, "errors": [{"message": message, "extensions": extensions}]}),
    )
}

fn job_target_json(job: &Job) -> Value {
    let tag = match job.kind {
        TargetKind::Datasource => "datasource",
        TargetKind::Workbook => "workbook",
    };
    json!({tag: {"id": job.target_luid, "name": job.target_name}})
}

fn job_target_xml(job: &Job) -> String {
    let tag = match job.kind {
        TargetKind::Datasource => "datasource",
        TargetKind::Workbook => "workbook",
    };
    format!(
        r#"<{tag} id="{}" name="{}"/>"#,
        xml_escape(&job.target_luid),
        xml_escape(&job.target_name)
    )
}

/// A published data source is any `upstreamDatasources` entry (with a luid) of any workbook.
fn find_published_datasource(site: &FixtureSite, luid: &str) -> Option<(String, bool)> {
    site.workbooks
        .iter()
        .filter_map(|w| w.get("embeddedDatasources").and_then(Value::as_array))
        .flatten()
        .filter_map(|e| e.get("upstreamDatasources").and_then(Value::as_array))
        .flatten()
        .find(|d| str_field(d, "luid") == Some(luid))
        .map(|d| {
            (
                str_field(d, "name").unwrap_or("").to_string(),
                d.get("hasExtracts").and_then(Value::as_bool) == Some(true),
            )
        })
}

// ---------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------

struct Credentials {
    pat_name: Option<String>,
    pat_secret: Option<String>,
    content_url: String,
}

fn parse_credentials(body: &[u8]) -> Result<Credentials, String> {
    let text = std::str::from_utf8(body).map_err(|_| "sign-in body is not UTF-8".to_string())?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let v: Value =
            serde_json::from_str(trimmed).map_err(|e| format!("invalid JSON sign-in body: {e}"))?;
        let c = v
            .get("credentials")
            .ok_or("sign-in body has no credentials")?;
        Ok(Credentials {
            pat_name: str_field(c, "personalAccessTokenName").map(str::to_string),
            pat_secret: str_field(c, "personalAccessTokenSecret").map(str::to_string),
            content_url: c
                .get("site")
                .and_then(|s| str_field(s, "contentUrl"))
                .unwrap_or("")
                .to_string(),
        })
    } else if trimmed.starts_with('<') {
        let doc = roxmltree::Document::parse(trimmed)
            .map_err(|e| format!("invalid XML sign-in body: {e}"))?;
        let c = doc
            .descendants()
            .find(|n| n.has_tag_name("credentials"))
            .ok_or("sign-in body has no credentials element")?;
        let site = c.children().find(|n| n.has_tag_name("site"));
        Ok(Credentials {
            pat_name: c.attribute("personalAccessTokenName").map(str::to_string),
            pat_secret: c.attribute("personalAccessTokenSecret").map(str::to_string),
            content_url: site
                .and_then(|s| s.attribute("contentUrl"))
                .unwrap_or("")
                .to_string(),
        })
    } else {
        Err("sign-in body is neither JSON nor XML".to_string())
    }
}

fn parse_refresh_body(body: &[u8]) -> Result<RefreshBody, String> {
    let text = std::str::from_utf8(body).map_err(|_| "refresh body is not UTF-8".to_string())?;
    if text.trim().is_empty() {
        return Ok(RefreshBody::Empty);
    }
    let doc =
        roxmltree::Document::parse(text).map_err(|e| format!("invalid XML refresh body: {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name("tsRequest") {
        return Err(format!(
            "refresh body root is <{}>, expected <tsRequest>",
            root.tag_name().name()
        ));
    }
    match root.children().find(|n| n.is_element()) {
        None => Ok(RefreshBody::Empty),
        Some(e) if e.has_tag_name("extractRefresh") => {
            if e.attribute("incremental")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            {
                Ok(RefreshBody::Incremental)
            } else {
                Ok(RefreshBody::Full)
            }
        }
        Some(e) => Err(format!(
            "unexpected element <{}> in refresh body",
            e.tag_name().name()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Cursors: base64 of {"type":…,"site":…,"id":<last id>}
// ---------------------------------------------------------------------------------------------

fn encode_cursor(kind: &str, site: &str, last_id: &str) -> String {
    // Members in this order so that cursors start like Tableau's (`eyJ0eXBlIjoi…`).
    let text = format!(
        r#"{{"type":{},"site":{},"id":{}}}"#,
        Value::from(kind),
        Value::from(site),
        Value::from(last_id)
    );
    base64_encode(text.as_bytes())
}

fn decode_cursor(cursor: &str, kind: &str, site: &str) -> Option<String> {
    let raw = base64_decode(cursor)?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    if str_field(&v, "type")? != kind || str_field(&v, "site")? != site {
        return None;
    }
    str_field(&v, "id").map(str::to_string)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let t = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(t.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in t.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn ts_response(inner: &str, api_version: &str) -> String {
    format!(
        r#"<?xml version='1.0' encoding='UTF-8'?><tsResponse xmlns="{API_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="{API_NS} https://help.tableau.com/samples/en-us/rest_api/ts-api_{}.xsd">{inner}</tsResponse>"#,
        api_version.replace('.', "_")
    )
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn scalar_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_version(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

fn version_key(s: &str) -> (u32, u32) {
    let mut parts = s.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// `2025-03-04T05:06:07Z`, or with `spring` `2025-03-04T05:06:07.000+00:00`.
fn format_utc(epoch: i64, spring: bool) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    if spring {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.000+00:00")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl TableauServer {
    /// Serves `fixture` from now on (sessions, jobs and the request log kept): the same site,
    /// changed between two runs.
    pub fn set_fixture(&self, fixture: &Path) {
        self.state.lock().unwrap().fixture = Fixture::load(fixture);
    }
}

// ---------------------------------------------------------------------------------------------
// Tests (run with `cargo test --example tableau_server`)
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const SITE: &str = "5e57a1e0-0000-4000-8000-0000000051e1";
    const WB_EXTRACT: &str = "5e57b000-0000-4000-8000-000000000001";
    const WB_PUBLISHED: &str = "5e57b000-0000-4000-8000-000000000002";
    const WB_LIVE: &str = "5e57b000-0000-4000-8000-000000000003";
    const DS_EXTRACT: &str = "5e57d000-0000-4000-8000-000000000001";
    const DS_LIVE: &str = "5e57d000-0000-4000-8000-000000000002";

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/tableau/server_test.site.json")
    }

    fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    struct Resp {
        status: u16,
        headers: reqwest::header::HeaderMap,
        text: String,
    }

    impl Resp {
        fn json(&self) -> Value {
            serde_json::from_str(&self.text)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
        }
    }

    fn send(rb: reqwest::blocking::RequestBuilder) -> Resp {
        let r = rb.send().unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Resp {
            status,
            headers,
            text: r.text().unwrap(),
        }
    }

    fn sign_in_json(
        s: &TableauServer,
        c: &reqwest::blocking::Client,
        pat: &str,
        secret: &str,
    ) -> Resp {
        send(
            c.post(format!("{}/api/3.23/auth/signin", s.base_url))
                .header("Accept", "application/json")
                .json(&json!({"credentials": {"personalAccessTokenName": pat, "personalAccessTokenSecret": secret,
                                               "site": {"contentUrl": "stest"}}})),
        )
    }

    fn token(s: &TableauServer, c: &reqwest::blocking::Client) -> String {
        let r = sign_in_json(s, c, "autoexpose", "stest-secret-1");
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["credentials"]["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn gql(
        s: &TableauServer,
        c: &reqwest::blocking::Client,
        tok: &str,
        query: &str,
        vars: Value,
    ) -> Resp {
        send(
            c.post(format!("{}/api/metadata/graphql", s.base_url))
                .header("X-Tableau-Auth", tok)
                .json(&json!({"query": query, "variables": vars})),
        )
    }

    fn get(s: &TableauServer, c: &reqwest::blocking::Client, tok: &str, path: &str) -> Resp {
        send(
            c.get(format!("{}{}", s.base_url, path))
                .header("X-Tableau-Auth", tok),
        )
    }

    fn refresh(
        s: &TableauServer,
        c: &reqwest::blocking::Client,
        tok: &str,
        kind: &str,
        luid: &str,
        body: &str,
    ) -> Resp {
        send(
            c.post(format!(
                "{}/api/3.23/sites/{SITE}/{kind}/{luid}/refresh",
                s.base_url
            ))
            .header("X-Tableau-Auth", tok)
            .header("Content-Type", "text/xml")
            .body(body.to_string()),
        )
    }

    fn workbooks_query(with_projects: bool) -> String {
        // The client's detail query, with its idWithin filter swapped for a project filter.
        let q = include_str!("../../src/tableau/workbooks.graphql");
        if with_projects {
            q.replace(", $ids: [ID]", ", $projectLuids: [String]")
                .replace(
                    "filter: {idWithin: $ids}",
                    "filter: {projectLuidWithin: $projectLuids}",
                )
        } else {
            q.replace(", $ids: [ID]", "")
                .replace(", filter: {idWithin: $ids}", "")
        }
    }

    /// The client's custom SQL document without the by-id filter (its placeholders removed).
    fn custom_sql() -> String {
        include_str!("../../src/tableau/custom_sql.graphql")
            .replace("$IDS_VAR", "")
            .replace("$IDS_FILTER", "")
    }

    fn attr(xml: &str, element: &str, name: &str) -> Option<String> {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let e = doc
            .descendants()
            .find(|n| n.has_tag_name((API_NS, element)))?;
        e.attribute(name).map(str::to_string)
    }

    fn error_code(xml: &str) -> String {
        attr(xml, "error", "code").unwrap_or_else(|| panic!("no error element in {xml}"))
    }

    fn ids(page: &Value, field: &str) -> Vec<String> {
        page["data"][field]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn clock_and_base64_helpers() {
        assert_eq!(format_utc(BASE_EPOCH, false), "2025-03-04T05:06:07Z");
        assert_eq!(format_utc(0, true), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(format_utc(951_782_400, false), "2000-02-29T00:00:00Z");
        for s in ["", "a", "ab", "abc", "abcd", "{\"type\":\"Workbook\"}"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(
            base64_encode(b"{\"type\":\"Workbook\""),
            "eyJ0eXBlIjoiV29ya2Jvb2si"
        );
        let cursor = encode_cursor("Workbook", "site-1", "wb \"1\"");
        assert!(cursor.starts_with("eyJ0eXBlIjoiV29ya2Jvb2si"), "{cursor}");
        assert_eq!(
            decode_cursor(&cursor, "Workbook", "site-1").as_deref(),
            Some("wb \"1\"")
        );
        assert_eq!(decode_cursor(&cursor, "Workbook", "site-2"), None);
        assert_eq!(
            mask_secrets(r#"{"personalAccessTokenSecret": "a\"b", "x": 1}"#),
            r#"{"personalAccessTokenSecret": "***", "x": 1}"#
        );
        assert_eq!(
            mask_secrets(
                r#"<credentials personalAccessTokenSecret='s' personalAccessTokenName="n"/>"#
            ),
            r#"<credentials personalAccessTokenSecret='***' personalAccessTokenName="n"/>"#
        );
        assert_eq!(query::percent_decode("a%20b+c"), "a b c");
    }

    #[test]
    fn server_info_sign_in_and_cursor_paging() {
        let mut s = TableauServer::start(&fixture(), Faults::default());
        s.expect_refusals();
        let c = client();
        let info = send(c.get(format!("{}/api/2.4/serverInfo", s.base_url)));
        assert_eq!(info.status, 200);
        let doc = roxmltree::Document::parse(&info.text).unwrap();
        let rest = doc
            .descendants()
            .find(|n| n.has_tag_name((API_NS, "restApiVersion")))
            .unwrap();
        assert_eq!(rest.text(), Some("3.23"));

        let r = sign_in_json(&s, &c, "autoexpose", "stest-secret-1");
        assert_eq!(r.status, 200);
        let creds = r.json();
        assert_eq!(creds["credentials"]["site"]["id"], SITE);
        assert_eq!(
            creds["credentials"]["user"]["id"],
            "5e57a1e0-0000-4000-8000-000000000ae1"
        );
        let tok = creds["credentials"]["token"].as_str().unwrap().to_string();
        assert!(tok.len() >= 24);

        // Page through all workbooks two at a time.
        let q = workbooks_query(false);
        let mut after = Value::Null;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let r = gql(&s, &c, &tok, &q, json!({"first": 2, "after": after}));
            assert_eq!(r.status, 200, "{}", r.text);
            let v = r.json();
            assert!(v.get("errors").is_none(), "{v}");
            let conn = &v["data"]["workbooksConnection"];
            assert_eq!(conn["totalCount"], 5);
            seen.extend(ids(&v, "workbooksConnection"));
            pages += 1;
            if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = conn["pageInfo"]["endCursor"].clone();
            assert!(after.is_string());
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ["wb-01", "wb-02", "wb-03", "wb-04", "wb-05"]);

        // Nodes come back verbatim.
        let r = gql(&s, &c, &tok, &q, json!({"first": 1})).json();
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
        let wb01 = fixture["sites"][0]["workbooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == "wb-01")
            .unwrap();
        assert_eq!(&r["data"]["workbooksConnection"]["nodes"][0], wb01);

        // Default first = 100.
        let r = gql(&s, &c, &tok, &q, json!({})).json();
        assert_eq!(ids(&r, "workbooksConnection").len(), 5);
        assert_eq!(
            r["data"]["workbooksConnection"]["pageInfo"]["hasNextPage"],
            false
        );

        // Project filter.
        let qp = workbooks_query(true);
        let r = gql(
            &s,
            &c,
            &tok,
            &qp,
            json!({"first": 10, "projectLuids": ["5e57f000-0000-4000-8000-000000000001", "5e57f000-0000-4000-8000-000000000002"]}),
        )
        .json();
        assert_eq!(ids(&r, "workbooksConnection"), ["wb-01", "wb-02"]);
        assert_eq!(r["data"]["workbooksConnection"]["totalCount"], 2);

        // Custom SQL, ordered by id.
        let r = gql(&s, &c, &tok, &custom_sql(), json!({"first": 1})).json();
        assert_eq!(ids(&r, "customSQLTablesConnection"), ["csql-01"]);
        let sql_cursor = r["data"]["customSQLTablesConnection"]["pageInfo"]["endCursor"].clone();
        let r2 = gql(
            &s,
            &c,
            &tok,
            &custom_sql(),
            json!({"first": 1, "after": sql_cursor}),
        )
        .json();
        assert_eq!(ids(&r2, "customSQLTablesConnection"), ["csql-02"]);
        assert_eq!(
            r2["data"]["customSQLTablesConnection"]["pageInfo"]["hasNextPage"],
            false
        );

        // A custom-SQL cursor in a workbook query, garbage, and after+offset → INVALID_ARGUMENT.
        for vars in [
            json!({"first": 2, "after": sql_cursor}),
            json!({"first": 2, "after": "not-a-cursor!"}),
            json!({"first": 2, "after": base64_encode(b"{\"type\":\"Workbook\",\"site\":\"other\",\"id\":\"wb-01\"}")}),
        ] {
            let r = gql(&s, &c, &tok, &q, vars).json();
            assert_eq!(
                r["errors"][0]["extensions"]["code"], "INVALID_ARGUMENT",
                "{r}"
            );
        }
        let q_offset = "query W($first: Int, $after: String, $offset: Int) { workbooksConnection(first: $first, after: $after, offset: $offset) { nodes { id } } }";
        let r = gql(
            &s,
            &c,
            &tok,
            q_offset,
            json!({"first": 1, "after": after, "offset": 1}),
        )
        .json();
        assert_eq!(r["errors"][0]["extensions"]["code"], "INVALID_ARGUMENT");
        let r = gql(&s, &c, &tok, q_offset, json!({"first": 1, "offset": 1})).json();
        assert_eq!(ids(&r, "workbooksConnection"), ["wb-02"]);

        // An unsubstituted placeholder is a syntax error, refused before anything runs.
        let raw = include_str!("../../src/tableau/workbook_ids.graphql");
        let r = gql(&s, &c, &tok, raw, json!({"first": 1}));
        assert_eq!(r.status, 200);
        let r = r.json();
        assert!(r.get("data").is_none(), "{r}");
        assert_eq!(r["errors"][0]["errorType"], "ValidationError", "{r}");
        assert_eq!(s.graphql_refused().len(), 1);

        // Log: secrets masked, token never recorded.
        let log = s.requests();
        assert_eq!(log[0].path, "/api/2.4/serverInfo");
        assert!(!log[0].sent_auth);
        let signin = &log[1];
        let body = signin.body.as_deref().unwrap();
        assert!(
            body.contains("***") && !body.contains("stest-secret-1"),
            "{body}"
        );
        assert!(log[2].sent_auth);
        assert!(log.iter().all(|l| !format!("{l:?}").contains(&tok)));
        s.stop();
    }

    #[test]
    fn documents_tableau_would_refuse_are_refused() {
        let mut s = TableauServer::start(&fixture(), Faults::default());
        s.expect_refusals();
        let c = client();
        let tok = token(&s, &c);
        let details = include_str!("../../src/tableau/workbooks.graphql");
        let vars = json!({"first": 2, "after": null, "ids": ["wb-01", "wb-02"]});
        let ok = gql(&s, &c, &tok, details, vars.clone()).json();
        assert_eq!(ids(&ok, "workbooksConnection"), ["wb-01", "wb-02"], "{ok}");

        // The document before the fix: `$ids: [String]` where Workbook_Filter.idWithin is [ID].
        let old = details.replace("$ids: [ID]", "$ids: [String]");
        assert_ne!(old, details);
        let r = gql(&s, &c, &tok, &old, vars.clone());
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        assert!(
            v.get("data").is_none(),
            "an invalid document has no data: {v}"
        );
        let e = &v["errors"][0];
        assert!(e["message"].as_str().unwrap().contains("[ID]"), "{v}");
        assert_eq!(e["errorType"], "ValidationError");
        assert_eq!(e["locations"][0]["line"], 2, "{v}");

        // An unknown field, an unknown argument, an unknown input field, a bad variable value.
        let custom = custom_sql();
        for (query, vars) in [
            (
                custom.replace("isUnsupportedCustomSql", "isUnsupportedCustomSql rowCount"),
                json!({"first": 1}),
            ),
            (
                custom.replace("first: $first,", "first: $first, last: 3,"),
                json!({"first": 1}),
            ),
            (
                details.replace("idWithin: $ids", "idsWithin: $ids"),
                vars.clone(),
            ),
            (
                details.to_string(),
                json!({"first": "two", "ids": ["wb-01"]}),
            ),
        ] {
            let v = gql(&s, &c, &tok, &query, vars).json();
            assert!(
                v.get("data").is_none() && v["errors"][0]["message"].is_string(),
                "{v}"
            );
        }
        let refused = s.graphql_refused();
        assert_eq!(refused.len(), 5, "{refused:#?}");
        assert!(refused[1].contains("rowCount"), "{refused:#?}");
        assert_eq!(s.graphql_valid(), 1);

        // Dispatch follows the parsed document, not its text: an alias names the answer's key,
        // and a root field the server does not serve is said so.
        let aliased = "query A($first: Int) { page: customSQLTablesConnection(first: $first) { nodes { id } } }";
        let v = gql(&s, &c, &tok, aliased, json!({"first": 1})).json();
        assert_eq!(
            v["data"]["page"]["nodes"][0],
            json!({"id": "csql-01"}),
            "only what was selected: {v}"
        );
        // A field the fixture lacks comes back null; an alias renames a nested field.
        let q = "query B($first: Int) { customSQLTablesConnection(first: $first) { nodes { key: id description } } }";
        let v = gql(&s, &c, &tok, q, json!({"first": 1})).json();
        assert_eq!(
            v["data"]["customSQLTablesConnection"]["nodes"][0],
            json!({"key": "csql-01", "description": null}),
            "{v}"
        );
        let other = "query { databasesConnection(first: 1) { nodes { id } } }";
        let v = gql(&s, &c, &tok, other, json!({})).json();
        assert_eq!(
            v["errors"][0]["extensions"]["code"], "TEST_SERVER_UNSUPPORTED",
            "{v}"
        );
        s.stop();
    }

    #[test]
    fn xml_sign_in_errors_and_one_session_per_pat() {
        let s = TableauServer::start(&fixture(), Faults::default());
        let c = client();
        let xml_body = r#"<tsRequest><credentials personalAccessTokenName="autoexpose" personalAccessTokenSecret="stest-secret-1"><site contentUrl="stest"/></credentials></tsRequest>"#;
        let r = send(
            c.post(format!("{}/api/3.23/auth/signin", s.base_url))
                .body(xml_body),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let tok1 = attr(&r.text, "credentials", "token").unwrap();
        assert_eq!(attr(&r.text, "site", "id").unwrap(), SITE);

        // Bad secret (XML error) / unknown site (JSON error) / case matters.
        let r = sign_in_json(&s, &c, "autoexpose", "wrong");
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["code"], "401001");
        let r = send(
            c.post(format!("{}/api/3.23/auth/signin", s.base_url))
                .body(xml_body.replace("stest\"", "nope\"")),
        );
        assert_eq!(r.status, 401);
        assert_eq!(error_code(&r.text), "401001");
        let r = sign_in_json(&s, &c, "AUTOEXPOSE", "stest-secret-1");
        assert_eq!(r.status, 401);

        // Token works.
        let projects = format!("/api/3.23/sites/{SITE}/projects");
        assert_eq!(get(&s, &c, &tok1, &projects).status, 200);

        // Another PAT's sign-in does not touch it; the same PAT's does.
        let other = sign_in_json(&s, &c, "second", "stest-secret-2");
        assert_eq!(other.status, 200);
        assert_eq!(get(&s, &c, &tok1, &projects).status, 200);
        let tok2 = token(&s, &c);
        assert_ne!(tok1, tok2);
        let r = get(&s, &c, &tok1, &projects);
        assert_eq!(r.status, 401);
        assert_eq!(error_code(&r.text), "401000");
        let r = gql(&s, &c, &tok1, &workbooks_query(false), json!({"first": 1}));
        assert_eq!(r.status, 401);
        let spring = r.json();
        assert_eq!(spring["status"], 401);
        assert_eq!(spring["error"], "Unauthorized");
        assert_eq!(spring["path"], "/relationship-service-war/graphql");
        assert!(spring["timestamp"].is_string());
        // No token at all.
        let r = send(c.get(format!("{}{projects}", s.base_url)));
        assert_eq!(r.status, 401);
        assert_eq!(error_code(&r.text), "401000");

        // Wrong site for the token.
        let r = get(
            &s,
            &c,
            &tok2,
            "/api/3.23/sites/5e57a1e0-0000-4000-8000-0000000051e2/projects",
        );
        assert_eq!(r.status, 404);
        assert_eq!(error_code(&r.text), "404000");

        // Sign-out ends the session.
        let r = send(
            c.post(format!("{}/api/3.23/auth/signout", s.base_url))
                .header("X-Tableau-Auth", &tok2),
        );
        assert_eq!(r.status, 204);
        assert_eq!(get(&s, &c, &tok2, &projects).status, 401);

        // Default site ("").
        let r = send(c.post(format!("{}/api/3.23/auth/signin", s.base_url)).body(
            r#"<tsRequest><credentials personalAccessTokenName="autoexpose" personalAccessTokenSecret="default-secret"><site contentUrl=""/></credentials></tsRequest>"#,
        ));
        assert_eq!(r.status, 200);
        assert_eq!(
            attr(&r.text, "site", "id").unwrap(),
            "5e57a1e0-0000-4000-8000-0000000051e2"
        );
    }

    #[test]
    fn rate_limit_server_error_and_token_expiry() {
        let faults = Faults {
            rate_limit_at: vec![1],
            server_error_at: vec![3],
            expire_token_after: Some(2),
            ..Default::default()
        };
        let s = TableauServer::start(&fixture(), faults);
        let c = client();
        let r = sign_in_json(&s, &c, "autoexpose", "stest-secret-1");
        assert_eq!(r.status, 429);
        assert_eq!(r.headers.get("retry-after").unwrap(), "1");
        let tok = token(&s, &c); // #2
        let projects = format!("/api/3.23/sites/{SITE}/projects");
        assert_eq!(get(&s, &c, &tok, &projects).status, 503); // #3, does not count as a use
        assert_eq!(get(&s, &c, &tok, &projects).status, 200); // use 1
        assert_eq!(gql(&s, &c, &tok, &custom_sql(), json!({})).status, 200); // use 2
        let r = get(&s, &c, &tok, &projects);
        assert_eq!(r.status, 401);
        assert_eq!(error_code(&r.text), "401000");
        assert_eq!(gql(&s, &c, &tok, &custom_sql(), json!({})).status, 401);
        // A fresh sign-in gives a fresh budget.
        let tok = token(&s, &c);
        assert_eq!(get(&s, &c, &tok, &projects).status, 200);
        let statuses: Vec<u16> = s.requests().iter().map(|l| l.status).collect();
        assert_eq!(statuses, [429, 200, 503, 200, 200, 401, 401, 200, 200]);
    }

    #[test]
    fn metadata_warnings_and_timeouts() {
        let faults = Faults {
            node_limit_above: Some(1),
            max_page_size: Some(3),
            permissions_mode_switched: true,
            metadata_timeout_at: vec![3],
            metadata_cancel_timeout_at: vec![4],
            metadata_rate_exceeded_at: vec![5],
            ..Default::default()
        };
        let s = TableauServer::start(&fixture(), faults);
        let c = client();
        let tok = token(&s, &c); // #1
        let q = workbooks_query(false);
        let r = gql(&s, &c, &tok, &q, json!({"first": 1})).json(); // #2
        let codes: Vec<&str> = r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["extensions"]["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["PERMISSIONS_MODE_SWITCHED"]);

        let r = gql(&s, &c, &tok, &q, json!({"first": 1})).json(); // #3 timeout
        assert_eq!(
            r["errors"][0]["message"],
            "Reached time limit of PT5S for query execution."
        );
        assert!(r["errors"][0]["extensions"].is_null());
        let r = gql(&s, &c, &tok, &q, json!({"first": 1})).json(); // #4
        assert!(r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("30000 millis"));
        let r = gql(&s, &c, &tok, &q, json!({"first": 1})).json(); // #5
        assert_eq!(r["errors"][0]["extensions"]["code"], "RATE_EXCEEDED");

        let r = gql(&s, &c, &tok, &q, json!({"first": 2})).json();
        let conn = &r["data"]["workbooksConnection"];
        assert_eq!(ids(&r, "workbooksConnection"), ["wb-01"]);
        assert_eq!(conn["pageInfo"]["hasNextPage"], true);
        let codes: Vec<&str> = r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["extensions"]["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["NODE_LIMIT_EXCEEDED", "PERMISSIONS_MODE_SWITCHED"]);
        assert_eq!(r["errors"][0]["extensions"]["severity"], "WARNING");
        // The truncated page's cursor continues right after the node returned.
        let r = gql(
            &s,
            &c,
            &tok,
            &q,
            json!({"first": 1, "after": conn["pageInfo"]["endCursor"]}),
        )
        .json();
        assert_eq!(ids(&r, "workbooksConnection"), ["wb-02"]);

        // Custom SQL: max page size applies, node limit does not.
        let r = gql(&s, &c, &tok, &custom_sql(), json!({"first": 2})).json();
        assert!(r.get("errors").is_none());
        let r = gql(&s, &c, &tok, &custom_sql(), json!({"first": 5})).json();
        assert_eq!(
            r["errors"][0]["extensions"]["code"],
            "MAX_PAGE_SIZE_EXCEEDED"
        );
        assert_eq!(ids(&r, "customSQLTablesConnection").len(), 2);
    }

    /// Every REST answer in XML by default and in JSON when the client asks for it.
    #[test]
    fn rest_answers_in_xml_and_json() {
        let s = TableauServer::start(&fixture(), Faults::default());
        let c = client();
        let json_get = |path: &str, tok: Option<&str>| {
            let mut rb = c
                .get(format!("{}{path}", s.base_url))
                .header("Accept", "application/json");
            if let Some(t) = tok {
                rb = rb.header("X-Tableau-Auth", t);
            }
            send(rb)
        };
        let info = json_get("/api/2.4/serverInfo", None).json();
        assert_eq!(info["serverInfo"]["restApiVersion"], "3.23", "{info}");
        assert!(
            info["serverInfo"]["productVersion"]["value"].is_string(),
            "{info}"
        );
        let tok = token(&s, &c);

        // Query Projects: owner and timestamps in both forms, parentProjectId only when nested.
        let xml = get(&s, &c, &tok, &format!("/api/3.23/sites/{SITE}/projects")).text;
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let first = doc
            .descendants()
            .find(|n| n.has_tag_name((API_NS, "project")))
            .unwrap();
        assert!(
            first.attribute("createdAt").is_some() && first.attribute("parentProjectId").is_none(),
            "{xml}"
        );
        let owner = first
            .children()
            .find(|n| n.has_tag_name((API_NS, "owner")))
            .and_then(|o| o.attribute("id"));
        assert_eq!(owner, Some("5e57a1e0-0000-4000-8000-000000000ae1"), "{xml}");
        let v = json_get(
            &format!("/api/3.23/sites/{SITE}/projects?pageSize=2&pageNumber=1"),
            Some(&tok),
        )
        .json();
        assert_eq!(v["pagination"]["totalAvailable"], "5", "{v}");
        let projects = v["projects"]["project"].as_array().unwrap();
        assert_eq!(projects.len(), 2);
        assert_eq!(
            projects[1]["parentProjectId"], "5e57f000-0000-4000-8000-000000000001",
            "{v}"
        );
        assert!(
            projects[0].get("parentProjectId").is_none() && projects[0]["owner"]["id"].is_string(),
            "{v}"
        );

        // Refresh: 202 with a job; polling it in JSON reaches a finishCode.
        let r = send(
            c.post(format!(
                "{}/api/3.23/sites/{SITE}/workbooks/{WB_EXTRACT}/refresh",
                s.base_url
            ))
            .header("X-Tableau-Auth", &tok)
            .header("Accept", "application/json")
            .header("Content-Type", "text/xml")
            .body("<tsRequest />"),
        );
        assert_eq!(r.status, 202, "{}", r.text);
        let job = r.json();
        assert_eq!(job["job"]["type"], "RefreshExtract");
        assert_eq!(
            job["job"]["extractRefreshJob"]["workbook"]["id"], WB_EXTRACT,
            "{job}"
        );
        let id = job["job"]["id"].as_str().unwrap().to_string();
        let done = json_get(&format!("/api/3.23/sites/{SITE}/jobs/{id}"), Some(&tok)).json();
        assert_eq!(done["job"]["finishCode"], "0", "{done}");
        assert!(done["job"]["completedAt"].is_string(), "{done}");

        // Errors in JSON too.
        let e = json_get(&format!("/api/3.23/sites/{SITE}/jobs/nope"), Some(&tok)).json();
        assert!(
            e["error"]["code"].is_string() && e["error"]["summary"].is_string(),
            "{e}"
        );
        s.stop();
    }

    #[test]
    fn projects_paging_and_workbook_url() {
        let s = TableauServer::start(&fixture(), Faults::default());
        let c = client();
        let tok = token(&s, &c);
        let mut names = Vec::new();
        for page in 1..=3 {
            let r = get(
                &s,
                &c,
                &tok,
                &format!("/api/3.23/sites/{SITE}/projects?pageSize=2&pageNumber={page}"),
            );
            assert_eq!(r.status, 200);
            assert_eq!(attr(&r.text, "pagination", "totalAvailable").unwrap(), "5");
            assert_eq!(
                attr(&r.text, "pagination", "pageNumber").unwrap(),
                page.to_string()
            );
            let doc = roxmltree::Document::parse(&r.text).unwrap();
            for p in doc
                .descendants()
                .filter(|n| n.has_tag_name((API_NS, "project")))
            {
                names.push((
                    p.attribute("name").unwrap().to_string(),
                    p.attribute("parentProjectId").map(str::to_string),
                ));
            }
        }
        assert_eq!(names.len(), 5);
        assert_eq!(
            names[1],
            (
                "Monthly".to_string(),
                Some("5e57f000-0000-4000-8000-000000000001".to_string())
            )
        );
        assert_eq!(names[0].1, None);
        assert_eq!(names[4].0, "Archive & Old");
        let r = get(&s, &c, &tok, &format!("/api/3.23/sites/{SITE}/projects"));
        assert_eq!(attr(&r.text, "pagination", "pageSize").unwrap(), "100");
        let r = get(
            &s,
            &c,
            &tok,
            &format!("/api/3.23/sites/{SITE}/projects?pageSize=0"),
        );
        assert_eq!(r.status, 400);

        let r = get(
            &s,
            &c,
            &tok,
            &format!("/api/3.23/sites/{SITE}/workbooks/{WB_EXTRACT}"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            attr(&r.text, "workbook", "webpageUrl").unwrap(),
            format!("{}/#/site/stest/workbooks/301", s.base_url)
        );
        assert_eq!(
            attr(&r.text, "workbook", "name").unwrap(),
            "Revenue <Monthly>"
        );
        let r = get(
            &s,
            &c,
            &tok,
            &format!("/api/3.23/sites/{SITE}/workbooks/5e57b000-0000-4000-8000-00000000dead"),
        );
        assert_eq!(r.status, 404);

        // Unexpected calls fail loudly and are logged.
        let r = get(&s, &c, &tok, &format!("/api/3.23/sites/{SITE}/views"));
        assert_eq!(r.status, 404);
        assert_eq!(error_code(&r.text), "404999");
        let r = send(
            c.delete(format!("{}/api/3.23/sites/{SITE}/projects", s.base_url))
                .header("X-Tableau-Auth", &tok),
        );
        assert_eq!(r.status, 405);
        assert_eq!(s.requests().last().unwrap().status, 405);
    }

    #[test]
    fn refresh_conflicts_and_job_polling() {
        let mut outcomes = HashMap::new();
        outcomes.insert(
            WB_EXTRACT.to_string(),
            (
                1,
                Some("[Snowflake] Authentication failed for user BOT".to_string()),
            ),
        );
        let faults = Faults {
            refresh_forbidden: vec![WB_PUBLISHED.to_string()],
            job_outcomes: outcomes,
            job_polls_to_finish: 2,
            ..Default::default()
        };
        let s = TableauServer::start(&fixture(), faults);
        let c = client();
        let tok = token(&s, &c);

        let r = refresh(&s, &c, &tok, "workbooks", WB_EXTRACT, "<tsRequest />");
        assert_eq!(r.status, 202, "{}", r.text);
        let job_id = attr(&r.text, "job", "id").unwrap();
        assert_eq!(attr(&r.text, "job", "type").unwrap(), "RefreshExtract");
        assert_eq!(attr(&r.text, "job", "mode").unwrap(), "Asynchronous");
        assert!(attr(&r.text, "job", "createdAt").is_some());
        assert_eq!(attr(&r.text, "workbook", "id").unwrap(), WB_EXTRACT);

        let r = refresh(&s, &c, &tok, "workbooks", WB_EXTRACT, "<tsRequest />");
        assert_eq!(r.status, 409);
        assert_eq!(error_code(&r.text), "409093");
        let r = refresh(&s, &c, &tok, "workbooks", WB_LIVE, "<tsRequest />");
        assert_eq!(r.status, 409);
        assert_eq!(error_code(&r.text), "409090");
        let r = refresh(&s, &c, &tok, "datasources", DS_LIVE, "<tsRequest />");
        assert_eq!(error_code(&r.text), "409090");
        let r = refresh(&s, &c, &tok, "workbooks", WB_PUBLISHED, "<tsRequest />");
        assert_eq!(r.status, 403);
        assert!(error_code(&r.text).starts_with("403"));
        let r = refresh(
            &s,
            &c,
            &tok,
            "datasources",
            "5e57d000-0000-4000-8000-00000000dead",
            "<tsRequest />",
        );
        assert_eq!(r.status, 404);
        assert!(error_code(&r.text).starts_with("404"));
        let r = refresh(&s, &c, &tok, "datasources", DS_EXTRACT, "<tsRequest />");
        assert_eq!(r.status, 202);
        assert_eq!(attr(&r.text, "datasource", "name").unwrap(), "Customers");
        let ds_job = attr(&r.text, "job", "id").unwrap();

        let job_path = format!("/api/3.23/sites/{SITE}/jobs/{job_id}");
        for _ in 0..2 {
            let r = get(&s, &c, &tok, &job_path);
            assert_eq!(r.status, 200);
            assert!(attr(&r.text, "job", "startedAt").is_some());
            assert!(attr(&r.text, "job", "progress").is_some());
            assert!(attr(&r.text, "job", "completedAt").is_none());
            assert!(attr(&r.text, "job", "finishCode").is_none());
        }
        let r = get(&s, &c, &tok, &job_path);
        assert_eq!(attr(&r.text, "job", "finishCode").unwrap(), "1");
        assert!(attr(&r.text, "job", "completedAt").is_some());
        assert!(
            r.text
                .contains("<notes>[Snowflake] Authentication failed for user BOT</notes>"),
            "{}",
            r.text
        );
        // Finished: a new refresh is accepted again.
        let r = refresh(&s, &c, &tok, "workbooks", WB_EXTRACT, "<tsRequest />");
        assert_eq!(r.status, 202);

        // Default outcome: success, no notes.
        for _ in 0..2 {
            get(
                &s,
                &c,
                &tok,
                &format!("/api/3.23/sites/{SITE}/jobs/{ds_job}"),
            );
        }
        let r = get(
            &s,
            &c,
            &tok,
            &format!("/api/3.23/sites/{SITE}/jobs/{ds_job}"),
        );
        assert_eq!(attr(&r.text, "job", "finishCode").unwrap(), "0");
        assert!(!r.text.contains("<notes>"));
        let r = get(
            &s,
            &c,
            &tok,
            &format!("/api/3.23/sites/{SITE}/jobs/5e1f0000-0000-4000-8000-00000000beef"),
        );
        assert_eq!(r.status, 404);

        let kinds: Vec<Option<RefreshBody>> = s
            .requests()
            .iter()
            .filter(|l| l.path.ends_with("/refresh") && l.status == 202)
            .map(|l| l.refresh)
            .collect();
        // The <extractRefresh /> forms need API 3.25 (query_jobs_tests below).
        assert_eq!(
            kinds,
            [
                Some(RefreshBody::Empty),
                Some(RefreshBody::Empty),
                Some(RefreshBody::Empty)
            ]
        );
    }

    #[test]
    fn refresh_in_flight_limit_and_redacted_tables() {
        let faults = Faults {
            refresh_in_flight_limit: Some(1),
            job_polls_to_finish: 1,
            redact_tables: true,
            ..Default::default()
        };
        let s = TableauServer::start(&fixture(), faults);
        let c = client();
        let tok = token(&s, &c);
        let r = refresh(&s, &c, &tok, "workbooks", WB_EXTRACT, "<tsRequest />");
        assert_eq!(r.status, 202);
        let job_id = attr(&r.text, "job", "id").unwrap();
        let r = refresh(&s, &c, &tok, "datasources", DS_EXTRACT, "<tsRequest />");
        assert_eq!(r.status, 429);
        assert_eq!(r.headers.get("retry-after").unwrap(), "1");
        get(
            &s,
            &c,
            &tok,
            &format!("/api/3.23/sites/{SITE}/jobs/{job_id}"),
        ); // the job finishes
        assert_eq!(
            refresh(&s, &c, &tok, "datasources", DS_EXTRACT, "<tsRequest />").status,
            202
        );

        let r = gql(&s, &c, &tok, &workbooks_query(false), json!({"first": 3})).json();
        let nodes = r["data"]["workbooksConnection"]["nodes"]
            .as_array()
            .unwrap();
        let published =
            &nodes[1]["embeddedDatasources"][0]["upstreamDatasources"][0]["upstreamTables"][0];
        assert_eq!(published["id"], "t-cust");
        assert!(
            published["name"].is_null()
                && published["fullName"].is_null()
                && published["schema"].is_null()
        );
        assert!(published["database"]["name"].is_null());
        assert_eq!(published["database"]["connectionType"], "snowflake");
        let r = gql(&s, &c, &tok, &custom_sql(), json!({})).json();
        assert!(
            r["data"]["customSQLTablesConnection"]["nodes"][1]["tables"][0]["fullName"].is_null()
        );
        assert_eq!(
            r["data"]["customSQLTablesConnection"]["nodes"][1]["database"]["name"],
            "ANALYTICS"
        );
    }

    #[test]
    fn jobs_finish_immediately_by_default() {
        let s = TableauServer::start(&fixture(), Faults::default());
        let c = client();
        let tok = token(&s, &c);
        let r = refresh(&s, &c, &tok, "workbooks", WB_EXTRACT, "<tsRequest />");
        let job_id = attr(&r.text, "job", "id").unwrap();
        let r = get(
            &s,
            &c,
            &tok,
            &format!("/api/3.23/sites/{SITE}/jobs/{job_id}"),
        );
        assert_eq!(attr(&r.text, "job", "finishCode").unwrap(), "0");
        assert_eq!(
            refresh(&s, &c, &tok, "workbooks", WB_EXTRACT, "<tsRequest />").status,
            202
        );
    }

    #[test]
    fn sign_in_redirect_stays_a_post() {
        let s = TableauServer::start(
            &fixture(),
            Faults {
                redirect_signin: true,
                ..Default::default()
            },
        );
        let c = client();
        let r = sign_in_json(&s, &c, "autoexpose", "stest-secret-1");
        assert_eq!(r.status, 301);
        let location = r
            .headers
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            location,
            format!("{}/api/3.23/auth/signin", s.localhost_url())
        );
        let r = send(
            c.post(&location)
                .header("Accept", "application/json")
                .json(&json!({"credentials": {"personalAccessTokenName": "autoexpose",
                    "personalAccessTokenSecret": "stest-secret-1", "site": {"contentUrl": "stest"}}})),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let log = s.requests();
        assert_eq!(log[0].status, 301);
        assert!(log[0].host.starts_with("127.0.0.1"));
        assert!(log[1].host.starts_with("localhost"));
        // Workbook URLs use the host signed in to.
        let tok = r.json()["credentials"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        let r = send(
            c.get(format!(
                "{}/api/3.23/sites/{SITE}/workbooks/{WB_LIVE}",
                s.localhost_url()
            ))
            .header("X-Tableau-Auth", &tok),
        );
        assert!(attr(&r.text, "workbook", "webpageUrl")
            .unwrap()
            .starts_with(&s.localhost_url()));
    }
}

// ---------------------------------------------------------------------------------------------
// Not-data and Retry-After faults (issue #11, items 3 and 6)
// ---------------------------------------------------------------------------------------------

/// Answers that are not Tableau's, by 1-based request number.
#[derive(Debug, Clone, Default)]
pub struct NotDataFaults {
    /// 200 of the type asked for, with the wrong root: `{"status":"ok"}` as `application/json`
    /// when JSON is asked, else `<response><status>ok</status></response>` as `application/xml`
    /// (no side effects).
    pub wrong_root_at: Vec<usize>,
    /// The real answer (side effects included: a sign-in opens a session, a refresh queues a
    /// job), with `Content-Type: text/html; charset=utf-8`, as a proxy rewriting headers sends.
    pub wrong_content_type_at: Vec<usize>,
    /// (request number, status): answered with this status (429 or 503) and
    /// `Retry-After: 100000` (no side effects).
    pub huge_retry_after_at: Vec<(usize, u16)>,
    /// Requests whose path contains one of these (`/refresh`, `/jobs/`) are answered as
    /// `html_ok_at` answers, every time (no side effects).
    pub html_on_paths: Vec<String>,
    /// Requests whose path contains one of these are answered as `wrong_root_at` answers.
    pub wrong_root_on_paths: Vec<String>,
}

impl State {
    fn not_data_fault(&self, n: usize, rq: &Incoming) -> Option<Reply> {
        let f = &self.faults.not_data;
        let on = |paths: &[String]| paths.iter().any(|p| rq.path.contains(p.as_str()));
        if on(&f.html_on_paths) {
            return Some(Reply::new(200, Some("text/html"), "<html><head><title>Sign in</title></head><body><p>Please sign in to continue.</p></body></html>"));
        }
        if f.wrong_root_at.contains(&n) || on(&f.wrong_root_on_paths) {
            return Some(if rq.wants_json() {
                Reply::new(200, Some("application/json"), r#"{"status":"ok"}"#)
            } else {
                Reply::new(200, Some("application/xml"), "<?xml version='1.0' encoding='UTF-8'?><response><status>ok</status></response>")
            });
        }
        if let Some((_, status)) = f.huge_retry_after_at.iter().find(|(at, _)| *at == n) {
            let reply = if *status == 429 {
                self.rest_error(
                    429,
                    "429000",
                    "Too Many Requests",
                    "Rate limit exceeded (test server fault).",
                    rq.wants_json(),
                )
            } else {
                Reply::new(
                    *status,
                    Some("text/html"),
                    "<html><body><h1>Service Unavailable</h1></body></html>",
                )
            };
            return Some(reply.with_header("Retry-After", "100000"));
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Query Jobs and the refresh body's API version (appended for issue #11, refresh journaled)
// ---------------------------------------------------------------------------------------------

impl TableauServer {
    /// Every refresh job created so far, as (target luid, job id), in creation order: what a
    /// client should have recorded, whatever it managed to read of the answers.
    pub fn created_jobs(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .unwrap()
            .jobs
            .iter()
            .map(|j| (j.target_luid.clone(), j.id.clone()))
            .collect()
    }
}

/// The first REST API version whose Update Data Source Now / Update Workbook Now take an
/// `<extractRefresh … />` body (shared/reference/tableau.md 1 and 7.2, from TSC's
/// `@api`/`RequestFactory.Task.refresh_req`: "`<extractRefresh/>` with `incremental` ≥ 3.25").
const EXTRACT_REFRESH_BODY_SINCE: (u32, u32) = (3, 25);

impl State {
    /// A refresh at an API version below 3.25 must carry `<tsRequest />`: the
    /// `<extractRefresh />` element is not in those versions' schema. What real Tableau answers
    /// then is UNVERIFIED; a 400 with code 400000 (invented, as for other bad bodies here).
    fn refuse_body_below_its_version(
        &self,
        v: &str,
        body: RefreshBody,
        json: bool,
    ) -> Option<Reply> {
        (body != RefreshBody::Empty && version_key(v) < EXTRACT_REFRESH_BODY_SINCE).then(|| {
            self.rest_error(
                400,
                "400000",
                "Bad Request",
                &format!("<extractRefresh> is not part of the refresh request before API version 3.25 (this request: {v})."),
                json,
            )
        })
    }

    /// A job's status as Query Jobs lists it: `Pending` before its first poll, `InProgress`
    /// until it finishes (`job_polls_to_finish`), then `Success` / `Failed` / `Cancelled` by
    /// its finishCode (TSC `BackgroundJobItem.Status`).
    fn listed_status(&self, job: &Job) -> &'static str {
        if job.polls < self.faults.job_polls_to_finish {
            return if job.polls == 0 {
                "Pending"
            } else {
                "InProgress"
            };
        }
        match self
            .faults
            .job_outcomes
            .get(&job.target_luid)
            .map(|o| o.0)
            .unwrap_or(0)
        {
            0 | 3 => "Success",
            2 => "Cancelled",
            _ => "Failed",
        }
    }

    /// `GET /api/{v}/sites/{site}/jobs` (Query Jobs, help.tableau.com
    /// `rest_api_ref_jobs_tasks_and_schedules.htm#query_jobs`): `filter` with `jobType:eq:`,
    /// `status:eq:` (and `createdAt:` with eq/gt/gte/lt/lte), comma-separated (AND), as listed by
    /// the tableau/tableau-mcp `list-jobs` tool page; `pageSize` (≤ 1000) and `pageNumber`.
    /// Answer: `pagination` and `backgroundJobs/backgroundJob` with `id, status, createdAt,
    /// startedAt, priority, jobType, title` (TSC `BackgroundJobItem`); `title` is the target's
    /// name. XML only (our client asks for XML; the JSON form is UNVERIFIED). Another filter
    /// field is refused with 400 (code 400065 invented), so a client cannot rely on one this
    /// server ignores.
    fn query_jobs(&mut self, rq: &Incoming, v: &str, site: &str) -> Reply {
        let json = rq.wants_json();
        let idx = match self.rest_site(rq, v, site) {
            Ok(i) => i,
            Err(r) => return r,
        };
        if self.faults.query_jobs_forbidden {
            // Code 403069 invented.
            return self.rest_error(
                403,
                "403069",
                "Forbidden",
                "Only administrators can query jobs.",
                json,
            );
        }
        let mut conds: Vec<(String, String, String)> = Vec::new();
        if let Some(f) = rq.query_param("filter") {
            for expr in f.split(',').filter(|e| !e.is_empty()) {
                let mut parts = expr.splitn(3, ':');
                let (Some(field), Some(op), Some(value)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return self.rest_error(
                        400,
                        "400065",
                        "Bad Request",
                        &format!("Invalid filter expression '{expr}'."),
                        json,
                    );
                };
                let ok = match field {
                    "jobType" | "status" => op == "eq",
                    "createdAt" => matches!(op, "eq" | "gt" | "gte" | "lt" | "lte"),
                    _ => false,
                };
                if !ok {
                    return self.rest_error(
                        400,
                        "400065",
                        "Bad Request",
                        &format!("Invalid filter expression '{expr}'."),
                        json,
                    );
                }
                conds.push((field.to_string(), op.to_string(), value.to_string()));
            }
        }
        let size: usize = rq
            .query_param("pageSize")
            .and_then(|p| p.parse().ok())
            .unwrap_or(100)
            .clamp(1, 1000);
        let page: usize = rq
            .query_param("pageNumber")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let matching: Vec<(&Job, &'static str)> = self
            .jobs
            .iter()
            .filter(|j| j.site == idx)
            .map(|j| (j, self.listed_status(j)))
            .filter(|(j, status)| {
                conds.iter().all(|(field, op, value)| match field.as_str() {
                    "jobType" => value == "refresh_extracts",
                    "status" => value == status,
                    _ => {
                        let (a, b) = (j.created_at.as_str(), value.as_str());
                        match op.as_str() {
                            "eq" => a == b,
                            "gt" => a > b,
                            "gte" => a >= b,
                            "lt" => a < b,
                            _ => a <= b,
                        }
                    }
                })
            })
            .collect();
        let total = matching.len();
        let mut xml = format!(
            r#"<pagination pageNumber="{page}" pageSize="{size}" totalAvailable="{total}"/><backgroundJobs>"#
        );
        for (j, status) in matching.iter().skip((page - 1) * size).take(size) {
            xml.push_str(&format!(
                r#"<backgroundJob id="{}" status="{status}" createdAt="{}" priority="50" jobType="refresh_extracts" title="{}"{}/>"#,
                xml_escape(&j.id),
                j.created_at,
                xml_escape(&j.target_name),
                if *status == "Pending" { String::new() } else { format!(r#" startedAt="{}""#, j.created_at) }
            ));
        }
        xml.push_str("</backgroundJobs>");
        Reply::xml(200, &xml, self.api())
    }
}

#[cfg(test)]
mod query_jobs_tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/tableau/server_test.site.json")
    }

    fn sign_in(s: &TableauServer, c: &reqwest::blocking::Client) -> String {
        let r = c
            .post(format!("{}/api/3.23/auth/signin", s.base_url))
            .header("Accept", "application/json")
            .json(
                &json!({"credentials": {"personalAccessTokenName": "autoexpose",
                "personalAccessTokenSecret": "stest-secret-1", "site": {"contentUrl": "stest"}}}),
            )
            .send()
            .unwrap();
        let v: Value = r.json().unwrap();
        v["credentials"]["token"].as_str().unwrap().to_string()
    }

    fn site_luid() -> String {
        Fixture::load(&fixture())
            .sites
            .iter()
            .find(|x| x.content_url == "stest")
            .unwrap()
            .luid
            .clone()
    }

    fn first_extract_workbook() -> String {
        let f = Fixture::load(&fixture());
        let site = f.sites.iter().find(|x| x.content_url == "stest").unwrap();
        site.workbooks
            .iter()
            .find(|w| {
                w.get("embeddedDatasources")
                    .and_then(Value::as_array)
                    .is_some_and(|d| {
                        d.iter()
                            .any(|d| d.get("hasExtracts").and_then(Value::as_bool) == Some(true))
                    })
            })
            .and_then(|w| str_field(w, "luid"))
            .unwrap()
            .to_string()
    }

    /// A torn refresh answer still leaves its job in the list; the 3.23 server refuses the
    /// 3.25 body; Query Jobs filters on jobType and status, and refuses a field it does not know.
    #[test]
    fn torn_refresh_is_listed_and_the_body_needs_its_version() {
        let wb = first_extract_workbook();
        let s = TableauServer::start(
            &fixture(),
            Faults {
                torn_refresh: vec![wb.clone()],
                job_polls_to_finish: 2,
                ..Default::default()
            },
        );
        let c = reqwest::blocking::Client::new();
        let tok = sign_in(&s, &c);
        let site = site_luid();
        let post = |body: &str| {
            c.post(format!(
                "{}/api/3.23/sites/{site}/workbooks/{wb}/refresh",
                s.base_url
            ))
            .header("X-Tableau-Auth", &tok)
            .header("Content-Type", "text/xml")
            .body(body.to_string())
            .send()
            .unwrap()
        };
        let r = post("<tsRequest><extractRefresh /></tsRequest>");
        assert_eq!(r.status(), 400);
        assert!(r.text().unwrap().contains("400000"));

        let r = post("<tsRequest />");
        assert_eq!(r.status(), 202);
        let text = r.text().unwrap();
        assert!(
            roxmltree::Document::parse(&text).is_err(),
            "the 202 body is cut: {text}"
        );

        let list = |filter: &str| {
            let r = c
                .get(format!(
                    "{}/api/3.23/sites/{site}/jobs?filter={filter}&pageSize=10&pageNumber=1",
                    s.base_url
                ))
                .header("X-Tableau-Auth", &tok)
                .send()
                .unwrap();
            (r.status().as_u16(), r.text().unwrap())
        };
        let (status, pending) = list("jobType:eq:refresh_extracts,status:eq:Pending");
        assert_eq!(status, 200, "{pending}");
        let doc = roxmltree::Document::parse(&pending).unwrap();
        let jobs: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("backgroundJob"))
            .collect();
        assert_eq!(jobs.len(), 1, "{pending}");
        assert_eq!(jobs[0].attribute("status"), Some("Pending"));
        assert_eq!(jobs[0].attribute("jobType"), Some("refresh_extracts"));
        assert!(jobs[0].attribute("title").is_some_and(|t| !t.is_empty()));
        let (_, running) = list("jobType:eq:refresh_extracts,status:eq:InProgress");
        assert!(!running.contains("<backgroundJob "), "{running}");
        let (status, _) = list("args:has:x");
        assert_eq!(status, 400);
        s.stop();
    }

    /// From 3.25 on both `<extractRefresh />` forms are accepted and told apart.
    #[test]
    fn extract_refresh_bodies_at_3_25() {
        let mut f: Value = serde_json::from_slice(&std::fs::read(fixture()).unwrap()).unwrap();
        f["rest_api_version"] = json!("3.25");
        let dir = std::env::temp_dir().join(format!("ae-qj-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("site.json");
        std::fs::write(&path, serde_json::to_vec(&f).unwrap()).unwrap();
        let wb = first_extract_workbook();
        let s = TableauServer::start(&path, Faults::default());
        let c = reqwest::blocking::Client::new();
        let tok = sign_in(&s, &c);
        let site = site_luid();
        for body in [
            "<tsRequest><extractRefresh /></tsRequest>",
            r#"<tsRequest><extractRefresh incremental="true" /></tsRequest>"#,
        ] {
            let r = c
                .post(format!(
                    "{}/api/3.25/sites/{site}/workbooks/{wb}/refresh",
                    s.base_url
                ))
                .header("X-Tableau-Auth", &tok)
                .header("Content-Type", "text/xml")
                .body(body)
                .send()
                .unwrap();
            assert_eq!(r.status(), 202);
        }
        let kinds: Vec<_> = s
            .requests()
            .iter()
            .filter(|l| l.path.ends_with("/refresh"))
            .map(|l| l.refresh)
            .collect();
        assert_eq!(
            kinds,
            [Some(RefreshBody::Full), Some(RefreshBody::Incremental)]
        );
        s.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

// ---------------------------------------------------------------------------------------------
// Echo faults: a server that repeats the caller's credentials in what it says.
// ---------------------------------------------------------------------------------------------

impl State {
    /// The token, PAT name and secret of `rq`: its session's, or those in its sign-in body.
    fn echoed_credentials(&self, rq: &Incoming) -> (String, String, String) {
        let token = rq.header("x-tableau-auth").unwrap_or_default().to_string();
        if let Some(session) = self.sessions.get(&token) {
            let secret = self.fixture.sites[session.site]
                .pats
                .iter()
                .find(|p| p.name == session.pat)
                .map(|p| p.secret.clone())
                .unwrap_or_default();
            return (token, session.pat.clone(), secret);
        }
        let creds = parse_credentials(&rq.body).ok();
        let name = creds
            .as_ref()
            .and_then(|c| c.pat_name.clone())
            .unwrap_or_default();
        let secret = creds.and_then(|c| c.pat_secret).unwrap_or_default();
        (token, name, secret)
    }

    fn echo_warning(&self, rq: &Incoming) -> Value {
        let (token, name, secret) = self.echoed_credentials(rq);
        json!({"message": echo_text(&token, &name, &secret), "extensions": {"severity": "WARNING", "code": "ECHO"}})
    }

    fn echo_error(&self, rq: &Incoming) -> Reply {
        let (token, name, secret) = self.echoed_credentials(rq);
        let text = echo_text(&token, &name, &secret);
        self.rest_error(
            400,
            "400099",
            &format!("Bad Request for {name}"),
            &text,
            rq.wants_json(),
        )
    }
}

/// The credentials raw, as a JSON document, that document as a JSON string (escaped once more
/// in the body), percent-encoded (form style) and XML-escaped.
pub fn echo_text(token: &str, name: &str, secret: &str) -> String {
    let doc = json!({"session": token, "pat": name, "value": secret}).to_string();
    let quoted = serde_json::to_string(&doc).unwrap();
    let form = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b' ' => "+".to_string(),
                b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "session {token} of {name} with {secret}; request {doc}; as a string {quoted}; form t={}&n={}&s={}; xml <c t=\"{}\" n=\"{}\" s=\"{}\"/>",
        form(token),
        form(name),
        form(secret),
        xml_escape(token),
        xml_escape(name),
        xml_escape(secret)
    )
}
