//! Stage `match`: each Tableau table against the dbt nodes, by normalised key, in parallel
//! over workbooks (rayon); one thread writes the rows.
//!
//! Reads: dbt_nodes, relation_keys, tableau_tables (as `Extracted` and `RelationKey`s).
//! Writes: exposure_dependencies and unmatched_tables, replacing all their rows. Every table
//! that did not become a dependency gets an `unmatched_tables` row with a reason code and a
//! suggested fix, so "why is this dashboard not downstream of that model?" is one query.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use anyhow::Result;
use rayon::prelude::*;
use rusqlite::Connection;

use crate::bulk::Insert;
use crate::db::StageReport;
use crate::normalize::RelationKey;
use crate::rows::{Extracted, Node, TableUse};

#[derive(Debug)]
struct DbtNode<'a> {
    unique_id: &'a str,
    resource_type: &'a str,
    access: Option<&'a str>,
    enabled: bool,
    database: &'a str,
}

/// A Tableau table row with its key, as matching sees it.
#[derive(Debug)]
struct TableRow<'a> {
    row: &'a TableUse,
    key: Option<&'a RelationKey>,
    schema_ident: Option<&'a str>,
}

/// An `exposure_dependencies` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dependency {
    pub(crate) integration: String,
    pub(crate) workbook_id: String,
    pub(crate) unique_id: String,
    pub(crate) table_id: String,
    pub(crate) via: String,
    pub(crate) key: String,
}

#[derive(Debug)]
pub(crate) struct Unmatched {
    integration: String,
    workbook_id: String,
    table_id: String,
    via: String,
    via_id: String,
    table_name: Option<String>,
    key: Option<String>,
    reason: &'static str,
    candidates: Vec<String>,
    suggestion: String,
}

struct Index<'a> {
    nodes: Vec<DbtNode<'a>>,
    by_key: HashMap<&'a str, Vec<usize>>,
    by_schema_ident: HashMap<String, Vec<usize>>,
}

/// What matching decided: dependencies and unmatched tables, in workbook order.
pub(crate) struct Matched {
    pub(crate) dependencies: Vec<Dependency>,
    unmatched: Vec<Unmatched>,
}

pub(crate) fn run(conn: &mut Connection, x: &Extracted, keys: &[RelationKey]) -> Result<(StageReport, Vec<Dependency>)> {
    let started = std::time::Instant::now();
    let matched = compute(x, keys);
    crate::log::debug(&format!("stage match worked out in {:.3}s", started.elapsed().as_secs_f64()));
    let report = write(conn, &matched)?;
    Ok((report, matched.dependencies))
}

/// Matches every workbook's tables, workbooks in parallel.
pub(crate) fn compute(x: &Extracted, keys: &[RelationKey]) -> Matched {
    let (index, by_table) = rayon::join(|| build_index(x, keys), || table_keys(keys));
    // Each workbook's rows get their keys inside the parallel part: 300k lookups at L.
    let results: Vec<(Vec<Dependency>, Vec<Unmatched>)> = workbook_ranges(&x.tables)
        .par_iter()
        .map(|range| match_workbook(&index, &with_keys(&x.tables[range.clone()], &by_table)))
        .collect();
    let mut matched = Matched {
        dependencies: Vec::with_capacity(results.iter().map(|r| r.0.len()).sum()),
        unmatched: Vec::with_capacity(results.iter().map(|r| r.1.len()).sum()),
    };
    for (deps, unmatched) in results {
        matched.dependencies.extend(deps);
        matched.unmatched.extend(unmatched);
    }
    matched
}

/// Replaces every `exposure_dependencies` and `unmatched_tables` row, in one transaction.
pub(crate) fn write(conn: &mut Connection, matched: &Matched) -> Result<StageReport> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM exposure_dependencies", [])?;
    tx.execute("DELETE FROM unmatched_tables", [])?;
    {
        let mut dep = Insert::new(
            &tx,
            "exposure_dependencies",
            "INSERT INTO exposure_dependencies (integration, workbook_id, unique_id, table_id, via, key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut un = Insert::new(
            &tx,
            "unmatched_tables",
            "INSERT INTO unmatched_tables (integration, workbook_id, table_id, via, via_id, table_name, key, reason, candidates, suggestion)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for d in &matched.dependencies {
            dep.row(&[
                (&d.integration).into(),
                (&d.workbook_id).into(),
                (&d.unique_id).into(),
                (&d.table_id).into(),
                (&d.via).into(),
                (&d.key).into(),
            ])?;
        }
        for u in &matched.unmatched {
            let candidates = serde_json::to_string(&u.candidates)?;
            un.row(&[
                (&u.integration).into(),
                (&u.workbook_id).into(),
                (&u.table_id).into(),
                (&u.via).into(),
                (&u.via_id).into(),
                (&u.table_name).into(),
                (&u.key).into(),
                u.reason.into(),
                (&candidates).into(),
                (&u.suggestion).into(),
            ])?;
        }
    }
    let row_counts = [
        ("exposure_dependencies".to_string(), matched.dependencies.len() as i64),
        ("unmatched_tables".to_string(), matched.unmatched.len() as i64),
    ]
    .into();
    tx.commit()?;
    Ok(StageReport { row_counts, ..Default::default() })
}

/// Every dependency, in the table's key order (integration, workbook_id, unique_id).
pub(crate) fn load(db: &std::path::Path) -> Result<Vec<Dependency>> {
    let conn = crate::db::reader(db)?;
    let mut st = conn.prepare(
        "SELECT integration, workbook_id, unique_id, table_id, via, key FROM exposure_dependencies
         ORDER BY integration, workbook_id, unique_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Dependency {
            integration: r.get(0)?,
            workbook_id: r.get(1)?,
            unique_id: r.get(2)?,
            table_id: r.get(3)?,
            via: r.get(4)?,
            key: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The dbt nodes that have a key, in unique_id order, by key and by `schema.identifier`.
fn build_index<'a>(x: &'a Extracted, keys: &'a [RelationKey]) -> Index<'a> {
    let nodes: HashMap<&str, &Node> = x.nodes.iter().map(|n| (n.unique_id.as_str(), n)).collect();
    let mut index = Index { nodes: Vec::new(), by_key: HashMap::default(), by_schema_ident: HashMap::default() };
    for k in keys.iter().filter(|k| k.side == "dbt" && k.status == "ok") {
        let (Some(n), Some(key), Some(si)) = (nodes.get(k.reference.as_str()), k.key.as_deref(), k.schema_ident()) else {
            continue;
        };
        let i = index.nodes.len();
        index.nodes.push(DbtNode {
            unique_id: &n.unique_id,
            resource_type: &n.resource_type,
            access: n.access.as_deref(),
            enabled: n.enabled,
            database: k.database.as_deref().unwrap_or_default(),
        });
        index.by_key.entry(key).or_default().push(i);
        index.by_schema_ident.entry(si).or_default().push(i);
    }
    index
}

/// Each Tableau table's key and `schema.identifier`, worked out once per table.
fn table_keys(keys: &[RelationKey]) -> HashMap<(&str, &str), (&RelationKey, Option<String>)> {
    keys.iter()
        .filter(|k| k.side == "tableau")
        .map(|k| ((k.integration.as_str(), k.reference.as_str()), (k, k.schema_ident())))
        .collect()
}

/// The index ranges of each workbook's rows: rows come in key order, so a workbook's rows
/// are contiguous.
fn workbook_ranges(tables: &[TableUse]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        match out.last_mut() {
            Some(r) if tables[r.start].integration == t.integration && tables[r.start].workbook_id == t.workbook_id => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// One workbook's rows with their tables' keys.
fn with_keys<'a>(rows: &'a [TableUse], by_table: &'a HashMap<(&'a str, &'a str), (&'a RelationKey, Option<String>)>) -> Vec<TableRow<'a>> {
    rows.iter()
        .map(|t| {
            let found = by_table.get(&(t.integration.as_str(), t.table_id.as_str()));
            TableRow { row: t, key: found.map(|f| f.0), schema_ident: found.and_then(|f| f.1.as_deref()) }
        })
        .collect()
}

enum Outcome<'a> {
    Matched(&'a str),
    Unmatched { reason: &'static str, candidates: Vec<String>, suggestion: String },
}

fn match_workbook(index: &Index, rows: &[TableRow]) -> (Vec<Dependency>, Vec<Unmatched>) {
    let mut deps: BTreeMap<&str, Dependency> = BTreeMap::new();
    let mut unmatched = Vec::new();
    for tr in rows {
        let row = tr.row;
        let key = tr.key.and_then(|k| k.key.clone());
        match match_table(index, tr) {
            Outcome::Matched(uid) => {
                deps.entry(uid).or_insert_with(|| Dependency {
                    integration: row.integration.clone(),
                    workbook_id: row.workbook_id.clone(),
                    unique_id: uid.to_string(),
                    table_id: row.table_id.clone(),
                    via: row.via.to_string(),
                    key: key.unwrap_or_default(),
                });
            }
            Outcome::Unmatched { reason, candidates, suggestion } => unmatched.push(Unmatched {
                integration: row.integration.clone(),
                workbook_id: row.workbook_id.clone(),
                table_id: row.table_id.clone(),
                via: row.via.to_string(),
                via_id: row.via_id.clone(),
                table_name: row.name.clone(),
                key,
                reason,
                candidates,
                suggestion,
            }),
        }
    }
    (deps.into_values().collect(), unmatched)
}

fn ids(index: &Index, list: &[usize]) -> Vec<String> {
    list.iter().map(|&i| index.nodes[i].unique_id.to_string()).collect()
}

fn match_table<'a>(index: &Index<'a>, tr: &TableRow) -> Outcome<'a> {
    let row = tr.row;
    if row.via == "custom_sql" && row.table_id.is_empty() {
        return Outcome::Unmatched {
            reason: "custom_sql",
            candidates: vec![],
            suggestion: "Tableau could not parse this custom SQL (isUnsupportedCustomSql), so the tables it reads are unknown. Move the query into a dbt model and point the workbook at that model; table tableau_custom_sql holds the query text".into(),
        };
    }
    match tr.key.map(|k| k.status) {
        Some("redacted") | None => {
            return Outcome::Unmatched {
                reason: "redacted_name",
                candidates: vec![],
                suggestion: "Tableau returned this table without its name (Catalog permissions). Give the PAT's user the Site Administrator Explorer role, or Catalog view rights, and extract again".into(),
            }
        }
        Some("file") => {
            return Outcome::Unmatched {
                reason: "file_connection",
                candidates: vec![],
                suggestion: "Reads a file or web connector, not a warehouse table: there is nothing in dbt to depend on".into(),
            }
        }
        _ => {}
    }
    let key = tr.key.and_then(|k| k.key.as_deref()).unwrap_or_default();
    let exact = index.by_key.get(key).map(Vec::as_slice).unwrap_or(&[]);
    let tableau_db = tr.key.and_then(|k| k.database.as_deref()).unwrap_or_default();
    // Tableau without a database name: the schema and identifier must then be unique in dbt.
    let candidates: &[usize] = if exact.is_empty() && tableau_db.is_empty() {
        tr.schema_ident.and_then(|si| index.by_schema_ident.get(si)).map(Vec::as_slice).unwrap_or(&[])
    } else {
        exact
    };
    let enabled: Vec<usize> = candidates.iter().copied().filter(|&i| index.nodes[i].enabled).collect();
    if enabled.len() > 1 {
        return Outcome::Unmatched {
            reason: "ambiguous",
            candidates: ids(index, &enabled),
            suggestion: format!(
                "{} dbt nodes have the key {key} once case and quotes are folded; autoexpose does not pick one. Give them distinct names",
                enabled.len()
            ),
        };
    }
    if let Some(&i) = enabled.first() {
        let n = &index.nodes[i];
        if n.resource_type == "model" && n.access == Some("private") {
            return Outcome::Unmatched {
                reason: "private_model",
                candidates: vec![n.unique_id.to_string()],
                suggestion: format!(
                    "{} is private to its group, and dbt refuses references to it from an exposure. Make it protected or public, or point the workbook at a public model",
                    n.unique_id
                ),
            };
        }
        return Outcome::Matched(n.unique_id);
    }
    if !candidates.is_empty() {
        return Outcome::Unmatched {
            reason: "disabled_node",
            candidates: ids(index, candidates),
            suggestion: format!(
                "{} is disabled in dbt (enabled: false), and dbt fails on references to disabled nodes. Enable it, or point the workbook at an enabled model",
                ids(index, candidates).join(", ")
            ),
        };
    }
    if let Some(same) = tr.schema_ident.and_then(|si| index.by_schema_ident.get(si)) {
        let dbs: Vec<&str> = same.iter().map(|&i| index.nodes[i].database).collect();
        return Outcome::Unmatched {
            reason: "database_mismatch",
            candidates: ids(index, same),
            suggestion: format!(
                "dbt builds {} in database {}, Tableau reads database {tableau_db:?}. If they are the same tables, add `database_aliases: {{{tableau_db}: {}}}` to this tableau integration in the config",
                tr.schema_ident.unwrap_or(""),
                dbs.join(", "),
                dbs.first().copied().unwrap_or("")
            ),
        };
    }
    Outcome::Unmatched {
        reason: "not_in_manifest",
        candidates: vec![],
        suggestion: format!(
            "No dbt model, seed, snapshot or source is built as {key}. If dbt builds it under another name, check the Tableau connection's database and schema; otherwise it is not managed by dbt"
        ),
    }
}
