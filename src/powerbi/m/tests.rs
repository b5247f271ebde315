//! The M corpus in testdata/m_corpus/: every case's findings against what it expects (failing
//! with the case's name), and each file's findings snapshotted in full (servers, dialects, the
//! SQL as unescaped, miss details), so a change in what the reader says shows up in review.
//! Below it, inputs built to hurt the reader: deep, long, doubling, cyclic, garbage.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{read, Context, Found};
use crate::lineage::{Dialect, ParseFailure, TableRef};
use crate::powerbi::store::miss_text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    m: String,
    /// Shared expressions (and parameters), in the scan's order.
    #[serde(default)]
    expressions: Vec<Named>,
    /// Parameter values from `datasets/{id}/parameters`.
    #[serde(default)]
    parameters: Vec<Named>,
    expect: Vec<Want>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: String,
    #[serde(alias = "value")]
    m: String,
}

/// One expected finding: exactly one of the three.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Want {
    /// connector, database, schema, name (`~` for a part the connector has not).
    table: Option<[Option<String>; 4]>,
    sql: Option<WantSql>,
    /// reason (as stored: `file_connection`, …) and a part of the detail.
    miss: Option<[String; 2]>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WantSql {
    connector: String,
    database: Option<String>,
    schema: Option<String>,
    /// The tables the lineage module reads, dotted (`TableRef::dotted`); absent when the SQL
    /// does not parse (`error: true`).
    #[serde(default)]
    tables: Option<Vec<String>>,
    #[serde(default)]
    error: bool,
}

/// A finding as the snapshot shows it.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Shown {
    Table {
        connector: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        database: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        schema: Option<String>,
        name: String,
    },
    Sql {
        connector: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
        dialect: Dialect,
        #[serde(skip_serializing_if = "Option::is_none")]
        database: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        schema: Option<String>,
        sql: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        tables: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ParseFailure>,
    },
    Miss {
        reason: &'static str,
        detail: String,
    },
}

fn shown(f: &Found) -> Shown {
    match f.clone() {
        Found::Table { connector, server, database, schema, name } => Shown::Table { connector, server, database, schema, name },
        Found::Sql { connector, server, dialect, database, schema, sql, tables } => Shown::Sql {
            connector,
            server,
            dialect,
            database,
            schema,
            sql,
            tables: tables.as_ref().ok().map(|ts| ts.iter().map(TableRef::dotted).collect()),
            error: tables.err(),
        },
        Found::Miss { reason, detail } => Shown::Miss { reason: miss_text(reason), detail },
    }
}

#[derive(Serialize)]
struct Outcome<'a> {
    name: &'a str,
    found: Vec<Shown>,
}

fn matches(want: &Want, got: &Found) -> bool {
    match (want, got) {
        (Want { table: Some([c, d, s, n]), .. }, Found::Table { connector, database, schema, name, .. }) => {
            c.as_ref() == Some(connector) && d == database && s == schema && n.as_ref() == Some(name)
        }
        (Want { sql: Some(w), .. }, Found::Sql { connector, database, schema, tables, .. }) => {
            let same_tables = match (&w.tables, tables) {
                (Some(want), Ok(got)) if !w.error => {
                    let want: HashSet<&str> = want.iter().map(String::as_str).collect();
                    let got: Vec<String> = got.iter().map(TableRef::dotted).collect();
                    want == got.iter().map(String::as_str).collect()
                }
                (None, Err(_)) => w.error,
                _ => false,
            };
            w.connector == *connector && w.database == *database && w.schema == *schema && same_tables
        }
        (Want { miss: Some([reason, part]), .. }, Found::Miss { reason: r, detail }) => {
            miss_text(*r) == reason && detail.contains(part.as_str())
        }
        _ => false,
    }
}

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/m_corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    let mut names = HashSet::new();
    let mut failures = Vec::new();
    let (mut cases, mut findings) = (0usize, 0usize);
    let files = corpus_files();
    assert!(!files.is_empty(), "no corpus in testdata/m_corpus");
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        let parsed: Vec<Case> = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut outcomes = Vec::new();
        for case in &parsed {
            let id = format!("{stem}/{}", case.name);
            assert!(names.insert(case.name.clone()), "{id}: case name used twice");
            for w in &case.expect {
                let n = usize::from(w.table.is_some()) + usize::from(w.sql.is_some()) + usize::from(w.miss.is_some());
                assert_eq!(n, 1, "{id}: each expect item is one of table, sql, miss: {w:?}");
            }
            assert!(!case.expect.is_empty(), "{id}: nothing expected");
            cases += 1;
            let expressions: Vec<(String, String)> = case.expressions.iter().map(|e| (e.name.clone(), e.m.clone())).collect();
            let parameters: Vec<(String, String)> = case.parameters.iter().map(|e| (e.name.clone(), e.m.clone())).collect();
            let ctx = Context { expressions: &expressions, parameters: &parameters };
            let got = read(&case.m, &ctx);
            findings += got.len();
            // Each expectation takes one finding; both lists must be used up.
            let mut left: Vec<&Found> = got.iter().collect();
            let mut unmet = Vec::new();
            for w in &case.expect {
                match left.iter().position(|g| matches(w, g)) {
                    Some(i) => {
                        left.remove(i);
                    }
                    None => unmet.push(format!("{w:?}")),
                }
            }
            if !unmet.is_empty() || !left.is_empty() {
                failures.push(format!("{id}:\n  expected but not found: {unmet:?}\n  found but not expected: {left:?}"));
            }
            outcomes.push(Outcome { name: &case.name, found: got.iter().map(shown).collect() });
        }
        settings.bind(|| insta::assert_yaml_snapshot!(format!("m_corpus@{stem}"), outcomes));
    }
    println!("m corpus: {cases} cases in {} files, {findings} findings", files.len());
    assert!(cases >= 70, "the corpus has {cases} cases, fewer than 70");
    assert!(failures.is_empty(), "{} of {cases} cases wrong:\n{}", failures.len(), failures.join("\n"));
}
