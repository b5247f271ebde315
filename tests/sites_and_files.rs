//! What a run takes from a site and what it leaves in the dbt project: personal spaces left
//! out unless asked for, generated files of integrations that left the config, and the
//! summary (on stdout, counting tables rather than paths).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::*;
use crate::support::tableau_server::{Faults, TableauServer};

const DEMO_PAT: [(&str, &str); 2] = [
    ("AE_TEST_PAT_NAME", "autoexpose-demo"),
    ("AE_TEST_PAT_SECRET", "demo-pat-secret"),
];

fn mini_fixture() -> Value {
    serde_json::from_slice(&std::fs::read(repo().join("testdata/tableau/mini.site.json")).unwrap())
        .unwrap()
}

fn write_fixture(dir: &Path, f: &Value) -> PathBuf {
    let p = dir.join("site.json");
    std::fs::write(&p, serde_json::to_vec_pretty(f).unwrap()).unwrap();
    p
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The mini site has five workbooks in projects and two in personal spaces: one with no
/// project at all, one under a "Personal Space" that Query Projects does not list.
#[test]
fn personal_spaces_are_left_out_by_default_and_in_when_asked() {
    let server = TableauServer::start(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
    );
    let ws = Workspace::new(&[SiteConfig::mini(&server.base_url)], None);
    let out = ws.run(&[], "run", &MINI_PAT);
    assert_ok(&out);
    let conn = ws.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM tableau_workbooks"), 5);
    let left: Vec<(String, String, String)> = {
        let mut st = conn
            .prepare("SELECT name, reason, detail FROM tableau_left_out_workbooks ORDER BY name")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let names: Vec<&str> = left.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(names, ["Ann's scratch", "Bob drafts"]);
    assert!(
        left.iter()
            .all(|l| l.1 == "personal_space" && l.2.contains("include_personal_spaces: true")),
        "{left:?}"
    );
    assert!(
        !ws.yaml_files()
            .values()
            .any(|y| y.contains("scratch") || y.contains("Bob drafts")),
        "{:?}",
        ws.yaml_files()
    );
    let text = stdout(&out);
    assert!(text.contains("Dashboards seen:      5\n"), "{text}");
    assert!(text.contains("Workbooks left out:   2 (in personal spaces; include_personal_spaces: true imports them)"), "{text}");
    drop(conn);

    let config = std::fs::read_to_string(&ws.config).unwrap();
    std::fs::write(
        &ws.config,
        config.replace(
            "    page_size: 2\n",
            "    page_size: 2\n    include_personal_spaces: true\n",
        ),
    )
    .unwrap();
    let out = ws.run(&[], "run", &MINI_PAT);
    assert_ok(&out);
    let conn = ws.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM tableau_workbooks"), 7);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM tableau_left_out_workbooks"),
        0
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM exposures e JOIN tableau_workbooks w ON w.luid = e.asset_ref WHERE w.owner_username IN ('ann', 'bob') AND e.status = 'written'"), 2);
    assert!(!stdout(&out).contains("left out"), "{}", stdout(&out));
    server.stop();
}

/// With a `projects` list, personal spaces are in no selected project and stay out either way.
#[test]
fn a_projects_list_never_reaches_personal_spaces() {
    let server = TableauServer::start(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
    );
    let mut site = SiteConfig::mini(&server.base_url);
    site.projects = vec!["Sales".into()];
    site.extra = "    include_personal_spaces: true\n".into();
    let ws = Workspace::new(&[site], None);
    assert_ok(&ws.run(&[], "run", &MINI_PAT));
    let conn = ws.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM tableau_workbooks WHERE project_name = 'Sales'"
        ),
        3
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM tableau_workbooks"), 3);
    server.stop();
}

/// "Unmatched tables" counts tables: one read through an embedded and a published data
/// source is two paths in unmatched_tables and one table in the summary. The summary is the
/// run's result, on stdout; stderr holds none of it.
#[test]
fn summary_counts_tables_not_paths_and_goes_to_stdout() {
    let mut f = mini_fixture();
    let wb = &mut f["sites"][0]["workbooks"][0];
    let missing = json!({"id": "77777777-0000-4000-8000-000000000001", "luid": "e0000000-0000-4000-8000-000000000399",
        "name": "not_a_model", "fullName": "[demo].[main].[not_a_model]", "schema": "main", "connectionType": "duckdb",
        "database": {"id": "4b0b7480-86f4-5f23-8235-4fdae18621e0", "name": "demo", "connectionType": "duckdb", "__typename": "Database"}});
    let e = &mut wb["embeddedDatasources"][0];
    e["upstreamTables"]
        .as_array_mut()
        .unwrap()
        .push(missing.clone());
    e["upstreamDatasources"] = json!([{"id": "77777777-0000-4000-8000-000000000002", "luid": "e0000000-0000-4000-8000-000000000499",
        "name": "Shared", "hasExtracts": false, "upstreamTables": [missing]}]);
    let dir = tempfile::tempdir().unwrap();
    let server = TableauServer::start(&write_fixture(dir.path(), &f), Faults::default());
    let ws = Workspace::new(&[SiteConfig::mini(&server.base_url)], None);
    let out = ws.run(&[], "run", &MINI_PAT);
    assert_ok(&out);
    let conn = ws.conn();
    let paths = count(&conn, "SELECT count(*) FROM unmatched_tables WHERE relation_id = '77777777-0000-4000-8000-000000000001'");
    assert_eq!(
        paths, 2,
        "the fixture should read the table through two paths"
    );
    let tables = count(
        &conn,
        "SELECT count(DISTINCT relation_id) FROM unmatched_tables",
    );
    let all_paths = count(&conn, "SELECT count(*) FROM unmatched_tables");
    assert!(all_paths > tables);
    let in_manifest = count(
        &conn,
        "SELECT count(DISTINCT relation_id) FROM unmatched_tables WHERE reason = 'not_in_manifest'",
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Unmatched tables:     {tables}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  not_in_manifest     {in_manifest}\n")),
        "{text}"
    );
    assert!(
        text.contains("Exposures written:") && text.contains("SQLite file:"),
        "{text}"
    );
    let err = stderr(&out);
    assert!(
        !err.contains("Exposures written") && !err.contains("Unmatched tables"),
        "the summary went to stderr:\n{err}"
    );
    server.stop();
}

/// A site removed from the config takes its generated files with it, and the summary says
/// so; a generated file of an integration this database never wrote stays, with a warning.
#[test]
fn files_of_an_integration_that_left_the_config_are_removed_others_are_not() {
    let demo = TableauServer::start(
        &repo().join("testdata/tableau/demo.site.json"),
        Faults::default(),
    );
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
    let mut env = DEMO_PAT.to_vec();
    env.extend(MINI_PAT);
    assert_ok(&ws.run(&[], "run", &env));
    let before = ws.yaml_files();
    let mini_files: Vec<&String> = before.keys().filter(|f| f.starts_with("mini__")).collect();
    assert!(!mini_files.is_empty(), "{:?}", before.keys());
    // A generated file no config of this database wrote: another config's, in the same folder.
    let some_mini = &before[mini_files[0]];
    let foreign = some_mini.replace(
        "# autoexpose-integration: mini\n",
        "# autoexpose-integration: staging\n",
    );
    assert_ne!(&foreign, some_mini, "the integration mark moved");
    std::fs::write(ws.exposures_dir().join("staging__sales.yml"), &foreign).unwrap();

    // mini leaves the config.
    let demo_only = Workspace::new(&[SiteConfig::demo(&demo.base_url)], None);
    std::fs::copy(&demo_only.config, &ws.config).unwrap();
    let out = ws.run(&[], "run", &DEMO_PAT);
    assert_ok(&out);
    let after = ws.yaml_files();
    assert!(
        !after.keys().any(|f| f.starts_with("mini__")),
        "mini's files outlived it: {:?}",
        after.keys()
    );
    let demo_before: Vec<_> = before
        .iter()
        .filter(|(f, _)| f.starts_with("demo__"))
        .collect();
    let demo_after: Vec<_> = after
        .iter()
        .filter(|(f, _)| f.starts_with("demo__"))
        .collect();
    assert_eq!(demo_before, demo_after);
    assert_eq!(
        after.get("staging__sales.yml"),
        Some(&foreign),
        "another config's file was touched"
    );

    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "Files deleted (their integration left the config): {}",
            mini_files.len()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "models/imported_from_tableau/{} (mini)",
            mini_files[0]
        )),
        "{text}"
    );
    assert!(
        text.contains("models/imported_from_tableau/staging__sales.yml (staging)"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("Left models/imported_from_tableau/staging__sales.yml alone"),
        "{}",
        stderr(&out)
    );
    let conn = ws.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM emitted_files WHERE action = 'deleted_left_config'"
        ),
        mini_files.len() as i64
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM emitted_files WHERE action = 'not_ours'"
        ),
        1
    );
    drop(conn);

    // Once deleted, the files are no longer this database's: a copy put back is left alone.
    std::fs::write(
        ws.exposures_dir().join(mini_files[0]),
        &before[mini_files[0]],
    )
    .unwrap();
    let out = ws.run(&[], "run", &DEMO_PAT);
    assert_ok(&out);
    assert!(ws.exposures_dir().join(mini_files[0]).is_file());
    assert!(
        stderr(&out).contains(&format!(
            "Left models/imported_from_tableau/{} alone",
            mini_files[0]
        )),
        "{}",
        stderr(&out)
    );
    demo.stop();
    mini.stop();
}
