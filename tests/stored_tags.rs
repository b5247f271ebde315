//! A tag read back from the database that autoexpose does not know (a `via`, a `side`, a key
//! `status`, an emitted file's `action`) stops the stage that reads it: an error naming the
//! table, the column and the value, a non-zero exit, and the stage's tables as they were.
//! Before, an unknown `via` was read as "other", a side as "tableau" and a status as
//! "redacted", so a second integration's rows (or a newer autoexpose's) were silently changed.

use std::collections::BTreeMap;

use crate::common::*;

fn demo() -> Workspace {
    let ws = Workspace::new(
        &[SiteConfig::demo("https://tableau.example.com")],
        Some(&repo().join("testdata/http/demo")),
    );
    assert_ok(&ws.run(&[], "run", &[]));
    ws
}

type Dump = BTreeMap<String, Vec<BTreeMap<String, serde_json::Value>>>;

fn tables(ws: &Workspace, names: &[&str]) -> Dump {
    let conn = ws.conn();
    names
        .iter()
        .map(|t| (t.to_string(), dump(&conn, t)))
        .collect()
}

/// Runs `stage`, which must fail naming the database, `table`, `column` and `value`, and leave
/// `kept` as they were.
#[track_caller]
fn refused(ws: &Workspace, stage: &str, table: &str, column: &str, value: &str, kept: &[&str]) {
    let before = tables(ws, kept);
    let out = ws.run(&[], stage, &[]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && out.status.code().is_some_and(|c| c != 0),
        "{stage}: exit {:?}\n{err}",
        out.status.code()
    );
    let said = format!("table {table}, column {column}: unknown value \"{value}\"");
    assert!(
        err.contains(&said),
        "{stage}: the error does not say {said:?}:\n{err}"
    );
    assert!(
        err.contains(&ws.db().display().to_string()),
        "{stage}: the error does not name the database:\n{err}"
    );
    assert_eq!(
        tables(ws, kept),
        before,
        "{stage} changed its tables after refusing the row"
    );
}

#[test]
fn an_unknown_via_stops_every_stage_that_reads_the_tables() {
    let ws = demo();
    let n = ws
        .conn()
        .execute(
            "UPDATE bi_relations SET via = 'm_expression' WHERE (integration, asset_id, via, via_id, relation_id) IN
               (SELECT integration, asset_id, via, via_id, relation_id FROM bi_relations ORDER BY 1, 2, 3, 4, 5 LIMIT 1)",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    refused(
        &ws,
        "normalize",
        "bi_relations",
        "via",
        "m_expression",
        &["relation_keys"],
    );
    refused(
        &ws,
        "match",
        "bi_relations",
        "via",
        "m_expression",
        &["exposure_dependencies", "unmatched_tables"],
    );
    let files = ws.yaml_files();
    refused(
        &ws,
        "emit",
        "bi_relations",
        "via",
        "m_expression",
        &["exposures", "emitted_files"],
    );
    assert_eq!(
        ws.yaml_files(),
        files,
        "emit changed files after refusing a row"
    );

    // Put back, every stage reads it again.
    ws.conn()
        .execute(
            "UPDATE bi_relations SET via = 'embedded' WHERE via = 'm_expression'",
            [],
        )
        .unwrap();
    for stage in ["normalize", "match", "emit"] {
        assert_ok(&ws.run(&[], stage, &[]));
    }
}

#[test]
fn an_unknown_side_or_key_status_stops_match() {
    let ws = demo();
    let conn = ws.conn();
    conn.execute("UPDATE relation_keys SET side = 'powerbi' WHERE side = 'bi' AND ref = (SELECT min(ref) FROM relation_keys WHERE side = 'bi')", [])
        .unwrap();
    refused(
        &ws,
        "match",
        "relation_keys",
        "side",
        "powerbi",
        &["exposure_dependencies", "unmatched_tables"],
    );
    conn.execute(
        "UPDATE relation_keys SET side = 'bi' WHERE side = 'powerbi'",
        [],
    )
    .unwrap();
    conn.execute("UPDATE relation_keys SET status = 'stale' WHERE side = 'dbt' AND ref = (SELECT min(ref) FROM relation_keys WHERE side = 'dbt')", [])
        .unwrap();
    refused(
        &ws,
        "match",
        "relation_keys",
        "status",
        "stale",
        &["exposure_dependencies", "unmatched_tables"],
    );
    // normalize replaces the keys without reading them: it repairs the table.
    assert_ok(&ws.run(&[], "normalize", &[]));
    assert_ok(&ws.run(&[], "match", &[]));
}

#[test]
fn an_unknown_emitted_file_action_stops_emit() {
    let ws = demo();
    ws.conn().execute("UPDATE emitted_files SET action = 'archived' WHERE path = (SELECT min(path) FROM emitted_files)", []).unwrap();
    let files = ws.yaml_files();
    refused(
        &ws,
        "emit",
        "emitted_files",
        "action",
        "archived",
        &["exposures", "emitted_files"],
    );
    assert_eq!(ws.yaml_files(), files);
    // `run` reads it in its emit too, after extract, normalize and match ran.
    let out = ws.run(&[], "run", &[]);
    assert!(
        !out.status.success() && stderr(&out).contains("unknown value \"archived\""),
        "{}",
        stderr(&out)
    );
}
