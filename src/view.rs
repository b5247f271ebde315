//! What `autoexpose list` and `autoexpose report` show: the exposures read back from the
//! SQLite file, one [`ExposureView`] each, with their dependencies, unmatched tables, refresh
//! history and health, and the dbt graph their lineage is drawn from.
//!
//! Read-only and derived: nothing here is a stage and nothing is written. Both commands read
//! the same rows in the same order (integration, then exposure name), so the list, the JSON,
//! the CSV and the page agree and are byte-identical for the same database.
//!
//! Every text here came from a BI tool or a dbt project and may hold anything; whoever prints
//! it (a terminal table, CSV, HTML) escapes it for where it goes.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rusqlite::Connection;
use serde::Serialize;

/// One exposure as the list and the page show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ExposureView {
    /// The config's name for the integration.
    pub(crate) integration: String,
    /// tableau | powerbi | inventory.
    pub(crate) tool: String,
    /// How the tool names the instance (Tableau: site content URL; Power BI: tenant id).
    pub(crate) instance: String,
    /// The asset's folder (Tableau project, Power BI workspace, inventory folder).
    pub(crate) folder: Option<String>,
    /// The exposure's identity (Tableau workbook luid, Power BI report id).
    pub(crate) asset_ref: String,
    /// The dbt exposure name (what `ref`/`exposure:` selectors use).
    pub(crate) name: String,
    /// The asset's own name, as the BI tool spells it.
    pub(crate) label: String,
    /// dbt's exposure `type` (dashboard, …).
    pub(crate) exposure_type: String,
    pub(crate) owner_name: Option<String>,
    pub(crate) owner_email: Option<String>,
    /// The dashboard's page.
    pub(crate) url: Option<String>,
    /// `auto` for everything autoexpose writes (dbt Explorer's "Exposure mode").
    pub(crate) exposure_mode: String,
    /// written | no_dependencies (exposures.status).
    pub(crate) status: String,
    /// The YAML file it is in, relative to the dbt project; None when not written.
    pub(crate) file: Option<String>,
    pub(crate) dependencies: Vec<Dependency>,
    pub(crate) unmatched: Vec<Unmatched>,
    /// Every refresh decision about it, newest run first.
    pub(crate) refreshes: Vec<RefreshEvent>,
    pub(crate) health: Health,
}

/// One dbt node the exposure depends on, and the BI table it came through.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Dependency {
    pub(crate) unique_id: String,
    /// The BI tool's relation id.
    pub(crate) relation_id: String,
    /// How it was read: embedded | published | custom_sql | listed | m | native_query …
    pub(crate) via: String,
    /// The folded database.schema.identifier key both sides met on.
    pub(crate) key: String,
}

/// A table the exposure reads that matched no dbt node, with why and what to do.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Unmatched {
    pub(crate) relation_id: String,
    pub(crate) relation_name: Option<String>,
    pub(crate) via: String,
    pub(crate) key: Option<String>,
    pub(crate) reason: String,
    /// dbt unique_ids that nearly matched.
    pub(crate) candidates: Vec<String>,
    pub(crate) suggestion: String,
}

/// One row of refresh_events about the exposure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct RefreshEvent {
    pub(crate) run_id: i64,
    pub(crate) decided_at: String,
    pub(crate) dry_run: bool,
    pub(crate) target_kind: Option<String>,
    pub(crate) target_name: Option<String>,
    /// triggered | skipped | already_queued | not_applicable | failed | sending
    pub(crate) decision: String,
    pub(crate) reason: Option<String>,
    pub(crate) detail: Option<String>,
    /// --wait: success | failed | cancelled | timeout | poll_failed
    pub(crate) job_status: Option<String>,
}

/// dbt Explorer's words for an exposure's health (docs.getdbt.com/docs/explore/data-health-signals).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HealthLevel {
    Healthy,
    Caution,
    Degraded,
    Unknown,
}

impl HealthLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HealthLevel::Healthy => "Healthy",
            HealthLevel::Caution => "Caution",
            HealthLevel::Degraded => "Degraded",
            HealthLevel::Unknown => "Unknown",
        }
    }
}

/// An exposure's health and every reason for it, in the order they were found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Health {
    pub(crate) level: HealthLevel,
    pub(crate) reasons: Vec<String>,
}

/// Every exposure in the database, ordered by integration and name. Health is filled in by
/// `crate::health`.
pub(crate) fn load(conn: &Connection) -> Result<Vec<ExposureView>> {
    let mut deps = grouped(conn, "SELECT integration, asset_id, unique_id, relation_id, via, key FROM exposure_dependencies ORDER BY 1, 2, 3", |r| {
        Ok(Dependency { unique_id: r.get(2)?, relation_id: r.get(3)?, via: r.get(4)?, key: r.get(5)? })
    })?;
    let mut unmatched = grouped(
        conn,
        "SELECT integration, asset_id, relation_id, relation_name, via, key, reason, candidates, suggestion FROM unmatched_tables ORDER BY 1, 2, via, via_id, relation_id",
        |r| {
            let candidates: String = r.get(7)?;
            Ok(Unmatched {
                relation_id: r.get(2)?,
                relation_name: r.get(3)?,
                via: r.get(4)?,
                key: r.get(5)?,
                reason: r.get(6)?,
                candidates: serde_json::from_str(&candidates).unwrap_or_default(),
                suggestion: r.get(8)?,
            })
        },
    )?;
    let mut refreshes = grouped(
        conn,
        "SELECT integration, asset_ref, run_id, decided_at, dry_run, target_kind, target_name, decision, reason, detail, job_status
         FROM refresh_events ORDER BY 1, 2, run_id DESC, seq",
        |r| {
            Ok(RefreshEvent {
                run_id: r.get(2)?,
                decided_at: r.get(3)?,
                dry_run: r.get::<_, i64>(4)? != 0,
                target_kind: r.get(5)?,
                target_name: r.get(6)?,
                decision: r.get(7)?,
                reason: r.get(8)?,
                detail: r.get(9)?,
                job_status: r.get(10)?,
            })
        },
    )?;
    let mut stmt = conn.prepare(
        "SELECT e.integration, coalesce(i.tool, ''), coalesce(i.label, ''), a.folder, e.asset_ref, e.name, coalesce(a.name, e.name),
                a.owner_name, a.owner_email, a.url, e.status, e.file, e.body, a.asset_id
         FROM exposures e
         LEFT JOIN bi_instances i ON i.integration = e.integration
         LEFT JOIN bi_assets a INDEXED BY bi_assets_by_ref ON a.integration = e.integration AND a.asset_ref = e.asset_ref
         ORDER BY e.integration, e.name",
    )?;
    // INDEXED BY: without statistics SQLite prefers bi_assets' primary key, which covers every
    // column but is keyed by asset_id, so each exposure scanned all of its integration's assets
    // (87 s for L's 20,000 exposures; 0.03 s through the index of migration 0016).
    let rows = stmt.query_map([], |r| {
        Ok((
            ExposureView {
                integration: r.get(0)?,
                tool: r.get(1)?,
                instance: r.get(2)?,
                folder: r.get(3)?,
                asset_ref: r.get(4)?,
                name: r.get(5)?,
                label: r.get(6)?,
                exposure_type: String::new(),
                owner_name: r.get(7)?,
                owner_email: r.get(8)?,
                url: r.get(9)?,
                exposure_mode: String::new(),
                status: r.get(10)?,
                file: r.get(11)?,
                dependencies: Vec::new(),
                unmatched: Vec::new(),
                refreshes: Vec::new(),
                health: Health {
                    level: HealthLevel::Unknown,
                    reasons: Vec::new(),
                },
            },
            r.get::<_, String>(12)?,
            r.get::<_, Option<String>>(13)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut view, body, asset_id) = row.context("reading exposures")?;
        // The body is the exposure as emit wrote it; label, type and mode come from there so
        // the list says what the YAML says.
        let body: serde_json::Value = serde_json::from_str(&body)
            .with_context(|| format!("exposures row {:?}: body is not JSON", view.name))?;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        if let Some(label) = body.get("label").and_then(text) {
            view.label = label;
        }
        view.exposure_type = body
            .get("type")
            .and_then(text)
            .unwrap_or_else(|| "dashboard".into());
        view.exposure_mode = body
            .pointer("/meta/exposure_mode")
            .and_then(text)
            .unwrap_or_else(|| "auto".into());
        let key = (view.integration.clone(), asset_id.unwrap_or_default());
        view.dependencies = deps.remove(&key).unwrap_or_default();
        view.unmatched = unmatched.remove(&key).unwrap_or_default();
        view.refreshes = refreshes
            .remove(&(view.integration.clone(), view.asset_ref.clone()))
            .unwrap_or_default();
        out.push(view);
    }
    Ok(out)
}

/// One dbt node of the graph lineage is drawn from (a `dbt_nodes` row).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct GraphNode {
    pub(crate) unique_id: String,
    /// model | seed | snapshot | source
    pub(crate) resource_type: String,
    pub(crate) name: String,
    /// Sources: the source's name (`source('<source_name>', '<name>')`).
    pub(crate) source_name: Option<String>,
    pub(crate) enabled: bool,
    /// Its parents among the graph's nodes (dbt_nodes.depends_on), sorted.
    pub(crate) parents: Vec<String>,
    /// The test nodes on it (dbt_nodes.tests), sorted.
    pub(crate) tests: Vec<String>,
}

/// The dbt graph by unique_id: every model, seed, snapshot and source extract read.
pub(crate) fn load_graph(conn: &Connection) -> Result<BTreeMap<String, GraphNode>> {
    let mut stmt = conn.prepare(
        "SELECT unique_id, resource_type, name, source_name, enabled, depends_on, tests FROM dbt_nodes ORDER BY unique_id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let unique_id: String = r.get(0)?;
        let list = |i: usize, what: &str| -> Result<Vec<String>> {
            let text: String = r.get(i)?;
            serde_json::from_str(&text).with_context(|| {
                format!("dbt_nodes row {unique_id:?}: {what} is not a JSON list of strings")
            })
        };
        let node = GraphNode {
            resource_type: r.get(1)?,
            name: r.get(2)?,
            source_name: r.get(3)?,
            enabled: r.get::<_, i64>(4)? != 0,
            parents: list(5, "depends_on")?,
            tests: list(6, "tests")?,
            unique_id: unique_id.clone(),
        };
        out.insert(unique_id, node);
    }
    Ok(out)
}

/// Rows grouped by their first two columns (integration and an asset id or ref).
fn grouped<T>(
    conn: &Connection,
    sql: &str,
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<BTreeMap<(String, String), Vec<T>>> {
    let mut stmt = conn.prepare(sql)?;
    let mut out: BTreeMap<(String, String), Vec<T>> = BTreeMap::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key = (r.get(0)?, r.get(1)?);
        out.entry(key).or_default().push(row(r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queries name only columns the migrations make.
    #[test]
    fn loads_from_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("a.db")).unwrap();
        assert_eq!(load(&conn).unwrap(), Vec::new());
        assert!(load_graph(&conn).unwrap().is_empty());
    }

    /// A database made before 0015 keeps its dbt_nodes rows, with an empty graph until the next
    /// extract, and reads back through the loaders.
    #[test]
    fn dbt_graph_columns_default_to_empty_lists_on_old_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &crate::db::MIGRATIONS[..14] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 14).unwrap();
        conn.execute(
            "INSERT INTO dbt_nodes (unique_id, resource_type, package_name, name, identifier, enabled) VALUES ('model.p.m', 'model', 'p', 'm', 'm', 1)",
            [],
        )
        .unwrap();
        crate::db::migrate(&mut conn).unwrap();
        let row: (String, String) = conn
            .query_row("SELECT depends_on, tests FROM dbt_nodes", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(row, ("[]".to_string(), "[]".to_string()));
        let graph = load_graph(&conn).unwrap();
        assert!(graph["model.p.m"].parents.is_empty() && graph["model.p.m"].tests.is_empty());
    }
}
