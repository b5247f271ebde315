//! Stage `normalize`: one comparable key per relation on both sides (see `keys.rs`).
//!
//! Reads: dbt_nodes, bi_instances, bi_relations (and each integration's database_aliases and
//! default_schemas), as `Extracted`.
//! Writes: relation_keys, replacing all its rows. A pure function of its inputs (`compute`):
//! the same rows in give the same rows out.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet as HashSet;

use anyhow::Result;
use rayon::prelude::*;
use rusqlite::Connection;

use crate::config::Config;
use crate::db::StageReport;
use crate::integrations::{self, NameRules};
use crate::keys::{bi_key, dbt_key, NamedRelation};
use crate::rows::{Extracted, RelationUse};
use crate::seam::Texts;
use crate::tags::{self, KeyStatus, RelationKind, Side};

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
        Some(format!(
            "{}.{}",
            self.schema.as_deref()?,
            self.identifier.as_deref()?
        ))
    }
}

pub(crate) fn run(
    conn: &mut Connection,
    config: &Config,
    x: &Extracted,
) -> Result<(StageReport, Vec<RelationKey>)> {
    let started = std::time::Instant::now();
    let keys = compute(x, config);
    crate::log::debug(&format!(
        "stage normalize worked out in {:.3}s",
        started.elapsed().as_secs_f64()
    ));
    let report = write(conn, &keys)?;
    Ok((report, keys))
}

/// Replaces every `relation_keys` row with `keys`, in one transaction.
pub(crate) fn write(conn: &mut Connection, keys: &[RelationKey]) -> Result<StageReport> {
    let tx = conn.transaction()?;
    {
        // Only the keys that changed are rewritten (`bulk::Replace`).
        let mut ins = crate::bulk::Replace::new(
            &tx,
            "relation_keys",
            &[
                "side",
                "integration",
                "ref",
                "key",
                "database",
                "schema",
                "identifier",
                "derivation",
                "status",
            ],
            false,
            None,
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
        ins.finish()?;
    }
    let row_counts = [("relation_keys".to_string(), keys.len() as i64)].into();
    crate::fault::point("normalize.commit");
    tx.commit()?;
    Ok(StageReport {
        row_counts,
        ..Default::default()
    })
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
    let keys = rows
        .collect::<rusqlite::Result<_>>()
        .map_err(tags::in_table(db, "relation_keys"))?;
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
    RelationKey {
        side,
        integration: integration.to_string(),
        reference: reference.to_string(),
        key,
        database,
        schema,
        identifier,
        derivation,
        status,
    }
}

/// The keys of every dbt node, then of every relation an asset reads (once each, from its
/// first row). The two sides are worked out at once, each in parallel (rayon).
pub(crate) fn compute(x: &Extracted, config: &Config) -> Vec<RelationKey> {
    let rules = integrations::name_rules(config);
    let (mut out, bi) = rayon::join(|| dbt_keys(x), || bi_keys(x, &rules));
    out.extend(bi);
    out
}

fn dbt_keys(x: &Extracted) -> Vec<RelationKey> {
    x.nodes
        .par_iter()
        .map(|n| {
            if n.materialized.as_deref() == Some("ephemeral") {
                let parts = (
                    n.database.clone(),
                    n.schema.clone(),
                    Some(n.identifier.clone()),
                );
                return row(
                    Side::Dbt,
                    "",
                    &n.unique_id,
                    None,
                    parts,
                    "ephemeral model: no relation".into(),
                    KeyStatus::NoRelation,
                );
            }
            let k = dbt_key(
                n.database.as_deref(),
                n.schema.as_deref(),
                &n.identifier,
                n.resource_type == "source",
            );
            let text = k.text();
            row(
                Side::Dbt,
                "",
                &n.unique_id,
                Some(text),
                (Some(k.database), Some(k.schema), Some(k.identifier)),
                k.derivation,
                KeyStatus::Ok,
            )
        })
        .collect()
}

/// One key per distinct (integration, relation id), from the relation's first row, in that
/// order. Relations of SQL nobody could read, and sources that name no table, have no key.
fn bi_keys(x: &Extracted, rules: &BTreeMap<&str, NameRules>) -> Vec<RelationKey> {
    let texts: BTreeMap<&str, &Texts> = x
        .instances
        .iter()
        .map(|i| (i.integration.as_str(), i.tool.texts()))
        .collect();
    let mut done: HashSet<(&str, &str)> = HashSet::default();
    let mut first: Vec<&RelationUse> = x
        .relations
        .iter()
        .filter(|t| {
            !matches!(t.kind, RelationKind::UnparsedSql | RelationKind::NoLineage)
                && !t.relation_id.is_empty()
                && done.insert((&t.integration, &t.relation_id))
        })
        .collect();
    first.sort_by(|a, b| (&a.integration, &a.relation_id).cmp(&(&b.integration, &b.relation_id)));
    let empty = BTreeMap::new();
    first
        .par_iter()
        .map(|t| {
            let rules = rules
                .get(t.integration.as_str())
                .copied()
                .unwrap_or((&empty, &empty));
            let redacted = texts
                .get(t.integration.as_str())
                .map_or(crate::seam::UNKNOWN.redacted_derivation, |t| {
                    t.redacted_derivation
                });
            bi_row(t, rules, redacted)
        })
        .collect()
}

fn bi_row(t: &RelationUse, (aliases, default_schemas): NameRules, redacted: &str) -> RelationKey {
    let (i, id) = (t.integration.as_str(), t.relation_id.as_str());
    // A file is a file whether or not it has a name (Power BI's Excel sources have none).
    if t.kind == RelationKind::File {
        let what = format!(
            "file or web connection ({}): not a warehouse table",
            t.detail.as_deref().unwrap_or("?")
        );
        return row(
            Side::Bi,
            i,
            id,
            None,
            (t.database.clone(), t.schema.clone(), t.name.clone()),
            what,
            KeyStatus::File,
        );
    }
    if t.name.is_none() && t.full_name.is_none() && t.schema.is_none() && t.database.is_none() {
        return row(
            Side::Bi,
            i,
            id,
            None,
            (None, None, None),
            redacted.into(),
            KeyStatus::Redacted,
        );
    }
    let named = NamedRelation {
        name: t.name.as_deref(),
        full_name: t.full_name.as_deref(),
        schema: t.schema.as_deref(),
        database: t.database.as_deref(),
    };
    match bi_key(&named, aliases, default_schemas) {
        Some(k) => {
            let text = k.text();
            row(
                Side::Bi,
                i,
                id,
                Some(text),
                (Some(k.database), Some(k.schema), Some(k.identifier)),
                k.derivation,
                KeyStatus::Ok,
            )
        }
        None => row(
            Side::Bi,
            i,
            id,
            None,
            (t.database.clone(), t.schema.clone(), None),
            "no name or fullName".into(),
            KeyStatus::Redacted,
        ),
    }
}
