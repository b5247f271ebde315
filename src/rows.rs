//! The rows that extract hands to the later stages, one struct per table, in the tables' key
//! order.
//!
//! Each later stage reads these rows. Run on its own, a stage loads them from the SQLite file
//! (`Extracted::load`); inside `autoexpose run` it gets the very rows extract just wrote, so
//! 300k table rows are not read back from disk three times. Both ways give the same rows in the
//! same order: extract builds the rows first, writes exactly those, and sorts and de-duplicates
//! them as the tables' primary keys do (`INSERT OR IGNORE` keeps the first row of a key, and so
//! does `dedup_by`). SQLite's default collation (BINARY) orders text as Rust's `String` does.

use std::collections::{BTreeMap, BTreeSet};

use std::path::Path;

use anyhow::Result;
use rusqlite::Transaction;

use crate::db;
use crate::integrations::Tool;
use crate::tags::{self, RelationKind, Via};

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
    /// Its parents that are `dbt_nodes` rows themselves, sorted, without duplicates; stored as
    /// a JSON list (migration 0015). Empty for sources.
    pub(crate) depends_on: Vec<String>,
    /// The unique_ids of the test nodes on it, sorted, without duplicates; a JSON list.
    pub(crate) tests: Vec<String>,
}

/// A `bi_instances` row: one configured integration (a BI tool's site or tenant, an inventory file).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Instance {
    pub(crate) integration: String,
    /// Which integration wrote it; its words for messages and defaults (`Tool::texts`).
    pub(crate) tool: Tool,
    /// How the tool names the instance (a site's content URL, say).
    pub(crate) label: String,
    pub(crate) complete: bool,
}

/// A `bi_assets` row: what becomes an exposure (a workbook, later a report).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Asset {
    pub(crate) integration: String,
    /// The id relations refer to.
    pub(crate) id: String,
    /// The exposure's identity and refresh key.
    pub(crate) asset_ref: String,
    pub(crate) name: String,
    pub(crate) folder_ref: Option<String>,
    pub(crate) folder: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) owner_name: Option<String>,
    pub(crate) owner_email: Option<String>,
    pub(crate) url: Option<String>,
    /// Sorted, without duplicates; stored as a JSON list.
    pub(crate) tags: Vec<String>,
    /// The integration's own `config.meta` keys (Power BI: `dataset_id`), beside the common
    /// ones emit writes for every asset; stored as a JSON object.
    pub(crate) meta: BTreeMap<String, String>,
}

/// A `bi_relations` row: one relation an asset reads, through one path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RelationUse {
    pub(crate) integration: String,
    pub(crate) asset_id: String,
    pub(crate) via: Via,
    pub(crate) via_id: String,
    pub(crate) relation_id: String,
    pub(crate) name: Option<String>,
    pub(crate) full_name: Option<String>,
    pub(crate) schema: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) kind: RelationKind,
    /// For a file: what the tool calls the connection.
    pub(crate) detail: Option<String>,
}

impl RelationUse {
    pub(crate) fn key(&self) -> (&str, &str, &str, &str, &str) {
        (
            &self.integration,
            &self.asset_id,
            self.via.as_str(),
            &self.via_id,
            &self.relation_id,
        )
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
    pub(crate) instances: Vec<Instance>,
    /// In (integration, id) order.
    pub(crate) assets: Vec<Asset>,
    /// In (integration, asset_id, via, via_id, relation_id) order.
    pub(crate) relations: Vec<RelationUse>,
}

impl Extracted {
    /// Puts every list in its table's key order, first row of a key kept.
    pub(crate) fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
        self.nodes.dedup_by(|b, a| a.unique_id == b.unique_id);
        self.instances
            .sort_by(|a, b| a.integration.cmp(&b.integration));
        self.assets
            .sort_by(|a, b| (&a.integration, &a.id).cmp(&(&b.integration, &b.id)));
        // Usually already in order (integrations hand them so); otherwise a stable sort, so the
        // first row of a key stays first, in parallel, as it is 300k rows at 20k workbooks.
        if !self.relations.windows(2).all(|w| w[0].key() <= w[1].key()) {
            rayon::slice::ParallelSliceMut::par_sort_by(&mut self.relations[..], |a, b| {
                a.key().cmp(&b.key())
            });
        }
        self.relations.dedup_by(|b, a| a.key() == b.key());
    }

    /// The same rows, read back from the SQLite file: the dbt rows, the assets and the
    /// relation rows each on a connection of their own, in parallel (rayon), each inside one read
    /// transaction; why the three see one state: `run::alone`.
    pub(crate) fn load(db: &Path) -> Result<Extracted> {
        let ((dbt, assets), relations) = rayon::join(
            || rayon::join(|| load_dbt(db), || load_assets(db)),
            || load_relations(db),
        );
        let ((project_name, adapter_type), nodes, hand_written_exposures) = dbt?;
        let (instances, assets) = assets?;
        Ok(Extracted {
            project_name,
            adapter_type,
            nodes,
            hand_written_exposures,
            instances,
            assets,
            relations: relations?,
        })
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
    let names = conn.query_row(
        "SELECT project_name, adapter_type FROM dbt_manifest",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut st = conn.prepare(
        "SELECT unique_id, resource_type, package_name, name, source_name, version, latest_version, database, schema,
            identifier, relation_name, materialized, access, enabled, depends_on, tests
         FROM dbt_nodes ORDER BY unique_id",
    )?;
    let list = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<Vec<String>> {
        let text: String = r.get(i)?;
        serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
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
                depends_on: list(r, 14)?,
                tests: list(r, 15)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()
        .map_err(tags::in_table(db, "dbt_nodes"))?;
    drop(st);
    let mut st = conn.prepare("SELECT name FROM dbt_exposures WHERE autoexpose_luid IS NULL")?;
    let hand_written = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    drop(st);
    conn.commit()?;
    Ok((names, nodes, hand_written))
}

fn load_assets(db: &Path) -> Result<(Vec<Instance>, Vec<Asset>)> {
    let mut conn = db::reader(db)?;
    let conn = read_tx(&mut conn)?;
    let mut st = conn.prepare(
        "SELECT integration, tool, label, complete FROM bi_instances ORDER BY integration",
    )?;
    let instances = st
        .query_map([], |r| {
            Ok(Instance {
                integration: r.get(0)?,
                tool: r.get(1)?,
                label: r.get(2)?,
                complete: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()
        .map_err(tags::in_table(db, "bi_instances"))?;
    drop(st);
    let mut st = conn.prepare(
        "SELECT integration, asset_id, asset_ref, name, folder_ref, folder, description, owner_name, owner_email, url, tags, meta
         FROM bi_assets ORDER BY integration, asset_id",
    )?;
    let assets = st
        .query_map([], |r| {
            let tags: String = r.get(10)?;
            let meta: String = r.get(11)?;
            Ok(Asset {
                integration: r.get(0)?,
                id: r.get(1)?,
                asset_ref: r.get(2)?,
                name: r.get(3)?,
                folder_ref: r.get(4)?,
                folder: r.get(5)?,
                description: r.get(6)?,
                owner_name: r.get(7)?,
                owner_email: r.get(8)?,
                url: r.get(9)?,
                tags: serde_json::from_str(&tags).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        10,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
                meta: serde_json::from_str(&meta).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        11,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
            })
        })?
        .collect::<rusqlite::Result<_>>()
        .map_err(tags::in_table(db, "bi_assets"))?;
    drop(st);
    conn.commit()?;
    Ok((instances, assets))
}

fn load_relations(db: &Path) -> Result<Vec<RelationUse>> {
    let mut conn = db::reader(db)?;
    let conn = read_tx(&mut conn)?;
    let mut st = conn.prepare(
        "SELECT integration, asset_id, via, via_id, relation_id, name, full_name, schema, database, kind, detail
         FROM bi_relations ORDER BY integration, asset_id, via, via_id, relation_id",
    )?;
    let relations = st
        .query_map([], |r| {
            Ok(RelationUse {
                integration: r.get(0)?,
                asset_id: r.get(1)?,
                via: r.get(2)?,
                via_id: r.get(3)?,
                relation_id: r.get(4)?,
                name: r.get(5)?,
                full_name: r.get(6)?,
                schema: r.get(7)?,
                database: r.get(8)?,
                kind: r.get(9)?,
                detail: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()
        .map_err(tags::in_table(db, "bi_relations"))?;
    drop(st);
    conn.commit()?;
    Ok(relations)
}

pub(crate) fn insert_nodes(tx: &Transaction, nodes: &[Node]) -> Result<()> {
    let mut st = crate::bulk::Replace::new(
        tx,
        "dbt_nodes",
        &[
            "unique_id",
            "resource_type",
            "package_name",
            "name",
            "source_name",
            "version",
            "latest_version",
            "database",
            "schema",
            "identifier",
            "relation_name",
            "materialized",
            "access",
            "enabled",
            "depends_on",
            "tests",
        ],
        false,
        None,
    )?;
    for n in nodes {
        let depends_on = serde_json::to_string(&n.depends_on)?;
        let tests = serde_json::to_string(&n.tests)?;
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
            (&depends_on).into(),
            (&tests).into(),
        ])?;
    }
    st.finish()?;
    Ok(())
}

/// The neutral rows of every integration extract read: `bi_instances`, `bi_assets`,
/// `bi_relations`, replacing all their rows (extract reads every configured integration).
pub(crate) fn replace_bi_rows(tx: &Transaction, x: &Extracted) -> Result<()> {
    // bi_assets and bi_relations are keyed: only their rows that changed are rewritten
    // (`bulk::Replace`).
    tx.execute("DELETE FROM bi_instances", [])?;
    let mut st = tx.prepare_cached(
        "INSERT INTO bi_instances (integration, tool, label, complete) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for i in &x.instances {
        st.execute(rusqlite::params![
            i.integration,
            i.tool,
            i.label,
            i.complete
        ])?;
    }
    insert_assets(tx, &x.assets)?;
    insert_relations(tx, &x.relations)
}

fn insert_assets(tx: &Transaction, assets: &[Asset]) -> Result<()> {
    let mut st = crate::bulk::Replace::new(
        tx,
        "bi_assets",
        &[
            "integration",
            "asset_id",
            "asset_ref",
            "name",
            "folder_ref",
            "folder",
            "description",
            "owner_name",
            "owner_email",
            "url",
            "tags",
            "meta",
        ],
        false,
        None,
    )?;
    for a in assets {
        let tags = serde_json::to_string(&a.tags)?;
        let meta = serde_json::to_string(&a.meta)?;
        st.row(&[
            (&a.integration).into(),
            (&a.id).into(),
            (&a.asset_ref).into(),
            (&a.name).into(),
            (&a.folder_ref).into(),
            (&a.folder).into(),
            (&a.description).into(),
            (&a.owner_name).into(),
            (&a.owner_email).into(),
            (&a.url).into(),
            (&tags).into(),
            (&meta).into(),
        ])?;
    }
    st.finish()?;
    Ok(())
}

fn insert_relations(tx: &Transaction, relations: &[RelationUse]) -> Result<()> {
    let mut st = crate::bulk::Replace::new(
        tx,
        "bi_relations",
        &[
            "integration",
            "asset_id",
            "via",
            "via_id",
            "relation_id",
            "name",
            "full_name",
            "schema",
            "database",
            "kind",
            "detail",
        ],
        false,
        None,
    )?;
    for t in relations {
        st.row(&[
            (&t.integration).into(),
            (&t.asset_id).into(),
            t.via.into(),
            (&t.via_id).into(),
            (&t.relation_id).into(),
            (&t.name).into(),
            (&t.full_name).into(),
            (&t.schema).into(),
            (&t.database).into(),
            t.kind.into(),
            (&t.detail).into(),
        ])?;
    }
    st.finish()?;
    Ok(())
}
