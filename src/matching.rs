//! Stage `match`: each relation a BI asset reads against the dbt nodes, by normalised key, in
//! parallel (rayon); one thread writes the rows.
//!
//! Reads: dbt_nodes, relation_keys, bi_instances, bi_relations (as `Extracted` and
//! `RelationKey`s).
//! Writes: exposure_dependencies and unmatched_tables, replacing all their rows. Every table
//! that did not become a dependency gets an `unmatched_tables` row with a reason code and a
//! suggested fix, so "why is this dashboard not downstream of that model?" is one query.
//!
//! A relation matches the dbt nodes whose key is its key. When several enabled nodes
//! share the key, they are all dependencies if they are the very same table
//! (`keys::same_table`: the same `relation_name` once the adapter's rules for quotes and case
//! are applied; a source declared over a seed's or a model's table is the usual case), and
//! the table is `ambiguous` if they are different tables that only look alike once folded.
//! Each such node gets its own `exposure_dependencies` row, with the relation it came
//! through. Disabled nodes never count; a private model on the table is left out (dbt refuses
//! the reference), and the table is `private_model` only when no other node is left.
//!
//! A table's outcome depends on its key alone, so it is worked out once per distinct table
//! (79k at 20k workbooks), not once per row (333k); the rows then refer to it. Results hold
//! indices into the rows they came from, not copies of their strings: the writer and emit
//! look the strings up.

use rustc_hash::FxHashMap as HashMap;

use anyhow::Result;
use rayon::prelude::*;
use rusqlite::Connection;

use crate::db::StageReport;
use crate::keys::{same_table, Resolution};
use crate::normalize::RelationKey;
use crate::rows::{Extracted, Node, RelationUse};
use crate::seam::Texts;
use crate::tags::{KeyStatus, MissReason, RelationKind, Side};

#[derive(Debug)]
struct DbtNode<'a> {
    /// Index into `Extracted::nodes`.
    row: u32,
    unique_id: &'a str,
    resource_type: &'a str,
    access: Option<&'a str>,
    enabled: bool,
    database: &'a str,
    /// Its `dbt_nodes` row, for `relation_name` and the parts as the manifest spells them.
    node: &'a Node,
}

/// An `exposure_dependencies` row: the table row it came through (the first, in key order)
/// and the node, as indices into `Extracted::relations` and `Extracted::nodes`.
#[derive(Debug, Clone, Copy)]
struct Dependency {
    table: u32,
    node: u32,
}

/// An `unmatched_tables` row: the table row and why (an index into `Matched::misses`).
#[derive(Debug, Clone, Copy)]
struct Unmatched {
    table: u32,
    miss: u32,
}

/// Why a table did not match, worked out once per distinct table.
#[derive(Debug)]
struct Miss {
    reason: MissReason,
    /// JSON list of dbt unique_ids that nearly matched.
    candidates: String,
    suggestion: String,
}

/// What emit reads of a dependency: which asset depends on which node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link<'a> {
    pub(crate) integration: &'a str,
    pub(crate) asset_id: &'a str,
    pub(crate) unique_id: &'a str,
}

/// A `Link` read back from the SQLite file, for `emit` run on its own.
#[derive(Debug)]
pub(crate) struct LinkRow {
    integration: String,
    asset_id: String,
    unique_id: String,
}

impl LinkRow {
    pub(crate) fn link(&self) -> Link<'_> {
        Link {
            integration: &self.integration,
            asset_id: &self.asset_id,
            unique_id: &self.unique_id,
        }
    }
}

struct Index<'a> {
    nodes: Vec<DbtNode<'a>>,
    by_key: HashMap<&'a str, Vec<usize>>,
    by_schema_ident: HashMap<String, Vec<usize>>,
    /// By folded (database, identifier): the candidates of a relation given without a schema.
    by_database_ident: HashMap<(&'a str, &'a str), Vec<usize>>,
    resolution: Resolution,
    /// `metadata.adapter_type`, for messages.
    adapter: &'a str,
}

impl Index<'_> {
    /// The table node `i` is, as its warehouse resolves names.
    fn table(&self, i: usize) -> Vec<String> {
        let n = self.nodes[i].node;
        same_table(
            self.resolution,
            n.relation_name.as_deref(),
            [
                n.database.as_deref(),
                n.schema.as_deref(),
                Some(&n.identifier),
            ],
        )
    }
}

/// What matching decided, in asset order, by index into the rows and keys it was given.
pub(crate) struct Matched {
    dependencies: Vec<Dependency>,
    unmatched: Vec<Unmatched>,
    misses: Vec<Miss>,
    /// Each relation row's key (an index into the keys), `u32::MAX` for none.
    row_keys: Vec<u32>,
}

impl Matched {
    /// The dependencies as emit reads them, in (integration, asset_id, unique_id) order.
    pub(crate) fn links<'a>(&self, x: &'a Extracted) -> Vec<Link<'a>> {
        self.dependencies
            .iter()
            .map(|d| {
                let t = &x.relations[d.table as usize];
                Link {
                    integration: &t.integration,
                    asset_id: &t.asset_id,
                    unique_id: &x.nodes[d.node as usize].unique_id,
                }
            })
            .collect()
    }
}

pub(crate) fn run(
    conn: &mut Connection,
    x: &Extracted,
    keys: &[RelationKey],
) -> Result<StageReport> {
    let started = std::time::Instant::now();
    let matched = compute(x, keys);
    crate::log::debug(&format!(
        "stage match worked out in {:.3}s",
        started.elapsed().as_secs_f64()
    ));
    write(conn, x, keys, &matched)
}

/// What one distinct table came to: the nodes on it (one table, in unique_id order), or why
/// none.
enum Outcome<'a> {
    Matched(Vec<&'a DbtNode<'a>>),
    Unmatched(Miss),
}

/// An outcome as the rows refer to it: `len` nodes from `start` in the shared list of
/// matched nodes, or an index into `Matched::misses`.
#[derive(Clone, Copy)]
enum Verdict {
    Nodes { start: u32, len: u32 },
    Miss(u32),
}

/// The first misses, shared by the rows they apply to: per integration, a relation without a
/// key row (`redacted_name`), and custom SQL the tool could not read (`shared_misses`).
fn shared_misses<'a>(index: &'a Index<'a>, x: &'a Extracted) -> (Vec<Miss>, HashMap<&'a str, u32>) {
    // Rows of an integration without an instance row (a database edited by hand) use these.
    let Outcome::Unmatched(no_key) = match_key(index, &crate::seam::UNKNOWN, None) else {
        unreachable!("a relation without a key never matches")
    };
    let mut misses = vec![
        no_key,
        miss(
            MissReason::CustomSql,
            &[],
            crate::seam::UNKNOWN.unparsed_sql_advice.to_string(),
        ),
    ];
    let mut first = HashMap::default();
    for i in &x.instances {
        first.insert(i.integration.as_str(), misses.len() as u32);
        let texts = i.tool.texts();
        let Outcome::Unmatched(no_key) = match_key(index, texts, None) else {
            unreachable!("a relation without a key never matches")
        };
        misses.push(no_key);
        misses.push(miss(
            MissReason::CustomSql,
            &[],
            texts.unparsed_sql_advice.to_string(),
        ));
    }
    (misses, first)
}

/// Matches every distinct relation (in parallel), then gives each asset's rows their
/// outcome (assets in parallel).
pub(crate) fn compute(x: &Extracted, keys: &[RelationKey]) -> Matched {
    let (index, by_table) = rayon::join(|| build_index(x, keys), || table_keys(keys));
    let texts: HashMap<&str, &Texts> = x
        .instances
        .iter()
        .map(|i| (i.integration.as_str(), i.tool.texts()))
        .collect();
    // Each row's key: 300k lookups, in parallel.
    let row_keys: Vec<u32> = x
        .relations
        .par_iter()
        .map(|t| {
            by_table
                .get(&(t.integration.as_str(), t.relation_id.as_str()))
                .map_or(u32::MAX, |&k| k as u32)
        })
        .collect();
    // Each distinct relation's outcome, by key index (dbt keys get none: no row points at
    // them; nor do the keys of an integration extract no longer has).
    let outcomes: Vec<Option<Outcome>> = keys
        .par_iter()
        .map(|k| {
            if k.side.is_bi() {
                texts
                    .get(k.integration.as_str())
                    .map(|t| match_key(&index, t, Some(k)))
            } else {
                None
            }
        })
        .collect();
    let (mut misses, shared) = shared_misses(&index, x);
    // SQL our parser could not read: one miss per integration and parser message (few).
    let mut unparseable: HashMap<(&str, &str), u32> = HashMap::default();
    // Sources that name no table likewise, the reason from the detail's start.
    for r in x
        .relations
        .iter()
        .filter(|r| matches!(r.kind, RelationKind::UnparsedSql | RelationKind::NoLineage))
    {
        if let Some(detail) = r.detail.as_deref() {
            unparseable
                .entry((r.integration.as_str(), detail))
                .or_insert_with(|| {
                    let t = texts
                        .get(r.integration.as_str())
                        .copied()
                        .unwrap_or(&crate::seam::UNKNOWN);
                    misses.push(if r.kind == RelationKind::NoLineage {
                        no_lineage_miss(t, detail)
                    } else {
                        miss(
                            MissReason::UnparseableSql,
                            &[],
                            format!("{detail}. {}", t.unparseable_sql_advice),
                        )
                    });
                    misses.len() as u32 - 1
                });
        }
    }
    let mut on_table: Vec<&DbtNode> = Vec::new();
    let verdicts: Vec<Verdict> = outcomes
        .into_iter()
        .map(|o| match o {
            Some(Outcome::Matched(nodes)) => {
                let start = on_table.len() as u32;
                on_table.extend(nodes);
                Verdict::Nodes {
                    start,
                    len: on_table.len() as u32 - start,
                }
            }
            Some(Outcome::Unmatched(m)) => {
                misses.push(m);
                Verdict::Miss(misses.len() as u32 - 1)
            }
            None => Verdict::Miss(u32::MAX),
        })
        .collect();

    let results: Vec<(Vec<Dependency>, Vec<Unmatched>)> = asset_ranges(&x.relations)
        .par_iter()
        .map(|range| {
            let mut deps: Vec<(&str, Dependency)> = Vec::new();
            let mut unmatched = Vec::new();
            // The shared misses of this asset's integration: no key, unreadable SQL.
            let no_key = shared
                .get(x.relations[range.start].integration.as_str())
                .copied()
                .unwrap_or(0);
            for i in range.clone() {
                let (row, table) = (&x.relations[i], i as u32);
                let verdict = if matches!(
                    row.kind,
                    RelationKind::UnparsedSql | RelationKind::NoLineage
                ) {
                    match row
                        .detail
                        .as_deref()
                        .and_then(|d| unparseable.get(&(row.integration.as_str(), d)))
                    {
                        Some(&m) => Verdict::Miss(m),
                        None => Verdict::Miss(no_key + 1),
                    }
                } else {
                    match verdicts.get(row_keys[i] as usize).copied() {
                        Some(Verdict::Miss(u32::MAX)) | None => Verdict::Miss(no_key),
                        Some(v) => v,
                    }
                };
                match verdict {
                    Verdict::Nodes { start, len } => {
                        for n in &on_table[start as usize..(start + len) as usize] {
                            deps.push((n.unique_id, Dependency { table, node: n.row }));
                        }
                    }
                    Verdict::Miss(miss) => unmatched.push(Unmatched { table, miss }),
                }
            }
            // One dependency per node, through its first row; in unique_id order.
            deps.sort_by(|a, b| a.0.cmp(b.0));
            deps.dedup_by(|b, a| a.0 == b.0);
            (deps.into_iter().map(|d| d.1).collect(), unmatched)
        })
        .collect();

    let mut matched = Matched {
        dependencies: Vec::with_capacity(results.iter().map(|r| r.0.len()).sum()),
        unmatched: Vec::with_capacity(results.iter().map(|r| r.1.len()).sum()),
        misses,
        row_keys,
    };
    for (deps, unmatched) in results {
        matched.dependencies.extend(deps);
        matched.unmatched.extend(unmatched);
    }
    matched
}

/// Replaces every `exposure_dependencies` and `unmatched_tables` row, in one transaction.
/// `x` and `keys` are what `matched` was computed from.
pub(crate) fn write(
    conn: &mut Connection,
    x: &Extracted,
    keys: &[RelationKey],
    matched: &Matched,
) -> Result<StageReport> {
    let key_of = |table: u32| -> Option<&str> {
        let k = matched.row_keys[table as usize];
        (k != u32::MAX)
            .then(|| keys[k as usize].key.as_deref())
            .flatten()
    };
    let tx = conn.transaction()?;
    {
        let mut dep = crate::bulk::Replace::new(
            &tx,
            "exposure_dependencies",
            &[
                "integration",
                "asset_id",
                "unique_id",
                "relation_id",
                "via",
                "key",
            ],
            false,
            None,
        )?;
        // Keyed: only the misses that changed are rewritten.
        let mut un = crate::bulk::Replace::new(
            &tx,
            "unmatched_tables",
            &[
                "integration",
                "asset_id",
                "relation_id",
                "via",
                "via_id",
                "relation_name",
                "key",
                "reason",
                "candidates",
                "suggestion",
            ],
            false,
            None,
        )?;
        for d in &matched.dependencies {
            let t = &x.relations[d.table as usize];
            dep.row(&[
                (&t.integration).into(),
                (&t.asset_id).into(),
                (&x.nodes[d.node as usize].unique_id).into(),
                (&t.relation_id).into(),
                t.via.into(),
                key_of(d.table).unwrap_or_default().into(),
            ])?;
        }
        for u in &matched.unmatched {
            let t = &x.relations[u.table as usize];
            let m = &matched.misses[u.miss as usize];
            un.row(&[
                (&t.integration).into(),
                (&t.asset_id).into(),
                (&t.relation_id).into(),
                t.via.into(),
                (&t.via_id).into(),
                (&t.name).into(),
                key_of(u.table).into(),
                m.reason.into(),
                (&m.candidates).into(),
                (&m.suggestion).into(),
            ])?;
        }
        dep.finish()?;
        un.finish()?;
    }
    let row_counts = [
        (
            "exposure_dependencies".to_string(),
            matched.dependencies.len() as i64,
        ),
        (
            "unmatched_tables".to_string(),
            matched.unmatched.len() as i64,
        ),
    ]
    .into();
    crate::fault::point("match.commit");
    tx.commit()?;
    Ok(StageReport {
        row_counts,
        ..Default::default()
    })
}

/// Every dependency, as emit reads them, in the table's key order (integration, asset_id,
/// unique_id).
pub(crate) fn load(db: &std::path::Path) -> Result<Vec<LinkRow>> {
    let mut conn = crate::db::reader(db)?;
    // One read transaction, as every loader reads (run::alone).
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
    let mut st = tx.prepare(
        "SELECT integration, asset_id, unique_id FROM exposure_dependencies ORDER BY integration, asset_id, unique_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(LinkRow {
            integration: r.get(0)?,
            asset_id: r.get(1)?,
            unique_id: r.get(2)?,
        })
    })?;
    let links = rows.collect::<rusqlite::Result<_>>()?;
    drop(st);
    tx.commit()?;
    Ok(links)
}

/// The dbt nodes that have a key, in unique_id order, by key and by `schema.identifier`.
fn build_index<'a>(x: &'a Extracted, keys: &'a [RelationKey]) -> Index<'a> {
    let nodes: HashMap<&str, (usize, &Node)> = x
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.unique_id.as_str(), (i, n)))
        .collect();
    let mut index = Index {
        nodes: Vec::new(),
        by_key: HashMap::default(),
        by_schema_ident: HashMap::default(),
        by_database_ident: HashMap::default(),
        resolution: Resolution::of(x.adapter_type.as_deref()),
        adapter: x.adapter_type.as_deref().unwrap_or("an unknown adapter"),
    };
    for k in keys
        .iter()
        .filter(|k| k.side == Side::Dbt && k.status == KeyStatus::Ok)
    {
        let (Some(&(row, n)), Some(key), Some(si)) = (
            nodes.get(k.reference.as_str()),
            k.key.as_deref(),
            k.schema_ident(),
        ) else {
            continue;
        };
        let i = index.nodes.len();
        index.nodes.push(DbtNode {
            row: row as u32,
            unique_id: &n.unique_id,
            resource_type: &n.resource_type,
            access: n.access.as_deref(),
            enabled: n.enabled,
            database: k.database.as_deref().unwrap_or_default(),
            node: n,
        });
        index.by_key.entry(key).or_default().push(i);
        index.by_schema_ident.entry(si).or_default().push(i);
        let (database, ident) = (
            k.database.as_deref().unwrap_or_default(),
            k.identifier.as_deref().unwrap_or_default(),
        );
        index
            .by_database_ident
            .entry((database, ident))
            .or_default()
            .push(i);
    }
    index
}

/// The index in `keys` of each BI relation's key.
fn table_keys(keys: &[RelationKey]) -> HashMap<(&str, &str), usize> {
    keys.iter()
        .enumerate()
        .filter(|(_, k)| k.side.is_bi())
        .map(|(i, k)| ((k.integration.as_str(), k.reference.as_str()), i))
        .collect()
}

/// The index ranges of each asset's rows: rows come in key order, so an asset's rows are
/// contiguous.
fn asset_ranges(tables: &[RelationUse]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        match out.last_mut() {
            Some(r)
                if tables[r.start].integration == t.integration
                    && tables[r.start].asset_id == t.asset_id =>
            {
                r.end = i + 1
            }
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// The miss of a source that names no table: its detail is `reason: what`; a reason this
/// version does not know (a database written by a newer one) reads as `custom_sql`.
fn no_lineage_miss(texts: &Texts, detail: &str) -> Miss {
    let (reason, what) = detail.split_once(": ").unwrap_or((detail, ""));
    match <MissReason as crate::tags::Tag>::parse(reason) {
        Some(r) => {
            let what = if what.is_empty() {
                String::new()
            } else {
                format!("{what}. ")
            };
            miss(r, &[], format!("{what}{}", (texts.no_lineage_advice)(r)))
        }
        None => miss(
            MissReason::CustomSql,
            &[],
            format!("{detail}. {}", texts.unparsed_sql_advice),
        ),
    }
}

fn miss(reason: MissReason, candidates: &[&str], suggestion: String) -> Miss {
    Miss {
        reason,
        candidates: serde_json::to_string(candidates).unwrap_or_else(|_| "[]".into()),
        suggestion,
    }
}

/// A table as `same_table` gives it, for people: its parts joined by dots.
fn tables_text(parts: &[String]) -> String {
    parts.join(".")
}

fn ids<'a>(index: &Index<'a>, list: &[usize]) -> Vec<&'a str> {
    list.iter().map(|&i| index.nodes[i].unique_id).collect()
}

/// The outcome for a relation with key `k` (`None`: no key row at all), its integration's
/// words in the advice.
fn match_key<'a>(index: &'a Index<'a>, texts: &Texts, k: Option<&RelationKey>) -> Outcome<'a> {
    match k.map(|k| k.status) {
        Some(KeyStatus::Redacted) | None => return Outcome::Unmatched(miss(MissReason::RedactedName, &[], texts.redacted_advice.into())),
        Some(KeyStatus::File) => {
            return Outcome::Unmatched(miss(
                MissReason::FileConnection,
                &[],
                "Reads a file or web connector, not a warehouse table: there is nothing in dbt to depend on".into(),
            ))
        }
        _ => {}
    }
    let schema_ident = k.and_then(|k| k.schema_ident());
    let key = k.and_then(|k| k.key.as_deref()).unwrap_or_default();
    let exact = index.by_key.get(key).map(Vec::as_slice).unwrap_or(&[]);
    let bi_db = k.and_then(|k| k.database.as_deref()).unwrap_or_default();
    // No database name: the schema and identifier must then be unique in dbt.
    let candidates: &[usize] = if exact.is_empty() && bi_db.is_empty() {
        schema_ident
            .as_deref()
            .and_then(|si| index.by_schema_ident.get(si))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    } else {
        exact
    };
    let enabled: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| index.nodes[i].enabled)
        .collect();
    if enabled.len() > 1 {
        // One table under several names (a source over a seed's table), or several tables
        // whose names only collide once folded?
        let tables: Vec<Vec<String>> = enabled.iter().map(|&i| index.table(i)).collect();
        if tables.iter().any(|t| t != &tables[0]) {
            let mut relations: Vec<String> = enabled
                .iter()
                .map(|&i| {
                    let n = index.nodes[i].node;
                    n.relation_name
                        .clone()
                        .unwrap_or_else(|| tables_text(&index.table(i)))
                })
                .collect();
            relations.sort();
            relations.dedup();
            let distinct = {
                let mut t = tables.clone();
                t.sort();
                t.dedup();
                t.len()
            };
            return Outcome::Unmatched(miss(
                MissReason::Ambiguous,
                &ids(index, &enabled),
                format!(
                    "{} dbt nodes have the key {key} once case and quotes are folded, but they are {distinct} different tables ({}) as {} resolves names; autoexpose does not pick one. Give them distinct names, or point the {} at the one it means",
                    enabled.len(),
                    relations.join(", "),
                    index.adapter,
                    texts.asset,
                ),
            ));
        }
    }
    if !enabled.is_empty() {
        let public: Vec<&DbtNode> = enabled
            .iter()
            .map(|&i| &index.nodes[i])
            .filter(|n| !(n.resource_type == "model" && n.access == Some("private")))
            .collect();
        if public.is_empty() {
            let private = ids(index, &enabled);
            return Outcome::Unmatched(miss(
                MissReason::PrivateModel,
                &private,
                format!(
                    "{} is private to its group, and dbt refuses references to it from an exposure. Make it protected or public, or point the {} at a public model",
                    private.join(", "),
                    texts.asset,
                ),
            ));
        }
        return Outcome::Matched(public);
    }
    if !candidates.is_empty() {
        let ids = ids(index, candidates);
        return Outcome::Unmatched(miss(
            MissReason::DisabledNode,
            &ids,
            format!(
                "{} is disabled in dbt (enabled: false), and dbt fails on references to disabled nodes. Enable it, or point the {} at an enabled model",
                ids.join(", "),
                texts.asset,
            ),
        ));
    }
    let bi_schema = k.and_then(|k| k.schema.as_deref()).unwrap_or_default();
    let ident = k.and_then(|k| k.identifier.as_deref()).unwrap_or_default();
    if bi_schema.is_empty() && !bi_db.is_empty() {
        if let Some(same) = index.by_database_ident.get(&(bi_db, ident)) {
            let mut schemas: Vec<&str> = same
                .iter()
                .filter_map(|&i| index.nodes[i].node.schema.as_deref())
                .collect();
            schemas.sort();
            schemas.dedup();
            let found: Vec<String> = same
                .iter()
                .map(|&i| {
                    format!(
                        "{bi_db}.{}.{ident}",
                        index.nodes[i].node.schema.as_deref().unwrap_or("")
                    )
                })
                .collect();
            return Outcome::Unmatched(miss(
                MissReason::MissingSchema,
                &ids(index, same),
                format!(
                    "{} recorded this table without a schema, and dbt builds {}. If the connection reads that schema by default, add `default_schemas: {{{bi_db}: {}}}` to this {} integration in the config",
                    texts.tool,
                    found.join(", "),
                    schemas.first().copied().unwrap_or(""),
                    texts.config_key,
                ),
            ));
        }
    }
    if let Some(same) = schema_ident
        .as_deref()
        .and_then(|si| index.by_schema_ident.get(si))
    {
        let dbs: Vec<&str> = same.iter().map(|&i| index.nodes[i].database).collect();
        return Outcome::Unmatched(miss(
            MissReason::DatabaseMismatch,
            &ids(index, same),
            format!(
                "dbt builds {} in database {}, {} reads database {bi_db:?}. If they are the same tables, add `database_aliases: {{{bi_db}: {}}}` to this {} integration in the config",
                schema_ident.as_deref().unwrap_or(""),
                dbs.join(", "),
                texts.tool,
                dbs.first().copied().unwrap_or(""),
                texts.config_key,
            ),
        ));
    }
    if bi_schema.is_empty() {
        let fix = if bi_db.is_empty() {
            "Qualify the name (database.schema.table) where the query or connection gives it"
                .to_string()
        } else {
            format!(
                "Qualify the name, or, if the connection reads one schema by default, add `default_schemas: {{{bi_db}: <schema>}}` to this {} integration in the config",
                texts.config_key
            )
        };
        return Outcome::Unmatched(miss(
            MissReason::IncompleteName,
            &[],
            format!(
                "{} names this table without a schema{}, and nothing completes the name ({key}); autoexpose does not guess one. {fix}",
                texts.tool,
                if bi_db.is_empty() { " or database" } else { "" },
            ),
        ));
    }
    Outcome::Unmatched(miss(
        MissReason::NotInManifest,
        &[],
        format!(
            "No dbt model, seed, snapshot or source is built as {key}. If dbt builds it under another name, check {}; otherwise it is not managed by dbt",
            texts.where_names_come_from
        ),
    ))
}

/// Matching's decisions, case by case, through the library: rows in, verdicts out.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::Tool;
    use crate::rows::{Asset, Instance};
    use crate::tags::Via;

    fn node(id: &str, resource_type: &str, schema: &str, identifier: &str) -> Node {
        Node {
            unique_id: id.into(),
            resource_type: resource_type.into(),
            package_name: "p".into(),
            name: identifier.into(),
            source_name: (resource_type == "source").then(|| "raw".into()),
            version: None,
            latest_version: None,
            database: Some("db".into()),
            schema: Some(schema.into()),
            identifier: identifier.into(),
            relation_name: Some(format!("\"db\".\"{schema}\".\"{identifier}\"")),
            materialized: Some("table".into()),
            access: (resource_type == "model").then(|| "protected".into()),
            enabled: true,
            depends_on: Vec::new(),
            tests: Vec::new(),
        }
    }

    fn listed(integration: &str, asset: &str, full_name: &str, kind: RelationKind) -> RelationUse {
        RelationUse {
            integration: integration.into(),
            asset_id: asset.into(),
            via: Via::Listed,
            via_id: "tables".into(),
            relation_id: full_name.into(),
            name: None,
            full_name: (!full_name.is_empty()).then(|| full_name.into()),
            schema: None,
            database: None,
            kind,
            detail: (kind == RelationKind::File).then(|| "csv".into()),
        }
    }

    /// Two different tools (which ones does not matter: each must give its own words).
    fn tools() -> &'static [Tool] {
        <Tool as crate::tags::Tag>::ALL
    }

    fn extracted(nodes: Vec<Node>, relations: Vec<RelationUse>) -> Extracted {
        let mut x = Extracted {
            project_name: "p".into(),
            adapter_type: Some("postgres".into()),
            nodes,
            instances: ["inv", "tab"]
                .into_iter()
                .map(|i| Instance {
                    integration: i.into(),
                    tool: if i == "inv" { tools()[0] } else { tools()[1] },
                    label: "l".into(),
                    complete: true,
                })
                .collect(),
            assets: Vec::<Asset>::new(),
            relations,
            ..Default::default()
        };
        x.sort();
        x
    }

    fn config() -> crate::config::Config {
        let yaml = b"dbt: {project_dir: .}\ninventory:\n  - {name: inv, file: d.yml, database_aliases: {prod: db}}\n";
        crate::config::Config::from_bytes(std::path::Path::new("autoexpose.yml"), yaml).unwrap()
    }

    /// Each relation row's verdict: the nodes it depends on, or its reason and suggestion.
    fn verdicts(x: &Extracted) -> Vec<(String, Result<Vec<String>, (MissReason, String)>)> {
        let keys = crate::normalize::compute(x, &config());
        let m = compute(x, &keys);
        x.relations
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let deps: Vec<String> = m
                    .dependencies
                    .iter()
                    .filter(|d| d.table as usize == i)
                    .map(|d| x.nodes[d.node as usize].unique_id.clone())
                    .collect();
                let miss = m
                    .unmatched
                    .iter()
                    .find(|u| u.table as usize == i)
                    .map(|u| &m.misses[u.miss as usize]);
                let verdict = match miss {
                    Some(miss) => Err((miss.reason, miss.suggestion.clone())),
                    None => Ok(deps),
                };
                (format!("{}:{}", t.integration, t.relation_id), verdict)
            })
            .collect()
    }

    #[track_caller]
    fn one(nodes: Vec<Node>, full_name: &str) -> Result<Vec<String>, (MissReason, String)> {
        let x = extracted(
            nodes,
            vec![listed("inv", "a", full_name, RelationKind::Table)],
        );
        verdicts(&x).remove(0).1
    }

    #[test]
    fn a_key_matches_its_node_case_and_quotes_folded_and_aliases_applied() {
        let orders = || vec![node("model.p.orders", "model", "marts", "orders")];
        assert_eq!(
            one(orders(), "db.marts.orders"),
            Ok(vec!["model.p.orders".to_string()])
        );
        assert_eq!(
            one(orders(), "\"DB\".\"MARTS\".\"ORDERS\""),
            Ok(vec!["model.p.orders".to_string()])
        );
        assert_eq!(
            one(orders(), "prod.marts.orders"),
            Ok(vec!["model.p.orders".to_string()])
        );
        // No database: schema and table unique in dbt.
        assert_eq!(
            one(orders(), "marts.orders"),
            Ok(vec!["model.p.orders".to_string()])
        );
    }

    #[test]
    fn a_source_over_a_seed_is_one_table_and_both_are_dependencies() {
        let mut source = node("source.p.raw.orders", "source", "main", "orders");
        source.relation_name = Some("db.main.orders".into());
        let mut seed = node("seed.p.orders", "seed", "main", "orders");
        seed.relation_name = Some("\"db\".\"main\".\"orders\"".into());
        assert_eq!(
            one(vec![seed, source], "db.main.orders"),
            Ok(vec![
                "seed.p.orders".to_string(),
                "source.p.raw.orders".to_string()
            ])
        );
    }

    #[test]
    fn every_miss_has_its_reason() {
        let reason = |nodes: Vec<Node>, full: &str| one(nodes, full).err().map(|e| e.0);
        let mut upper = node("model.p.orders_upper", "model", "marts", "orders");
        upper.relation_name = Some("\"db\".\"marts\".\"ORDERS\"".into());
        let lower = node("model.p.orders", "model", "marts", "orders");
        assert_eq!(
            reason(vec![lower.clone(), upper], "db.marts.orders"),
            Some(MissReason::Ambiguous)
        );
        let mut disabled = lower.clone();
        disabled.enabled = false;
        assert_eq!(
            reason(vec![disabled], "db.marts.orders"),
            Some(MissReason::DisabledNode)
        );
        let mut private = lower.clone();
        private.access = Some("private".into());
        assert_eq!(
            reason(vec![private.clone()], "db.marts.orders"),
            Some(MissReason::PrivateModel)
        );
        assert_eq!(
            reason(vec![lower.clone()], "other.marts.orders"),
            Some(MissReason::DatabaseMismatch)
        );
        assert_eq!(
            reason(vec![lower.clone()], "db..orders"),
            Some(MissReason::MissingSchema)
        );
        assert_eq!(
            reason(vec![lower.clone()], "db.marts.payments"),
            Some(MissReason::NotInManifest)
        );
        // A private model beside a public node on the same table: the public one only.
        let mut source = node("source.p.raw.orders", "source", "marts", "orders");
        source.relation_name = lower.relation_name.clone();
        assert_eq!(
            one(vec![private, source], "db.marts.orders"),
            Ok(vec!["source.p.raw.orders".to_string()])
        );
    }

    #[test]
    fn files_redacted_names_and_unreadable_sql_are_misses_in_each_tools_words() {
        let nodes = vec![node("model.p.orders", "model", "marts", "orders")];
        let mut redacted = listed("tab", "w", "t-1", RelationKind::Table);
        redacted.full_name = None;
        let x = extracted(
            nodes,
            vec![
                listed("inv", "a", "budget.csv", RelationKind::File),
                listed("inv", "a", "", RelationKind::UnparsedSql),
                redacted,
                listed("tab", "w", "", RelationKind::UnparsedSql),
            ],
        );
        let got = verdicts(&x);
        let reasons: Vec<(&str, MissReason)> = got
            .iter()
            .map(|(id, v)| (id.as_str(), v.as_ref().unwrap_err().0))
            .collect();
        assert_eq!(
            reasons,
            [
                ("inv:", MissReason::CustomSql),
                ("inv:budget.csv", MissReason::FileConnection),
                ("tab:", MissReason::CustomSql),
                ("tab:t-1", MissReason::RedactedName),
            ]
        );
        let advice = |i: usize| got[i].1.as_ref().unwrap_err().1.clone();
        assert_eq!(advice(0), tools()[0].texts().unparsed_sql_advice);
        assert_eq!(advice(2), tools()[1].texts().unparsed_sql_advice);
        assert_eq!(advice(3), tools()[1].texts().redacted_advice);
        assert_ne!(advice(0), advice(2), "each tool's own words");
    }

    /// A source that names no table is a miss with the reason its detail starts with, the
    /// detail first in the suggestion; the same detail on two assets is one shared miss; a
    /// reason this version does not know reads as custom_sql, never a panic.
    #[test]
    fn sources_naming_no_table_are_misses_with_their_own_reason() {
        let no_lineage = |asset: &str, detail: &str| RelationUse {
            relation_id: detail.into(),
            detail: Some(detail.into()),
            ..listed("tab", asset, "", RelationKind::NoLineage)
        };
        let x = extracted(
            vec![node("model.p.orders", "model", "marts", "orders")],
            vec![
                no_lineage("a", "unsupported_m_function: Web.Contents"),
                no_lineage("a", "unresolved_parameter: Database"),
                no_lineage("b", "dataflow: PowerPlatform.Dataflows"),
                no_lineage("b", "no_source: table \"Calc\" has no M source"),
                no_lineage("b", "unreadable_m: unbalanced brackets at byte 9"),
                no_lineage("c", "unsupported_m_function: Web.Contents"),
                no_lineage("c", "from_the_future: x"),
            ],
        );
        let m = compute(&x, &crate::normalize::compute(&x, &config()));
        let got: Vec<(&str, MissReason, &str)> = m
            .unmatched
            .iter()
            .map(|u| {
                let miss = &m.misses[u.miss as usize];
                (
                    x.relations[u.table as usize].asset_id.as_str(),
                    miss.reason,
                    miss.suggestion.split(". ").next().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", MissReason::UnresolvedParameter, "Database"),
                ("a", MissReason::UnsupportedMFunction, "Web.Contents"),
                ("b", MissReason::Dataflow, "PowerPlatform.Dataflows"),
                ("b", MissReason::NoSource, "table \"Calc\" has no M source"),
                (
                    "b",
                    MissReason::UnreadableM,
                    "unbalanced brackets at byte 9"
                ),
                ("c", MissReason::CustomSql, "from_the_future: x"),
                ("c", MissReason::UnsupportedMFunction, "Web.Contents"),
            ]
        );
        assert_eq!(
            m.unmatched[1].miss, m.unmatched[6].miss,
            "one miss for the same source on two assets"
        );
        assert!(m.dependencies.is_empty());
    }

    /// Rows of an integration with no instance row (a database edited by hand) are misses in
    /// neutral words, not a panic or another tool's advice.
    #[test]
    fn rows_without_an_instance_are_misses_not_a_panic() {
        let mut x = extracted(
            vec![node("model.p.orders", "model", "marts", "orders")],
            vec![listed("ghost", "a", "db.marts.orders", RelationKind::Table)],
        );
        x.instances.clear();
        let got = verdicts(&x);
        assert_eq!(got[0].1.as_ref().unwrap_err().0, MissReason::RedactedName);
        assert_eq!(
            got[0].1.as_ref().unwrap_err().1,
            crate::seam::UNKNOWN.redacted_advice
        );
    }
}
