//! Stage `normalize`: one comparable key per relation on both sides (see `keys.rs`).
//!
//! Reads: dbt_nodes, tableau_tables (and the config's database_aliases).
//! Writes: relation_keys, replacing all its rows. Pure function of its inputs: the same rows
//! in give the same rows out.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use rusqlite::{params, Connection};

use crate::config::Config;
use crate::db::{count_rows, StageReport};
use crate::keys::{dbt_key, tableau_key, TableauTable};

/// `__typename`s and connection types that are files or web connectors, not warehouse tables.
const FILE_TYPES: &[&str] = &["File", "CloudFile", "WebDataConnector"];
const FILE_CONNECTIONS: &[&str] = &["excel-direct", "excel", "textscan", "hyper", "dataengine", "csv", "google-sheets", "box", "dropbox", "onedrive"];

pub(crate) fn run(conn: &mut Connection, config: &Config) -> Result<StageReport> {
    let aliases: BTreeMap<&str, &BTreeMap<String, String>> =
        config.tableau.iter().map(|s| (s.name.as_str(), &s.database_aliases)).collect();
    let empty = BTreeMap::new();
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM relation_keys", [])?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO relation_keys (side, integration, ref, key, database, schema, identifier, derivation, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut st = tx.prepare(
            "SELECT unique_id, resource_type, database, schema, identifier, relation_name, materialized FROM dbt_nodes ORDER BY unique_id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let rtype: String = r.get(1)?;
            let (db, schema, ident): (Option<String>, Option<String>, String) = (r.get(2)?, r.get(3)?, r.get(4)?);
            let materialized: Option<String> = r.get(6)?;
            if materialized.as_deref() == Some("ephemeral") {
                ins.execute(params!["dbt", "", id, None::<String>, db, schema, ident, "ephemeral model: no relation", "no_relation"])?;
                continue;
            }
            let k = dbt_key(db.as_deref(), schema.as_deref(), &ident, rtype == "source");
            ins.execute(params!["dbt", "", id, k.text(), k.database, k.schema, k.identifier, k.derivation, "ok"])?;
        }

        // Each table once, the first time it appears (a sequential scan; no GROUP BY sort).
        let mut st = tx.prepare(
            "SELECT integration, table_id, name, full_name, schema, database_name, database_type, connection_type
             FROM tableau_tables WHERE table_id != ''",
        )?;
        let mut rows = st.query([])?;
        let mut done: BTreeSet<(String, String)> = BTreeSet::new();
        while let Some(r) = rows.next()? {
            let integration: String = r.get(0)?;
            let table_id: String = r.get(1)?;
            if done.contains(&(integration.clone(), table_id.clone())) {
                continue;
            }
            let (name, full, schema, database): (Option<String>, Option<String>, Option<String>, Option<String>) =
                (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
            let (dtype, ctype): (Option<String>, Option<String>) = (r.get(6)?, r.get(7)?);
            done.insert((integration.clone(), table_id.clone()));
            if name.is_none() && full.is_none() && schema.is_none() && database.is_none() {
                ins.execute(params![
                    "tableau", integration, table_id, None::<String>, None::<String>, None::<String>, None::<String>,
                    "name, fullName, schema and database.name are all null: redacted by Tableau permissions", "redacted"
                ])?;
                continue;
            }
            let is_file = dtype.as_deref().is_some_and(|t| FILE_TYPES.contains(&t))
                || ctype.as_deref().is_some_and(|c| FILE_CONNECTIONS.contains(&c));
            if is_file {
                let what = format!(
                    "file or web connection ({}): not a warehouse table",
                    dtype.as_deref().or(ctype.as_deref()).unwrap_or("?")
                );
                ins.execute(params!["tableau", integration, table_id, None::<String>, database, schema, name, what, "file"])?;
                continue;
            }
            let t = TableauTable { name: name.as_deref(), full_name: full.as_deref(), schema: schema.as_deref(), database: database.as_deref() };
            match tableau_key(&t, aliases.get(integration.as_str()).copied().unwrap_or(&empty)) {
                Some(k) => ins.execute(params![
                    "tableau", integration, table_id, k.text(), k.database, k.schema, k.identifier, k.derivation, "ok"
                ])?,
                None => ins.execute(params![
                    "tableau", integration, table_id, None::<String>, database, schema, None::<String>,
                    "no name or fullName", "redacted"
                ])?,
            };
        }
    }
    let row_counts = count_rows(&tx, &["relation_keys"])?;
    tx.commit()?;
    Ok(StageReport { row_counts, ..Default::default() })
}
