//! Bad input gets a clear message naming the file, field or HTTP call, a non-zero exit, and
//! leaves the previous SQLite rows and YAML files exactly as they were.

use std::collections::BTreeMap;

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

/// A workspace that already holds a good run of the recorded demo.
fn after_good_run() -> (
    Workspace,
    BTreeMap<String, String>,
    Vec<Vec<BTreeMap<String, serde_json::Value>>>,
) {
    let ws = Workspace::new(
        &[SiteConfig::demo("https://tableau.example.com")],
        Some(&repo().join("testdata/http/demo")),
    );
    assert_ok(&ws.run(&[], "run", &[]));
    let yaml = ws.yaml_files();
    assert!(!yaml.is_empty());
    let rows = snapshot_rows(&ws);
    (ws, yaml, rows)
}

fn snapshot_rows(ws: &Workspace) -> Vec<Vec<BTreeMap<String, serde_json::Value>>> {
    let conn = ws.conn();
    [
        "dbt_nodes",
        "tableau_workbooks",
        "bi_relations",
        "relation_keys",
        "exposure_dependencies",
        "unmatched_tables",
        "exposures",
    ]
    .iter()
    .map(|t| dump(&conn, t))
    .collect()
}

fn edit_config(ws: &Workspace, from: &str, to: &str) {
    let text = std::fs::read_to_string(&ws.config).unwrap();
    assert!(text.contains(from), "config has no {from:?}:\n{text}");
    std::fs::write(&ws.config, text.replacen(from, to, 1)).unwrap();
}

fn assert_failed_cleanly(
    ws: &Workspace,
    out: &std::process::Output,
    yaml: &BTreeMap<String, String>,
    rows: &[Vec<BTreeMap<String, serde_json::Value>>],
    expect: &[&str],
) {
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(out));
    let err = stderr(out);
    for e in expect {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
    assert_eq!(&ws.yaml_files(), yaml, "YAML changed after a failed run");
    assert_eq!(snapshot_rows(ws), rows, "rows changed after a failed run");
    let conn = ws.conn();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM runs WHERE status = 'failed'"),
        1
    );
}

#[test]
fn missing_manifest() {
    let (ws, yaml, rows) = after_good_run();
    edit_config(&ws, "artifacts/manifest.json", "artifacts/nope.json");
    let out = ws.run(&[], "run", &[]);
    assert_failed_cleanly(
        &ws,
        &out,
        &yaml,
        &rows,
        &["nope.json not found", "run `dbt parse` or `dbt build`"],
    );
}

#[test]
fn malformed_manifest() {
    let (ws, yaml, rows) = after_good_run();
    let bad = ws.path("bad_manifest.json");
    std::fs::write(&bad, "{\"metadata\": {\"dbt_schema_version\": \"https://schemas.getdbt.com/dbt/manifest/v12.json\"},\n \"nodes\": {,}}").unwrap();
    edit_config(
        &ws,
        &demo_manifest().display().to_string(),
        &bad.display().to_string(),
    );
    let out = ws.run(&[], "run", &[]);
    assert_failed_cleanly(
        &ws,
        &out,
        &yaml,
        &rows,
        &["bad_manifest.json: line 2, column 12"],
    );
}

/// The manifest is parsed while Tableau is read: a manifest that fails stops the requests
/// (none after the first answer), and its error is the one reported.
#[test]
fn malformed_manifest_stops_the_requests() {
    use crate::support::tableau_server::ServerOptions;
    let options = ServerOptions {
        latency_ms: 200,
        ..ServerOptions::default()
    };
    let server = TableauServer::start_with(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
        options,
    );
    let mut site = SiteConfig::mini(&server.base_url);
    site.page_size = 1;
    let probe = tempfile::tempdir().unwrap();
    let bad = probe.path().join("manifest.json");
    std::fs::write(&bad, "{\"metadata\": {\"dbt_schema_version\": \"https://schemas.getdbt.com/dbt/manifest/v12.json\"},\n \"nodes\": {,}}").unwrap();
    let ws = Workspace::with_manifest(&[site], None, &bad);
    let out = ws.run(&[], "run", &MINI_PAT);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("manifest.json: line 2, column 12"), "{err}");
    assert!(
        !err.contains("not sent"),
        "the cancelled requests' error hid the manifest's:\n{err}"
    );
    // A whole extraction of the mini site at page size 1 takes a dozen requests.
    assert!(
        server.request_count() <= 2,
        "{} requests after the manifest failed",
        server.request_count()
    );
    server.stop();
}

#[test]
fn wrong_pat() {
    let (ws, yaml, rows) = after_good_run();
    let server = TableauServer::start(
        &repo().join("testdata/tableau/demo.site.json"),
        Faults::default(),
    );
    edit_config(&ws, "https://tableau.example.com", &server.base_url);
    edit_config(&ws, "replay:", "# replay:");
    let out = ws.run(
        &[],
        "run",
        &[
            ("AE_TEST_PAT_NAME", "autoexpose-demo"),
            ("AE_TEST_PAT_SECRET", "wrong-secret"),
        ],
    );
    assert_failed_cleanly(
        &ws,
        &out,
        &yaml,
        &rows,
        &[
            "sign-in to Tableau site \"demo\"",
            "401001",
            "AE_TEST_PAT_NAME",
            "AE_TEST_PAT_SECRET",
        ],
    );
    assert!(!stderr(&out).contains("wrong-secret"));
    server.stop();
}

#[test]
fn missing_pat_env() {
    let ws = Workspace::new(&[SiteConfig::demo("http://127.0.0.1:9")], None);
    let out = ws.run(&[], "extract", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("env var AE_TEST_PAT_NAME is not set"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_config_key() {
    let (ws, yaml, rows) = after_good_run();
    edit_config(&ws, "exposures:\n", "exposures:\n  colour: blue\n");
    let out = ws.run(&[], "run", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("autoexpose.yml") && err.contains("unknown field `colour`"),
        "{err}"
    );
    assert_eq!(ws.yaml_files(), yaml);
    assert_eq!(snapshot_rows(&ws), rows);
}

#[test]
fn unreachable_server() {
    let (ws, yaml, rows) = after_good_run();
    // Port 9 (discard) on loopback: nothing listens there in a sandbox.
    edit_config(&ws, "https://tableau.example.com", "http://127.0.0.1:9");
    edit_config(&ws, "replay:", "# replay:");
    let out = ws.run(
        &[],
        "run",
        &[("AE_TEST_PAT_NAME", "n"), ("AE_TEST_PAT_SECRET", "s")],
    );
    assert_failed_cleanly(
        &ws,
        &out,
        &yaml,
        &rows,
        &["GET http://127.0.0.1:9/api/2.4/serverInfo"],
    );
}

#[test]
fn plain_http_is_refused_off_loopback() {
    let ws = Workspace::new(&[SiteConfig::demo("http://tableau.example.com")], None);
    let out = ws.run(
        &[],
        "extract",
        &[("AE_TEST_PAT_NAME", "n"), ("AE_TEST_PAT_SECRET", "s")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("plain http is refused"),
        "{}",
        stderr(&out)
    );
}

/// `run` writes on a second thread; a write that fails in its last stage (here: emit, whose
/// folder cannot be made under a file) must fail the run, record that stage as failed, keep
/// the earlier stages' commits, and leave the exposures rows and YAML as they were.
#[test]
fn emit_failing_on_the_writer_thread() {
    let (ws, yaml, rows) = after_good_run();
    // A file inside the project where emit's folder would go (a folder outside the project
    // is refused when the config is read, before any stage).
    std::fs::write(ws.path("dbt/blocker"), "").unwrap();
    edit_config(
        &ws,
        "dir: models/imported_from_tableau",
        "dir: blocker/exposures",
    );
    let out = ws.run(&[], "run", &[]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    assert!(
        stderr(&out).contains("blocker/exposures"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.yaml_files(), yaml, "YAML changed after a failed run");
    assert_eq!(snapshot_rows(&ws), rows, "rows changed after a failed run");
    let conn = ws.conn();
    let last: Vec<(String, String)> = {
        let mut st = conn
            .prepare("SELECT stage, status FROM runs ORDER BY run_id DESC LIMIT 4")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let want: Vec<(String, String)> = [
        ("emit", "failed"),
        ("match", "ok"),
        ("normalize", "ok"),
        ("extract", "ok"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(last, want);
}

/// A file that is not a manifest (no `nodes` or `sources`, or not an object) is refused
/// before anything is written or deleted, naming the file and the missing key.
#[test]
fn manifest_without_nodes_or_sources() {
    let (ws, yaml, rows) = after_good_run();
    let meta =
        r#""metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"}"#;
    let cases = [
        (
            format!("{{{meta}}}"),
            vec!["not_a_manifest.json: no `nodes` object", "`dbt parse`"],
        ),
        (
            format!(r#"{{{meta}, "nodes": {{}}}}"#),
            vec!["not_a_manifest.json: no `sources` object", "`dbt parse`"],
        ),
        (
            "[]".to_string(),
            vec![
                "not_a_manifest.json: line 1, column 1: not a JSON object",
                "`dbt parse`",
            ],
        ),
    ];
    let bad = ws.path("not_a_manifest.json");
    edit_config(
        &ws,
        &demo_manifest().display().to_string(),
        &bad.display().to_string(),
    );
    for (i, (body, expect)) in cases.iter().enumerate() {
        std::fs::write(&bad, body).unwrap();
        let out = ws.run(&[], "run", &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{body}: stderr:\n{}",
            stderr(&out)
        );
        let err = stderr(&out);
        for e in expect {
            assert!(err.contains(e), "{body}: stderr lacks {e:?}:\n{err}");
        }
        assert_eq!(ws.yaml_files(), yaml, "{body}: YAML changed");
        assert_eq!(snapshot_rows(&ws), rows, "{body}: rows changed");
        assert_eq!(
            count(
                &ws.conn(),
                "SELECT count(*) FROM runs WHERE status = 'failed'"
            ),
            i as i64 + 1
        );
    }
}

/// A manifest with no nodes after a run that had exposures depending on some: emit refuses
/// before touching a file, naming the manifest and the counts; `--allow-empty` accepts it.
/// (The earlier stages' tables do hold what was read: each stage commits on its own.)
#[test]
fn an_empty_manifest_after_a_full_one_is_refused_without_allow_empty() {
    let (ws, yaml, _) = after_good_run();
    let exposures_before = dump(&ws.conn(), "exposures");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo_manifest()).unwrap()).unwrap();
    m["nodes"] = serde_json::json!({});
    m["sources"] = serde_json::json!({});
    let empty = ws.path("empty_manifest.json");
    std::fs::write(&empty, serde_json::to_string(&m).unwrap()).unwrap();
    edit_config(
        &ws,
        &demo_manifest().display().to_string(),
        &empty.display().to_string(),
    );
    for command in ["run", "emit"] {
        let out = ws.run(&[], command, &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{command}: stderr:\n{}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains("empty_manifest.json has 0 enabled models, seeds, snapshots and sources"),
            "{command}: {err}"
        );
        assert!(
            err.contains("while the last emit had ") && err.contains("--allow-empty"),
            "{command}: {err}"
        );
        assert_eq!(ws.yaml_files(), yaml, "{command}: YAML changed");
        assert_eq!(
            dump(&ws.conn(), "exposures"),
            exposures_before,
            "{command}: exposures changed"
        );
    }
    let out = ws.run_with(&[], "run", &["--allow-empty"], &[]);
    assert_ok(&out);
    assert!(ws.yaml_files().is_empty(), "{:?}", ws.yaml_files().keys());
    // Now the last emit had nothing: an empty manifest again is not refused.
    assert_ok(&ws.run(&[], "run", &[]));
}

/// A site that answers with no workbooks after a run that had some: emit refuses, naming the
/// site and the count; `--allow-empty` accepts it and deletes the site's files.
#[test]
fn a_site_with_no_workbooks_after_a_full_one_is_refused_without_allow_empty() {
    let fixture = repo().join("testdata/tableau/mini.site.json");
    let server = TableauServer::start(&fixture, Faults::default());
    let ws = Workspace::new(&[SiteConfig::mini(&server.base_url)], None);
    assert_ok(&ws.run(&[], "run", &MINI_PAT));
    let yaml = ws.yaml_files();
    assert!(!yaml.is_empty());
    let exposures_before = dump(&ws.conn(), "exposures");
    let old_url = server.base_url.clone();
    server.stop();

    let mut site: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    site["sites"][0]["workbooks"] = serde_json::json!([]);
    site["sites"][0]["custom_sql"] = serde_json::json!([]);
    let dir = tempfile::tempdir().unwrap();
    let emptied = dir.path().join("mini.site.json");
    std::fs::write(&emptied, serde_json::to_string(&site).unwrap()).unwrap();
    let empty_server = TableauServer::start(&emptied, Faults::default());
    let text = std::fs::read_to_string(&ws.config).unwrap();
    std::fs::write(&ws.config, text.replace(&old_url, &empty_server.base_url)).unwrap();
    let out = ws.run(&[], "run", &MINI_PAT);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("has 0 workbooks in the selected projects, while the last emit had ")
            && err.contains("--allow-empty"),
        "{err}"
    );
    assert_eq!(ws.yaml_files(), yaml, "YAML changed");
    assert_eq!(
        dump(&ws.conn(), "exposures"),
        exposures_before,
        "exposures changed"
    );
    assert_ok(&ws.run_with(&[], "run", &["--allow-empty"], &MINI_PAT));
    assert!(ws.yaml_files().is_empty(), "{:?}", ws.yaml_files().keys());
    empty_server.stop();
}

/// A config error stops the run before any stage: exit 1, the message names the file and
/// the field, and no row or file changes.
fn assert_config_refused(
    ws: &Workspace,
    out: &std::process::Output,
    yaml: &BTreeMap<String, String>,
    rows: &[Vec<BTreeMap<String, serde_json::Value>>],
    expect: &[&str],
) {
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(out));
    let err = stderr(out);
    for e in expect {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
    assert_eq!(
        &ws.yaml_files(),
        yaml,
        "YAML changed after a refused config"
    );
    assert_eq!(
        snapshot_rows(ws),
        rows,
        "rows changed after a refused config"
    );
}

#[test]
fn exposures_dir_outside_the_project_is_refused() {
    let (ws, yaml, rows) = after_good_run();
    edit_config(&ws, "dir: models/imported_from_tableau", "dir: ../../x");
    let out = ws.run(&[], "run", &[]);
    assert_config_refused(
        &ws,
        &out,
        &yaml,
        &rows,
        &[
            "autoexpose.yml",
            "exposures.dir",
            "../../x",
            "inside dbt.project_dir",
        ],
    );
    assert!(!ws.path("../x").exists() && !ws.path("x").exists());

    // `a/../..` climbs out too, though it starts inside.
    edit_config(&ws, "dir: ../../x", "dir: models/../../x");
    let out = ws.run(&[], "run", &[]);
    assert_config_refused(
        &ws,
        &out,
        &yaml,
        &rows,
        &["exposures.dir", "models/../../x"],
    );
    assert!(!ws.path("x").exists());

    // A symlink inside the project pointing out of it.
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path("dbt/linked")).unwrap();
    edit_config(&ws, "dir: models/../../x", "dir: linked/exposures");
    let out = ws.run(&[], "run", &[]);
    assert_config_refused(
        &ws,
        &out,
        &yaml,
        &rows,
        &["exposures.dir", "linked/exposures", "symlink"],
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "emit wrote through the symlink"
    );

    // `..` that stays inside is fine.
    edit_config(
        &ws,
        "dir: linked/exposures",
        "dir: models/../models/imported_from_tableau",
    );
    assert_ok(&ws.run(&[], "run", &[]));
    assert_eq!(ws.yaml_files(), yaml);
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[test]
fn byte_order_marks_are_accepted() {
    let (ws, yaml, _) = after_good_run();
    let mut config = BOM.to_vec();
    config.extend(std::fs::read(&ws.config).unwrap());
    let mut manifest = BOM.to_vec();
    manifest.extend(std::fs::read(demo_manifest()).unwrap());
    let bom_manifest = ws.path("bom_manifest.json");
    std::fs::write(&bom_manifest, manifest).unwrap();
    std::fs::write(&ws.config, config).unwrap();
    edit_config(
        &ws,
        &demo_manifest().display().to_string(),
        &bom_manifest.display().to_string(),
    );
    let out = ws.run(&[], "run", &[]);
    assert_ok(&out);
    assert_eq!(ws.yaml_files(), yaml, "a BOM changed the output");
    // The run read the manifest with the BOM, not some other one.
    assert!(
        count(
            &ws.conn(),
            "SELECT count(*) FROM runs WHERE inputs LIKE '%bom_manifest.json%'"
        ) >= 1
    );
}

#[test]
fn db_that_is_not_a_database_is_named() {
    let (ws, yaml, rows) = after_good_run();
    let before = std::fs::read(&ws.config).unwrap();
    let out = ws.run(&["--db", ws.config.to_str().unwrap()], "run", &[]);
    // `--db` goes after the stage.
    let out = if stderr(&out).contains("unexpected argument") {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_autoexpose"));
        cmd.arg("run")
            .arg("--config")
            .arg(&ws.config)
            .arg("--db")
            .arg(&ws.config);
        cmd.output().unwrap()
    } else {
        out
    };
    assert_config_refused(
        &ws,
        &out,
        &yaml,
        &rows,
        &[
            "database",
            "autoexpose.yml",
            "--db",
            "file is not a database",
        ],
    );
    assert_eq!(
        std::fs::read(&ws.config).unwrap(),
        before,
        "the config file was changed"
    );
}

/// An error's cause is printed once: `Is a directory (os error 21)` is not repeated by the
/// context that wraps it.
#[test]
fn os_errors_print_once() {
    let ws = Workspace::new(
        &[SiteConfig::demo("https://tableau.example.com")],
        Some(&repo().join("testdata/http/demo")),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_autoexpose"))
        .arg("run")
        .arg("--config")
        .arg(ws.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&ws.dir.path().display().to_string()), "{err}");
    assert_eq!(err.matches("os error 21").count(), 1, "{err}");

    // The same for the manifest.
    edit_config(
        &ws,
        &demo_manifest().display().to_string(),
        &ws.path("dbt").display().to_string(),
    );
    let out = ws.run(&[], "run", &[]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("manifest"), "{err}");
    assert_eq!(err.matches("os error 21").count(), 1, "{err}");
}
