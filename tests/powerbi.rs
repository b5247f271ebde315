//! The binary's Power BI extract against the local Power BI server
//! (tests/support/powerbi_server.rs): the token and its expiry, the scanner flow (202 and
//! polling, batches of ≤ 100 with ≤ 16 scans in flight, a failed or timed-out scan), 429 +
//! Retry-After, app copies and personal and inactive workspaces left out, a dataset in another
//! workspace, record and replay, and the client secret and tokens kept out of everything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use crate::support::powerbi_server::{Faults, PowerBiServer, SCOPE};

const ID_ENV: &str = "AE_PBI_CLIENT_ID";
const SECRET_ENV: &str = "AE_PBI_CLIENT_SECRET";
/// The principal of testdata/powerbi/*.tenant.json.
const CLIENT_ID: &str = "a11ce000-0000-4000-8000-00000000c11d";
pub(crate) const SECRET: &str = "pbi-test-secret~Value.42";
const TENANT: &str = "6f1c0000-0000-4000-8000-0000000000aa";

pub(crate) fn fixture(name: &str) -> PathBuf {
    repo().join("testdata/powerbi").join(name)
}

pub(crate) fn ws_id(n: u32) -> String {
    format!("5a1e0000-0000-4000-8000-{n:012x}")
}

pub(crate) fn report(n: u32) -> String {
    format!("7e900000-0000-4000-8000-{n:012x}")
}

/// A scratch folder with a config of one Power BI tenant at `url`.
pub(crate) struct Tenant {
    pub(crate) dir: tempfile::TempDir,
    config: PathBuf,
}

impl Tenant {
    pub(crate) fn new(url: &str, extra: &str) -> Tenant {
        Tenant::with_manifest(url, extra, &demo_manifest())
    }

    fn with_manifest(url: &str, extra: &str, manifest: &Path) -> Tenant {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dbt")).unwrap();
        let yaml = format!(
            "database: autoexpose.db\ndbt:\n  project_dir: dbt\n  manifest: {}\npowerbi:\n  - name: corp\n    tenant_id: {TENANT}\n    client_id_env: {ID_ENV}\n    client_secret_env: {SECRET_ENV}\n    api_url: {url}\n    login_url: {url}\n    retry: {{attempts: 4, base_delay_ms: 20}}\n    scan_poll_ms: 5\n{extra}",
            manifest.display()
        );
        let config = dir.path().join("autoexpose.yml");
        std::fs::write(&config, yaml).unwrap();
        Tenant { dir, config }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("autoexpose.db")
    }

    pub(crate) fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).unwrap()
    }

    fn run(&self, global: &[&str], stage: &str, secret: Option<&str>) -> Output {
        self.run_with(global, stage, &[], secret)
    }

    /// As `run`, with `args` after the stage (`--now`).
    pub(crate) fn run_with(
        &self,
        global: &[&str],
        stage: &str,
        args: &[&str],
        secret: Option<&str>,
    ) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoexpose"));
        cmd.args(global)
            .arg(stage)
            .args(args)
            .arg("--config")
            .arg(&self.config);
        cmd.env_remove(ID_ENV).env_remove(SECRET_ENV);
        if let Some(s) = secret {
            cmd.env(ID_ENV, CLIENT_ID).env(SECRET_ENV, s);
        }
        cmd.output().unwrap()
    }
}

fn ids(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The tables extract wrote for Power BI, as snapshots see them.
fn tables(
    conn: &rusqlite::Connection,
) -> std::collections::BTreeMap<
    &'static str,
    Vec<std::collections::BTreeMap<String, serde_json::Value>>,
> {
    [
        "powerbi_tenants",
        "powerbi_workspaces",
        "powerbi_reports",
        "powerbi_datasets",
        "powerbi_tables",
        "powerbi_expressions",
        "powerbi_parameters",
        "powerbi_datasources",
        "bi_instances",
        "bi_assets",
        "bi_relations",
        "extract_warnings",
    ]
    .into_iter()
    .map(|t| (t, dump(conn, t)))
    .collect()
}

fn assert_no_secret(places: &[(String, Vec<u8>)], secrets: &[String]) {
    for (what, bytes) in places {
        let text = String::from_utf8_lossy(bytes);
        for s in secrets {
            assert!(!text.contains(s.as_str()), "{s:?} found in {what}");
        }
    }
}

#[test]
fn extract_reads_the_tenant_through_429_and_an_expired_token() {
    let faults = Faults {
        rate_limit_at: vec![3],
        expire_token_after: Some(4),
        ..Faults::default()
    };
    let server = PowerBiServer::start(&fixture("corp.tenant.json"), faults);
    let t = Tenant::new(&server.base_url, "");
    let out = t.run(&["-v"], "extract", Some(SECRET));
    assert_ok(&out);
    let log = server.requests();
    let text: Vec<String> = log.iter().map(|r| r.to_string()).collect();
    let text = text.join("\n");
    assert!(
        server.refused().is_empty(),
        "the server refused: {:?}\n{text}",
        server.refused()
    );

    // The token: client credentials with the Power BI scope, renewed after the 401.
    let tokens: Vec<_> = log
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .collect();
    assert_eq!(tokens[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    let body = tokens[0].body.as_deref().unwrap();
    assert!(
        body.contains("grant_type=client_credentials")
            && body.contains(&format!("client_id={CLIENT_ID}")),
        "{body}"
    );
    assert!(
        body.contains("scope=https%3A%2F%2Fanalysis.windows.net%2Fpowerbi%2Fapi%2F.default"),
        "{body} (scope {SCOPE})"
    );
    assert!(
        log.iter().any(|r| r.status == 401),
        "the token never expired:\n{text}"
    );
    assert!(tokens.len() >= 2, "no new token after the 401:\n{text}");
    assert!(
        log.iter()
            .filter(|r| r.path.starts_with("/v1.0/"))
            .all(|r| r.bearer),
        "{text}"
    );
    // The 429 is waited out and the same request sent again.
    let limited = log
        .iter()
        .position(|r| r.status == 429)
        .expect("no 429 served");
    assert_eq!(log[limited + 1].path, log[limited].path, "{text}");
    // Personal and inactive workspaces are asked to be left out; scans are 202s, polled.
    assert!(log.iter().any(|r| r.path == "/v1.0/myorg/admin/workspaces/modified?excludePersonalWorkspaces=True&excludeInActiveWorkspaces=True"), "{text}");
    let started: Vec<_> = log
        .iter()
        .filter(|r| r.path.contains("/getInfo") && r.status == 202)
        .collect();
    assert_eq!(started.len(), 1, "{text}");
    assert!(started[0]
        .body
        .as_deref()
        .unwrap()
        .starts_with(r#"{"workspaces":["#));
    assert_eq!(
        log.iter()
            .filter(|r| r.path.contains("/scanStatus/") && r.status == 200)
            .count(),
        3,
        "NotStarted, Running, Succeeded:\n{text}"
    );

    let conn = t.conn();
    // One asset per live report: no app copy, nothing of the personal or deleted workspace.
    let assets = ids(&conn, "SELECT asset_id FROM bi_assets ORDER BY asset_id");
    assert_eq!(
        assets,
        [report(1), report(3), report(4), report(5), report(6)]
    );
    let owner = |r: u32| {
        ids(
            &conn,
            &format!(
                "SELECT owner_name FROM bi_assets WHERE asset_id = '{}'",
                report(r)
            ),
        )
    };
    assert_eq!(owner(1), ["ann.lee@contoso.example"]);
    assert_eq!(
        owner(3),
        ["carla@contoso.example"],
        "modifiedBy when there is no createdBy"
    );
    assert_eq!(
        owner(5),
        ["dana@contoso.example"],
        "the dataset's configuredBy last"
    );
    let urls = ids(
        &conn,
        "SELECT url_source || ' ' || url FROM powerbi_reports WHERE left_out IS NULL ORDER BY id",
    );
    assert_eq!(
        urls[0],
        format!(
            "api https://app.powerbi.com/groups/{}/reports/{}",
            ws_id(1),
            report(1)
        )
    );
    assert_eq!(
        urls[4],
        format!(
            "built https://app.powerbi.com/groups/{}/reports/{}",
            ws_id(3),
            report(6)
        ),
        "Marketing refuses groups/…/reports"
    );
    assert_eq!(
        ids(
            &conn,
            "SELECT left_out FROM powerbi_reports WHERE left_out IS NOT NULL"
        ),
        ["app_copy"]
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM powerbi_workspaces"),
        3,
        "personal and deleted workspaces are never scanned"
    );
    assert_eq!(count(&conn, "SELECT complete FROM bi_instances WHERE tool = 'powerbi' AND label = '6f1c0000-0000-4000-8000-0000000000aa'"), 1);
    // A table without M is a no_source miss for every report reading its dataset.
    let no_source = ids(&conn, "SELECT asset_id || ' ' || via_id || ' ' || kind FROM bi_relations WHERE detail LIKE 'no_source:%' ORDER BY 1");
    let ds1 = "da7a0000-0000-4000-8000-000000000001";
    let ds2 = "da7a0000-0000-4000-8000-000000000002";
    assert_eq!(
        no_source,
        [
            format!("{} {ds1}/Date no_lineage", report(1)),
            format!("{} {ds2}/Budget calc no_lineage", report(3)),
            format!("{} {ds1}/Date no_lineage", report(4)),
            format!("{} {ds2}/Budget calc no_lineage", report(5)),
        ]
    );
    // Parameters from the API only for a dataset whose M names one the scan gives no value
    // for (Finance model's database; Sales model's Server has its literal): no call for the
    // rest, Marketing's refused one among them; one warning per refusal.
    assert_eq!(
        ids(
            &conn,
            "SELECT name || '=' || current_value FROM powerbi_parameters ORDER BY 1"
        ),
        ["Database=dw"]
    );
    assert_eq!(
        log.iter()
            .filter(|r| r.path.ends_with("/parameters") && r.status == 200)
            .count(),
        1,
        "{text}"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM extract_warnings WHERE integration = 'corp' AND code = 'not_allowed'"), 1, "Marketing: its reports");
    // Every request's answer is kept, bodies of errors among them.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM raw_responses WHERE integration = 'corp'"
        ) as usize,
        log.len()
    );

    // The server's address is the one thing that changes from run to run.
    let text = serde_json::to_string(&tables(&conn))
        .unwrap()
        .replace(&server.base_url, "<server>");
    let snapshot: serde_json::Value = serde_json::from_str(&text).unwrap();
    settings().bind(|| insta::assert_yaml_snapshot!("powerbi_extract", snapshot));

    // Neither the secret nor any token reaches the file, stdout or stderr.
    let mut secrets = server.issued_tokens();
    assert!(!secrets.is_empty());
    secrets.push(SECRET.into());
    let mut places = database_places("extract", &t.db());
    places.push(("stdout".into(), out.stdout.clone()));
    places.push(("stderr".into(), out.stderr.clone()));
    assert_no_secret(&places, &secrets);
    server.stop();
}

#[test]
fn a_selected_workspace_reads_a_dataset_in_another() {
    let server = PowerBiServer::start(
        &fixture("corp.tenant.json"),
        Faults {
            upper_case_statuses: true,
            ..Faults::default()
        },
    );
    // By name: every workspace is scanned (a name is only known from the scan), Sales kept.
    let by_name = Tenant::new(&server.base_url, "    workspaces: [sales]\n");
    assert_ok(&by_name.run(&[], "extract", Some(SECRET)));
    assert_eq!(
        ids(
            &by_name.conn(),
            "SELECT asset_id FROM bi_assets ORDER BY asset_id"
        ),
        [report(1), report(3), report(4)]
    );
    assert_eq!(
        count(&by_name.conn(), "SELECT count(*) FROM powerbi_scans"),
        1
    );
    // By id: only Sales is scanned first.
    let t = Tenant::new(
        &server.base_url,
        &format!("    workspaces: ['{}']\n", ws_id(1)),
    );
    assert_ok(&t.run(&[], "extract", Some(SECRET)));
    let conn = t.conn();
    assert_eq!(
        ids(&conn, "SELECT asset_id FROM bi_assets ORDER BY asset_id"),
        [report(1), report(3), report(4)]
    );
    // Shared Models was scanned for the dataset Revenue reads, in a second scan; its own
    // report is not an asset.
    assert_eq!(
        ids(
            &conn,
            "SELECT purpose FROM powerbi_scans ORDER BY purpose DESC"
        ),
        ["selection", "datasets of other workspaces"]
    );
    assert_eq!(
        ids(
            &conn,
            "SELECT workspace_ids FROM powerbi_scans WHERE purpose <> 'selection'"
        ),
        [format!("[\"{}\"]", ws_id(2))]
    );
    assert_eq!(ids(&conn, "SELECT id || ' ' || coalesce(left_out, '-') FROM powerbi_reports WHERE workspace_id = '5a1e0000-0000-4000-8000-000000000002'"), [format!("{} not_selected", report(5))]);
    assert_eq!(ids(&conn, "SELECT workspace_id FROM powerbi_datasets WHERE id = 'da7a0000-0000-4000-8000-000000000002'"), [ws_id(2)]);
    // Revenue reads the tables of that dataset: its M-sourced table through the M reader, and
    // its calculated table as a no_source miss.
    assert_eq!(
        ids(
            &conn,
            &format!(
                "SELECT DISTINCT via_id FROM bi_relations WHERE asset_id = '{}' ORDER BY via_id",
                report(3)
            )
        ),
        [
            "da7a0000-0000-4000-8000-000000000002/Budget calc",
            "da7a0000-0000-4000-8000-000000000002/Revenue"
        ]
    );
    assert_eq!(
        ids(&conn, "SELECT status FROM powerbi_scans"),
        ["SUCCEEDED", "SUCCEEDED"],
        "statuses are compared case-insensitively"
    );
    server.stop();
}

#[test]
fn a_failed_scan_is_an_error_and_nothing_is_written() {
    let good = PowerBiServer::start(&fixture("corp.tenant.json"), Faults::default());
    let t = Tenant::new(&good.base_url, "");
    assert_ok(&t.run(&[], "extract", Some(SECRET)));
    let before = tables(&t.conn());
    good.stop();

    let failing = PowerBiServer::start(
        &fixture("corp.tenant.json"),
        Faults {
            fail_scans_of: vec![ws_id(2)],
            ..Faults::default()
        },
    );
    let t2 = Tenant {
        dir: t.dir,
        config: t.config,
    };
    let text = std::fs::read_to_string(&t2.config).unwrap();
    let port = |s: &PowerBiServer| s.base_url.clone();
    std::fs::write(
        &t2.config,
        text.replace(&before_url(&text), &port(&failing)),
    )
    .unwrap();
    let out = t2.run(&[], "extract", Some(SECRET));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("scan 5c000000-0000-4000-8000-000000000001")
            && err.contains(&ws_id(2))
            && err.contains("\"Failed\""),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(
        tables(&t2.conn()),
        before,
        "the rows of the last good extract stay"
    );
    failing.stop();
}

/// The api_url written in a config by `Tenant::new`.
fn before_url(config: &str) -> String {
    config
        .lines()
        .find_map(|l| l.trim().strip_prefix("api_url: "))
        .unwrap()
        .to_string()
}

#[test]
fn a_scan_that_never_finishes_times_out_naming_it() {
    let server = PowerBiServer::start(
        &fixture("corp.tenant.json"),
        Faults {
            never_finish: true,
            ..Faults::default()
        },
    );
    let t = Tenant::new(&server.base_url, "    scan_timeout_secs: 1\n");
    let out = t.run(&[], "extract", Some(SECRET));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("scan 5c000000-0000-4000-8000-000000000001")
            && err.contains("still Running after 1 s (scan_timeout_secs)"),
        "{err}"
    );
    assert!(
        !Path::new(&t.db()).exists() || count(&t.conn(), "SELECT count(*) FROM bi_assets") == 0
    );
    server.stop();
}

#[test]
fn a_rejected_secret_names_the_env_vars_never_the_secret() {
    let server = PowerBiServer::start(&fixture("corp.tenant.json"), Faults::default());
    let t = Tenant::new(&server.base_url, "");
    let wrong = "a-wrong-secret-value";
    let out = t.run(&[], "extract", Some(wrong));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 401 (invalid_client: AADSTS7000215)")
            && err.contains(SECRET_ENV)
            && err.contains(ID_ENV),
        "{err}"
    );
    assert!(!err.contains(wrong), "{err}");
    let out = t.run(&[], "extract", None);
    assert!(
        stderr(&out).contains(&format!("env var {ID_ENV} is not set")),
        "{}",
        stderr(&out)
    );
    server.stop();
}

#[test]
fn many_workspaces_go_in_batches_with_at_most_16_scans_in_flight() {
    let server = PowerBiServer::start(
        &fixture("many.tenant.json"),
        Faults {
            polls_to_succeed: 2,
            ..Faults::default()
        },
    );
    let t = Tenant::new(&server.base_url, "");
    assert_ok(&t.run(&[], "extract", Some(SECRET)));
    let log = server.requests();
    let starts: Vec<usize> = log
        .iter()
        .filter(|r| r.path.contains("/getInfo"))
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r.body.as_deref().unwrap()).unwrap()
                ["workspaces"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(starts.len(), 18, "{starts:?}");
    assert!(
        starts.iter().all(|n| *n <= 100) && starts.iter().sum::<usize>() == 1750,
        "{starts:?}"
    );
    assert_eq!(server.max_scans_in_flight(), 16);
    assert_eq!(server.scans_refused(), 0);
    assert!(server.refused().is_empty(), "{:?}", server.refused());
    assert_eq!(count(&t.conn(), "SELECT count(*) FROM bi_assets"), 1750);
    assert_eq!(count(&t.conn(), "SELECT count(*) FROM powerbi_scans"), 18);
    server.stop();
}

#[test]
fn record_then_replay_without_secrets() {
    let server = PowerBiServer::start(&fixture("corp.tenant.json"), Faults::default());
    let live = Tenant::new(&server.base_url, "");
    let rec = tempfile::tempdir().unwrap();
    let rec_dir = rec.path().to_str().unwrap();
    assert_ok(&live.run(&["--record", rec_dir], "extract", Some(SECRET)));
    let mut secrets = server.issued_tokens();
    secrets.push(SECRET.into());
    server.stop();
    // Offline, without credentials, against a server that is gone.
    let offline = Tenant::new("https://api.powerbi.com", "");
    let out = offline.run(&["--replay", rec_dir], "extract", None);
    assert_ok(&out);
    let decisions = |t: &Tenant| {
        let c = t.conn();
        (
            dump(&c, "bi_assets"),
            dump(&c, "bi_relations"),
            dump(&c, "powerbi_reports"),
            dump(&c, "powerbi_tables"),
        )
    };
    assert_eq!(decisions(&live), decisions(&offline));
    let mut places = folder_places("recording", rec.path());
    assert!(places.len() > 5, "{}", places.len());
    places.extend(database_places("replay", &offline.db()));
    assert_no_secret(&places, &secrets);
    assert!(
        places.iter().any(|(_, b)| String::from_utf8_lossy(b)
            .contains("\"access_token\\\":\\\"<redacted>\\\"")
            || String::from_utf8_lossy(b).contains("\"access_token\":\"<redacted>\"")),
        "the token answer is recorded, blanked"
    );
}

#[test]
fn run_writes_one_exposure_per_live_report_with_its_name_byte_for_byte() {
    let server = PowerBiServer::start(&fixture("corp.tenant.json"), Faults::default());
    let t = Tenant::new(&server.base_url, "exposures:\n  include_unmatched: true\n");
    let out = t.run(&[], "run", Some(SECRET));
    assert_ok(&out);
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        summary.contains("Reports left out:     1 (app copies"),
        "{summary}"
    );
    let conn = t.conn();
    assert_eq!(
        ids(&conn, "SELECT asset_ref FROM exposures ORDER BY asset_ref"),
        [report(1), report(3), report(4), report(5), report(6)]
    );
    // The hostile name reaches dbt as one inert scalar: its Jinja opener escaped as emit does
    // for Tableau's names (dbt renders `{{ '{' }}` back to `{`), the rest byte for byte.
    let dir = t.dir.path().join("dbt/models/imported_from_tableau");
    let sales: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("corp__sales.yml")).unwrap())
            .unwrap();
    let labels: Vec<&str> = sales["exposures"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"{{ '{' }}{{ '{' }} config(materialized='x') }} <script>alert(1)</script>: Ops\nreport"), "{labels:?}");
    let meta = &sales["exposures"][0]["config"]["meta"];
    assert_eq!(
        (meta["integration"].as_str(), meta["tenant"].as_str()),
        (Some("corp"), Some(TENANT))
    );
    assert!(
        meta["report_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("7e900000-")),
        "{meta:?}"
    );
    assert_eq!(
        (meta["workspace"].as_str(), meta["exposure_mode"].as_str()),
        (Some("Sales"), Some("auto"))
    );
    assert!(
        meta["dataset_id"]
            .as_str()
            .is_some_and(|d| d.starts_with("da7a0000-")),
        "{meta:?}"
    );
    // Every table that did not match has a reason of its own: the Excel sheet is a file, the
    // calculated tables have no source.
    let reasons = ids(
        &conn,
        "SELECT DISTINCT r.via_id || ' ' || u.reason FROM unmatched_tables u JOIN bi_relations r USING (integration, asset_id, via, via_id, relation_id)
         WHERE u.reason IN ('file_connection', 'no_source') ORDER BY 1",
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.ends_with("/Budget file_connection")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.ends_with("/Date no_source")),
        "{reasons:?}"
    );
    server.stop();
}

/// One file per workspace, named by integration; a workspace that leaves the selection takes
/// its file with it, and the other files stay byte for byte.
#[test]
fn a_workspace_leaving_the_selection_takes_its_file_with_it() {
    let server = PowerBiServer::start(&fixture("corp.tenant.json"), Faults::default());
    let t = Tenant::new(&server.base_url, "exposures:\n  include_unmatched: true\n");
    assert_ok(&t.run(&[], "run", Some(SECRET)));
    let dir = t.dir.path().join("dbt/models/imported_from_tableau");
    let files = || -> Vec<(String, Vec<u8>)> {
        let mut f: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        f.sort();
        f
    };
    let before = files();
    let names: Vec<&str> = before.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "corp__marketing.yml",
            "corp__sales.yml",
            "corp__shared_models.yml"
        ]
    );

    let yaml = std::fs::read_to_string(&t.config).unwrap().replace(
        "    scan_poll_ms: 5\n",
        "    scan_poll_ms: 5\n    workspaces: [Sales, Shared Models]\n",
    );
    std::fs::write(&t.config, yaml).unwrap();
    assert_ok(&t.run(&[], "run", Some(SECRET)));
    let after = files();
    assert_eq!(
        after,
        before[1..],
        "Marketing's file is gone, the others unchanged"
    );
    let conn = t.conn();
    assert_eq!(
        ids(
            &conn,
            "SELECT path || ' ' || action FROM emitted_files ORDER BY path"
        ),
        [
            "models/imported_from_tableau/corp__marketing.yml deleted",
            "models/imported_from_tableau/corp__sales.yml unchanged",
            "models/imported_from_tableau/corp__shared_models.yml unchanged",
        ]
    );
    server.stop();
}

/// Snowflake as Power Query navigates it (upper-case names, with and without `Kind`, a
/// parameter as the database, native SQL with a join and a comment) against a dbt-snowflake
/// project's manifest: each report depends on exactly the nodes its tables are, and the rest
/// are unmatched with a reason.
#[test]
fn snowflake_navigation_and_native_sql_match_a_snowflake_project() {
    let server = PowerBiServer::start(&fixture("snowflake.tenant.json"), Faults::default());
    let manifest = repo().join("testdata/dbt/snowflake_shop/artifacts/manifest.json");
    let t = Tenant::with_manifest(
        &server.base_url,
        "exposures:\n  include_unmatched: true\n",
        &manifest,
    );
    let out = t.run(&[], "run", Some(SECRET));
    assert_ok(&out);
    let conn = t.conn();
    let deps = ids(
        &conn,
        "SELECT asset_ref || ' ' || depends_on FROM exposures ORDER BY asset_ref",
    );
    let unmatched = ids(
        &conn,
        "SELECT u.asset_id || ' ' || coalesce(r.full_name, r.relation_id) || ' ' || u.reason FROM unmatched_tables u
         JOIN bi_relations r USING (integration, asset_id, via, via_id, relation_id) ORDER BY 1",
    );
    let r = |n: u32| format!("7f000000-0000-4000-8000-{n:012}");
    let nodes = |list: &[&str]| serde_json::to_string(&list.to_vec()).unwrap();
    assert_eq!(
        deps,
        [
            // ORDERS is both the model and the source declared over its table; REVENUE_DAILY is
            // the unquoted model Snowflake folds upper case.
            format!(
                "{} {}",
                r(1),
                nodes(&[
                    "model.snowflake_shop.customers",
                    "model.snowflake_shop.orders",
                    "model.snowflake_shop.revenue_daily",
                    "source.snowflake_shop.mart.orders"
                ])
            ),
            // EVENTS through the RawDatabase parameter.
            format!("{} {}", r(2), nodes(&["source.snowflake_shop.raw.events"])),
            // The native query's join; mart.orders in its comment is not a table.
            format!(
                "{} {}",
                r(3),
                nodes(&[
                    "model.snowflake_shop.stg_orders",
                    "source.snowflake_shop.raw.events"
                ])
            ),
        ]
    );
    // REVENUE (a model) and "Revenue" (a quoted source) only fold alike: not guessed.
    assert_eq!(
        unmatched,
        [
            format!("{} \"ANALYTICS\".\"MART\".\"REVENUE\" ambiguous", r(2)),
            format!("{} \"ANALYTICS\".\"MART\".\"Revenue\" ambiguous", r(2)),
            format!(
                "{} \"ANALYTICS\".\"MART\".\"LEGACY_ORDERS\" not_in_manifest",
                r(3)
            ),
        ]
    );
    let snapshot = serde_json::json!({"depends_on": deps, "unmatched": unmatched});
    settings().bind(|| insta::assert_yaml_snapshot!("powerbi_snowflake_match", snapshot));
    server.stop();
}
