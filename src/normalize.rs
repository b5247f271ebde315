//! Stage `normalize`: one comparable key per relation on both sides (see `keys.rs`).
//!
//! Reads: dbt_nodes, tableau_tables (and the config's database_aliases and default_schemas),
//! as `Extracted`.
//! Writes: relation_keys, replacing all its rows. A pure function of its inputs (`compute`):
//! the same rows in give the same rows out.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet as HashSet;

use anyhow::Result;
use rayon::prelude::*;
use rusqlite::Connection;

use crate::config::Config;
use crate::db::StageReport;
use crate::keys::{dbt_key, tableau_key, TableauTable};
use crate::rows::{Extracted, TableUse};
use crate::tags::{self, KeyStatus, Side};

/// `__typename`s and connection types that are files or web connectors, not warehouse tables.
const FILE_TYPES: &[&str] = &["File", "CloudFile", "WebDataConnector"];
const FILE_CONNECTIONS: &[&str] = &["excel-direct", "excel", "textscan", "hyper", "dataengine", "csv", "google-sheets", "box", "dropbox", "onedrive"];

/// One `relation_keys` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RelationKey {
    pub(crate) side: Side,
    pub(crate) integration: String,
    pub(crate) reference: String,
    pub(crate) key: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) identifier: Option<String>,
    pub(crate) derivation: String,
    pub(crate) status: KeyStatus,
}

impl RelationKey {
    /// `schema || '.' || identifier` as SQL has it: NULL when either is.
    pub(crate) fn schema_ident(&self) -> Option<String> {
        Some(format!("{}.{}", self.schema.as_deref()?, self.identifier.as_deref()?))
    }
}

pub(crate) fn run(conn: &mut Connection, config: &Config, x: &Extracted) -> Result<(StageReport, Vec<RelationKey>)> {
    let started = std::time::Instant::now();
    let keys = compute(x, config);
    crate::log::debug(&format!("stage normalize worked out in {:.3}s", started.elapsed().as_secs_f64()));
    let report = write(conn, &keys)?;
    Ok((report, keys))
}

/// Replaces every `relation_keys` row with `keys`, in one transaction.
pub(crate) fn write(conn: &mut Connection, keys: &[RelationKey]) -> Result<StageReport> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM relation_keys", [])?;
    {
        let mut ins = crate::bulk::Insert::new(
            &tx,
            "relation_keys",
            "INSERT INTO relation_keys (side, integration, ref, key, database, schema, identifier, derivation, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for k in keys {
            ins.row(&[
                k.side.into(),
                (&k.integration).into(),
                (&k.reference).into(),
                (&k.key).into(),
                (&k.database).into(),
                (&k.schema).into(),
                (&k.identifier).into(),
                (&k.derivation).into(),
                k.status.into(),
            ])?;
        }
    }
    let row_counts = [("relation_keys".to_string(), keys.len() as i64)].into();
    crate::fault::point("normalize.commit");
    tx.commit()?;
    Ok(StageReport { row_counts, ..Default::default() })
}

/// Every key, in the table's key order (side, integration, ref).
pub(crate) fn load(db: &std::path::Path) -> Result<Vec<RelationKey>> {
    let mut conn = crate::db::reader(db)?;
    // One read transaction: every statement sees the same committed state (run::alone).
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
    let mut st = tx.prepare(
        "SELECT side, integration, ref, key, database, schema, identifier, derivation, status FROM relation_keys
         ORDER BY side, integration, ref",
    )?;
    let rows = st.query_map([], |r| {
        Ok(RelationKey {
            side: r.get(0)?,
            integration: r.get(1)?,
            reference: r.get(2)?,
            key: r.get(3)?,
            database: r.get(4)?,
            schema: r.get(5)?,
            identifier: r.get(6)?,
            derivation: r.get(7)?,
            status: r.get(8)?,
        })
    })?;
    let keys = rows.collect::<rusqlite::Result<_>>().map_err(tags::in_table(db, "relation_keys"))?;
    drop(st);
    tx.commit()?;
    Ok(keys)
}

fn row(
    side: Side,
    integration: &str,
    reference: &str,
    key: Option<String>,
    parts: (Option<String>, Option<String>, Option<String>),
    derivation: String,
    status: KeyStatus,
) -> RelationKey {
    let (database, schema, identifier) = parts;
    RelationKey { side, integration: integration.to_string(), reference: reference.to_string(), key, database, schema, identifier, derivation, status }
}

/// The keys of every dbt node, then of every Tableau table (once each, from its first row).
/// The two sides are worked out at once, each in parallel (rayon).
pub(crate) fn compute(x: &Extracted, config: &Config) -> Vec<RelationKey> {
    let sites: BTreeMap<&str, SiteRules> =
        config.tableau.iter().map(|s| (s.name.as_str(), (&s.database_aliases, &s.default_schemas))).collect();
    let (mut out, tableau) = rayon::join(|| dbt_keys(x), || tableau_keys(x, &sites));
    out.extend(tableau);
    out
}

fn dbt_keys(x: &Extracted) -> Vec<RelationKey> {
    x.nodes
        .par_iter()
        .map(|n| {
            if n.materialized.as_deref() == Some("ephemeral") {
                let parts = (n.database.clone(), n.schema.clone(), Some(n.identifier.clone()));
                return row(Side::Dbt, "", &n.unique_id, None, parts, "ephemeral model: no relation".into(), KeyStatus::NoRelation);
            }
            let k = dbt_key(n.database.as_deref(), n.schema.as_deref(), &n.identifier, n.resource_type == "source");
            let text = k.text();
            row(Side::Dbt, "", &n.unique_id, Some(text), (Some(k.database), Some(k.schema), Some(k.identifier)), k.derivation, KeyStatus::Ok)
        })
        .collect()
}

/// A site's `database_aliases` and `default_schemas`.
type SiteRules<'a> = (&'a BTreeMap<String, String>, &'a BTreeMap<String, String>);

/// One key per distinct (integration, table id), from the table's first row, in that order.
fn tableau_keys(x: &Extracted, sites: &BTreeMap<&str, SiteRules>) -> Vec<RelationKey> {
    let mut done: HashSet<(&str, &str)> = HashSet::default();
    let mut first: Vec<&TableUse> = x.tables.iter().filter(|t| !t.table_id.is_empty() && done.insert((&t.integration, &t.table_id))).collect();
    first.sort_by(|a, b| (&a.integration, &a.table_id).cmp(&(&b.integration, &b.table_id)));
    let empty = BTreeMap::new();
    first.par_iter().map(|t| tableau_row(t, sites.get(t.integration.as_str()).copied().unwrap_or((&empty, &empty)))).collect()
}

fn tableau_row(t: &TableUse, (aliases, default_schemas): SiteRules) -> RelationKey {
    let (i, id) = (t.integration.as_str(), t.table_id.as_str());
    if t.name.is_none() && t.full_name.is_none() && t.schema.is_none() && t.database_name.is_none() {
        let why = "name, fullName, schema and database.name are all null: redacted by Tableau permissions";
        return row(Side::Tableau, i, id, None, (None, None, None), why.into(), KeyStatus::Redacted);
    }
    let (dtype, ctype) = (t.database_type.as_deref(), t.connection_type.as_deref());
    let is_file = dtype.is_some_and(|d| FILE_TYPES.contains(&d)) || ctype.is_some_and(|c| FILE_CONNECTIONS.contains(&c));
    if is_file {
        let what = format!("file or web connection ({}): not a warehouse table", dtype.or(ctype).unwrap_or("?"));
        return row(Side::Tableau, i, id, None, (t.database_name.clone(), t.schema.clone(), t.name.clone()), what, KeyStatus::File);
    }
    let tt = TableauTable {
        name: t.name.as_deref(),
        full_name: t.full_name.as_deref(),
        schema: t.schema.as_deref(),
        database: t.database_name.as_deref(),
    };
    match tableau_key(&tt, aliases, default_schemas) {
        Some(k) => {
            let text = k.text();
            row(Side::Tableau, i, id, Some(text), (Some(k.database), Some(k.schema), Some(k.identifier)), k.derivation, KeyStatus::Ok)
        }
        None => row(Side::Tableau, i, id, None, (t.database_name.clone(), t.schema.clone(), None), "no name or fullName".into(), KeyStatus::Redacted),
    }
}
