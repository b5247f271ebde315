//! Answers that are not data (issue #11, item 3): an HTML page answered 200, XML or JSON of
//! the wrong root, the right body under the wrong content type. Every call the client reads
//! (serverInfo, sign-in, projects, the Metadata API, a refresh, a job poll) asks again under
//! the retry policy and then fails naming the call; nothing is read as an empty list, so the
//! site is never marked complete on it and no generated file is deleted.

use std::collections::BTreeMap;

use crate::common::*;
use crate::support::tableau_server::{Faults, NotDataFaults, TableauServer};

const PAT: [(&str, &str); 2] = [
    ("AE_TEST_PAT_NAME", "autoexpose-demo"),
    ("AE_TEST_PAT_SECRET", "demo-pat-secret"),
];

fn demo_fixture() -> std::path::PathBuf {
    repo().join("testdata/tableau/demo.site.json")
}

/// Points the workspace's config at `url`.
fn serve(ws: &Workspace, url: &str) {
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let old = text
        .lines()
        .find(|l| l.contains("server_url"))
        .unwrap()
        .to_string();
    std::fs::write(
        &ws.config,
        text.replace(&old, &format!("    server_url: {url}")),
    )
    .unwrap();
}

/// What a failed run must leave as it was: the Tableau tables, the decisions, the files.
fn state(
    ws: &Workspace,
) -> (
    Vec<Vec<BTreeMap<String, serde_json::Value>>>,
    BTreeMap<String, String>,
) {
    let conn = ws.conn();
    let tables = vec![
        dump(&conn, "tableau_sites"),
        dump_query(
            &conn,
            "SELECT integration, id, luid, name FROM tableau_workbooks",
        ),
        dump(&conn, "tableau_tables"),
        dump(&conn, "exposure_dependencies"),
        dump_query(
            &conn,
            "SELECT integration, asset_ref, name, file, status FROM exposures",
        ),
    ];
    (tables, ws.yaml_files())
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Html,
    WrongRoot,
    WrongContentType,
}

fn faults(kind: Kind, at: Vec<usize>) -> Faults {
    match kind {
        Kind::Html => Faults {
            html_ok_at: at,
            ..Faults::default()
        },
        Kind::WrongRoot => Faults {
            not_data: NotDataFaults {
                wrong_root_at: at,
                ..Default::default()
            },
            ..Faults::default()
        },
        Kind::WrongContentType => Faults {
            not_data: NotDataFaults {
                wrong_content_type_at: at,
                ..Default::default()
            },
            ..Faults::default()
        },
    }
}

/// serverInfo (request 1), sign-in (2), the projects list (3) and the first Metadata API page
/// (4): answered not-data on all 4 tries (the test config's `retry.attempts`), each fails the
/// run with the call named, after a good run whose tables and files stay exactly as they were.
#[test]
fn every_extract_call_refuses_what_is_not_data() {
    let server = TableauServer::start(&demo_fixture(), Faults::default());
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    assert_ok(&ws.run(&[], "run", &PAT));
    server.stop();
    let before = state(&ws);
    assert!(!before.1.is_empty(), "the good run wrote no files");
    assert_eq!(
        count(
            &ws.conn(),
            "SELECT count(*) FROM tableau_sites WHERE complete = 1"
        ),
        1
    );

    let calls = [
        (1, "GET /api/2.4/serverInfo", "a Tableau REST answer"),
        (2, "POST /api/3.23/auth/signin", "a Tableau"),
        (
            3,
            "GET /api/3.23/sites/{site}/projects?pageNumber=1",
            "a Tableau REST answer",
        ),
        (
            4,
            "POST /api/metadata/graphql (WorkbookIds)",
            "a Metadata API answer",
        ),
    ];
    for (first, call, what) in calls {
        for kind in [Kind::Html, Kind::WrongRoot, Kind::WrongContentType] {
            let server =
                TableauServer::start(&demo_fixture(), faults(kind, (first..first + 4).collect()));
            serve(&ws, &server.base_url);
            let out = ws.run(&[], "run", &PAT);
            let err = stderr(&out);
            let case = format!("{call} {kind:?}");
            assert_eq!(out.status.code(), Some(1), "{case}: {err}");
            assert!(
                err.contains(&format!(": {call}: the body is not {what}")),
                "{case}: {err}"
            );
            assert!(err.contains("after 4 tries"), "{case}: {err}");
            let why = match kind {
                Kind::Html => "text/html",
                Kind::WrongRoot if call.contains("graphql") => "without `data` or `errors`",
                Kind::WrongRoot if call.contains("signin") => "no `credentials` object",
                Kind::WrongRoot => "its root element is <response>, not <tsResponse>",
                Kind::WrongContentType => {
                    r#"Content-Type "text/html; charset=utf-8", not application/"#
                }
            };
            assert!(err.contains(why), "{case}: {err}");
            assert!(
                !err.contains("demo-pat-secret") && !err.contains("panicked"),
                "{case}: {err}"
            );
            let log = server.requests();
            let same = log.iter().filter(|r| r.path == log[first - 1].path).count();
            assert!(
                same >= 4,
                "{case}: the call was not asked 4 times: {log:#?}"
            );
            assert_eq!(
                state(&ws),
                before,
                "{case}: a refused answer changed the tables or the files"
            );
            server.stop();
        }
    }
}

/// Once not-data, then the real answer: the run goes on and finishes as a good one.
#[test]
fn one_answer_that_is_not_data_is_asked_again() {
    for (at, kind) in [
        (1, Kind::WrongRoot),
        (2, Kind::Html),
        (4, Kind::WrongContentType),
        (4, Kind::WrongRoot),
    ] {
        let server = TableauServer::start(&demo_fixture(), faults(kind, vec![at]));
        let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
        let out = ws.run(&[], "run", &PAT);
        assert_ok(&out);
        assert!(
            stderr(&out).contains("the body is not a"),
            "{at} {kind:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("(try 2 of 4)"),
            "{at} {kind:?}: {}",
            stderr(&out)
        );
        assert_eq!(
            count(
                &ws.conn(),
                "SELECT count(*) FROM tableau_sites WHERE complete = 1"
            ),
            1
        );
        assert!(!ws.yaml_files().is_empty());
        server.stop();
    }
}

/// A workspace after a good `run`, with dbt's run_results.json of the demo build installed,
/// and `refresh` on it.
fn refresh_case() -> (
    Workspace,
    impl Fn(&Workspace, &[&str]) -> std::process::Output,
) {
    let server = TableauServer::start(&demo_fixture(), Faults::default());
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    assert_ok(&ws.run(&[], "run", &PAT));
    server.stop();
    let target = ws.path("dbt/target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(
        repo().join("testdata/dbt/demo/artifacts/run_results.json"),
        target.join("run_results.json"),
    )
    .unwrap();
    let refresh = |ws: &Workspace, args: &[&str]| {
        let mut env = PAT.to_vec();
        env.push(("DBT_ACTIVE_EXPOSURES", "1"));
        let mut all = vec!["--now", "2026-11-25T02:00:00Z"];
        all.extend_from_slice(args);
        ws.run_with(&[], "refresh", &all, &env)
    };
    (ws, refresh)
}

fn output(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out))
}

/// The refresh POST (not idempotent) answered not-data is not sent again: the request may
/// have queued a refresh, so it is settled from Tableau's jobs list like a torn answer. A job poll answered not-data is asked again, then given up.
#[test]
fn refresh_and_job_polls_refuse_what_is_not_data() {
    for html in [true, false] {
        let (ws, refresh) = refresh_case();
        let paths = vec!["/refresh".to_string()];
        let not_data = if html {
            NotDataFaults {
                html_on_paths: paths,
                ..Default::default()
            }
        } else {
            NotDataFaults {
                wrong_root_on_paths: paths,
                ..Default::default()
            }
        };
        let server = TableauServer::start(
            &demo_fixture(),
            Faults {
                not_data,
                ..Faults::default()
            },
        );
        serve(&ws, &server.base_url);
        let out = refresh(&ws, &[]);
        let text = output(&out);
        let log = server.requests();
        let posts: Vec<&str> = log
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/refresh"))
            .map(|r| r.path.as_str())
            .collect();
        assert!(!posts.is_empty(), "{text}");
        let distinct: std::collections::BTreeSet<_> = posts.iter().collect();
        assert_eq!(
            distinct.len(),
            posts.len(),
            "html={html}: a refresh answered not-data was sent again: {posts:#?}"
        );
        // Taken as an answer lost (the refresh may have been queued): checked against Tableau's
        // jobs list, never sent again; the refused answer is kept in the journal.
        assert!(
            text.contains("answer lost, not sent again"),
            "html={html}: {text}"
        );
        let kept = count(
            &ws.conn(),
            "SELECT count(*) FROM refresh_events WHERE service_message LIKE '%the body is not a Tableau REST answer%not sent again%'",
        );
        assert_eq!(kept as usize, posts.len(), "html={html}: {text}");
        assert_ne!(out.status.code(), Some(0), "html={html}: {text}");
        assert_eq!(
            log.iter().filter(|r| r.path.contains("/jobs/")).count(),
            0,
            "{log:#?}"
        );
        server.stop();
    }

    // Every job poll answered with an HTML page: each job is asked the retry policy's 4 times,
    // and the wait ends with the jobs unknown, not finished.
    let (ws, refresh) = refresh_case();
    let not_data = NotDataFaults {
        html_on_paths: vec!["/jobs/".into()],
        ..Default::default()
    };
    let server = TableauServer::start(
        &demo_fixture(),
        Faults {
            not_data,
            ..Faults::default()
        },
    );
    serve(&ws, &server.base_url);
    let out = refresh(&ws, &["--wait", "--wait-timeout", "600"]);
    let text = output(&out);
    let log = server.requests();
    let jobs: std::collections::BTreeSet<_> = log
        .iter()
        .filter(|r| r.path.contains("/jobs/"))
        .map(|r| r.path.clone())
        .collect();
    let polls = log.iter().filter(|r| r.path.contains("/jobs/")).count();
    assert!(!jobs.is_empty(), "{text}");
    assert_eq!(
        polls,
        jobs.len() * 4,
        "each job asked exactly the retry policy's 4 tries: {text}"
    );
    assert!(
        text.contains("/jobs/") && text.contains("the body is not a Tableau REST answer"),
        "{text}"
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    let succeeded: i64 = count(
        &ws.conn(),
        "SELECT count(*) FROM refresh_events WHERE job_finish_code = 0",
    );
    assert_eq!(
        succeeded, 0,
        "a job answered with an HTML page was counted as finished"
    );
    server.stop();
}
