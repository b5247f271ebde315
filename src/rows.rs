//! The rows that extract hands to the later stages, one struct per table, in the tables' key
//! order.
//!
//! Each later stage reads these rows. Run on its own, a stage loads them from the SQLite file
//! (`Extracted::load`); inside `autoexpose run` it gets the very rows extract just wrote, so
//! 300k table rows are not read back from disk three times. Both ways give the same rows in the
//! same order: extract builds the rows first, writes exactly those, and sorts and de-duplicates
//! them as the tables' primary keys do (`INSERT OR IGNORE` keeps the first row of a key, and so
//! does `dedup_by`). SQLite's default collation (BINARY) orders text as Rust's `String` does.

use std::collections::BTreeSet;

use std::path::Path;

use anyhow::Result;
use rusqlite::Transaction;

use crate::bulk::Insert;
use crate::db;
use crate::tags::{self, Via};

/// A `dbt_nodes` row: a model, seed, snapshot or source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) unique_id: String,
    pub(crate) resource_type: String,
    pub(crate) package_name: String,
    pub(crate) name: String,
    pub(crate) source_name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) latest_version: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) identifier: String,
    pub(crate) relation_name: Option<String>,
    pub(crate) materialized: Option<String>,
    pub(crate) access: Option<String>,
    pub(crate) enabled: bool,
}

/// A `tableau_sites` row, the part later stages read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Site {
    pub(crate) integration: String,
    pub(crate) content_url: String,
    pub(crate) complete: bool,
}

/// A `tableau_workbooks` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Workbook {
    pub(crate) integration: String,
    pub(crate) id: String,
    pub(crate) luid: String,
    pub(crate) name: String,
    pub(crate) project_luid: Option<String>,
    pub(crate) project_name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) owner_name: Option<String>,
    pub(crate) owner_email: Option<String>,
    pub(crate) owner_username: Option<String>,
    pub(crate) uri: Option<String>,
    pub(crate) vizportal_url_id: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) updated_at: Option<String>,
    /// Sorted, without duplicates; stored as a JSON list.
    pub(crate) tags: Vec<String>,
}

/// A `tableau_tables` row: one upstream table of a workbook, through one data source or query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableUse {
    pub(crate) integration: String,
    pub(crate) workbook_id: String,
    pub(crate) via: Via,
    pub(crate) via_id: String,
    pub(crate) table_id: String,
    pub(crate) table_luid: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) full_name: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) database_name: Option<String>,
    pub(crate) database_type: Option<String>,
    pub(crate) connection_type: Option<String>,
}

impl TableUse {
    pub(crate) fn key(&self) -> (&str, &str, &str, &str, &str) {
        (&self.integration, &self.workbook_id, self.via.as_str(), &self.via_id, &self.table_id)
    }
}

/// What the later stages read of extract's tables.
#[derive(Debug, Default)]
pub(crate) struct Extracted {
    /// `dbt_manifest.project_name`: the root project, for `ref()` without a package.
    pub(crate) project_name: String,
    /// `dbt_manifest.adapter_type`: how the warehouse resolves names (`keys::Resolution`).
    pub(crate) adapter_type: Option<String>,
    /// In `unique_id` order.
    pub(crate) nodes: Vec<Node>,
    /// Names of the manifest's exposures that autoexpose did not write.
    pub(crate) hand_written_exposures: BTreeSet<String>,
    /// In `integration` order.
    pub(crate) sites: Vec<Site>,
    /// In (integration, id) order.
    pub(crate) workbooks: Vec<Workbook>,
    /// In (integration, workbook_id, via, via_id, table_id) order.
    pub(crate) tables: Vec<TableUse>,
}

impl Extracted {
    /// Puts every list in its table's key order, first row of a key kept.
    pub(crate) fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
        self.nodes.dedup_by(|b, a| a.unique_id == b.unique_id);
        self.sites.sort_by(|a, b| a.integration.cmp(&b.integration));
        self.workbooks.sort_by(|a, b| (&a.integration, &a.id).cmp(&(&b.integration, &b.id)));
        // Usually already in order (see tableau::store::rows); otherwise a stable sort, so the
        // first row of a key stays first, in parallel, as it is 300k rows at 20k workbooks.
        if !self.tables.windows(2).all(|w| w[0].key() <= w[1].key()) {
            rayon::slice::ParallelSliceMut::par_sort_by(&mut self.tables[..], |a, b| a.key().cmp(&b.key()));
        }
        self.tables.dedup_by(|b, a| a.key() == b.key());
    }

    /// The same rows, read back from the SQLite file: the dbt rows, the workbooks and the
    /// table rows each on a connection of their own, in parallel (rayon), each inside one read
    /// transaction; why the three see one state: `run::alone`.
    pub(crate) fn load(db: &Path) -> Result<Extracted> {
        let ((dbt, workbooks), tables) =
            rayon::join(|| rayon::join(|| load_dbt(db), || load_workbooks(db)), || load_tables(db));
        let ((project_name, adapter_type), nodes, hand_written_exposures) = dbt?;
        let (sites, workbooks) = workbooks?;
        Ok(Extracted { project_name, adapter_type, nodes, hand_written_exposures, sites, workbooks, tables: tables? })
    }
}

type ManifestNames = (String, Option<String>);

/// A read-only connection in a read transaction: every statement of a loader sees one state.
fn read_tx(conn: &mut rusqlite::Connection) -> Result<Transaction<'_>> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?)
}

fn load_dbt(db: &Path) -> Result<(ManifestNames, Vec<Node>, BTreeSet<String>)> {
    let mut conn = db::reader(db)?;
    let conn = read_tx(&mut conn)?;
    let names = conn.query_row("SELECT project_name, adapter_type FROM dbt_manifest", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut st = conn.prepare(
        "SELECT unique_id, resource_type, package_name, name, source_name, version, latest_version, database, schema,
            identifier, relation_name, materialized, access, enabled
         FROM dbt_nodes ORDER BY unique_id",
    )?;
    let nodes = st
        .query_map([], |r| {
            Ok(Node {
                unique_id: r.get(0)?,
                resource_type: r.get(1)?,
                package_name: r.get(2)?,
                name: r.get(3)?,
                source_name: r.get(4)?,
                version: r.get(5)?,
                latest_version: r.get(6)?,
                database: r.get(7)?,
                schema: r.get(8)?,
                identifier: r.get(9)?,
                relation_name: r.get(10)?,
                materialized: r.get(11)?,
                access: r.get(12)?,
                enabled: r.get(13)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    drop(st);
    let mut st = conn.prepare("SELECT name FROM dbt_exposures WHERE autoexpose_luid IS NULL")?;
    let hand_written = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    drop(st);
    conn.commit()?;
    Ok((names, nodes, hand_written))
}

fn load_workbooks(db: &Path) -> Result<(Vec<Site>, Vec<Workbook>)> {
    let mut conn = db::reader(db)?;
    let conn = read_tx(&mut conn)?;
    let mut st = conn.prepare("SELECT integration, content_url, complete FROM tableau_sites ORDER BY integration")?;
    let sites = st
        .query_map([], |r| Ok(Site { integration: r.get(0)?, content_url: r.get(1)?, complete: r.get(2)? }))?
        .collect::<rusqlite::Result<_>>()?;
    drop(st);
    let mut st = conn.prepare(
        "SELECT integration, id, luid, name, project_luid, project_name, description, owner_name, owner_email,
            owner_username, uri, vizportal_url_id, url, created_at, updated_at, tags
         FROM tableau_workbooks ORDER BY integration, id",
    )?;
    let workbooks = st
        .query_map([], |r| {
            let tags: String = r.get(15)?;
            Ok(Workbook {
                integration: r.get(0)?,
                id: r.get(1)?,
                luid: r.get(2)?,
                name: r.get(3)?,
                project_luid: r.get(4)?,
                project_name: r.get(5)?,
                description: r.get(6)?,
                owner_name: r.get(7)?,
                owner_email: r.get(8)?,
                owner_username: r.get(9)?,
                uri: r.get(10)?,
                vizportal_url_id: r.get(11)?,
                url: r.get(12)?,
                created_at: r.get(13)?,
                updated_at: r.get(14)?,
                tags: serde_json::from_str(&tags)
                    .map_err(|e| rusqlite::Error::FromSqlConversionFailure(15, rusqlite::types::Type::Text, Box::new(e)))?,
            })
        })?
        .collect::<rusqlite::Result<_>>()
        .map_err(tags::in_table(db, "tableau_workbooks"))?;
    drop(st);
    conn.commit()?;
    Ok((sites, workbooks))
}

fn load_tables(db: &Path) -> Result<Vec<TableUse>> {
    let mut conn = db::reader(db)?;
    let conn = read_tx(&mut conn)?;
    let mut st = conn.prepare(
        "SELECT integration, workbook_id, via, via_id, table_id, table_luid, name, full_name, schema, database_name,
            database_type, connection_type
         FROM tableau_tables ORDER BY integration, workbook_id, via, via_id, table_id",
    )?;
    let tables = st
        .query_map([], |r| {
            Ok(TableUse {
                integration: r.get(0)?,
                workbook_id: r.get(1)?,
                via: r.get(2)?,
                via_id: r.get(3)?,
                table_id: r.get(4)?,
                table_luid: r.get(5)?,
                name: r.get(6)?,
                full_name: r.get(7)?,
                schema: r.get(8)?,
                database_name: r.get(9)?,
                database_type: r.get(10)?,
                connection_type: r.get(11)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()
        .map_err(tags::in_table(db, "tableau_tables"))?;
    drop(st);
    conn.commit()?;
    Ok(tables)
}

pub(crate) fn insert_nodes(tx: &Transaction, nodes: &[Node]) -> Result<()> {
    let mut st = Insert::new(
        tx,
        "dbt_nodes",
        "INSERT INTO dbt_nodes (unique_id, resource_type, package_name, name, source_name, version, latest_version, database,
            schema, identifier, relation_name, materialized, access, enabled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for n in nodes {
        st.row(&[
            (&n.unique_id).into(),
            (&n.resource_type).into(),
            (&n.package_name).into(),
            (&n.name).into(),
            (&n.source_name).into(),
            (&n.version).into(),
            (&n.latest_version).into(),
            (&n.database).into(),
            (&n.schema).into(),
            (&n.identifier).into(),
            (&n.relation_name).into(),
            (&n.materialized).into(),
            (&n.access).into(),
            n.enabled.into(),
        ])?;
    }
    Ok(())
}

pub(crate) fn insert_workbooks(tx: &Transaction, workbooks: &[Workbook]) -> Result<()> {
    let mut st = Insert::new(
        tx,
        "tableau_workbooks",
        "INSERT INTO tableau_workbooks (integration, id, luid, name, project_luid, project_name, description, owner_name, owner_email,
            owner_username, uri, vizportal_url_id, url, created_at, updated_at, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for w in workbooks {
        let tags = serde_json::to_string(&w.tags)?;
        st.row(&[
            (&w.integration).into(),
            (&w.id).into(),
            (&w.luid).into(),
            (&w.name).into(),
            (&w.project_luid).into(),
            (&w.project_name).into(),
            (&w.description).into(),
            (&w.owner_name).into(),
            (&w.owner_email).into(),
            (&w.owner_username).into(),
            (&w.uri).into(),
            (&w.vizportal_url_id).into(),
            (&w.url).into(),
            (&w.created_at).into(),
            (&w.updated_at).into(),
            (&tags).into(),
        ])?;
    }
    Ok(())
}

pub(crate) fn insert_tables(tx: &Transaction, tables: &[TableUse]) -> Result<()> {
    let mut st = Insert::new(
        tx,
        "tableau_tables",
        "INSERT INTO tableau_tables (integration, workbook_id, via, via_id, table_id, table_luid, name,
            full_name, schema, database_name, database_type, connection_type)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for t in tables {
        st.row(&[
            (&t.integration).into(),
            (&t.workbook_id).into(),
            t.via.into(),
            (&t.via_id).into(),
            (&t.table_id).into(),
            (&t.table_luid).into(),
            (&t.name).into(),
            (&t.full_name).into(),
            (&t.schema).into(),
            (&t.database_name).into(),
            (&t.database_type).into(),
            (&t.connection_type).into(),
        ])?;
    }
    Ok(())
}
