//! Stage `match`: each Tableau table against the dbt nodes, by normalised key, in parallel
//! over workbooks (rayon); one thread writes the rows.
//!
//! Reads: dbt_nodes, relation_keys, tableau_tables.
//! Writes: exposure_dependencies and unmatched_tables, replacing all their rows. Every table
//! that did not become a dependency gets an `unmatched_tables` row with a reason code and a
//! suggested fix, so "why is this dashboard not downstream of that model?" is one query.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use rayon::prelude::*;
use rusqlite::{params, Connection};

use crate::db::{count_rows, StageReport};

#[derive(Debug)]
struct DbtNode {
    unique_id: String,
    resource_type: String,
    access: Option<String>,
    enabled: bool,
    database: String,
}

#[derive(Debug)]
struct TableRow {
    integration: String,
    workbook_id: String,
    via: String,
    via_id: String,
    table_id: String,
    name: Option<String>,
    key: Option<String>,
    database: Option<String>,
    schema_ident: Option<String>,
    status: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Dependency {
    integration: String,
    workbook_id: String,
    unique_id: String,
    table_id: String,
    via: String,
    key: String,
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

struct Index {
    nodes: Vec<DbtNode>,
    by_key: HashMap<String, Vec<usize>>,
    by_schema_ident: HashMap<String, Vec<usize>>,
}

pub(crate) fn run(conn: &mut Connection) -> Result<StageReport> {
    let index = load_index(conn)?;
    let groups = load_tables(conn)?;
    let results: Vec<(Vec<Dependency>, Vec<Unmatched>)> =
        groups.par_iter().map(|rows| match_workbook(&index, rows)).collect();

    let tx = conn.transaction()?;
    tx.execute("DELETE FROM exposure_dependencies", [])?;
    tx.execute("DELETE FROM unmatched_tables", [])?;
    {
        let mut dep = tx.prepare_cached(
            "INSERT INTO exposure_dependencies (integration, workbook_id, unique_id, table_id, via, key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut un = tx.prepare_cached(
            "INSERT INTO unmatched_tables (integration, workbook_id, table_id, via, via_id, table_name, key, reason, candidates, suggestion)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for (deps, unmatched) in &results {
            for d in deps {
                dep.execute(params![d.integration, d.workbook_id, d.unique_id, d.table_id, d.via, d.key])?;
            }
            for u in unmatched {
                un.execute(params![
                    u.integration,
                    u.workbook_id,
                    u.table_id,
                    u.via,
                    u.via_id,
                    u.table_name,
                    u.key,
                    u.reason,
                    serde_json::to_string(&u.candidates)?,
                    u.suggestion
                ])?;
            }
        }
    }
    let row_counts = count_rows(&tx, &["exposure_dependencies", "unmatched_tables"])?;
    tx.commit()?;
    Ok(StageReport { row_counts, ..Default::default() })
}

fn load_index(conn: &Connection) -> Result<Index> {
    let mut st = conn.prepare(
        "SELECT n.unique_id, n.resource_type, n.access, n.enabled, k.key, k.database, k.schema || '.' || k.identifier
         FROM dbt_nodes n JOIN relation_keys k ON k.side = 'dbt' AND k.ref = n.unique_id
         WHERE k.status = 'ok' ORDER BY n.unique_id",
    )?;
    let mut index = Index { nodes: Vec::new(), by_key: HashMap::new(), by_schema_ident: HashMap::new() };
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let i = index.nodes.len();
        let key: String = r.get(4)?;
        let si: String = r.get(6)?;
        index.nodes.push(DbtNode {
            unique_id: r.get(0)?,
            resource_type: r.get(1)?,
            access: r.get(2)?,
            enabled: r.get(3)?,
            database: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
        });
        index.by_key.entry(key).or_default().push(i);
        index.by_schema_ident.entry(si).or_default().push(i);
    }
    Ok(index)
}

/// Tableau table rows with their keys, grouped by workbook, in a stable order. The keys are
/// joined here from a map rather than in SQL: one sequential scan of each table.
fn load_tables(conn: &Connection) -> Result<Vec<Vec<TableRow>>> {
    type KeyRow = (Option<String>, Option<String>, Option<String>, String);
    let mut keys: HashMap<(String, String), KeyRow> = HashMap::new();
    {
        let mut st = conn.prepare(
            "SELECT integration, ref, key, database, schema || '.' || identifier, status FROM relation_keys WHERE side = 'tableau'",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            keys.insert((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?));
        }
    }
    let mut st = conn.prepare(
        "SELECT integration, workbook_id, via, via_id, table_id, name
         FROM tableau_tables ORDER BY integration, workbook_id, via, via_id, table_id",
    )?;
    let mut groups: Vec<Vec<TableRow>> = Vec::new();
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let integration: String = r.get(0)?;
        let workbook_id: String = r.get(1)?;
        let table_id: String = r.get(4)?;
        let (key, database, schema_ident, status) = match keys.get(&(integration.clone(), table_id.clone())) {
            Some((k, d, si, st)) => (k.clone(), d.clone(), si.clone(), Some(st.clone())),
            None => (None, None, None, None),
        };
        let row = TableRow {
            via: r.get(2)?,
            via_id: r.get(3)?,
            table_id,
            name: r.get(5)?,
            key,
            database,
            schema_ident,
            status,
            integration,
            workbook_id,
        };
        match groups.last_mut() {
            Some(g) if g[0].integration == row.integration && g[0].workbook_id == row.workbook_id => g.push(row),
            _ => groups.push(vec![row]),
        }
    }
    Ok(groups)
}

enum Outcome {
    Matched(String),
    Unmatched { reason: &'static str, candidates: Vec<String>, suggestion: String },
}

fn match_workbook(index: &Index, rows: &[TableRow]) -> (Vec<Dependency>, Vec<Unmatched>) {
    let mut deps: BTreeMap<String, Dependency> = BTreeMap::new();
    let mut unmatched = Vec::new();
    for row in rows {
        match match_table(index, row) {
            Outcome::Matched(uid) => {
                deps.entry(uid.clone()).or_insert_with(|| Dependency {
                    integration: row.integration.clone(),
                    workbook_id: row.workbook_id.clone(),
                    unique_id: uid,
                    table_id: row.table_id.clone(),
                    via: row.via.clone(),
                    key: row.key.clone().unwrap_or_default(),
                });
            }
            Outcome::Unmatched { reason, candidates, suggestion } => unmatched.push(Unmatched {
                integration: row.integration.clone(),
                workbook_id: row.workbook_id.clone(),
                table_id: row.table_id.clone(),
                via: row.via.clone(),
                via_id: row.via_id.clone(),
                table_name: row.name.clone(),
                key: row.key.clone(),
                reason,
                candidates,
                suggestion,
            }),
        }
    }
    (deps.into_values().collect(), unmatched)
}

fn ids(index: &Index, list: &[usize]) -> Vec<String> {
    list.iter().map(|&i| index.nodes[i].unique_id.clone()).collect()
}

fn match_table(index: &Index, row: &TableRow) -> Outcome {
    if row.via == "custom_sql" && row.table_id.is_empty() {
        return Outcome::Unmatched {
            reason: "custom_sql",
            candidates: vec![],
            suggestion: "Tableau could not parse this custom SQL (isUnsupportedCustomSql), so the tables it reads are unknown. Move the query into a dbt model and point the workbook at that model; table tableau_custom_sql holds the query text".into(),
        };
    }
    match row.status.as_deref() {
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
    let key = row.key.clone().unwrap_or_default();
    let exact = index.by_key.get(&key).map(Vec::as_slice).unwrap_or(&[]);
    let tableau_db = row.database.clone().unwrap_or_default();
    // Tableau without a database name: the schema and identifier must then be unique in dbt.
    let candidates: &[usize] = if exact.is_empty() && tableau_db.is_empty() {
        row.schema_ident.as_ref().and_then(|si| index.by_schema_ident.get(si)).map(Vec::as_slice).unwrap_or(&[])
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
        if n.resource_type == "model" && n.access.as_deref() == Some("private") {
            return Outcome::Unmatched {
                reason: "private_model",
                candidates: vec![n.unique_id.clone()],
                suggestion: format!(
                    "{} is private to its group, and dbt refuses references to it from an exposure. Make it protected or public, or point the workbook at a public model",
                    n.unique_id
                ),
            };
        }
        return Outcome::Matched(n.unique_id.clone());
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
    if let Some(same) = row.schema_ident.as_ref().and_then(|si| index.by_schema_ident.get(si)) {
        let dbs: Vec<String> = same.iter().map(|&i| index.nodes[i].database.clone()).collect();
        return Outcome::Unmatched {
            reason: "database_mismatch",
            candidates: ids(index, same),
            suggestion: format!(
                "dbt builds {} in database {}, Tableau reads database {tableau_db:?}. If they are the same tables, add `database_aliases: {{{tableau_db}: {}}}` to this tableau integration in the config",
                row.schema_ident.as_deref().unwrap_or(""),
                dbs.join(", "),
                dbs.first().map(String::as_str).unwrap_or("")
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
