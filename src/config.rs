//! `autoexpose.yml`: the user's file, strict (an unknown key is an error naming it), with every
//! relative path resolved against the file's own folder so a config works from any cwd.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("config {path}: cannot read it: {io}. Pass --config PATH, or create autoexpose.yml (see README, \"Config\")")]
    // `io`, not `source`: the text shows it, so it must not be the chain's cause too, or
    // `{:#}` prints the OS message twice.
    Read { path: PathBuf, io: std::io::Error },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_database")]
    database: PathBuf,
    dbt: RawDbt,
    #[serde(default)]
    tableau: Vec<TableauSite>,
    #[serde(default)]
    inventory: Vec<InventorySource>,
    #[serde(default)]
    powerbi: Vec<PowerBiTenant>,
    #[serde(default)]
    exposures: RawExposures,
    /// Where recorded HTTP exchanges are answered from when no --replay/--record is given.
    #[serde(default)]
    replay: Option<PathBuf>,
    #[serde(default)]
    active_exposures: ActiveExposures,
    /// A full sync at least this often, in days (0: every extract is a full sync); see `sync`.
    #[serde(default = "default_full_sync_every_days")]
    full_sync_every_days: u32,
}

fn default_full_sync_every_days() -> u32 {
    7
}

/// How extract decides between a full and an incremental sync (`crate::sync`): the config's
/// `full_sync_every_days`, and what the command line adds (`--full`, `--now`).
#[derive(Debug, Clone)]
pub(crate) struct SyncSettings {
    pub(crate) full_sync_every_days: u32,
    /// `--full`: read every asset again, whatever the last extraction left.
    pub(crate) force_full: bool,
    /// The clock the "days since the last full sync" are counted on.
    pub(crate) now: crate::clock::Instant,
}

/// `active_exposures:` — refresh BI extracts after a dbt build. The env vars
/// `DBT_ACTIVE_EXPOSURES` and `DBT_ACTIVE_EXPOSURES_BUILD_AFTER` win over these, as in dbt Cloud.
#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActiveExposures {
    #[serde(default)]
    pub(crate) enabled: bool,
    /// The least time between two refreshes of one target, in minutes.
    #[serde(default = "default_build_after")]
    pub(crate) build_after_minutes: u64,
}

impl Default for ActiveExposures {
    fn default() -> Self {
        ActiveExposures {
            enabled: false,
            build_after_minutes: default_build_after(),
        }
    }
}

fn default_build_after() -> u64 {
    1440
}

impl ActiveExposures {
    /// Applies `DBT_ACTIVE_EXPOSURES` (1/true/yes or 0/false/no) and
    /// `DBT_ACTIVE_EXPOSURES_BUILD_AFTER` (whole minutes) from `env`.
    pub(crate) fn with_env(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ActiveExposures, String> {
        let mut out = self;
        if let Some(v) = env("DBT_ACTIVE_EXPOSURES").filter(|v| !v.trim().is_empty()) {
            out.enabled = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => return Err(format!("env var DBT_ACTIVE_EXPOSURES={v:?}: use 1 to enable active exposures or 0 to disable them")),
            };
        }
        if let Some(v) = env("DBT_ACTIVE_EXPOSURES_BUILD_AFTER").filter(|v| !v.trim().is_empty()) {
            out.build_after_minutes = v.trim().parse().map_err(|_| {
                format!("env var DBT_ACTIVE_EXPOSURES_BUILD_AFTER={v:?}: give whole minutes, 0 or more (default 1440)")
            })?;
        }
        Ok(out)
    }
}

fn default_database() -> PathBuf {
    PathBuf::from("autoexpose.db")
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawDbt {
    #[serde(default = "dot")]
    project_dir: PathBuf,
    #[serde(default)]
    manifest: Option<PathBuf>,
    #[serde(default)]
    run_results: Option<PathBuf>,
    /// The largest manifest read, in MiB (default 4096): a larger file is refused before it
    /// is read, as is one that is not a regular file (`/dev/zero`, a FIFO).
    #[serde(default = "default_max_manifest_mb")]
    max_manifest_mb: u64,
}

fn default_max_manifest_mb() -> u64 {
    crate::manifest::DEFAULT_MAX_MANIFEST_MB
}

fn dot() -> PathBuf {
    PathBuf::from(".")
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawExposures {
    #[serde(default = "default_dir")]
    dir: PathBuf,
    #[serde(default = "default_maturity")]
    maturity: String,
    /// Write exposures for workbooks that matched no dbt node (with an empty depends_on).
    #[serde(default)]
    include_unmatched: bool,
}

impl Default for RawExposures {
    fn default() -> Self {
        RawExposures {
            dir: default_dir(),
            maturity: default_maturity(),
            include_unmatched: false,
        }
    }
}

fn default_dir() -> PathBuf {
    PathBuf::from("models/imported_from_tableau")
}
fn default_maturity() -> String {
    "medium".into()
}

/// One Tableau site on one server: an "integration".
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct TableauSite {
    pub(crate) name: String,
    pub(crate) server_url: String,
    #[serde(default)]
    pub(crate) site: String,
    #[serde(default = "default_token_name_env")]
    pub(crate) token_name_env: String,
    #[serde(default = "default_token_secret_env")]
    pub(crate) token_secret_env: String,
    #[serde(default)]
    pub(crate) projects: Vec<String>,
    #[serde(default = "default_page_size")]
    pub(crate) page_size: u32,
    #[serde(default)]
    pub(crate) database_aliases: BTreeMap<String, String>,
    /// `{database: schema}`: the schema of tables Tableau recorded without one
    /// (`dvdrental..customer`), by database name (Tableau's, or its database_aliases target).
    #[serde(default)]
    pub(crate) default_schemas: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) retry: Retry,
    /// Response size and timeouts per request.
    #[serde(default)]
    pub(crate) limits: Limits,
    /// Exit 0 even when the extraction is incomplete (Tableau warnings, redacted tables). The
    /// SQLite file still says it was incomplete, and emit still never deletes this site's files.
    #[serde(default)]
    pub(crate) allow_partial: bool,
    /// Also import the workbooks in users' personal spaces (left out by default: a personal
    /// space is one person's sandbox, not something a team publishes; see
    /// `tableau::extract::personal_space`).
    #[serde(default)]
    pub(crate) include_personal_spaces: bool,
    /// Metadata API requests in flight at once for this site (all in its one session).
    #[serde(default = "default_concurrency")]
    pub(crate) concurrency: u32,
    /// Which response bodies `raw_responses` keeps; every response gets a row either way.
    #[serde(default)]
    pub(crate) raw_responses: RawResponses,
}

/// Bodies of error responses (not 2xx) are small and explain failures; successful ones are as
/// large as the site's whole catalog, so they are kept only when asked for.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawResponses {
    #[default]
    Errors,
    All,
}

fn default_concurrency() -> u32 {
    4
}

fn default_token_name_env() -> String {
    "TABLEAU_TOKEN_NAME".into()
}
fn default_token_secret_env() -> String {
    "TABLEAU_TOKEN_SECRET".into()
}
fn default_page_size() -> u32 {
    25
}

/// Retries for 408/429/5xx, connection failures and Metadata API timeouts.
#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct Retry {
    /// Tries per request, the first included.
    #[serde(default = "default_attempts")]
    pub(crate) attempts: u32,
    /// First backoff; doubles per try, capped at 60 s. A Retry-After header wins.
    #[serde(default = "default_base_delay_ms")]
    pub(crate) base_delay_ms: u64,
    /// The longest wait a `Retry-After` header may ask for; a longer one is cut to this (logged).
    #[serde(default = "default_max_retry_after_secs")]
    pub(crate) max_retry_after_secs: u64,
}

impl Retry {
    /// The wait before try `attempt + 1` (`attempt` ≥ 1 tries made): the server's
    /// `Retry-After` seconds, cut to `max_retry_after_secs` (logged), else `base_delay_ms`
    /// doubled per try, capped at 60 s. Every integration's client waits by this.
    pub(crate) fn wait(&self, attempt: u32, retry_after: Option<&str>) -> std::time::Duration {
        if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            let cap = self.max_retry_after_secs;
            if secs > cap {
                crate::log::warn(&format!(
                    "Retry-After: {secs} is above retry.max_retry_after_secs; waiting {cap}s"
                ));
            }
            return std::time::Duration::from_secs(secs.min(cap));
        }
        let ms = self
            .base_delay_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
        std::time::Duration::from_millis(ms.min(60_000))
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: default_attempts(),
            base_delay_ms: default_base_delay_ms(),
            max_retry_after_secs: default_max_retry_after_secs(),
        }
    }
}
fn default_attempts() -> u32 {
    5
}
fn default_base_delay_ms() -> u64 {
    1000
}
fn default_max_retry_after_secs() -> u64 {
    120
}

/// Bounds on one HTTP exchange: how long to wait and how much to read.
#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limits {
    /// The largest response body read, in MiB; a larger one is an error (not retried).
    #[serde(default = "default_max_response_mb")]
    pub(crate) max_response_mb: u64,
    /// Establishing the TCP/TLS connection.
    #[serde(default = "default_connect_timeout_secs")]
    pub(crate) connect_timeout_secs: u64,
    /// One whole request, from connecting to the last byte of the body.
    #[serde(default = "default_request_timeout_secs")]
    pub(crate) request_timeout_secs: u64,
    /// The longest silence while waiting for the answer's headers or the next bytes of its
    /// body: a server that stops sending fails here, not after the whole-request timeout.
    #[serde(default = "default_read_idle_timeout_secs")]
    pub(crate) read_idle_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_response_mb: default_max_response_mb(),
            connect_timeout_secs: default_connect_timeout_secs(),
            request_timeout_secs: default_request_timeout_secs(),
            read_idle_timeout_secs: default_read_idle_timeout_secs(),
        }
    }
}
fn default_max_response_mb() -> u64 {
    256
}
fn default_connect_timeout_secs() -> u64 {
    30
}
fn default_request_timeout_secs() -> u64 {
    120
}
fn default_read_idle_timeout_secs() -> u64 {
    60
}

/// The validated config with absolute paths.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) sha256: String,
    pub(crate) database: PathBuf,
    pub(crate) project_dir: PathBuf,
    pub(crate) manifest: PathBuf,
    pub(crate) run_results: PathBuf,
    /// `dbt.max_manifest_mb`.
    pub(crate) max_manifest_mb: u64,
    pub(crate) tableau: Vec<TableauSite>,
    pub(crate) inventory: Vec<InventorySource>,
    pub(crate) powerbi: Vec<PowerBiTenant>,
    pub(crate) exposures_dir: PathBuf,
    pub(crate) maturity: String,
    pub(crate) include_unmatched: bool,
    pub(crate) replay: Option<PathBuf>,
    pub(crate) active_exposures: ActiveExposures,
    pub(crate) sync: SyncSettings,
}

impl Config {
    pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            io: source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    pub(crate) fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        // A UTF-8 byte-order mark (Notepad writes one) would otherwise make the first key
        // unreadable and the file "missing field `dbt`". The hash stays the file's.
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let raw: RawConfig = serde_yaml::from_slice(body).map_err(|e| invalid(e.to_string()))?;
        let base = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let abs = |p: &Path| {
            lexical_clean(&if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            })
        };

        let project_dir = abs(&raw.dbt.project_dir);
        let manifest = raw
            .dbt
            .manifest
            .as_deref()
            .map(&abs)
            .unwrap_or_else(|| project_dir.join("target/manifest.json"));
        let run_results = raw
            .dbt
            .run_results
            .as_deref()
            .map(&abs)
            .unwrap_or_else(|| project_dir.join("target/run_results.json"));
        if raw.exposures.dir.is_absolute() {
            return Err(invalid(
                "exposures.dir must be relative to dbt.project_dir".into(),
            ));
        }
        check_inside(&project_dir, &raw.exposures.dir).map_err(|why| {
            invalid(format!(
                "exposures.dir: {} {why}; emit deletes and rewrites files there, so it must stay inside dbt.project_dir ({})",
                raw.exposures.dir.display(),
                project_dir.display()
            ))
        })?;
        if !matches!(raw.exposures.maturity.as_str(), "low" | "medium" | "high") {
            return Err(invalid(format!(
                "exposures.maturity: {:?} is not one of low, medium, high",
                raw.exposures.maturity
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, site) in raw.tableau.iter().enumerate() {
            check_integration(
                &format!("tableau[{i}]"),
                &site.name,
                &site.default_schemas,
                &mut seen,
            )
            .map_err(invalid)?;
            if site.page_size == 0 {
                return Err(invalid(format!(
                    "tableau[{i}].page_size must be at least 1"
                )));
            }
            if !(1..=16).contains(&site.concurrency) {
                return Err(invalid(format!(
                    "tableau[{i}].concurrency must be between 1 and 16"
                )));
            }
            if site.retry.attempts == 0 {
                return Err(invalid(format!(
                    "tableau[{i}].retry.attempts must be at least 1"
                )));
            }
            if !(site.server_url.starts_with("https://") || site.server_url.starts_with("http://"))
            {
                return Err(invalid(format!(
                    "tableau[{i}].server_url: {:?} must start with https://",
                    site.server_url
                )));
            }
        }
        check_one_pat_per_integration(&raw.tableau).map_err(invalid)?;
        let mut inventory = raw.inventory;
        for (i, inv) in inventory.iter_mut().enumerate() {
            check_integration(
                &format!("inventory[{i}]"),
                &inv.name,
                &inv.default_schemas,
                &mut seen,
            )
            .map_err(invalid)?;
            inv.file = abs(&inv.file);
        }
        let mut powerbi = raw.powerbi;
        for (i, t) in powerbi.iter_mut().enumerate() {
            check_integration(
                &format!("powerbi[{i}]"),
                &t.name,
                &t.default_schemas,
                &mut seen,
            )
            .map_err(invalid)?;
            t.check(&format!("powerbi[{i}]")).map_err(invalid)?;
        }
        Ok(Config {
            sha256: hex_sha256(bytes),
            database: abs(&raw.database),
            project_dir,
            manifest,
            run_results,
            max_manifest_mb: raw.dbt.max_manifest_mb,
            tableau: raw.tableau,
            inventory,
            powerbi,
            exposures_dir: raw.exposures.dir,
            maturity: raw.exposures.maturity,
            include_unmatched: raw.exposures.include_unmatched,
            replay: raw.replay.as_deref().map(&abs),
            active_exposures: raw.active_exposures,
            sync: SyncSettings {
                full_sync_every_days: raw.full_sync_every_days,
                force_full: false,
                now: crate::clock::Instant::system(),
            },
        })
    }
}

/// What every integration's entry must hold, whatever its tool: a name that can name rows,
/// meta and files, unique across all integrations (`integration` keys every table), and
/// `default_schemas` with both sides given.
fn check_integration(
    at: &str,
    name: &str,
    default_schemas: &BTreeMap<String, String>,
    seen: &mut std::collections::BTreeSet<String>,
) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("{at}.name: {name:?} must be lowercase letters, digits and _ (it names tables rows, meta and files)"));
    }
    if !seen.insert(name.to_string()) {
        return Err(format!("{at}.name: {name:?} is used twice (integration names are one namespace, whatever the tool)"));
    }
    if let Some((db, _)) = default_schemas
        .iter()
        .find(|(db, schema)| db.trim().is_empty() || schema.trim().is_empty())
    {
        return Err(format!(
            "{at}.default_schemas: {db:?}: give a database name and a schema name"
        ));
    }
    Ok(())
}

/// `inventory:` — dashboards listed in a YAML or JSON file, for BI tools without an API
/// autoexpose reads (see `inventory`).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct InventorySource {
    pub(crate) name: String,
    /// The list, relative to this config file.
    pub(crate) file: PathBuf,
    #[serde(default)]
    pub(crate) database_aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) default_schemas: BTreeMap<String, String>,
    /// A larger file is refused before it is read.
    #[serde(default = "default_inventory_mb")]
    pub(crate) max_file_mb: u64,
}

fn default_inventory_mb() -> u64 {
    64
}

/// `powerbi:` — one Power BI tenant read through a service principal (see `powerbi`). The
/// principal's id and secret come from env vars, read when the integration connects, never
/// from this file.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct PowerBiTenant {
    pub(crate) name: String,
    /// The Entra ID tenant: a GUID, or a domain such as `contoso.onmicrosoft.com`.
    pub(crate) tenant_id: String,
    #[serde(default = "default_client_id_env")]
    pub(crate) client_id_env: String,
    #[serde(default = "default_client_secret_env")]
    pub(crate) client_secret_env: String,
    /// Workspace names or ids; empty: every workspace the principal may scan.
    #[serde(default)]
    pub(crate) workspaces: Vec<String>,
    #[serde(default = "default_powerbi_api_url")]
    pub(crate) api_url: String,
    #[serde(default = "default_powerbi_login_url")]
    pub(crate) login_url: String,
    #[serde(default)]
    pub(crate) database_aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) default_schemas: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) retry: Retry,
    #[serde(default)]
    pub(crate) limits: Limits,
    #[serde(default)]
    pub(crate) raw_responses: RawResponses,
    /// Scans in flight at once (the service allows 16).
    #[serde(default = "default_scans_in_flight")]
    pub(crate) scans_in_flight: u32,
    /// The first wait between two `scanStatus` polls of a scan, in ms; doubles up to 30 s.
    #[serde(default = "default_scan_poll_ms")]
    pub(crate) scan_poll_ms: u64,
    /// A scan not finished after this long is an error naming it.
    #[serde(default = "default_scan_timeout_secs")]
    pub(crate) scan_timeout_secs: u64,
}

fn default_client_id_env() -> String {
    "POWERBI_CLIENT_ID".into()
}
fn default_client_secret_env() -> String {
    "POWERBI_CLIENT_SECRET".into()
}
fn default_powerbi_api_url() -> String {
    "https://api.powerbi.com".into()
}
fn default_powerbi_login_url() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_scans_in_flight() -> u32 {
    16
}
fn default_scan_poll_ms() -> u64 {
    2000
}
fn default_scan_timeout_secs() -> u64 {
    600
}

impl PowerBiTenant {
    /// What serde cannot say: every error names the field (`powerbi[0].api_url`).
    fn check(&mut self, at: &str) -> Result<(), String> {
        // It goes into the token endpoint's path: a GUID or a domain name, nothing else.
        let t = self.tenant_id.trim();
        if t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(format!(
                "{at}.tenant_id: {:?} must be the tenant's id (a GUID) or its domain (contoso.onmicrosoft.com)",
                self.tenant_id
            ));
        }
        self.tenant_id = t.to_string();
        for (field, var) in [
            ("client_id_env", &self.client_id_env),
            ("client_secret_env", &self.client_secret_env),
        ] {
            if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "{at}.{field}: {var:?} must be the name of an env var (letters, digits and _); the value itself never goes in the file"
                ));
            }
        }
        if self.client_id_env == self.client_secret_env {
            return Err(format!(
                "{at}.client_secret_env: the id and the secret cannot come from one env var ({})",
                self.client_id_env
            ));
        }
        let mut seen = std::collections::BTreeMap::new();
        for (k, w) in self.workspaces.iter().enumerate() {
            if w.trim().is_empty() {
                return Err(format!(
                    "{at}.workspaces[{k}]: empty; give a workspace's name or id"
                ));
            }
            if let Some(j) = seen.insert(w.trim().to_lowercase(), k) {
                return Err(format!(
                    "{at}.workspaces[{k}]: {w:?} is also workspaces[{j}]"
                ));
            }
        }
        for (field, url) in [
            ("api_url", &mut self.api_url),
            ("login_url", &mut self.login_url),
        ] {
            let u = url.trim().trim_end_matches('/').to_string();
            let loopback_http = u.starts_with("http://") && crate::http::is_loopback_url(&u);
            let host = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"))
                .unwrap_or("");
            if !(u.starts_with("https://") || loopback_http)
                || host.is_empty()
                || host.starts_with('/')
            {
                return Err(format!(
                    "{at}.{field}: {url:?} must start with https:// (plain http only for a loopback host: 127.0.0.1, localhost, [::1])"
                ));
            }
            if u.contains(['?', '#']) {
                return Err(format!(
                    "{at}.{field}: {url:?} must be a base URL, without a query or fragment"
                ));
            }
            *url = u;
        }
        if !(1..=16).contains(&self.scans_in_flight) {
            return Err(format!("{at}.scans_in_flight must be between 1 and 16 (the service runs at most 16 scans at once)"));
        }
        if self.retry.attempts == 0 {
            return Err(format!("{at}.retry.attempts must be at least 1"));
        }
        if self.scan_timeout_secs == 0 {
            return Err(format!("{at}.scan_timeout_secs must be at least 1"));
        }
        Ok(())
    }
}

/// Refuses two integrations on one server that read their PAT's name from the same env var:
/// they would sign in with the same PAT, and Tableau keeps one session per PAT, each sign-in
/// ending the other's session (see `lock`). Two env vars holding the same name are caught when
/// they are read (`tableau::session_lock`). Servers compare by scheme, host and path, ignoring case
/// and a trailing slash.
fn check_one_pat_per_integration(sites: &[TableauSite]) -> Result<(), String> {
    let server = |s: &TableauSite| {
        s.server_url
            .trim()
            .trim_end_matches('/')
            .to_ascii_lowercase()
    };
    for (j, b) in sites.iter().enumerate() {
        if let Some((i, a)) = sites[..j]
            .iter()
            .enumerate()
            .find(|(_, a)| server(a) == server(b) && a.token_name_env == b.token_name_env)
        {
            return Err(format!(
                "tableau[{i}] ({:?}) and tableau[{j}] ({:?}) use the same PAT on {}: both read its name from env var {}. Tableau keeps one session per personal access token, so each sign-in would end the other's session; give each integration its own PAT (token_name_env and token_secret_env)",
                a.name,
                b.name,
                a.server_url,
                a.token_name_env
            ));
        }
    }
    Ok(())
}

/// Whether `rel` (relative) stays inside `project` once `..` is taken into account, and,
/// for the part of it that exists, once symlinks are resolved (`models -> /elsewhere`).
fn check_inside(project: &Path, rel: &Path) -> Result<(), &'static str> {
    use std::path::Component;
    let mut depth = 0usize;
    for c in rel.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            _ => return Err("leads out of the dbt project"),
        }
    }
    // The deepest existing folder on the way, with symlinks resolved, must be inside the
    // resolved project (a project folder that does not exist yet has nothing to escape).
    let Ok(real_project) = project.canonicalize() else {
        return Ok(());
    };
    let target = project.join(rel);
    let mut existing = target.as_path();
    while !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => return Ok(()),
        }
    }
    match existing.canonicalize() {
        Ok(real) if real.starts_with(&real_project) => Ok(()),
        Ok(_) => Err("leads out of the dbt project through a symlink"),
        Err(_) => Ok(()),
    }
}

/// Removes `.` and `a/..` pairs without touching the file system, so paths in messages read
/// `testdata/dbt/demo`, not `examples/demo/../../testdata/dbt/demo`.
fn lexical_clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// An input file's identity, as `runs.inputs` and `dbt_manifest.xxh3` hold it: XXH3-128, what
/// `xxh128sum` prints. Not cryptographic, and it need not be: it tells which file a run read.
pub(crate) fn hex_xxh3(bytes: &[u8]) -> String {
    xxh3_text(xxhash_rust::xxh3::xxh3_128(bytes))
}

/// An XXH3-128 digest as `xxh128sum` prints it, also for one computed piece by piece.
pub(crate) fn xxh3_text(digest: u128) -> String {
    format!("{digest:032x}")
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh3_is_what_xxh128sum_prints() {
        // The reference implementation's XXH3-128 of "ClickHouse", as ClickHouse's tests have it.
        assert_eq!(hex_xxh3(b"ClickHouse"), "14c27b7bef95d36fecf5520ca2daf030");
    }

    fn load(yaml: &str) -> Result<Config, ConfigError> {
        Config::from_bytes(Path::new("/proj/autoexpose.yml"), yaml.as_bytes())
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("dbt: {project_dir: .}\nbogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/proj/autoexpose.yml"), "{err}");
        assert!(err.contains("unknown field `bogus`"), "{err}");
    }

    #[test]
    fn nested_unknown_key_is_named() {
        let err = load(
            "dbt: {project_dir: .}\ntableau:\n  - {name: p, server_url: 'https://x', pages: 3}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `pages`"), "{err}");
    }

    #[test]
    fn paths_are_relative_to_the_config() {
        let c =
            load("database: a.db\ndbt: {project_dir: dbt, manifest: dbt/target/m.json}\n").unwrap();
        assert_eq!(c.database, Path::new("/proj/a.db"));
        assert_eq!(c.project_dir, Path::new("/proj/dbt"));
        assert_eq!(c.manifest, Path::new("/proj/dbt/target/m.json"));
        assert_eq!(
            c.run_results,
            Path::new("/proj/dbt/target/run_results.json")
        );
        assert_eq!(c.exposures_dir, Path::new("models/imported_from_tableau"));
    }

    #[test]
    fn relative_paths_are_cleaned() {
        let c = Config::from_bytes(
            Path::new("examples/demo/autoexpose.yml"),
            b"dbt: {project_dir: ../../testdata/dbt/demo}\n",
        )
        .unwrap();
        assert_eq!(c.project_dir, Path::new("testdata/dbt/demo"));
        assert_eq!(c.database, Path::new("examples/demo/autoexpose.db"));
        let c =
            Config::from_bytes(Path::new("autoexpose.yml"), b"dbt: {project_dir: ../x}\n").unwrap();
        assert_eq!(c.project_dir, Path::new("../x"));
    }

    #[test]
    fn env_wins_over_active_exposures_config() {
        let cfg = ActiveExposures {
            enabled: false,
            build_after_minutes: 60,
        };
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let got = cfg
            .with_env(env(&[
                ("DBT_ACTIVE_EXPOSURES", "1"),
                ("DBT_ACTIVE_EXPOSURES_BUILD_AFTER", "15"),
            ]))
            .unwrap();
        assert!(got.enabled);
        assert_eq!(got.build_after_minutes, 15);
        let on = ActiveExposures {
            enabled: true,
            build_after_minutes: 60,
        };
        assert!(
            !on.with_env(env(&[("DBT_ACTIVE_EXPOSURES", "0")]))
                .unwrap()
                .enabled
        );
        assert_eq!(on.with_env(env(&[])).unwrap().build_after_minutes, 60);
        let err = cfg
            .with_env(env(&[("DBT_ACTIVE_EXPOSURES_BUILD_AFTER", "1.5h")]))
            .unwrap_err();
        assert!(err.contains("DBT_ACTIVE_EXPOSURES_BUILD_AFTER"), "{err}");
        assert!(cfg
            .with_env(env(&[("DBT_ACTIVE_EXPOSURES", "maybe")]))
            .is_err());
    }

    #[test]
    fn default_schemas_are_read_and_checked() {
        let c = load("dbt: {}\ntableau:\n  - {name: p, server_url: 'https://x', default_schemas: {dvdrental: public}}\n").unwrap();
        assert_eq!(c.tableau[0].default_schemas["dvdrental"], "public");
        let err = load("dbt: {}\ntableau:\n  - {name: p, server_url: 'https://x', default_schemas: {dvdrental: ''}}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tableau[0].default_schemas"), "{err}");
    }

    #[test]
    fn integration_names_are_checked() {
        let err = load("dbt: {}\ntableau:\n  - {name: 'Prod Site', server_url: 'https://x'}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tableau[0].name"), "{err}");
    }

    fn powerbi(entry: &str) -> Result<Config, ConfigError> {
        load(&format!("dbt: {{}}\npowerbi:\n  - {{name: corp, tenant_id: 00000000-0000-0000-0000-000000000000{entry}}}\n"))
    }

    #[track_caller]
    fn powerbi_refused(entry: &str, wants: &[&str]) {
        let err = powerbi(entry).unwrap_err().to_string();
        assert!(err.contains("/proj/autoexpose.yml"), "{err}");
        for w in wants {
            assert!(err.contains(w), "{w:?} not in {err}");
        }
    }

    #[test]
    fn powerbi_is_read_with_its_defaults() {
        let c = load(
            "dbt: {}\npowerbi:\n  - name: corp\n    tenant_id: 00000000-0000-0000-0000-000000000000\n    client_id_env: POWERBI_CLIENT_ID\n    client_secret_env: POWERBI_CLIENT_SECRET\n    workspaces: []\n    api_url: https://api.powerbi.com\n    login_url: https://login.microsoftonline.com\n",
        )
        .unwrap();
        let t = &c.powerbi[0];
        assert_eq!(
            (t.name.as_str(), t.api_url.as_str(), t.login_url.as_str()),
            (
                "corp",
                "https://api.powerbi.com",
                "https://login.microsoftonline.com"
            )
        );
        assert!(c.tableau.is_empty() && t.workspaces.is_empty());
        let d = &powerbi("").unwrap().powerbi[0];
        assert_eq!(
            (d.client_id_env.as_str(), d.client_secret_env.as_str()),
            ("POWERBI_CLIENT_ID", "POWERBI_CLIENT_SECRET")
        );
        assert_eq!(
            (d.api_url.as_str(), d.scans_in_flight),
            ("https://api.powerbi.com", 16)
        );
        // Loopback http (the test server), a trailing slash trimmed, a domain as tenant.
        let l = &powerbi(", api_url: 'http://127.0.0.1:8080/', login_url: 'http://localhost:9'")
            .unwrap()
            .powerbi[0];
        assert_eq!(
            (l.api_url.as_str(), l.login_url.as_str()),
            ("http://127.0.0.1:8080", "http://localhost:9")
        );
        load("dbt: {}\npowerbi:\n  - {name: c, tenant_id: contoso.onmicrosoft.com, workspaces: [Sales, 6a1b0000-0000-0000-0000-00000000000f]}\n").unwrap();
    }

    #[test]
    fn powerbi_errors_name_the_field() {
        powerbi_refused(", bogus: 1", &["unknown field `bogus`"]);
        powerbi_refused(
            ", client_secret: s3cret",
            &["unknown field `client_secret`"],
        );
        let err = load("dbt: {}\npowerbi:\n  - {name: corp}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `tenant_id`"), "{err}");
        let err = load("dbt: {}\npowerbi:\n  - {name: Corp, tenant_id: t}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("powerbi[0].name") && err.contains("lowercase"),
            "{err}"
        );
        for bad in ["''", "'a/../b'", "' '"] {
            let err = load(&format!(
                "dbt: {{}}\npowerbi:\n  - {{name: c, tenant_id: {bad}}}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("powerbi[0].tenant_id") && err.contains("GUID"),
                "{err}"
            );
        }
        powerbi_refused(", client_id_env: ''", &["powerbi[0].client_id_env"]);
        powerbi_refused(
            ", client_secret_env: 'my secret'",
            &["powerbi[0].client_secret_env", "name of an env var"],
        );
        powerbi_refused(
            ", client_id_env: X, client_secret_env: X",
            &["powerbi[0].client_secret_env", "one env var"],
        );
        powerbi_refused(
            ", workspaces: [Sales, '']",
            &["powerbi[0].workspaces[1]: empty"],
        );
        powerbi_refused(
            ", workspaces: [Sales, sales]",
            &["powerbi[0].workspaces[1]", "workspaces[0]"],
        );
        powerbi_refused(
            ", api_url: 'http://api.powerbi.com'",
            &["powerbi[0].api_url", "https://"],
        );
        powerbi_refused(", api_url: 'ftp://x'", &["powerbi[0].api_url"]);
        powerbi_refused(", api_url: 'https://'", &["powerbi[0].api_url"]);
        powerbi_refused(
            ", login_url: 'http://10.0.0.1'",
            &["powerbi[0].login_url", "loopback"],
        );
        powerbi_refused(
            ", login_url: 'https://login.example.com/?x=1'",
            &["powerbi[0].login_url", "query"],
        );
        powerbi_refused(
            ", scans_in_flight: 17",
            &["powerbi[0].scans_in_flight", "16"],
        );
        powerbi_refused(", scans_in_flight: 0", &["powerbi[0].scans_in_flight"]);
        powerbi_refused(", retry: {attempts: 0}", &["powerbi[0].retry.attempts"]);
        powerbi_refused(", scan_timeout_secs: 0", &["powerbi[0].scan_timeout_secs"]);
        powerbi_refused(
            ", default_schemas: {db: ''}",
            &["powerbi[0].default_schemas"],
        );
        // One namespace of names across tools.
        let err = load("dbt: {}\ntableau:\n  - {name: corp, server_url: 'https://x'}\npowerbi:\n  - {name: corp, tenant_id: t}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("powerbi[0].name") && err.contains("used twice"),
            "{err}"
        );
    }

    #[test]
    fn two_integrations_with_one_pat_on_one_server_are_refused() {
        let site = |name: &str, url: &str, env: &str| {
            format!(
                "  - {{name: {name}, server_url: '{url}', site: {name}, token_name_env: {env}}}\n"
            )
        };
        let cfg = |sites: &[String]| format!("dbt: {{}}\ntableau:\n{}", sites.concat());
        let err = load(&cfg(&[
            site("a", "https://t.example.com", "PAT_NAME"),
            site("b", "https://T.example.com/", "PAT_NAME"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                r#"tableau[0] ("a") and tableau[1] ("b") use the same PAT on https://t.example.com"#
            ),
            "{err}"
        );
        assert!(
            err.contains("env var PAT_NAME")
                && err.contains("one session per personal access token"),
            "{err}"
        );
        // The default env var counts as the same one.
        let defaults = "dbt: {}\ntableau:\n  - {name: a, server_url: 'https://t.example.com'}\n  - {name: b, server_url: 'https://t.example.com', site: other}\n";
        assert!(load(defaults)
            .unwrap_err()
            .to_string()
            .contains("env var TABLEAU_TOKEN_NAME"));
        // Another env var, or another server: fine.
        load(&cfg(&[
            site("a", "https://t.example.com", "PAT_A"),
            site("b", "https://t.example.com", "PAT_B"),
        ]))
        .unwrap();
        load(&cfg(&[
            site("a", "https://t.example.com", "PAT_NAME"),
            site("b", "https://u.example.com", "PAT_NAME"),
        ]))
        .unwrap();
    }
}
