//! The binary against the local Tableau-speaking server (tests/support/tableau_server.rs):
//! paging, 429 + Retry-After, a session that expires mid-run, a node-limit warning, record and
//! replay, several sites in one run, and secrets kept out of everything we write.

use std::collections::BTreeMap;

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

const PAT: [(&str, &str); 2] = [
    ("AE_TEST_PAT_NAME", "autoexpose-demo"),
    ("AE_TEST_PAT_SECRET", "demo-pat-secret"),
];

fn demo_fixture() -> std::path::PathBuf {
    repo().join("testdata/tableau/demo.site.json")
}

/// What the pipeline decided, minus what depends on the server's address.
fn decisions(ws: &Workspace) -> Vec<Vec<std::collections::BTreeMap<String, serde_json::Value>>> {
    let conn = ws.conn();
    vec![
        dump_query(&conn, "SELECT integration, id, luid, name, project_name, owner_name, tags FROM tableau_workbooks"),
        dump(&conn, "tableau_tables"),
        dump(&conn, "tableau_custom_sql"),
        dump(&conn, "relation_keys"),
        dump(&conn, "exposure_dependencies"),
        dump(&conn, "unmatched_tables"),
        dump_query(&conn, "SELECT integration, asset_ref, name, file, status, depends_on FROM exposures"),
    ]
}

#[test]
fn run_survives_429_expired_session_and_node_limit() {
    let faults = Faults {
        rate_limit_at: vec![4],
        expire_token_after: Some(8),
        node_limit_above: Some(3),
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "run", &PAT);
    assert_ok(&out);
    let log = server.requests();
    let lines: Vec<String> = log
        .iter()
        .map(|r| format!("{} {} {} {}", r.number, r.method, r.path, r.status))
        .collect();
    let text = lines.join("\n");

    assert!(
        log.iter().any(|r| r.status == 429),
        "no 429 was served:\n{text}"
    );
    let after_429 = log.iter().position(|r| r.status == 429).unwrap() + 1;
    assert_eq!(
        log[after_429].path,
        log[after_429 - 1].path,
        "the 429'd request was not repeated:\n{text}"
    );
    let signins = log
        .iter()
        .filter(|r| r.path.ends_with("/auth/signin"))
        .count();
    assert_eq!(
        signins, 2,
        "expected one sign-in plus one after the session expired:\n{text}"
    );
    assert!(
        log.iter().any(|r| r.status == 401),
        "the session never expired:\n{text}"
    );
    let firsts: Vec<i64> = log
        .iter()
        .filter(|r| r.path == "/api/metadata/graphql" && r.status == 200)
        .filter_map(|r| r.body.as_deref())
        .filter(|b| b.contains("filter: {idWithin"))
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["variables"]["first"]
                .as_i64()
                .unwrap()
        })
        .collect();
    // The first chunk of ids runs alone, shrinks from 5 to 2, and the other chunks start at 2.
    assert_eq!(firsts.first(), Some(&5), "{firsts:?}");
    assert!(
        firsts.iter().skip(1).all(|&f| f == 2),
        "page size did not shrink after NODE_LIMIT_EXCEEDED: {firsts:?}"
    );
    assert!(firsts.len() >= 6, "expected several pages: {firsts:?}");
    assert!(
        log.last().unwrap().path.ends_with("/auth/signout"),
        "did not sign out:\n{text}"
    );

    let conn = ws.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM extract_warnings WHERE code = 'NODE_LIMIT_EXCEEDED'"
        ),
        1
    );
    assert_eq!(count(&conn, "SELECT complete FROM tableau_sites"), 1);

    // Same decisions as the recorded demo site.
    let replayed = Workspace::new(
        &[SiteConfig::demo("https://tableau.example.com")],
        Some(&repo().join("testdata/http/demo")),
    );
    assert_ok(&replayed.run(&[], "run", &[]));
    assert_eq!(decisions(&ws), decisions(&replayed));
    // The YAML itself, not just how many files: only the server's address may differ.
    assert!(ws.yaml_files().len() >= 2, "{:?}", ws.yaml_files().keys());
    let blank = |files: BTreeMap<String, String>, url: &str| -> BTreeMap<String, String> {
        files
            .into_iter()
            .map(|(k, v)| (k, v.replace(url, "<server>")))
            .collect()
    };
    assert_eq!(
        blank(ws.yaml_files(), &server.base_url),
        blank(replayed.yaml_files(), "https://tableau.example.com")
    );
    server.stop();
}

#[test]
fn record_then_replay_offline_without_secrets() {
    let server = TableauServer::start(&demo_fixture(), Faults::default());
    let rec_dir = tempfile::tempdir().unwrap();
    // Keep every body in raw_responses, so the database is as full a haystack as it can be.
    let mut site = SiteConfig::demo(&server.base_url);
    site.extra.push_str("    raw_responses: all\n");
    let live = Workspace::new(&[site], None);
    let rec = rec_dir.path().to_str().unwrap();
    let out = live.run(&["--record", rec, "-v"], "run", &PAT);
    assert_ok(&out);
    let server_tokens_before_stop = server.issued_tokens();
    server.stop();

    // Replay against a closed port: nothing may go to the network.
    let offline = Workspace::new(&[SiteConfig::demo("http://127.0.0.1:9")], None);
    let out2 = offline.run(&["--replay", rec], "run", &[]);
    assert_ok(&out2);
    assert_eq!(decisions(&live), decisions(&offline));

    let kept = count(
        &live.conn(),
        "SELECT count(*) FROM raw_responses WHERE body IS NOT NULL AND bytes > 0",
    );
    assert!(kept > 3, "raw_responses: all kept {kept} bodies");
    // By default only error bodies are kept.
    assert_eq!(count(&offline.conn(), "SELECT count(*) FROM raw_responses WHERE body IS NOT NULL AND status BETWEEN 200 AND 299"), 0);

    // No PAT name or secret, and no session token the server issued, reaches the recordings,
    // either database (every table, every column) or the logs.
    let mut places = vec![
        ("stderr (live)".to_string(), out.stderr.clone()),
        ("stdout (live)".to_string(), out.stdout.clone()),
        ("stderr (replay)".to_string(), out2.stderr.clone()),
        ("stdout (replay)".to_string(), out2.stdout.clone()),
    ];
    places.extend(database_places("live", &live.db()));
    places.extend(database_places("replay", &offline.db()));
    let recorded = folder_places("recording", rec_dir.path());
    assert!(
        !recorded.is_empty(),
        "no files under {}",
        rec_dir.path().display()
    );
    places.extend(recorded);
    let tokens = server_tokens_before_stop;
    assert!(!tokens.is_empty(), "the server issued no token");
    assert_no_secrets(&known_secrets(&tokens), &places);
}

/// The fixture's PAT names and secrets, and the session tokens a server issued.
fn known_secrets(tokens: &[String]) -> Vec<String> {
    let mut all: Vec<String> = PAT.iter().map(|(_, v)| v.to_string()).collect();
    all.extend(tokens.iter().cloned());
    all
}

/// Fails naming the secret and the place, whatever else (a `<redacted>`) the place holds.
fn assert_no_secrets(secrets: &[String], places: &[(String, Vec<u8>)]) {
    for secret in secrets {
        assert!(
            secret.len() >= 4,
            "a secret this short would match ordinary text: {secret:?}"
        );
        for (what, bytes) in places {
            let hit = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!hit, "secret {secret:?} leaked into {what}");
        }
    }
}

/// The check above can fail: a token planted in a database or a log is found.
#[test]
fn secret_check_finds_a_planted_token() {
    let planted = vec![(
        "log".to_string(),
        b"ok <redacted> then tok-123456 leaked".to_vec(),
    )];
    let caught =
        std::panic::catch_unwind(|| assert_no_secrets(&["tok-123456".to_string()], &planted));
    assert!(
        caught.is_err(),
        "a leaked token next to <redacted> went unnoticed"
    );
    assert_no_secrets(
        &["tok-123456".to_string()],
        &[("log".to_string(), b"ok <redacted>".to_vec())],
    );
}

#[test]
fn several_sites_in_one_run() {
    let demo = TableauServer::start(&demo_fixture(), Faults::default());
    let mini = TableauServer::start(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
    );
    let ws = Workspace::new(
        &[
            SiteConfig::demo(&demo.base_url),
            SiteConfig::mini(&mini.base_url),
        ],
        None,
    );
    let mut env = PAT.to_vec();
    env.extend(MINI_PAT);
    assert_ok(&ws.run(&[], "run", &env));
    let conn = ws.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM tableau_sites"), 2);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tableau_workbooks WHERE integration = 'mini'"
        ),
        5
    );
    assert!(
        ws.yaml_files().keys().any(|f| f.starts_with("mini__")),
        "{:?}",
        ws.yaml_files().keys()
    );
    assert!(ws.yaml_files().keys().any(|f| f.starts_with("demo__")));
    demo.stop();
    mini.stop();
}

#[test]
fn redacted_tables_make_the_run_incomplete_and_keep_old_files() {
    // A good run first, so there are generated files to keep.
    let server = TableauServer::start(&demo_fixture(), Faults::default());
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    assert_ok(&ws.run(&[], "run", &PAT));
    let before = ws.yaml_files();
    server.stop();

    let faults = Faults {
        redact_tables: true,
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let old = text
        .lines()
        .find(|l| l.contains("server_url"))
        .unwrap()
        .to_string();
    let new_url = format!("    server_url: {}", server.base_url);
    std::fs::write(&ws.config, text.replace(&old, &new_url)).unwrap();

    let out = ws.run(&[], "run", &PAT);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("came back without names") && err.contains("Sales Overview"),
        "{err}"
    );
    let conn = ws.conn();
    assert_eq!(count(&conn, "SELECT complete FROM tableau_sites"), 0);
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM extract_warnings WHERE code = 'REDACTED_TABLES'"
        ) >= 5
    );
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM unmatched_tables WHERE reason = 'redacted_name'"
        ) >= 5
    );
    // Only custom SQL still gives lineage (its text names its tables; Tableau redacted the
    // upstream tables' names).
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM exposure_dependencies WHERE via <> 'custom_sql'"
        ),
        0
    );
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM exposure_dependencies WHERE via = 'custom_sql'"
        ) >= 1
    );
    // Fewer dependencies than last night, but the files of an incomplete site lose nothing:
    // kept as they were, byte for byte, and the exposures table says what they hold.
    assert_eq!(ws.yaml_files(), before);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM exposures WHERE status = 'written'"
        ),
        count(&conn, "SELECT sum(exposures) FROM emitted_files"),
    );
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM emitted_files WHERE action = 'kept_incomplete'"
        ) >= 1
    );

    // allow_partial: the same run exits 0, and still records that it was incomplete.
    let text = std::fs::read_to_string(&ws.config).unwrap();
    std::fs::write(
        &ws.config,
        text.replace(
            "    page_size: 5\n",
            "    page_size: 5\n    allow_partial: true\n",
        ),
    )
    .unwrap();
    let out = ws.run(&[], "run", &PAT);
    assert_ok(&out);
    assert_eq!(count(&ws.conn(), "SELECT complete FROM tableau_sites"), 0);
    server.stop();
}

#[test]
fn permission_warnings_and_metadata_timeouts() {
    let faults = Faults {
        permissions_mode_switched: true,
        metadata_timeout_at: vec![5],
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "run", &PAT);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let conn = ws.conn();
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM extract_warnings WHERE code = 'PERMISSIONS_MODE_SWITCHED'"
        ) >= 1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM extract_warnings WHERE message LIKE 'Reached time limit%'"
        ),
        1
    );
    // The timed-out page was asked again, and nothing was lost.
    assert_eq!(count(&conn, "SELECT count(*) FROM tableau_workbooks"), 11);
    server.stop();
}

#[test]
fn sign_in_redirect_is_posted_again() {
    let faults = Faults {
        redirect_signin: true,
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "extract", &PAT);
    assert_ok(&out);
    let log = server.requests();
    let signins: Vec<_> = log
        .iter()
        .filter(|r| r.path.ends_with("/auth/signin"))
        .collect();
    assert_eq!(signins.len(), 2);
    assert_eq!(signins[0].status, 301);
    assert_eq!(
        (
            signins[1].method.as_str(),
            signins[1].host.starts_with("localhost")
        ),
        ("POST", true)
    );
    // Every later call goes to the host signed in to.
    assert!(log
        .iter()
        .skip_while(|r| r.status != 301)
        .skip(1)
        .all(|r| r.host.starts_with("localhost")));
    let conn = ws.conn();
    let url: String = conn
        .query_row("SELECT server_url FROM tableau_sites", [], |r| r.get(0))
        .unwrap();
    assert!(url.starts_with("http://localhost:"), "{url}");
    server.stop();
}

/// A sign-in redirected to another host is refused before the PAT is sent there, with an error
/// naming both and the way out (server_url).
#[test]
fn sign_in_redirect_to_another_host_keeps_the_pat() {
    let faults = Faults {
        redirect_signin_to: Some("http://tableau.example.invalid:9".into()),
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "extract", &PAT);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&server.base_url), "{err}");
    assert!(err.contains("http://tableau.example.invalid:9"), "{err}");
    assert!(
        err.contains("the PAT is not sent there") && err.contains("put it in server_url"),
        "{err}"
    );
    assert!(!err.contains(PAT[1].1), "{err}");
    // One sign-in, answered 302, and nothing after it: the secret went nowhere else.
    let log = server.requests();
    let signins: Vec<_> = log
        .iter()
        .filter(|r| r.path.ends_with("/auth/signin"))
        .collect();
    assert_eq!(signins.len(), 1);
    assert_eq!(signins[0].status, 302);
    assert!(log.iter().all(|r| r.host.starts_with("127.0.0.1")));
    server.stop();
}

/// A body above `limits.max_response_mb` is an error naming the call and the limit, not retried.
#[test]
fn response_larger_than_the_limit_is_refused() {
    let faults = Faults {
        huge_body_at: vec![1],
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let mut site = SiteConfig::demo(&server.base_url);
    site.extra =
        "    limits: {max_response_mb: 1, connect_timeout_secs: 5, request_timeout_secs: 30}\n"
            .into();
    let ws = Workspace::new(&[site], None);
    let out = ws.run(&[], "extract", &PAT);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("larger than limits.max_response_mb (1 MiB)"),
        "{err}"
    );
    assert!(
        err.contains("/serverinfo") || err.contains("/serverInfo"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1, "not retried");
    server.stop();
}

/// Workbook details are fetched in chunks that overlap within the one session.
#[test]
fn detail_chunks_overlap_in_one_session() {
    use crate::support::tableau_server::ServerOptions;
    let options = ServerOptions {
        latency_ms: 100,
        ..ServerOptions::default()
    };
    let server = TableauServer::start_with(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
        options,
    );
    let mut site = SiteConfig::demo(&server.base_url);
    site.name = "mini".into();
    site.site = "mini".into();
    site.projects = vec![];
    site.page_size = 1;
    site.extra = "    concurrency: 4\n".into();
    let ws = Workspace::new(&[site], None);
    let out = ws.run(
        &[],
        "extract",
        &[
            ("AE_TEST_PAT_NAME", "ci"),
            ("AE_TEST_PAT_SECRET", "mini-secret"),
        ],
    );
    assert_ok(&out);
    assert!(
        server.max_in_flight() >= 2,
        "requests never overlapped: {}",
        server.max_in_flight()
    );
    let log = server.requests();
    assert_eq!(
        log.iter()
            .filter(|r| r.path.ends_with("/auth/signin"))
            .count(),
        1,
        "one session for all threads"
    );
    assert_eq!(
        count(&ws.conn(), "SELECT count(*) FROM tableau_workbooks"),
        5
    );
    server.stop();
}

/// Everything a run wrote that must not depend on how the network behaved: the YAML files,
/// exposures.json and every table but the logs of what happened (`runs`, `raw_responses`,
/// `extract_warnings`), with the server's address (which differs per test server) blanked.
fn outcome(ws: &Workspace, base_url: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, text) in ws.yaml_files() {
        out.insert(format!("yaml {name}"), text.replace(base_url, "<server>"));
    }
    let json = std::fs::read_to_string(ws.path("exposures.json")).unwrap();
    out.insert("exposures.json".into(), json.replace(base_url, "<server>"));
    let conn = ws.conn();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('runs', 'raw_responses', 'extract_warnings') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in tables {
        let mut rows = dump(&conn, &t);
        if t == "sync_bases" {
            // When the run was (the clock) and a hash of the server's address, not what it did.
            rows.iter_mut().for_each(|r| {
                drop((
                    r.remove("full_sync_at"),
                    r.remove("extracted_at"),
                    r.remove("settings_hash"),
                ))
            });
        }
        let rows = serde_json::to_string_pretty(&rows).unwrap();
        out.insert(format!("table {t}"), rows.replace(base_url, "<server>"));
    }
    out
}

fn assert_same_outcome(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in a {
        assert!(
            v == &b[k],
            "{k} differs:\n--- fault-free\n{v}\n--- with faults\n{}",
            b[k]
        );
    }
}

/// Under 429 + Retry-After, a 503, a Metadata API timeout, an expired session, bodies cut
/// short (GraphQL and REST) and a node limit, a run writes exactly what a fault-free run does.
#[test]
fn faults_leave_no_trace_in_the_output() {
    let mut site = SiteConfig::demo("");
    // One request at a time, so the request numbers the faults use are the same every run.
    site.extra.push_str("    concurrency: 1\n");
    let clean_server = TableauServer::start(&demo_fixture(), Faults::default());
    site.server_url = clean_server.base_url.clone();
    let clean = Workspace::new(&[site.clone()], None);
    assert_ok(&clean.run(&[], "run", &PAT));
    let clean_log = clean_server.requests();
    let want = outcome(&clean, &clean_server.base_url);
    clean_server.stop();
    // 1 serverInfo, 2 sign-in, 3 projects, 4 workbook ids, then details pages and custom SQL.
    let paths: Vec<&str> = clean_log.iter().map(|r| r.path.as_str()).collect();
    assert!(
        paths[2].contains("/projects") && paths[3] == "/api/metadata/graphql",
        "{paths:#?}"
    );

    let faults = Faults {
        cut_body_at: vec![3, 7],  // the projects page (XML), a details page (JSON)
        rate_limit_at: vec![5],   // workbook ids: 429 + Retry-After
        server_error_at: vec![9], // 503
        metadata_timeout_at: vec![11], // "Reached time limit of PT5S…"
        expire_token_after: Some(9),
        node_limit_above: Some(3),
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    site.server_url = server.base_url.clone();
    let ws = Workspace::new(&[site], None);
    let out = ws.run(&[], "run", &PAT);
    assert_ok(&out);
    let log = server.requests();
    let text: String = log.iter().map(|r| format!("{r}\n")).collect();
    // Each fault hit what it was meant for.
    assert!(
        log[2].path.contains("/projects") && log[3].path.contains("/projects"),
        "{text}"
    );
    assert_eq!(
        (log[4].status, log[5].path.as_str()),
        (429, log[4].path.as_str()),
        "{text}"
    );
    assert!(
        log[6].path == "/api/metadata/graphql" && log[7].path == log[6].path,
        "{text}"
    );
    assert_eq!(log[8].status, 503, "{text}");
    assert_eq!(log[10].path, "/api/metadata/graphql", "{text}");
    assert!(
        log.iter().any(|r| r.status == 401),
        "the session never expired:\n{text}"
    );
    assert_eq!(
        log.iter()
            .filter(|r| r.path.ends_with("/auth/signin"))
            .count(),
        2,
        "{text}"
    );
    let err = stderr(&out);
    assert!(err.contains("cut short or not XML at byte"), "{err}");
    assert!(err.contains("cut short or not JSON at byte"), "{err}");
    let conn = ws.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM extract_warnings WHERE message LIKE 'Reached time limit%'"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM extract_warnings WHERE code = 'NODE_LIMIT_EXCEEDED'"
        ),
        1
    );
    assert_eq!(count(&conn, "SELECT complete FROM tableau_sites"), 1);
    assert!(log.len() > clean_log.len() + 6, "{text}");

    assert_same_outcome(&want, &outcome(&ws, &server.base_url));
    let tokens = server.issued_tokens();
    assert_eq!(tokens.len(), 2);
    let mut places = vec![
        ("stderr".to_string(), out.stderr.clone()),
        ("stdout".to_string(), out.stdout.clone()),
    ];
    places.extend(database_places("faults", &ws.db()));
    assert_no_secrets(&known_secrets(&tokens), &places);
    server.stop();
}

/// A body still cut short after the last try is an error naming the call and the byte offset.
#[test]
fn a_body_cut_short_every_time_is_an_error_naming_the_call() {
    let faults = Faults {
        cut_body_at: (4..=7).collect(),
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "extract", &PAT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("POST /api/metadata/graphql (WorkbookIds)"),
        "{err}"
    );
    assert!(
        err.contains("cut short or not JSON at byte") && err.contains("after 4 tries"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Four tries of the same page (retry.attempts = 4), then sign-out.
    let log = server.requests();
    assert_eq!(
        log.iter()
            .filter(|r| r.path == "/api/metadata/graphql")
            .count(),
        4
    );
    assert_eq!(
        count(&ws.conn(), "SELECT count(*) FROM tableau_workbooks"),
        0
    );
    server.stop();
}

/// A 200 HTML page (a proxy's or portal's) on the projects list is not "no projects": it is
/// asked again, like a body cut short, and after the last try an error naming the call.
#[test]
fn an_html_page_on_the_projects_list_is_not_an_empty_site() {
    // Request 3 is the projects page (see above); the demo config tries 4 times.
    let faults = Faults {
        html_ok_at: vec![3],
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "extract", &PAT);
    assert_ok(&out);
    let log = server.requests();
    assert!(
        log[2].path.contains("/projects") && log[3].path == log[2].path,
        "{log:#?}"
    );
    assert!(
        stderr(&out).contains("not a Tableau REST answer: its root element is <html>"),
        "{}",
        stderr(&out)
    );
    assert!(count(&ws.conn(), "SELECT count(*) FROM tableau_workbooks") > 0);
    server.stop();

    let faults = Faults {
        html_ok_at: (3..=6).collect(),
        ..Faults::default()
    };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "extract", &PAT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("/projects") && err.contains("after 4 tries"),
        "{err}"
    );
    assert!(
        err.contains("root element is <html>, not <tsResponse>"),
        "{err}"
    );
    assert_eq!(count(&ws.conn(), "SELECT count(*) FROM tableau_sites"), 0);
    assert_eq!(
        count(&ws.conn(), "SELECT count(*) FROM tableau_workbooks"),
        0
    );
    server.stop();
}

/// MAX_PAGE_SIZE_EXCEEDED: one more request at the maximum, not four halvings; none when the
/// page was already the last and whole; an info line, not a `warning:`, and a row.
#[test]
fn max_page_size_costs_one_request_at_most() {
    for named in [false, true] {
        // The demo site lists 11 workbook ids in one page of 1000: a whole last page.
        let faults = Faults {
            max_page_size: Some(4),
            max_page_size_named: named,
            ..Faults::default()
        };
        let server = TableauServer::start(&demo_fixture(), faults);
        let mut site = SiteConfig::demo(&server.base_url);
        site.page_size = 10;
        site.extra.push_str("    concurrency: 1\n");
        let ws = Workspace::new(&[site], None);
        let out = ws.run(&["-q"], "extract", &PAT);
        assert_ok(&out);
        assert!(!stderr(&out).contains("warning:"), "{}", stderr(&out));
        let firsts: Vec<(String, i64)> = server
            .requests()
            .iter()
            .filter(|r| r.path == "/api/metadata/graphql")
            .filter_map(|r| r.body.as_deref())
            .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap())
            .map(|v| {
                let q = v["query"].as_str().unwrap();
                let kind = if v["variables"].get("ids").is_some() {
                    "details"
                } else if q.contains("customSQLTablesConnection") {
                    "sql"
                } else if q.contains("publishedDatasourcesConnection") {
                    "versions"
                } else {
                    "ids"
                };
                (kind.to_string(), v["variables"]["first"].as_i64().unwrap())
            })
            .collect();
        let of = |kind: &str| {
            firsts
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, f)| *f)
                .collect::<Vec<_>>()
        };
        // ids: 1000 → the page is cut to 4 with a next page → once more at 4, then pages of 4.
        assert_eq!(of("ids"), [1000, 4, 4, 4], "named={named}: {firsts:?}");
        // The data source versions: the site's few fit one whole last page, asked once.
        assert_eq!(of("versions"), [1000], "named={named}: {firsts:?}");
        // details: chunks of 10 ids; the first asks 10, learns 4, asks again; the second chunk
        // (1 id) starts at 4.
        assert_eq!(
            of("details").first(),
            Some(&10),
            "named={named}: {firsts:?}"
        );
        assert!(
            of("details").iter().skip(1).all(|&f| f == 4),
            "named={named}: {firsts:?}"
        );
        let conn = ws.conn();
        assert_eq!(count(&conn, "SELECT count(*) FROM tableau_workbooks"), 11);
        assert_eq!(count(&conn, "SELECT complete FROM tableau_sites"), 1);
        assert!(
            count(
                &conn,
                "SELECT count(*) FROM extract_warnings WHERE code = 'MAX_PAGE_SIZE_EXCEEDED'"
            ) >= 2
        );
        server.stop();
    }
}

/// A replay does the same whatever credentials the environment holds: none, empty, one
/// character, long.
#[test]
fn replay_does_not_depend_on_the_environment() {
    let demo = repo().join("testdata/http/demo");
    let envs: [&[(&str, &str)]; 4] = [
        &[],
        &[("AE_TEST_PAT_NAME", ""), ("AE_TEST_PAT_SECRET", "")],
        &[("AE_TEST_PAT_NAME", "n"), ("AE_TEST_PAT_SECRET", "s")],
        &[
            ("AE_TEST_PAT_NAME", "a-long-pat-name-for-ci"),
            (
                "AE_TEST_PAT_SECRET",
                "a-very-long-pat-secret-0123456789abcdef",
            ),
        ],
    ];
    let mut first: Option<BTreeMap<String, String>> = None;
    for env in envs {
        let ws = Workspace::new(&[SiteConfig::demo("https://tableau.example.com")], None);
        let out = ws.run(&["--replay", demo.to_str().unwrap()], "run", env);
        assert_ok(&out);
        let got = outcome(&ws, "https://tableau.example.com");
        assert!(
            got.len() > 5 && got.keys().any(|k| k.starts_with("yaml ")),
            "{:?}",
            got.keys()
        );
        match &first {
            None => first = Some(got),
            Some(want) => assert_same_outcome(want, &got),
        }
    }
}

/// The local Tableau validates every GraphQL document against Tableau's schema
/// (testdata/tableau/metadata.graphql) and refuses an invalid one as Tableau does. A whole run,
/// with and without a project filter and over several cursor pages, sends only documents it
/// accepts; a document that drifts from the schema (the old `$ids: [String]`) is refused.
#[test]
fn every_document_a_run_sends_passes_schema_validation_and_a_drifted_one_is_refused() {
    // With a project filter, and without one at one node per page (the demo's two custom SQL
    // queries then take two pages, the second with a cursor).
    let mut unfiltered = SiteConfig::demo("");
    unfiltered.projects = vec![];
    unfiltered.page_size = 1;
    for (case, site) in [("projects", SiteConfig::demo("")), ("all", unfiltered)] {
        let server = TableauServer::start(&demo_fixture(), Faults::default());
        let site = SiteConfig {
            server_url: server.base_url.clone(),
            ..site
        };
        let ws = Workspace::new(&[site], None);
        assert_ok(&ws.run(&[], "extract", &PAT));
        let log = server.requests();
        let graphql: Vec<_> = log
            .iter()
            .filter(|r| r.path == "/api/metadata/graphql")
            .collect();
        let later_pages = graphql
            .iter()
            .filter_map(|r| r.body.as_deref())
            .filter(|b| !b.contains(r#""after":null"#))
            .count();
        assert_eq!(
            server.graphql_refused(),
            Vec::<String>::new(),
            "{case}: the run sent documents Tableau refuses"
        );
        assert_eq!(
            server.graphql_valid(),
            graphql.len(),
            "{case}: every GraphQL request went through the validator"
        );
        assert!(
            graphql.len() >= 3,
            "{case}: ids, details and custom SQL: {}",
            graphql.len()
        );
        if case == "all" {
            assert!(
                later_pages >= 1,
                "pages after the first (with a cursor) were sent and validated: {later_pages}"
            );
        }
        server.stop();
    }

    // A tiny request with the document as it was before the fix.
    let mut server = TableauServer::start(&demo_fixture(), Faults::default());
    server.expect_refusals();
    let http = reqwest::blocking::Client::new();
    let signin = http
        .post(format!("{}/api/3.23/auth/signin", server.base_url))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"credentials": {"personalAccessTokenName": PAT[0].1, "personalAccessTokenSecret": PAT[1].1, "site": {"contentUrl": "demo"}}}).to_string())
        .send()
        .unwrap();
    assert_eq!(signin.status().as_u16(), 200);
    let token = signin.json::<serde_json::Value>().unwrap()["credentials"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let drifted =
        include_str!("../src/tableau/workbooks.graphql").replace("$ids: [ID]", "$ids: [String]");
    let answer = http
        .post(format!("{}/api/metadata/graphql", server.base_url))
        .header("X-Tableau-Auth", &token)
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"query": drifted, "variables": {"first": 5, "after": null, "ids": ["x"]}}).to_string())
        .send()
        .unwrap();
    assert_eq!(
        answer.status().as_u16(),
        200,
        "Tableau answers validation errors with HTTP 200"
    );
    let body: serde_json::Value = answer.json().unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("[ID]")),
        "{body}"
    );
    assert_eq!(server.graphql_refused().len(), 1);
    server.stop();
}
