//! The binary against the local Tableau-speaking server (tests/support/tableau_server.rs):
//! paging, 429 + Retry-After, a session that expires mid-run, a node-limit warning, record and
//! replay, several sites in one run, and secrets kept out of everything we write.

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

const PAT: [(&str, &str); 2] = [("AE_TEST_PAT_NAME", "autoexpose-demo"), ("AE_TEST_PAT_SECRET", "demo-pat-secret")];

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
        dump_query(&conn, "SELECT integration, workbook_luid, name, file, status, depends_on FROM exposures"),
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
    let lines: Vec<String> = log.iter().map(|r| format!("{} {} {} {}", r.number, r.method, r.path, r.status)).collect();
    let text = lines.join("\n");

    assert!(log.iter().any(|r| r.status == 429), "no 429 was served:\n{text}");
    let after_429 = log.iter().position(|r| r.status == 429).unwrap() + 1;
    assert_eq!(log[after_429].path, log[after_429 - 1].path, "the 429'd request was not repeated:\n{text}");
    let signins = log.iter().filter(|r| r.path.ends_with("/auth/signin")).count();
    assert_eq!(signins, 2, "expected one sign-in plus one after the session expired:\n{text}");
    assert!(log.iter().any(|r| r.status == 401), "the session never expired:\n{text}");
    let firsts: Vec<i64> = log
        .iter()
        .filter(|r| r.path == "/api/metadata/graphql" && r.status == 200)
        .filter_map(|r| r.body.as_deref())
        .filter(|b| b.contains("filter: {idWithin"))
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["variables"]["first"].as_i64().unwrap())
        .collect();
    // The first chunk of ids runs alone, shrinks from 5 to 2, and the other chunks start at 2.
    assert_eq!(firsts.first(), Some(&5), "{firsts:?}");
    assert!(firsts.iter().skip(1).all(|&f| f == 2), "page size did not shrink after NODE_LIMIT_EXCEEDED: {firsts:?}");
    assert!(firsts.len() >= 6, "expected several pages: {firsts:?}");
    assert!(log.last().unwrap().path.ends_with("/auth/signout"), "did not sign out:\n{text}");

    let conn = ws.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM extract_warnings WHERE code = 'NODE_LIMIT_EXCEEDED'"), 1);
    assert_eq!(count(&conn, "SELECT complete FROM tableau_sites"), 1);

    // Same decisions as the recorded demo site.
    let replayed = Workspace::new(&[SiteConfig::demo("https://tableau.example.com")], Some(&repo().join("testdata/http/demo")));
    assert_ok(&replayed.run(&[], "run", &[]));
    assert_eq!(decisions(&ws), decisions(&replayed));
    assert_eq!(ws.yaml_files().len(), replayed.yaml_files().len());
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
    server.stop();

    // Replay against a closed port: nothing may go to the network.
    let offline = Workspace::new(&[SiteConfig::demo("http://127.0.0.1:9")], None);
    let out2 = offline.run(&["--replay", rec], "run", &[]);
    assert_ok(&out2);
    assert_eq!(decisions(&live), decisions(&offline));

    let kept = count(&live.conn(), "SELECT count(*) FROM raw_responses WHERE body IS NOT NULL AND bytes > 0");
    assert!(kept > 3, "raw_responses: all kept {kept} bodies");
    // By default only error bodies are kept.
    assert_eq!(count(&offline.conn(), "SELECT count(*) FROM raw_responses WHERE body IS NOT NULL AND status BETWEEN 200 AND 299"), 0);

    // The PAT secret and the PAT name never reach recordings, the database or the logs.
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("stderr (live)".into(), out.stderr.clone()),
        ("stderr (replay)".into(), out2.stderr.clone()),
        ("database".into(), std::fs::read(live.db()).unwrap()),
    ];
    for e in walkdir::WalkDir::new(rec_dir.path()) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            haystacks.push((e.path().display().to_string(), std::fs::read(e.path()).unwrap()));
        }
    }
    for (what, bytes) in &haystacks {
        let text = String::from_utf8_lossy(bytes);
        for secret in ["demo-pat-secret", "autoexpose-demo"] {
            assert!(!text.contains(secret), "{secret} leaked into {what}");
        }
        if text.contains("\"token\"") || text.contains("token=") {
            assert!(text.contains("<redacted>"), "a session token leaked into {what}");
        }
    }
}

#[test]
fn several_sites_in_one_run() {
    let demo = TableauServer::start(&demo_fixture(), Faults::default());
    let mini = TableauServer::start(&repo().join("testdata/tableau/mini.site.json"), Faults::default());
    let ws = Workspace::new(&[SiteConfig::demo(&demo.base_url), SiteConfig::mini(&mini.base_url)], None);
    let mut env = PAT.to_vec();
    env.extend(MINI_PAT);
    assert_ok(&ws.run(&[], "run", &env));
    let conn = ws.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM tableau_sites"), 2);
    assert_eq!(count(&conn, "SELECT count(*) FROM tableau_workbooks WHERE integration = 'mini'"), 5);
    assert!(ws.yaml_files().keys().any(|f| f.starts_with("mini__")), "{:?}", ws.yaml_files().keys());
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

    let faults = Faults { redact_tables: true, ..Faults::default() };
    let server = TableauServer::start(&demo_fixture(), faults);
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let old = text.lines().find(|l| l.contains("server_url")).unwrap().to_string();
    let new_url = format!("    server_url: {}", server.base_url);
    std::fs::write(&ws.config, text.replace(&old, &new_url)).unwrap();

    let out = ws.run(&[], "run", &PAT);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("came back without names") && err.contains("Sales Overview"), "{err}");
    let conn = ws.conn();
    assert_eq!(count(&conn, "SELECT complete FROM tableau_sites"), 0);
    assert!(count(&conn, "SELECT count(*) FROM extract_warnings WHERE code = 'REDACTED_TABLES'") >= 5);
    assert!(count(&conn, "SELECT count(*) FROM unmatched_tables WHERE reason = 'redacted_name'") >= 5);
    assert_eq!(count(&conn, "SELECT count(*) FROM exposure_dependencies"), 0);
    // Nothing matched, but the files of an incomplete site are kept, not deleted.
    assert_eq!(ws.yaml_files(), before);
    assert!(count(&conn, "SELECT count(*) FROM emitted_files WHERE action = 'kept_incomplete'") >= 1);

    // allow_partial: the same run exits 0, and still records that it was incomplete.
    let text = std::fs::read_to_string(&ws.config).unwrap();
    std::fs::write(&ws.config, text.replace("    page_size: 5\n", "    page_size: 5\n    allow_partial: true\n")).unwrap();
    let out = ws.run(&[], "run", &PAT);
    assert_ok(&out);
    assert_eq!(count(&ws.conn(), "SELECT complete FROM tableau_sites"), 0);
    server.stop();
}

#[test]
fn permission_warnings_and_metadata_timeouts() {
    let faults = Faults { permissions_mode_switched: true, metadata_timeout_at: vec![5], ..Faults::default() };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "run", &PAT);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let conn = ws.conn();
    assert!(count(&conn, "SELECT count(*) FROM extract_warnings WHERE code = 'PERMISSIONS_MODE_SWITCHED'") >= 1);
    assert_eq!(count(&conn, "SELECT count(*) FROM extract_warnings WHERE message LIKE 'Reached time limit%'"), 1);
    // The timed-out page was asked again, and nothing was lost.
    assert_eq!(count(&conn, "SELECT count(*) FROM tableau_workbooks"), 11);
    server.stop();
}

#[test]
fn sign_in_redirect_is_posted_again() {
    let faults = Faults { redirect_signin: true, ..Faults::default() };
    let server = TableauServer::start(&demo_fixture(), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let out = ws.run(&[], "extract", &PAT);
    assert_ok(&out);
    let log = server.requests();
    let signins: Vec<_> = log.iter().filter(|r| r.path.ends_with("/auth/signin")).collect();
    assert_eq!(signins.len(), 2);
    assert_eq!(signins[0].status, 301);
    assert_eq!((signins[1].method.as_str(), signins[1].host.starts_with("localhost")), ("POST", true));
    // Every later call goes to the host signed in to.
    assert!(log.iter().skip_while(|r| r.status != 301).skip(1).all(|r| r.host.starts_with("localhost")));
    let conn = ws.conn();
    let url: String = conn.query_row("SELECT server_url FROM tableau_sites", [], |r| r.get(0)).unwrap();
    assert!(url.starts_with("http://localhost:"), "{url}");
    server.stop();
}

/// Workbook details are fetched in chunks that overlap within the one session.
#[test]
fn detail_chunks_overlap_in_one_session() {
    use crate::support::tableau_server::ServerOptions;
    let options = ServerOptions { latency_ms: 100, ..ServerOptions::default() };
    let server = TableauServer::start_with(&repo().join("testdata/tableau/mini.site.json"), Faults::default(), options);
    let mut site = SiteConfig::demo(&server.base_url);
    site.name = "mini".into();
    site.site = "mini".into();
    site.projects = vec![];
    site.page_size = 1;
    site.extra = "    concurrency: 4\n".into();
    let ws = Workspace::new(&[site], None);
    let out = ws.run(&[], "extract", &[("AE_TEST_PAT_NAME", "ci"), ("AE_TEST_PAT_SECRET", "mini-secret")]);
    assert_ok(&out);
    assert!(server.max_in_flight() >= 2, "requests never overlapped: {}", server.max_in_flight());
    let log = server.requests();
    assert_eq!(log.iter().filter(|r| r.path.ends_with("/auth/signin")).count(), 1, "one session for all threads");
    assert_eq!(count(&ws.conn(), "SELECT count(*) FROM tableau_workbooks"), 5);
    server.stop();
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
        let site = SiteConfig { server_url: server.base_url.clone(), ..site };
        let ws = Workspace::new(&[site], None);
        assert_ok(&ws.run(&[], "extract", &PAT));
        let log = server.requests();
        let graphql: Vec<_> = log.iter().filter(|r| r.path == "/api/metadata/graphql").collect();
        let later_pages = graphql.iter().filter_map(|r| r.body.as_deref()).filter(|b| !b.contains(r#""after":null"#)).count();
        assert_eq!(server.graphql_refused(), Vec::<String>::new(), "{case}: the run sent documents Tableau refuses");
        assert_eq!(server.graphql_valid(), graphql.len(), "{case}: every GraphQL request went through the validator");
        assert!(graphql.len() >= 3, "{case}: ids, details and custom SQL: {}", graphql.len());
        if case == "all" {
            assert!(later_pages >= 1, "pages after the first (with a cursor) were sent and validated: {later_pages}");
        }
        server.stop();
    }

    // A tiny request with the document as it was before the fix.
    let server = TableauServer::start(&demo_fixture(), Faults::default());
    let http = reqwest::blocking::Client::new();
    let signin = http
        .post(format!("{}/api/3.23/auth/signin", server.base_url))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"credentials": {"personalAccessTokenName": PAT[0].1, "personalAccessTokenSecret": PAT[1].1, "site": {"contentUrl": "demo"}}}).to_string())
        .send()
        .unwrap();
    assert_eq!(signin.status().as_u16(), 200);
    let token = signin.json::<serde_json::Value>().unwrap()["credentials"]["token"].as_str().unwrap().to_string();
    let drifted = include_str!("../src/tableau/workbooks.graphql").replace("$ids: [ID]", "$ids: [String]");
    let answer = http
        .post(format!("{}/api/metadata/graphql", server.base_url))
        .header("X-Tableau-Auth", &token)
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"query": drifted, "variables": {"first": 5, "after": null, "ids": ["x"]}}).to_string())
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200, "Tableau answers validation errors with HTTP 200");
    let body: serde_json::Value = answer.json().unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("[ID]")), "{body}");
    assert_eq!(server.graphql_refused().len(), 1);
    server.stop();
}
