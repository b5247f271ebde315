//! A run made with hostile credentials against a server that echoes them: the PAT name and
//! secret hold `"`, `\`, `<`, `&`, `%`, `+`, a space, a newline and non-ASCII, and the server
//! repeats the session token, the name and the secret inside GraphQL warnings and REST errors,
//! raw, inside an escaped JSON string, percent- and XML-encoded (tests/support/tableau_server.rs,
//! `echo_text`). Every output is then scanned for each of them in each encoding: every text
//! column of every table and the raw bytes of the SQLite file, every recorded file, stdout,
//! stderr, the exposures YAML and exposures.json.

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

const NAME: &str = "pat \"n\\me\" <&%+>\nnamé-7Q";
const SECRET: &str = "s3\"cr\\t <&%+ x>\n€😀/'=Zk9";

/// The demo site with the hostile PAT added (same user as the fixture's own).
fn hostile_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("testdata/tableau/demo.site.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pats = v["sites"][0]["pats"].as_array_mut().unwrap();
    let user = pats[0]["user_luid"].clone();
    pats.push(serde_json::json!({"name": NAME, "secret": SECRET, "user_luid": user}));
    let path = dir.join("hostile.site.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    path
}

fn env() -> [(&'static str, &'static str); 2] {
    [("AE_TEST_PAT_NAME", NAME), ("AE_TEST_PAT_SECRET", SECRET)]
}

fn json(s: &str) -> String {
    let q = serde_json::to_string(s).unwrap();
    q[1..q.len() - 1].to_string()
}

fn json_ascii(s: &str, upper: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if !c.is_ascii() || c.is_ascii_control() || "<>&'=".contains(c) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&if upper {
                        format!("\\u{u:04X}")
                    } else {
                        format!("\\u{u:04x}")
                    });
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn percent(s: &str, upper: bool, plus: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b' ' if plus => "+".to_string(),
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => (b as char).to_string(),
            b if upper => format!("%{b:02X}"),
            b => format!("%{b:02x}"),
        })
        .collect()
}

/// Each way `value` can be written in what we keep.
fn encodings(value: &str) -> Vec<(&'static str, String)> {
    let mut all = vec![
        ("raw", value.to_string()),
        ("JSON-escaped", json(value)),
        ("JSON-escaped twice", json(&json(value))),
        ("JSON \\u-escaped (lower hex)", json_ascii(value, false)),
        ("JSON \\u-escaped (upper hex)", json_ascii(value, true)),
        ("XML-escaped", xml(value)),
        ("percent-encoded (upper hex)", percent(value, true, false)),
        ("percent-encoded (lower hex)", percent(value, false, false)),
        ("form-encoded", percent(value, true, true)),
    ];
    all.sort_by(|a, b| a.1.cmp(&b.1));
    all.dedup_by(|a, b| a.1 == b.1);
    all
}

/// Everything one run left: its database, recordings, stdout, stderr, YAML, exposures.json.
fn places(
    what: &str,
    ws: &Workspace,
    rec: &std::path::Path,
    out: &std::process::Output,
) -> Vec<(String, Vec<u8>)> {
    let mut all = vec![
        (format!("{what}: stdout"), out.stdout.clone()),
        (format!("{what}: stderr"), out.stderr.clone()),
    ];
    all.extend(database_places(what, &ws.db()));
    let recorded = folder_places(&format!("{what}: recording"), rec);
    assert!(!recorded.is_empty(), "{what}: nothing recorded");
    all.extend(recorded);
    all.extend(folder_places(
        &format!("{what}: exposures"),
        &ws.exposures_dir(),
    ));
    if let Ok(bytes) = std::fs::read(ws.path("exposures.json")) {
        all.push((format!("{what}: exposures.json"), bytes));
    }
    all
}

/// Every leak of every value in every encoding, as readable lines (empty: none).
fn leaks(values: &[(&str, String)], places: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (label, value) in values {
        for (how, needle) in encodings(value) {
            for (place, bytes) in places {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(format!("{label} ({how}: {needle:?}) in {place}"));
                }
            }
        }
    }
    found
}

fn hostile_values(server: &TableauServer) -> Vec<(&'static str, String)> {
    let mut values = vec![
        ("the PAT secret", SECRET.to_string()),
        ("the PAT name", NAME.to_string()),
    ];
    let tokens = server.issued_tokens();
    assert!(!tokens.is_empty(), "the server issued no token");
    values.extend(tokens.into_iter().map(|t| ("a session token", t)));
    values
}

/// The scan finds each encoding: a place holding one is reported.
#[test]
fn the_scan_finds_every_encoding() {
    for (how, needle) in encodings(SECRET) {
        let planted = vec![(
            "log".to_string(),
            format!("ok <redacted> then {needle} leaked").into_bytes(),
        )];
        let found = leaks(&[("the PAT secret", SECRET.to_string())], &planted);
        assert!(found.iter().any(|f| f.contains(how)), "{how}: {found:?}");
    }
    assert!(encodings(SECRET).len() >= 8, "{:?}", encodings(SECRET));
    assert!(leaks(
        &[("s", SECRET.to_string())],
        &[("log".into(), b"ok <redacted>".to_vec())]
    )
    .is_empty());
}

/// The server echoes every credential in a GraphQL warning on each workbooks page: the run
/// completes, keeps the warning (scrubbed) in `extract_warnings`, and no output holds any of
/// them in any encoding.
#[test]
fn hostile_secrets_echoed_in_warnings_leak_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TableauServer::start(
        &hostile_fixture(tmp.path()),
        Faults {
            echo_secrets_in_warnings: true,
            ..Faults::default()
        },
    );
    let mut site = SiteConfig::demo(&server.base_url);
    site.extra.push_str("    raw_responses: all\n");
    let ws = Workspace::new(&[site], None);
    let rec = tmp.path().join("rec");
    let out = ws.run(&["--record", rec.to_str().unwrap(), "-v"], "run", &env());
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "exit {:?}\n{}",
        out.status.code(),
        stderr(&out)
    );
    let conn = ws.conn();
    // The echo happened, and was kept, scrubbed.
    let echoed = count(
        &conn,
        "SELECT count(*) FROM extract_warnings WHERE code = 'ECHO' AND message LIKE '%<redacted>%'",
    );
    assert!(
        echoed >= 1,
        "no ECHO warning kept: {:?}",
        dump(&conn, "extract_warnings")
    );
    assert!(
        stderr(&out).contains("Tableau warning ECHO"),
        "{}",
        stderr(&out)
    );
    assert!(count(&conn, "SELECT count(*) FROM tableau_workbooks") > 0);
    assert!(!ws.yaml_files().is_empty(), "no YAML written");
    let found = leaks(
        &hostile_values(&server),
        &places("warnings run", &ws, &rec, &out),
    );
    assert!(
        found.is_empty(),
        "{} leaks:\n{}",
        found.len(),
        found.join("\n")
    );
    server.stop();
}

/// A REST error that echoes the credentials, at sign-in (name and secret from the request)
/// and at the projects list (the session's token too): the run fails, and neither the error on
/// stderr nor `runs.error` nor the recording holds any of them.
#[test]
fn hostile_secrets_echoed_in_errors_leak_nowhere() {
    for (at, call) in [(2, "auth/signin"), (3, "projects")] {
        let tmp = tempfile::tempdir().unwrap();
        let server = TableauServer::start(
            &hostile_fixture(tmp.path()),
            Faults {
                echo_secrets_error_at: vec![at],
                ..Faults::default()
            },
        );
        let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
        let rec = tmp.path().join("rec");
        let out = ws.run(&["--record", rec.to_str().unwrap()], "run", &env());
        assert_eq!(out.status.code(), Some(1), "{call}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("HTTP 400") && err.contains("400099") && err.contains("<redacted>"),
            "{call}: {err}"
        );
        let conn = ws.conn();
        let recorded: String = conn
            .query_row(
                "SELECT error FROM runs WHERE stage = 'extract' AND status = 'failed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            recorded.contains("400099") && recorded.contains("<redacted>"),
            "{call}: {recorded}"
        );
        let mut values = vec![
            ("the PAT secret", SECRET.to_string()),
            ("the PAT name", NAME.to_string()),
        ];
        values.extend(
            server
                .issued_tokens()
                .into_iter()
                .map(|t| ("a session token", t)),
        );
        let found = leaks(&values, &places(call, &ws, &rec, &out));
        assert!(
            found.is_empty(),
            "{call}: {} leaks:\n{}",
            found.len(),
            found.join("\n")
        );
        server.stop();
    }
}

/// A `run` that goes on to refresh and wait (active exposures on), the server echoing the
/// credentials in a GraphQL warning and in a failed job's notes: the notes are kept, scrubbed,
/// in `refresh_events` and on stdout, and no output holds any credential.
#[test]
fn hostile_secrets_echoed_in_job_notes_leak_nowhere() {
    const CUSTOMERS_DS: &str = "d0000000-0000-4000-8000-000000000201";
    let tmp = tempfile::tempdir().unwrap();
    let notes = crate::support::tableau_server::echo_text("no-token-here", NAME, SECRET);
    let faults = Faults {
        echo_secrets_in_warnings: true,
        job_outcomes: [(CUSTOMERS_DS.to_string(), (1, Some(notes)))]
            .into_iter()
            .collect(),
        ..Faults::default()
    };
    let server = TableauServer::start(&hostile_fixture(tmp.path()), faults);
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let target = ws.path("dbt/target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(
        repo().join("testdata/dbt/demo/artifacts/run_results.json"),
        target.join("run_results.json"),
    )
    .unwrap();
    let rec = tmp.path().join("rec");
    let mut e = env().to_vec();
    e.push(("DBT_ACTIVE_EXPOSURES", "1"));
    let out = ws.run_with(
        &["--record", rec.to_str().unwrap()],
        "run",
        &[
            "--now",
            "2026-11-25T02:00:00Z",
            "--wait",
            "--wait-timeout",
            "60",
        ],
        &e,
    );
    assert_eq!(out.status.code(), Some(4), "a job failed: {}", stderr(&out));
    let conn = ws.conn();
    let kept = count(&conn, "SELECT count(*) FROM refresh_events WHERE job_status = 'failed' AND job_notes LIKE '%<redacted>%'");
    assert_eq!(kept, 1, "{:?}", dump(&conn, "refresh_events"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[FAILED: session"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let found = leaks(
        &hostile_values(&server),
        &places("refresh run", &ws, &rec, &out),
    );
    assert!(
        found.is_empty(),
        "{} leaks:\n{}",
        found.len(),
        found.join("\n")
    );
    server.stop();
}
