//! A local stand-in for Power BI and its Entra ID token endpoint, for tests.
//!
//! It serves a tenant fixture (`testdata/powerbi/*.tenant.json`, format in
//! `testdata/powerbi/README.md`) through the shapes of `shared/reference/powerbi.md`:
//! - `POST /{tenant}/oauth2/v2.0/token`, client credentials, form-encoded (section 1; Microsoft
//!   identity platform "OAuth 2.0 client credentials flow"), failures as RFC 6749 §5.2 bodies;
//! - `GET /v1.0/myorg/admin/workspaces/modified` with its query options (section 2,
//!   PBI-swagger `WorkspaceInfo_GetModifiedWorkspaces`: `modifiedSince` 30 min – 30 days ago,
//!   `excludePersonalWorkspaces`, `excludeInActiveWorkspaces`): with `modifiedSince`, only the
//!   workspaces whose fixture `modified_at` is later, on a clock tests set (`set_now`);
//! - `POST /v1.0/myorg/admin/workspaces/getInfo` (`WorkspaceInfo_PostWorkspaceInfo`): the four
//!   flags and `getArtifactUsers` as booleans, a JSON body `{"workspaces": [1–100 ids]}`, 202 with
//!   `Location`, at most 16 scans in flight (learn.microsoft.com "Run metadata scanning": wait
//!   for a scan's succeeded/failed status before another call);
//! - `GET …/scanStatus/{id}` (`WorkspaceInfo_GetScanStatus`): NotStarted → Running → Succeeded
//!   over `polls_to_succeed` polls, or a failed scan (the intermediate and failure spellings
//!   are UNVERIFIED, so configurable);
//! - `GET …/scanResult/{id}` (`WorkspaceInfo_GetScanResult`), only after success, in the shape
//!   of section 3;
//! - `GET /v1.0/myorg/groups/{id}/reports` (`Reports_GetReportsInGroup`, `webUrl`) and
//!   `GET /v1.0/myorg/groups/{g}/datasets/{d}/parameters` (`Datasets_GetParametersInGroup`);
//! - `POST /v1.0/myorg/groups/{g}/datasets/{d}/refreshes` (section 8,
//!   `Datasets_RefreshDatasetInGroup`): a JSON body `{"notifyOption": "NoNotification"}` and
//!   nothing else (shared capacity takes no enhanced-refresh options; a service principal gets
//!   no mail), 202 without a refresh id (the headers are documented for enhanced refreshes
//!   only; `Faults::refresh_location` sends `Location`), 409 while a refresh runs (or a 400
//!   "in progress"), a ninth refresh in 24 hours refused with the message people see, 403/404;
//!   and `GET …/refreshes?$top=N` (`Datasets_GetRefreshHistoryInGroup`), newest first, entries
//!   `Unknown` → `Completed`/`Failed` (with `serviceExceptionJson`) over polls, on a clock
//!   tests set (`set_refresh_clock`); every history starts with an API refresh of yesterday;
//! - 429 + `Retry-After` past the hourly quotas of section 2 and on demand (section 9,
//!   learn.microsoft.com "Power BI REST API limitations").
//! Every API call must carry a bearer token this server issued and that has not expired.
//! Errors are `{"error": {"code", "message"}}` (`PowerBIApiErrorResponseDetail`).
//!
//! Used by the integration tests and by `examples/powerbi_server.rs` (`#[path]` include), so
//! it depends only on dev-dependencies. Ids, tokens and codes marked "invented" are made up.
#![allow(dead_code)]

#[path = "query.rs"]
mod query;
use query::parse_query;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::Deserialize;
use serde_json::{json, Value};

#[path = "http1.rs"]
mod http1;

/// The one scope a Power BI token is asked for (reference section 1).
pub const SCOPE: &str = "https://analysis.windows.net/powerbi/api/.default";
/// The service's limit on scans in flight (reference section 2).
pub const MAX_SCANS: usize = 16;
/// Hourly quotas (reference section 2); this server's "hour" is its whole life.
const QUOTA_MODIFIED: usize = 30;
const QUOTA_GET_INFO: usize = 500;
const QUOTA_SCAN_STATUS: usize = 10_000;
const QUOTA_SCAN_RESULT: usize = 500;
/// The server's "now" for `modifiedSince` until a test sets one (`set_now`):
/// 2025-03-04T05:06:07Z (invented).
const NOW_EPOCH: i64 = 1_741_064_767;

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    pub tenant_id: String,
    pub principals: Vec<Principal>,
    #[serde(default)]
    pub workspaces: Vec<FixtureWorkspace>,
    /// Top-level `datasourceInstances`, served for the datasets that use them.
    #[serde(default, rename = "datasourceInstances")]
    pub datasource_instances: Vec<Value>,
    #[serde(default, rename = "misconfiguredDatasourceInstances")]
    pub misconfigured_datasource_instances: Vec<Value>,
    /// Many plain workspaces beside the listed ones, to force batches.
    #[serde(default)]
    pub generated: Option<Generated>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Principal {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FixtureWorkspace {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    #[serde(default = "default_state")]
    pub state: String,
    /// Report objects of the scan result, served verbatim (`groups/{id}/reports` derives its
    /// answer from them).
    #[serde(default)]
    pub reports: Vec<Value>,
    /// Dataset objects of the scan result, served verbatim (less what the flags leave out).
    #[serde(default)]
    pub datasets: Vec<Value>,
    #[serde(default)]
    pub dataflows: Vec<Value>,
    /// `datasets/{id}/parameters` answers, by dataset id.
    #[serde(default)]
    pub parameters: BTreeMap<String, Vec<Value>>,
    /// The principal is not a member: `groups/{id}/…` calls are refused.
    #[serde(default)]
    pub not_a_member: bool,
    /// When anything in it last changed (RFC 3339 UTC): `modified?modifiedSince=T` lists it
    /// when this is after T. Without it, it changed before any window.
    #[serde(default)]
    pub modified_at: Option<String>,
}

fn default_type() -> String {
    "Workspace".into()
}
fn default_state() -> String {
    "Active".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct Generated {
    pub count: usize,
}

impl Fixture {
    pub fn load(path: &Path) -> Fixture {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read tenant fixture {}: {e}", path.display()));
        let mut f: Fixture = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("invalid tenant fixture {}: {e}", path.display()));
        if let Some(g) = f.generated.clone() {
            for n in 0..g.count {
                f.workspaces.push(generated_workspace(n));
            }
        }
        f
    }
}

/// Workspace `n` of the generated ones: one report on one dataset of one Snowflake table.
pub fn generated_workspace(n: usize) -> FixtureWorkspace {
    let id = format!("9e000000-0000-4000-8000-{n:012x}");
    let ds = format!("9d000000-0000-4000-8000-{n:012x}");
    FixtureWorkspace {
        id: id.clone(),
        name: Some(format!("Generated {n:04}")),
        kind: "Workspace".into(),
        state: "Active".into(),
        reports: vec![
            json!({"id": format!("9a000000-0000-4000-8000-{n:012x}"), "name": format!("Generated report {n:04}"),
            "datasetId": ds, "reportType": "PowerBIReport", "createdBy": "gen@contoso.example"}),
        ],
        datasets: vec![
            json!({"id": ds, "name": format!("Generated model {n:04}"), "configuredBy": "gen@contoso.example",
            "tables": [{"name": "Orders", "isHidden": false, "source": [{"expression":
                "let\n    Source = Snowflake.Databases(\"acme-xy12345.snowflakecomputing.com\", \"BI_WH\"),\n    Db = Source{[Name=\"ANALYTICS\",Kind=\"Database\"]}[Data],\n    Sch = Db{[Name=\"MARTS\",Kind=\"Schema\"]}[Data],\n    T = Sch{[Name=\"FCT_ORDERS\",Kind=\"Table\"]}[Data]\nin\n    T"}]}],
            "expressions": []}),
        ],
        dataflows: vec![],
        parameters: BTreeMap::new(),
        not_a_member: false,
        modified_at: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Faults and knobs. `Faults::default()` is a well-behaved service.
#[derive(Debug, Clone)]
pub struct Faults {
    /// 1-based request numbers answered 429 with `Retry-After: 1` (no side effects).
    pub rate_limit_at: Vec<usize>,
    /// 1-based request numbers answered 200 with the body cut in half (no side effects).
    pub cut_body_at: Vec<usize>,
    /// `expires_in` of every token issued.
    pub token_expires_in: u64,
    /// A token stops working after this many API calls (401 `TokenExpired`).
    pub expire_token_after: Option<usize>,
    /// Polls of a scan before it reports success: the first says NotStarted, then Running.
    pub polls_to_succeed: u32,
    /// How `scanStatus` spells the statuses (UNVERIFIED: DataHub's recordings say SUCCEEDED).
    pub upper_case_statuses: bool,
    /// A scan holding one of these workspace ids fails.
    pub fail_scans_of: Vec<String>,
    /// Scans never finish (Running for ever).
    pub never_finish: bool,
    /// Datasets with someone else's API refresh running (never finishing): a POST gets 409.
    pub refresh_running: Vec<String>,
    /// A refresh already running is refused 400 with an "in progress" message, not 409.
    pub running_as_400: bool,
    /// Datasets whose eight refreshes of the last 24 hours (scheduled ones) are spent.
    pub daily_limit_of: Vec<String>,
    /// Datasets the principal may not refresh: 403.
    pub refresh_forbidden: Vec<String>,
    /// Datasets whose refreshes fail.
    pub refresh_fails_of: Vec<String>,
    /// History polls that still show our refresh `Unknown` before it ends.
    pub refresh_polls: u32,
    /// A scheduled refresh lands in the history 20 s after each of ours, newer than it, and
    /// never finishes.
    pub scheduled_after_post: bool,
    /// A 202 carries `Location: …/refreshes/{requestId}`.
    pub refresh_location: bool,
    /// Every answer waits this long first (outside the state's lock: connections are answered
    /// on their own threads, so requests in flight overlap as they would against the service).
    pub latency_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate_limit_at: vec![],
            cut_body_at: vec![],
            token_expires_in: 3599,
            expire_token_after: None,
            polls_to_succeed: 3,
            upper_case_statuses: false,
            fail_scans_of: vec![],
            never_finish: false,
            refresh_running: vec![],
            running_as_400: false,
            daily_limit_of: vec![],
            refresh_forbidden: vec![],
            refresh_fails_of: vec![],
            refresh_polls: 1,
            scheduled_after_post: false,
            refresh_location: false,
            latency_ms: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub number: usize,
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    pub status: u16,
    pub bearer: bool,
    /// POST bodies, `client_secret` masked.
    pub body: Option<String>,
}

impl std::fmt::Display for LoggedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{} {} {} -> {}",
            self.number, self.method, self.path, self.status
        )
    }
}

pub struct PowerBiServer {
    /// `http://127.0.0.1:PORT`: both the login and the API base URL.
    pub base_url: String,
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop_flag: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Set by tests that send a refused shape on purpose; otherwise a refusal fails the test
    /// when the server is dropped (see `Drop`).
    refusals_expected: bool,
}

impl PowerBiServer {
    pub fn start(fixture: &Path, faults: Faults) -> PowerBiServer {
        Self::start_on(fixture, faults, 0, false)
    }

    pub fn start_on(fixture: &Path, faults: Faults, port: u16, echo: bool) -> PowerBiServer {
        let fixture = Fixture::load(fixture);
        let listener = http1::Listener::bind(port)
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:{port}: {e}"));
        let port = listener.port();
        let base_url = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State::new(fixture, faults, base_url.clone())));
        let stop_flag = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop_flag);
            std::thread::Builder::new()
                .name(format!("powerbi-server-{port}"))
                .spawn(move || {
                    listener.serve(
                        stop,
                        Arc::new(move |rq: http1::Request| answer(rq, &state, echo)),
                    );
                })
                .expect("cannot spawn the powerbi server thread")
        };
        PowerBiServer {
            base_url,
            port,
            state,
            stop_flag,
            thread: Some(thread),
            refusals_expected: false,
        }
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.lock().unwrap().log.clone()
    }

    /// Every token this server issued, so tests can check none leaked.
    pub fn issued_tokens(&self) -> Vec<String> {
        let mut all: Vec<String> = self.state.lock().unwrap().tokens.keys().cloned().collect();
        all.sort();
        all
    }

    /// The most scans that were in flight at once (started, success or failure not yet read).
    pub fn max_scans_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_scans_in_flight
    }

    /// `getInfo` calls refused because 16 scans were in flight.
    pub fn scans_refused(&self) -> usize {
        self.state.lock().unwrap().scans_refused
    }

    /// Requests answered 4xx for their shape (not auth, not quota): what the real service refuses.
    pub fn refused(&self) -> Vec<String> {
        self.state.lock().unwrap().refused.clone()
    }

    /// This test sends a shape the service refuses on purpose: dropping the server after a
    /// refusal is then not a failure.
    pub fn expect_refusals(&mut self) {
        self.refusals_expected = true;
    }

    /// The refresh clock (RFC 3339 UTC, as `--now`): when a refresh POSTed now starts.
    pub fn set_refresh_clock(&self, now: &str) {
        self.state.lock().unwrap().refresh_now =
            epoch_of(now).unwrap_or_else(|| panic!("not an RFC 3339 UTC time: {now}"));
    }

    /// Workspaces without `modified_at` count as modified at `epoch` (the example server: when
    /// it started on its fixture, so a fixture changed between two runs reads as modified).
    pub fn set_unstamped_modified_at(&self, epoch: i64) {
        self.state.lock().unwrap().unstamped_modified_at = Some(epoch);
    }

    /// As `set_now`, in seconds since the epoch (the example server follows the system clock).
    pub fn set_now_epoch(&self, epoch: i64) {
        self.state.lock().unwrap().now = epoch;
    }

    /// The service's clock for `modifiedSince` (RFC 3339 UTC, as `--now`).
    pub fn set_now(&self, now: &str) {
        self.state.lock().unwrap().now =
            epoch_of(now).unwrap_or_else(|| panic!("not an RFC 3339 UTC time: {now}"));
    }

    /// Serves another fixture from now on (the tenant after a day of work); scans already
    /// started keep their workspace ids.
    pub fn set_fixture(&self, fixture: &Path) {
        self.state.lock().unwrap().fixture = Fixture::load(fixture);
    }

    /// The refresh POSTs answered, as `(dataset id, status)`.
    pub fn refresh_posts(&self) -> Vec<(String, u16)> {
        self.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/refreshes"))
            .map(|r| {
                (
                    r.path
                        .trim_end_matches("/refreshes")
                        .rsplit('/')
                        .next()
                        .unwrap_or("")
                        .to_string(),
                    r.status,
                )
            })
            .collect()
    }

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

/// A request the real service would refuse is the worst defect a test can hide: every test
/// using this server fails on one, whether or not it asks `refused()` itself.
impl Drop for PowerBiServer {
    fn drop(&mut self) {
        self.shutdown();
        let refused = self.refused();
        if !refused.is_empty() && !self.refusals_expected && !std::thread::panicking() {
            panic!("the Power BI test server refused {} request(s) the real service refuses too: {refused:?}", refused.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

struct Scan {
    workspaces: Vec<String>,
    flags: Flags,
    polls: u32,
    /// Its success or failure has been read by the client: no longer in flight.
    settled: bool,
    succeeded: bool,
}

#[derive(Clone, Copy, Default)]
struct Flags {
    lineage: bool,
    datasource_details: bool,
    dataset_schema: bool,
    dataset_expressions: bool,
}

struct State {
    fixture: Fixture,
    faults: Faults,
    base_url: String,
    count: usize,
    log: Vec<LoggedRequest>,
    /// Token → API calls made with it.
    tokens: HashMap<String, usize>,
    scans: BTreeMap<String, Scan>,
    calls: HashMap<&'static str, usize>,
    max_scans_in_flight: usize,
    scans_refused: usize,
    refused: Vec<String>,
    /// Refresh histories by dataset id, oldest first.
    histories: BTreeMap<String, Vec<HistoryEntry>>,
    refresh_now: i64,
    requests_issued: usize,
    /// The clock `modifiedSince` is judged on.
    now: i64,
    /// When a workspace without `modified_at` counts as modified (`None`: before any window).
    unstamped_modified_at: Option<i64>,
}

struct HistoryEntry {
    refresh_type: &'static str,
    start: i64,
    end: Option<i64>,
    status: &'static str,
    request_id: String,
    /// Polls left showing `Unknown`; `None`: never finishes.
    polls_left: Option<u32>,
    fails: bool,
    /// Ours: a scheduled refresh may land after it (`Faults::scheduled_after_post`).
    ours: bool,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: vec![(
            "Content-Type".into(),
            "application/json; charset=utf-8".into(),
        )],
        body: body.to_string().into_bytes(),
    }
}

fn api_error(status: u16, code: &str, message: &str) -> Reply {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

fn answer(rq: http1::Request, state: &Mutex<State>, echo: bool) {
    let latency = state.lock().unwrap().faults.latency_ms;
    if latency > 0 {
        std::thread::sleep(std::time::Duration::from_millis(latency));
    }
    let (r, entry) = {
        let mut st = state.lock().unwrap();
        st.count += 1;
        let n = st.count;
        let mut r = st.handle(&rq);
        if st.faults.cut_body_at.contains(&n) && r.status < 300 {
            let half = r.body.len() / 2;
            r.body.truncate(half);
        }
        let body = (rq.method == "POST").then(|| mask(&String::from_utf8_lossy(&rq.body)));
        let bearer = header(&rq, "authorization").is_some_and(|a| a.starts_with("Bearer "));
        let entry = LoggedRequest {
            number: n,
            method: rq.method.clone(),
            path: rq.url.clone(),
            status: r.status,
            bearer,
            body,
        };
        st.log.push(entry.clone());
        (r, entry)
    };
    if echo {
        eprintln!("{entry}");
    }
    rq.respond(r.status, &r.headers, &r.body);
}

fn header<'a>(rq: &'a http1::Request, name: &str) -> Option<&'a str> {
    rq.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `client_secret=…` masked in a logged form body.
fn mask(body: &str) -> String {
    body.split('&')
        .map(|p| {
            if p.starts_with("client_secret=") {
                "client_secret=***".to_string()
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An OData boolean query value (`True`, `false`): PBI-swagger types these as boolean.
fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time, as `modifiedSince` is written
/// (`2025-03-01T00:00:00.0000000Z`).
fn epoch_of(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || !t.ends_with('Z')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

impl State {
    fn new(fixture: Fixture, faults: Faults, base_url: String) -> State {
        State {
            fixture,
            faults,
            base_url,
            count: 0,
            log: Vec::new(),
            tokens: HashMap::new(),
            scans: BTreeMap::new(),
            calls: HashMap::new(),
            max_scans_in_flight: 0,
            scans_refused: 0,
            refused: Vec::new(),
            histories: BTreeMap::new(),
            refresh_now: NOW_EPOCH,
            requests_issued: 0,
            now: NOW_EPOCH,
            unstamped_modified_at: None,
        }
    }

    /// A 400 for a request the real service would refuse, remembered for the tests.
    fn refuse(&mut self, code: &str, message: &str) -> Reply {
        self.refused.push(format!("{code}: {message}"));
        api_error(400, code, message)
    }

    fn handle(&mut self, rq: &http1::Request) -> Reply {
        if self.faults.rate_limit_at.contains(&self.count) {
            let mut r = api_error(429, "TooManyRequests", "rate limited (injected)");
            r.headers.push(("Retry-After".into(), "1".into()));
            return r;
        }
        let (path, query) = match rq.url.split_once('?') {
            Some((p, q)) => (p.to_string(), parse_query(q)),
            None => (rq.url.clone(), Vec::new()),
        };
        let token_path = format!("/{}/oauth2/v2.0/token", self.fixture.tenant_id);
        if path.ends_with("/oauth2/v2.0/token") {
            if path != token_path {
                // AADSTS90002: tenant not found (Entra ID's code for an unknown tenant).
                return reply(
                    400,
                    json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}),
                );
            }
            return self.token(rq, &query);
        }
        let Some(rest) = path.strip_prefix("/v1.0/myorg/") else {
            return api_error(404, "EntityNotFound", "no such API (invented message)");
        };
        if let Err(r) = self.authorize(rq) {
            return r;
        }
        let parts: Vec<&str> = rest.split('/').collect();
        match (rq.method.as_str(), parts.as_slice()) {
            ("GET", ["admin", "workspaces", "modified"]) => self.modified(&query),
            ("POST", ["admin", "workspaces", "getInfo"]) => self.get_info(rq, &query),
            ("GET", ["admin", "workspaces", "scanStatus", id]) if query.is_empty() => {
                self.scan_status(id)
            }
            ("GET", ["admin", "workspaces", "scanResult", id]) if query.is_empty() => {
                self.scan_result(id)
            }
            ("GET", ["groups", g, "reports"]) if query.is_empty() => self.group_reports(g),
            ("GET", ["groups", g, "datasets", d, "parameters"]) if query.is_empty() => {
                self.parameters(g, d)
            }
            ("POST", ["groups", g, "datasets", d, "refreshes"]) if query.is_empty() => {
                self.refresh(rq, g, d)
            }
            ("GET", ["groups", g, "datasets", d, "refreshes"]) => self.history(g, d, &query),
            _ => api_error(404, "EntityNotFound", "no such API (invented message)"),
        }
    }

    /// The client-credentials grant: form body, the principal, the Power BI scope exactly.
    fn token(&mut self, rq: &http1::Request, query: &[(String, String)]) -> Reply {
        let invalid = |code: &str, aadsts: &str| {
            reply(400, json!({"error": code, "error_description": aadsts}))
        };
        if rq.method != "POST" || !query.is_empty() {
            return invalid(
                "invalid_request",
                "AADSTS900561: The endpoint only accepts POST requests.",
            );
        }
        if !header(rq, "content-type").is_some_and(|c| {
            c.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        }) {
            return invalid("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.");
        }
        let form = parse_query(&String::from_utf8_lossy(&rq.body));
        let mut seen = BTreeSet::new();
        if form.iter().any(|(k, _)| !seen.insert(k.clone())) {
            return invalid("invalid_request", "AADSTS90015: Requested query string is too long or a parameter is repeated (invented).");
        }
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        for k in ["grant_type", "client_id", "client_secret", "scope"] {
            if get(k).is_none() {
                return invalid("invalid_request", &format!("AADSTS900144: The request body must contain the following parameter: '{k}'."));
            }
        }
        if get("grant_type") != Some("client_credentials") {
            return invalid(
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
            );
        }
        if get("scope") != Some(SCOPE) {
            return invalid(
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid.",
            );
        }
        let id = get("client_id").unwrap_or("");
        let secret = get("client_secret").unwrap_or("");
        let Some(p) = self.fixture.principals.iter().find(|p| p.client_id == id) else {
            return reply(
                400,
                json!({"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found in the directory."}),
            );
        };
        if p.client_secret != secret {
            return reply(
                401,
                json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
            );
        }
        let token = format!(
            "pbi-token-{}-{:08x}",
            self.tokens.len() + 1,
            (self.count as u64).wrapping_mul(0x9E37_79B9) & 0xffff_ffff
        );
        self.tokens.insert(token.clone(), 0);
        let life = self.faults.token_expires_in;
        reply(
            200,
            json!({"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": token}),
        )
    }

    fn authorize(&mut self, rq: &http1::Request) -> Result<(), Reply> {
        let unauthorized = |code: &str| {
            let mut r = api_error(
                401,
                code,
                "the access token is missing, invalid or expired (invented message)",
            );
            r.headers.push(("WWW-Authenticate".into(), "Bearer".into()));
            r
        };
        let Some(token) = header(rq, "authorization").and_then(|a| a.strip_prefix("Bearer "))
        else {
            return Err(unauthorized("PowerBINotAuthorizedException"));
        };
        let limit = self.faults.expire_token_after;
        match self.tokens.get_mut(token) {
            None => Err(unauthorized("PowerBINotAuthorizedException")),
            Some(uses) if limit.is_some_and(|l| *uses >= l) => Err(unauthorized("TokenExpired")),
            Some(uses) => {
                *uses += 1;
                Ok(())
            }
        }
    }

    /// Past an hourly quota: 429 with the seconds until it resets (reference section 9).
    fn over_quota(&mut self, call: &'static str, quota: usize) -> Option<Reply> {
        let n = self.calls.entry(call).or_insert(0);
        *n += 1;
        (*n > quota).then(|| {
            let mut r = api_error(
                429,
                "TooManyRequests",
                &format!("{call}: {quota} calls an hour"),
            );
            r.headers.push(("Retry-After".into(), "3600".into()));
            r
        })
    }

    fn modified(&mut self, query: &[(String, String)]) -> Reply {
        if let Some(r) = self.over_quota("modified", QUOTA_MODIFIED) {
            return r;
        }
        let (mut exclude_personal, mut exclude_inactive) = (false, false);
        let mut since = None;
        for (k, v) in query {
            match k.as_str() {
                "modifiedSince" => {
                    let Some(t) = epoch_of(v) else {
                        return self.refuse(
                            "InvalidRequest",
                            &format!("modifiedSince {v:?} is not a date-time"),
                        );
                    };
                    if t > self.now - 30 * 60 || t < self.now - 30 * 86_400 {
                        return self.refuse("InvalidRequest", "modifiedSince must be within the last 30 days and at least 30 minutes ago");
                    }
                    since = Some(t);
                }
                "excludePersonalWorkspaces" | "excludeInActiveWorkspaces" => {
                    let Some(b) = boolean(v) else {
                        return self
                            .refuse("InvalidRequest", &format!("{k}={v:?} is not a boolean"));
                    };
                    if k == "excludePersonalWorkspaces" {
                        exclude_personal = b;
                    } else {
                        exclude_inactive = b;
                    }
                }
                other => {
                    return self
                        .refuse("InvalidRequest", &format!("unknown query option {other:?}"))
                }
            }
        }
        let unstamped = self.unstamped_modified_at;
        let ids: Vec<Value> = self
            .fixture
            .workspaces
            .iter()
            .filter(|w| !(exclude_personal && w.kind.eq_ignore_ascii_case("PersonalGroup")))
            .filter(|w| !(exclude_inactive && !w.state.eq_ignore_ascii_case("Active")))
            .filter(|w| match since {
                None => true,
                Some(t) => w
                    .modified_at
                    .as_deref()
                    .and_then(epoch_of)
                    .or(unstamped)
                    .is_some_and(|m| m > t),
            })
            .map(|w| json!({"id": w.id}))
            .collect();
        reply(200, Value::Array(ids))
    }

    fn in_flight(&self) -> usize {
        self.scans.values().filter(|s| !s.settled).count()
    }

    fn get_info(&mut self, rq: &http1::Request, query: &[(String, String)]) -> Reply {
        let mut flags = Flags::default();
        for (k, v) in query {
            let Some(b) = boolean(v) else {
                return self.refuse("InvalidRequest", &format!("{k}={v:?} is not a boolean"));
            };
            match k.as_str() {
                "lineage" => flags.lineage = b,
                "datasourceDetails" => flags.datasource_details = b,
                "datasetSchema" => flags.dataset_schema = b,
                "datasetExpressions" => flags.dataset_expressions = b,
                "getArtifactUsers" => {}
                other => {
                    return self
                        .refuse("InvalidRequest", &format!("unknown query option {other:?}"))
                }
            }
        }
        if !header(rq, "content-type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"))
        {
            return self.refuse("InvalidRequest", "the body must be application/json");
        }
        let body: Value = match serde_json::from_slice(&rq.body) {
            Ok(v) => v,
            Err(e) => return self.refuse("InvalidRequest", &format!("the body is not JSON: {e}")),
        };
        let Some(obj) = body.as_object().filter(|o| o.len() == 1) else {
            return self.refuse("InvalidRequest", "the body must be {\"workspaces\": [...]}");
        };
        let Some(list) = obj.get("workspaces").and_then(Value::as_array) else {
            return self.refuse("InvalidRequest", "the body must be {\"workspaces\": [...]}");
        };
        let ids: Option<Vec<String>> = list
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect();
        let Some(ids) = ids else {
            return self.refuse("InvalidRequest", "workspaces must be a list of ids");
        };
        if ids.is_empty() || ids.len() > 100 {
            return self.refuse(
                "InvalidRequest",
                &format!("between 1 and 100 workspaces per scan, not {}", ids.len()),
            );
        }
        if let Some(unknown) = ids
            .iter()
            .find(|id| !self.fixture.workspaces.iter().any(|w| w.id == **id))
        {
            // UNVERIFIED how the service answers an unknown id; refusing keeps the client honest.
            return self.refuse("InvalidRequest", &format!("unknown workspace {unknown}"));
        }
        if self.in_flight() >= MAX_SCANS {
            self.scans_refused += 1;
            let mut r = api_error(
                429,
                "TooManyRequests",
                "16 scans are in flight (invented message)",
            );
            r.headers.push(("Retry-After".into(), "1".into()));
            return r;
        }
        if let Some(r) = self.over_quota("getInfo", QUOTA_GET_INFO) {
            return r;
        }
        let id = format!("5c000000-0000-4000-8000-{:012x}", self.scans.len() + 1);
        self.scans.insert(
            id.clone(),
            Scan {
                workspaces: ids,
                flags,
                polls: 0,
                settled: false,
                succeeded: false,
            },
        );
        self.max_scans_in_flight = self.max_scans_in_flight.max(self.in_flight());
        let mut r = reply(
            202,
            json!({"id": id, "createdDateTime": "2025-03-04T05:06:07.0000000Z", "status": self.spell("NotStarted")}),
        );
        r.headers.push((
            "Location".into(),
            format!(
                "{}/v1.0/myorg/admin/workspaces/scanStatus/{id}",
                self.base_url
            ),
        ));
        r
    }

    fn spell(&self, s: &str) -> String {
        if self.faults.upper_case_statuses {
            s.to_ascii_uppercase()
        } else {
            s.to_string()
        }
    }

    fn scan_status(&mut self, id: &str) -> Reply {
        if let Some(r) = self.over_quota("scanStatus", QUOTA_SCAN_STATUS) {
            return r;
        }
        let faults = self.faults.clone();
        let Some(scan) = self.scans.get_mut(id) else {
            return api_error(404, "EntityNotFound", "no such scan");
        };
        scan.polls += 1;
        let fails = scan
            .workspaces
            .iter()
            .any(|w| faults.fail_scans_of.contains(w));
        let status = if faults.never_finish {
            if scan.polls == 1 {
                "NotStarted"
            } else {
                "Running"
            }
        } else if scan.polls == 1 && faults.polls_to_succeed > 1 {
            "NotStarted"
        } else if scan.polls < faults.polls_to_succeed {
            "Running"
        } else if fails {
            scan.settled = true;
            "Failed"
        } else {
            scan.settled = true;
            scan.succeeded = true;
            "Succeeded"
        };
        let mut body = json!({"id": id, "createdDateTime": "2025-03-04T05:06:07.0000000Z", "status": self.spell(status)});
        if status == "Failed" {
            body["error"] = json!({"code": "ScanFailed", "message": "the scan failed (injected)", "target": id});
        }
        reply(200, body)
    }

    fn scan_result(&mut self, id: &str) -> Reply {
        if let Some(r) = self.over_quota("scanResult", QUOTA_SCAN_RESULT) {
            return r;
        }
        let Some(scan) = self.scans.get(id) else {
            return api_error(404, "EntityNotFound", "no such scan");
        };
        if !scan.succeeded {
            // "call only after a successful status" (reference section 2); the code is UNVERIFIED.
            return self.refuse(
                "ScanNotSucceeded",
                "the scan has not succeeded (invented code)",
            );
        }
        let flags = scan.flags;
        let mut used = BTreeSet::new();
        let mut workspaces = Vec::new();
        for wid in &scan.workspaces {
            let Some(w) = self.fixture.workspaces.iter().find(|w| &w.id == wid) else {
                continue;
            };
            let datasets: Vec<Value> = w
                .datasets
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    for key in ["datasourceUsages", "misconfiguredDatasourceUsages"] {
                        for u in d[key].as_array().into_iter().flatten() {
                            if let Some(i) = u["datasourceInstanceId"].as_str() {
                                used.insert(i.to_string());
                            }
                        }
                    }
                    let o = d.as_object_mut().expect("datasets are objects");
                    if !flags.lineage {
                        o.remove("datasourceUsages");
                        o.remove("misconfiguredDatasourceUsages");
                        o.remove("upstreamDataflows");
                        o.remove("upstreamDatasets");
                    }
                    if !flags.dataset_schema {
                        o.remove("tables");
                    }
                    if !flags.dataset_expressions {
                        o.remove("expressions");
                        for t in o
                            .get_mut("tables")
                            .and_then(Value::as_array_mut)
                            .into_iter()
                            .flatten()
                        {
                            t.as_object_mut().map(|t| t.remove("source"));
                        }
                    }
                    d
                })
                .collect();
            let mut out = json!({"id": w.id, "type": w.kind, "state": w.state, "reports": w.reports, "datasets": datasets, "dataflows": w.dataflows});
            if let Some(n) = &w.name {
                out["name"] = json!(n);
            }
            workspaces.push(out);
        }
        let pick = |list: &[Value]| -> Vec<Value> {
            list.iter()
                .filter(|i| i["datasourceId"].as_str().is_some_and(|d| used.contains(d)))
                .cloned()
                .collect()
        };
        let mut body = json!({"workspaces": workspaces});
        if flags.datasource_details {
            body["datasourceInstances"] = json!(pick(&self.fixture.datasource_instances));
            body["misconfiguredDatasourceInstances"] =
                json!(pick(&self.fixture.misconfigured_datasource_instances));
        }
        reply(200, body)
    }

    fn group(&self, g: &str) -> Result<&FixtureWorkspace, Reply> {
        match self.fixture.workspaces.iter().find(|w| w.id == g) {
            None => Err(api_error(404, "EntityNotFound", "no such workspace")),
            // UNVERIFIED: the service's answer to a principal that is not a member.
            Some(w) if w.not_a_member => Err(api_error(
                403,
                "PowerBINotAuthorizedException",
                "not a member of the workspace (invented message)",
            )),
            Some(w) => Ok(w),
        }
    }

    fn group_reports(&mut self, g: &str) -> Reply {
        let w = match self.group(g) {
            Ok(w) => w,
            Err(r) => return r,
        };
        let value: Vec<Value> = w
            .reports
            .iter()
            .filter(|r| r.get("appId").is_none())
            .map(|r| {
                let id = r["id"].as_str().unwrap_or("");
                json!({"id": id, "reportType": r["reportType"], "name": r["name"], "datasetId": r["datasetId"],
                       "webUrl": format!("https://app.powerbi.com/groups/{g}/reports/{id}"),
                       "embedUrl": format!("https://app.powerbi.com/reportEmbed?reportId={id}&groupId={g}")})
            })
            .collect();
        reply(
            200,
            json!({"@odata.context": "http://wabi.example/v1.0/myorg/groups/$metadata#reports", "value": value}),
        )
    }

    fn parameters(&mut self, g: &str, d: &str) -> Reply {
        let w = match self.group(g) {
            Ok(w) => w,
            Err(r) => return r,
        };
        if !w.datasets.iter().any(|x| x["id"].as_str() == Some(d)) {
            return api_error(
                404,
                "ItemNotFound",
                "no such dataset in the workspace (invented message)",
            );
        }
        let value = w.parameters.get(d).cloned().unwrap_or_default();
        reply(
            200,
            json!({"@odata.context": "http://wabi.example/v1.0/myorg/groups/$metadata#parameters", "value": value}),
        )
    }

    /// The dataset `d` of workspace `g`, as the refresh calls find it.
    fn refresh_dataset(&self, g: &str, d: &str) -> Result<(), Reply> {
        let w = self.group(g)?;
        if !w.datasets.iter().any(|x| x["id"].as_str() == Some(d)) {
            return Err(api_error(
                404,
                "ItemNotFound",
                "no such dataset in the workspace (invented message)",
            ));
        }
        if self.faults.refresh_forbidden.iter().any(|x| x == d) {
            return Err(api_error(
                403,
                "PowerBINotAuthorizedException",
                "the principal may not refresh this dataset (invented message)",
            ));
        }
        Ok(())
    }

    fn next_request_id(&mut self) -> String {
        self.requests_issued += 1;
        format!("9e0e5700-0000-4000-8000-{:012x}", self.requests_issued)
    }

    /// The history of `d`, made on first use: an API refresh of yesterday (someone's, done),
    /// someone else's refresh running, or the day's eight scheduled refreshes, as the faults say.
    fn history_of(&mut self, d: &str) -> &mut Vec<HistoryEntry> {
        if !self.histories.contains_key(d) {
            let now = self.refresh_now;
            let mut h = vec![HistoryEntry {
                refresh_type: "ViaApi",
                start: now - 86_400 - 600,
                end: Some(now - 86_400 - 570),
                status: "Completed",
                request_id: self.next_request_id(),
                polls_left: Some(0),
                fails: false,
                ours: false,
            }];
            if self.faults.daily_limit_of.iter().any(|x| x == d) {
                for k in 0..8 {
                    let start = now - 80_000 + k * 9_000;
                    let request_id = self.next_request_id();
                    h.push(HistoryEntry {
                        refresh_type: "Scheduled",
                        start,
                        end: Some(start + 30),
                        status: "Completed",
                        request_id,
                        polls_left: Some(0),
                        fails: false,
                        ours: false,
                    });
                }
            }
            if self.faults.refresh_running.iter().any(|x| x == d) {
                let request_id = self.next_request_id();
                h.push(HistoryEntry {
                    refresh_type: "ViaApi",
                    start: now - 60,
                    end: None,
                    status: "Unknown",
                    request_id,
                    polls_left: None,
                    fails: false,
                    ours: false,
                });
            }
            self.histories.insert(d.to_string(), h);
        }
        // A refresh nobody polls ends within the hour all the same.
        let now = self.refresh_now;
        let h = self.histories.get_mut(d).expect("just made");
        for e in h
            .iter_mut()
            .filter(|e| e.status == "Unknown" && e.polls_left.is_some() && e.start + 3600 <= now)
        {
            e.status = if e.fails { "Failed" } else { "Completed" };
            e.end = Some(e.start + 30);
        }
        h
    }

    fn refresh(&mut self, rq: &http1::Request, g: &str, d: &str) -> Reply {
        if let Err(r) = self.refresh_dataset(g, d) {
            return r;
        }
        if !header(rq, "content-type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"))
        {
            return self.refuse("InvalidRequest", "the body must be application/json");
        }
        let body: Value = match serde_json::from_slice(&rq.body) {
            Ok(v) => v,
            Err(e) => return self.refuse("InvalidRequest", &format!("the body is not JSON: {e}")),
        };
        let Some(obj) = body.as_object() else {
            return self.refuse("InvalidRequest", "the body must be a JSON object");
        };
        if let Some(k) = obj.keys().find(|k| *k != "notifyOption") {
            // Reference section 8: enhanced refresh options are not supported on shared capacity.
            return self.refuse("InvalidRequest", &format!("{k:?}: enhanced refresh is not supported on shared capacity (invented message)"));
        }
        match obj.get("notifyOption").and_then(Value::as_str) {
            Some("NoNotification") => {}
            // "not applicable to … API operations with a service principal" (reference section 8).
            Some("MailOnFailure" | "MailOnCompletion") => {
                return self.refuse("InvalidRequest", "notifyOption: a service principal gets no mail; send NoNotification (invented message)")
            }
            _ => return self.refuse("InvalidRequest", "notifyOption must be NoNotification, MailOnFailure or MailOnCompletion"),
        }
        let (now, faults) = (self.refresh_now, self.faults.clone());
        let fails = faults.refresh_fails_of.iter().any(|x| x == d);
        let h = self.history_of(d);
        if h.iter().filter(|e| e.start > now - 86_400).count() >= 8 {
            // The message people see (reference section 8, maikvandergaag/msft-extensions #89);
            // status and code UNVERIFIED.
            return api_error(400, "InvalidRequest", "Invalid dataset refresh request. Number of refresh requests in last 24 hours exceeded limit");
        }
        if h.iter().any(|e| e.status == "Unknown") {
            return if faults.running_as_400 {
                api_error(
                    400,
                    "InvalidRequest",
                    "Another refresh request is already in progress (invented message)",
                )
            } else {
                api_error(
                    409,
                    "Conflict",
                    "a refresh of the dataset is already in progress (invented message)",
                )
            };
        }
        let request_id = self.next_request_id();
        let polls = faults.refresh_polls;
        let h = self.history_of(d);
        h.push(HistoryEntry {
            refresh_type: "ViaApi",
            start: now + 2,
            end: None,
            status: "Unknown",
            request_id: request_id.clone(),
            polls_left: Some(polls),
            fails,
            ours: true,
        });
        let mut r = Reply {
            status: 202,
            headers: vec![],
            body: vec![],
        };
        if faults.refresh_location {
            r.headers.push((
                "Location".into(),
                format!(
                    "{}/v1.0/myorg/groups/{g}/datasets/{d}/refreshes/{request_id}",
                    self.base_url
                ),
            ));
        }
        r
    }

    fn history(&mut self, g: &str, d: &str, query: &[(String, String)]) -> Reply {
        if let Err(r) = self.refresh_dataset(g, d) {
            return r;
        }
        let mut top = usize::MAX;
        for (k, v) in query {
            match (k.as_str(), v.parse::<usize>()) {
                ("$top", Ok(n)) if n >= 1 => top = n,
                _ => {
                    return self.refuse(
                        "InvalidRequest",
                        &format!("unknown or invalid query option {k}={v:?}"),
                    )
                }
            }
        }
        let scheduled = self.faults.scheduled_after_post;
        let request_id = self.next_request_id();
        let h = self.history_of(d);
        // A scheduled refresh lands after ours before our first poll, newer than it.
        if scheduled {
            if let Some(start) = h.iter().rev().find(|e| e.ours).map(|e| e.start) {
                if !h
                    .iter()
                    .any(|e| e.refresh_type == "Scheduled" && e.start == start + 20)
                {
                    h.push(HistoryEntry {
                        refresh_type: "Scheduled",
                        start: start + 20,
                        end: None,
                        status: "Unknown",
                        request_id,
                        polls_left: None,
                        fails: false,
                        ours: false,
                    });
                }
            }
        }
        let value: Vec<Value> = h
            .iter()
            .rev()
            .take(top)
            .map(|e| {
                let mut v = json!({"requestId": e.request_id, "refreshType": e.refresh_type, "startTime": stamp(e.start), "status": e.status});
                if let Some(end) = e.end {
                    v["endTime"] = json!(stamp(end));
                }
                if e.status == "Failed" {
                    v["serviceExceptionJson"] = json!("{\"errorCode\":\"ModelRefreshFailed_CredentialsNotSpecified\"}");
                }
                v
            })
            .collect();
        // Then the refreshes in progress move on.
        for e in h.iter_mut().filter(|e| e.status == "Unknown") {
            match e.polls_left {
                Some(0) => {
                    e.status = if e.fails { "Failed" } else { "Completed" };
                    e.end = Some(e.start + 30);
                }
                Some(n) => e.polls_left = Some(n - 1),
                None => {}
            }
        }
        reply(
            200,
            json!({"@odata.context": "http://wabi.example/v1.0/myorg/groups/$metadata#refreshes", "value": value}),
        )
    }
}

/// `2026-11-25T02:00:02.000Z` of seconds since the epoch, as Power BI writes times.
fn stamp(t: i64) -> String {
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
