//! The M corpus in testdata/m_corpus/: every case's findings against what it expects (failing
//! with the case's name), and each file's findings snapshotted in full (servers, dialects, the
//! SQL as unescaped, miss details), so a change in what the reader says shows up in review.
//! Below it, inputs built to hurt the reader: deep, long, doubling, cyclic, garbage.

use std::collections::HashSet;
use std::path::PathBuf;

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
        Found::Table {
            connector,
            server,
            database,
            schema,
            name,
        } => Shown::Table {
            connector,
            server,
            database,
            schema,
            name,
        },
        Found::Sql {
            connector,
            server,
            dialect,
            database,
            schema,
            sql,
            tables,
        } => Shown::Sql {
            connector,
            server,
            dialect,
            database,
            schema,
            sql,
            tables: tables
                .as_ref()
                .ok()
                .map(|ts| ts.iter().map(TableRef::dotted).collect()),
            error: tables.err(),
        },
        Found::Miss { reason, detail } => Shown::Miss {
            reason: miss_text(reason),
            detail,
        },
    }
}

#[derive(Serialize)]
struct Outcome<'a> {
    name: &'a str,
    found: Vec<Shown>,
}

fn matches(want: &Want, got: &Found) -> bool {
    match (want, got) {
        (
            Want {
                table: Some([c, d, s, n]),
                ..
            },
            Found::Table {
                connector,
                database,
                schema,
                name,
                ..
            },
        ) => {
            c.as_ref() == Some(connector)
                && d == database
                && s == schema
                && n.as_ref() == Some(name)
        }
        (
            Want { sql: Some(w), .. },
            Found::Sql {
                connector,
                database,
                schema,
                tables,
                ..
            },
        ) => {
            let same_tables = match (&w.tables, tables) {
                (Some(want), Ok(got)) if !w.error => {
                    let want: HashSet<&str> = want.iter().map(String::as_str).collect();
                    let got: Vec<String> = got.iter().map(TableRef::dotted).collect();
                    want == got.iter().map(String::as_str).collect()
                }
                (None, Err(_)) => w.error,
                _ => false,
            };
            w.connector == *connector
                && w.database == *database
                && w.schema == *schema
                && same_tables
        }
        (
            Want {
                miss: Some([reason, part]),
                ..
            },
            Found::Miss { reason: r, detail },
        ) => miss_text(*r) == reason && detail.contains(part.as_str()),
        _ => false,
    }
}

fn corpus_files() -> Vec<PathBuf> {
    crate::corpus::files("m_corpus")
}

#[test]
fn corpus() {
    let settings = crate::corpus::snapshot_settings();
    let mut names = HashSet::new();
    let mut failures = Vec::new();
    let (mut cases, mut findings) = (0usize, 0usize);
    let files = corpus_files();
    assert!(!files.is_empty(), "no corpus in testdata/m_corpus");
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        let parsed: Vec<Case> =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut outcomes = Vec::new();
        for case in &parsed {
            let id = format!("{stem}/{}", case.name);
            assert!(
                names.insert(case.name.clone()),
                "{id}: case name used twice"
            );
            for w in &case.expect {
                let n = usize::from(w.table.is_some())
                    + usize::from(w.sql.is_some())
                    + usize::from(w.miss.is_some());
                assert_eq!(
                    n, 1,
                    "{id}: each expect item is one of table, sql, miss: {w:?}"
                );
            }
            assert!(!case.expect.is_empty(), "{id}: nothing expected");
            cases += 1;
            let expressions: Vec<(String, String)> = case
                .expressions
                .iter()
                .map(|e| (e.name.clone(), e.m.clone()))
                .collect();
            let parameters: Vec<(String, String)> = case
                .parameters
                .iter()
                .map(|e| (e.name.clone(), e.m.clone()))
                .collect();
            let ctx = Context {
                expressions: &expressions,
                parameters: &parameters,
            };
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
            outcomes.push(Outcome {
                name: &case.name,
                found: got.iter().map(shown).collect(),
            });
        }
        settings.bind(|| insta::assert_yaml_snapshot!(format!("m_corpus@{stem}"), outcomes));
    }
    println!(
        "m corpus: {cases} cases in {} files, {findings} findings",
        files.len()
    );
    assert!(cases >= 70, "the corpus has {cases} cases, fewer than 70");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// Inputs built to hurt the reader. Each must end in findings (a table where the M is fine, an
// unreadable miss naming the limit where it is not), fast, without a panic or a stack overflow.
// They call the evaluator without `read`'s catch_unwind, so a panic fails the test.

fn raw(text: &str, ctx: &Context) -> Vec<Found> {
    let mut found = super::resolve::Eval::new(ctx).read(text);
    found.sort_by_cached_key(super::sort_key);
    found.dedup();
    found
}

fn bare(text: &str) -> Vec<Found> {
    raw(text, &Context::default())
}

#[track_caller]
fn unreadable(found: &[Found], part: &str) {
    assert!(
        found.iter().any(|f| matches!(f, Found::Miss { reason: super::MissKind::Unreadable, detail } if detail.contains(part))),
        "expected an unreadable miss mentioning {part:?}, got {} findings: {:?}",
        found.len(),
        &found[..found.len().min(3)]
    );
}

#[track_caller]
fn one_table(found: &[Found], want: &str) {
    match found {
        [Found::Table { name, .. }] if name == want => {}
        _ => panic!(
            "expected table {want}, got {} findings: {:?}",
            found.len(),
            &found[..found.len().min(3)]
        ),
    }
}

const SRC: &str = r#"Sql.Database("sql01", "dw"){[Schema="dbo",Item="orders"]}[Data]"#;

#[test]
fn deep_nesting_is_unreadable_not_a_stack_overflow() {
    let n = 10_000;
    for (open, close) in [
        ("(", ")"),
        ("{", "}"),
        ("Table.Buffer(", ")"),
        ("[a=", "]"),
        ("-", ""),
        ("not ", ""),
        ("each ", ""),
    ] {
        let text = format!("{}{SRC}{}", open.repeat(n), close.repeat(n));
        unreadable(&bare(&text), "nests deeper");
    }
    let text = format!("{}{SRC}{}", "let a = ".repeat(n), " in a".repeat(n));
    unreadable(&bare(&text), "nests deeper");
    let text = format!("{}{SRC}{}", "if true then ".repeat(n), " else 1".repeat(n));
    unreadable(&bare(&text), "nests deeper");
    let text = format!("{}1", "(x) => ".repeat(n));
    unreadable(&bare(&text), "nests deeper");
    // Unbalanced, and brackets only.
    unreadable(&bare(&"(".repeat(n)), "not closed");
    unreadable(&bare(&"{[(".repeat(n)), "not closed");
    unreadable(&bare(&")]}".repeat(n)), "closing bracket");
}

#[test]
fn long_chains_are_read() {
    let n = 10_000;
    // Steps each naming the one before.
    let mut text = format!("let s0 = {SRC}");
    for i in 1..n {
        text.push_str(&format!(
            ",\n    s{i} = Table.SelectRows(s{}, each [x] > {i})",
            i - 1
        ));
    }
    text.push_str(&format!("\nin\n    s{}", n - 1));
    one_table(&bare(&text), "orders");
    // The same, steps written last first.
    let mut text = String::from("let ");
    for i in (1..n).rev() {
        text.push_str(&format!("s{i} = Table.Buffer(s{}), ", i - 1));
    }
    text.push_str(&format!("s0 = {SRC} in s{}", n - 1));
    one_table(&bare(&text), "orders");
    // A flat operator chain and a long postfix chain.
    one_table(
        &bare(&format!("let t = {SRC} in {}t", "t & ".repeat(n))),
        "orders",
    );
    one_table(&bare(&format!("{SRC}{}", "[Data]".repeat(n))), "orders");
    // A list of 10k tables (one, deduplicated) and of 10k texts.
    one_table(
        &bare(&format!(
            "let t = {SRC} in Table.Combine({{{}t}})",
            "t, ".repeat(n)
        )),
        "orders",
    );
    let found = bare(&format!("Table.FromRows({{{}\"x\"}})", "\"x\", ".repeat(n)));
    assert!(
        matches!(
            &found[..],
            [Found::Miss {
                reason: super::MissKind::NoSource,
                ..
            }]
        ),
        "{found:?}"
    );
}

#[test]
fn shared_expression_chains_and_cycles() {
    // A chain of 2,000 shared expressions: read, or a miss naming the limit, never a crash.
    let n = 2_000;
    let mut exprs: Vec<(String, String)> = (1..n)
        .map(|i| (format!("q{i}"), format!("Table.Buffer(q{})", i - 1)))
        .collect();
    exprs.push(("q0".into(), SRC.into()));
    let found = raw(
        &format!("q{}", n - 1),
        &Context {
            expressions: &exprs,
            parameters: &[],
        },
    );
    assert!(
        matches!(
            &found[..],
            [Found::Table { .. }]
                | [Found::Miss {
                    reason: super::MissKind::Unreadable,
                    ..
                }]
        ),
        "{found:?}"
    );
    // A ring of 1,000.
    let ring: Vec<(String, String)> = (0..1_000)
        .map(|i| (format!("r{i}"), format!("r{}", (i + 1) % 1_000)))
        .collect();
    let found = raw(
        "r0",
        &Context {
            expressions: &ring,
            parameters: &[],
        },
    );
    assert!(
        matches!(
            &found[..],
            [Found::Miss {
                reason: super::MissKind::Unreadable,
                ..
            }]
        ),
        "{found:?}"
    );
    // Steps in a cycle, a step naming itself through a function, recursion without end.
    unreadable(&bare("let a = b, b = c, c = a in a"), "refers to itself");
    unreadable(&bare("let f = (x) => f(x) in f(1)"), "");
    unreadable(
        &bare("let f = (x) => @f({x, x}) in Table.Combine(f(1))"),
        "",
    );
    let mutual = [
        ("f".to_string(), "(x) => g(x)".to_string()),
        ("g".to_string(), "(x) => f(x)".to_string()),
    ];
    unreadable(
        &raw(
            "f(1)",
            &Context {
                expressions: &mutual,
                parameters: &[],
            },
        ),
        "",
    );
}

#[test]
fn doubling_is_bounded() {
    // Each step doubles the value before: 2^60 parts if anything copied or walked them all.
    let steps = 60;
    let chain = |first: &str, step: &dyn Fn(usize) -> String| {
        let mut text = format!("let a0 = {first}");
        for i in 1..=steps {
            text.push_str(&format!(", a{i} = {}", step(i - 1)));
        }
        text.push_str(&format!(" in a{steps}"));
        text
    };
    // What each gives: the table (when repeats are merged as they are made), the limit, or no
    // source at all (lists and texts of literals).
    for (first, step) in [
        (
            "{1}",
            Box::new(|p: usize| format!("a{p} & a{p}")) as Box<dyn Fn(usize) -> String>,
        ),
        ("{1}", Box::new(|p: usize| format!("{{a{p}, a{p}}}"))),
        ("\"x\"", Box::new(|p: usize| format!("a{p} & a{p}"))),
        (
            "[x=1]",
            Box::new(|p: usize| format!("[l = a{p}, r = a{p}]")),
        ),
        (SRC, Box::new(|p: usize| format!("{{a{p}, a{p}}}"))),
        (
            SRC,
            Box::new(|p: usize| format!("Table.Combine({{a{p}, a{p}}})")),
        ),
        (
            SRC,
            Box::new(|p: usize| format!("if x then a{p} else a{p}")),
        ),
        (
            SRC,
            Box::new(|p: usize| format!("Table.NestedJoin(a{p}, {{}}, a{p}, {{}}, \"j\")")),
        ),
        (SRC, Box::new(|p: usize| format!("try a{p} otherwise a{p}"))),
    ] {
        let text = chain(first, &*step);
        let found = bare(&text);
        match &found[..] {
            [Found::Table { name, .. }] if name == "orders" && first == SRC => {}
            [Found::Miss {
                reason: super::MissKind::Unreadable,
                detail,
            }] if detail.contains("limit")
                || detail.contains("alternative")
                || detail.contains("nests deeper") => {}
            [Found::Miss {
                reason: super::MissKind::NoSource,
                ..
            }] if first != SRC => {}
            _ => panic!("{text}: {found:?}"),
        }
    }
    // Sources that differ at every step: 2^60 alternatives.
    let text = chain(r#""t""#, &|p| {
        format!(r#"if x then a{p} & "0" else a{p} & "1""#)
    });
    let found = bare(&format!(
        "{} {{0}}",
        text.replace(
            " in a60",
            &format!(
                ", q = Sql.Database(\"s\", \"d\"){{[Schema=\"dbo\",Item=a{steps}]}}[Data] in q"
            )
        )
    ));
    unreadable(&found, "");
    // Doubling through a function applied over and over.
    let nested = format!("{}t{}", "d(".repeat(60), ")".repeat(60));
    let text = format!("let t = {SRC}, d = (x) => {{x, x}} in Table.Combine({nested})");
    assert!(!bare(&text).is_empty());
    let text = format!("let t = \"x\", d = (x) => x & x in Sql.Database(\"s\", {nested})");
    assert!(!bare(&text).is_empty());
    // Functions calling functions: each level calls the next twice.
    let mut text = String::from("let f0 = (x) => {x}");
    for i in 1..=40 {
        text.push_str(&format!(", f{i} = (x) => {{f{p}(x), f{p}(x)}}", p = i - 1));
    }
    text.push_str(&format!(" in Table.Combine(f40({SRC}))"));
    let found = bare(&text);
    assert!(!found.is_empty());
}

/// A small deterministic generator (xorshift) for the garbage below.
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    // Random bytes, and random M-ish tokens.
    let pieces = [
        "let",
        "in",
        " ",
        "=",
        ",",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "\"",
        "#\"",
        "#(",
        "#(lf)",
        "each",
        "if",
        "then",
        "else",
        "=>",
        "&",
        "??",
        "meta",
        "Sql.Database",
        "Snowflake.Databases",
        "Value.NativeQuery",
        "Name=",
        "Kind=",
        "Schema=",
        "Item=",
        "[Data]",
        "x",
        "@",
        "!",
        "...",
        "..",
        "//",
        "/*",
        "*/",
        "\n",
        "#table",
        "#date",
        "0x",
        "1e",
        "try",
        "otherwise",
        "as",
        "is",
        "type",
        "table",
        "nullable",
        "optional",
        "section",
        ";",
        "\u{0}",
        "é",
        "\u{FEFF}",
    ];
    for _ in 0..2_000 {
        let len = (xorshift(&mut seed) % 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!bare(&text).is_empty());
        let n = (xorshift(&mut seed) % 40) as usize;
        let text: String = (0..n)
            .map(|_| pieces[(xorshift(&mut seed) % pieces.len() as u64) as usize])
            .collect();
        assert!(!bare(&text).is_empty(), "{text:?}");
    }
    // Every prefix and suffix of every corpus case.
    for file in corpus_files() {
        let cases: Vec<Case> =
            serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for case in &cases {
            let m = case.m.as_str();
            for (i, _) in m.char_indices().step_by(3) {
                assert!(!bare(&m[..i]).is_empty());
                assert!(!bare(&m[i..]).is_empty());
            }
        }
    }
}
