//! One tenant's extraction as rows: the neutral rows later stages read (the tenant as an
//! instance, every report that is not an app copy as an asset, every source its dataset's
//! tables read as a relation), and the record of what Power BI said, in the `powerbi_*` tables,
//! `extract_warnings` and `raw_responses` (`write`). Runs inside the extract stage's transaction.
//!
//! Relations come from the M reader's [`Found`] values (`relations_of`): a table reached by
//! navigation is a `table` row; native SQL one row per table the lineage module read, or one
//! `unparsed_sql` row with the parser's message; a miss one row whose kind and detail carry its
//! reason. A report whose dataset lives in another workspace reads that dataset.

use std::collections::BTreeMap;

use anyhow::Result;
use rayon::prelude::*;
use rusqlite::{params, Connection, Transaction};

use super::extract::TenantExtract;
use super::m::{Context, Found, MissKind};
use super::model::{Dataset, Workspace};
use crate::bulk;
use crate::integrations::Tool;
use crate::lineage::{Part, TableRef};
use crate::rows::{self, RelationUse};
use crate::tags::{RelationKind, Via};

/// A tenant's extraction, as the seam hands it around.
pub(crate) struct Extracted {
    pub(crate) x: TenantExtract,
    pub(crate) requests: usize,
    pub(crate) tokens: usize,
}

impl crate::seam::Extraction for Extracted {
    fn complete(&self) -> bool {
        self.x.complete
    }

    fn summary(&self) -> String {
        let selected = self
            .x
            .workspaces
            .iter()
            .filter(|w| self.x.selected.contains(&w.id));
        let reports: usize = selected
            .clone()
            .map(|w| w.reports.iter().filter(|r| !r.is_app_copy()).count())
            .sum();
        format!(
            "{} workspaces scanned ({} selected), {reports} reports, {} scans, {} requests, {} tokens",
            self.x.workspaces.len(),
            selected.count(),
            self.x.scans.len(),
            self.requests,
            self.tokens
        )
    }

    fn take_rows(&mut self) -> rows::Extracted {
        let (instances, assets, relations) = rows(&self.x);
        rows::Extracted {
            instances: vec![instances],
            assets,
            relations,
            ..Default::default()
        }
    }

    fn store(&self, tx: &Transaction) -> Result<()> {
        write(tx, &self.x)?;
        if let Some(sync) = &self.x.sync {
            super::sync::write(tx, &self.x.integration, sync, self.x.complete)?;
        }
        Ok(())
    }
}

/// The text of a miss's reason, as `bi_relations.detail` starts and as issue #14 names them.
pub(crate) fn miss_text(k: MissKind) -> &'static str {
    match k {
        MissKind::UnsupportedMFunction => "unsupported_m_function",
        MissKind::UnresolvedParameter => "unresolved_parameter",
        MissKind::FileConnection => "file_connection",
        MissKind::Dataflow => "dataflow",
        MissKind::NoSource => "no_source",
        MissKind::Unreadable => "unreadable_m",
    }
}

/// The kind of a miss's row. A file is `file` (matched as a file connection, as Tableau's);
/// every other miss is `no_lineage`, its detail starting with the reason that becomes
/// `unmatched_tables.reason`.
fn miss_kind(k: MissKind) -> RelationKind {
    match k {
        MissKind::FileConnection => RelationKind::File,
        _ => RelationKind::NoLineage,
    }
}

/// One part of a name as M or SQL gave it: quoted (an exact name) in double quotes with `"`
/// doubled, else as it is.
fn quote_part(p: &str, quoted: bool) -> String {
    if quoted {
        format!("\"{}\"", p.replace('"', "\"\""))
    } else {
        p.to_string()
    }
}

/// `database.schema.name` of the parts present. Navigation names are exact (`{[Name="X"]}`
/// names the object whose name is X), so every part is quoted.
fn navigation_full_name(database: Option<&str>, schema: Option<&str>, name: &str) -> String {
    [database, schema, Some(name)]
        .into_iter()
        .flatten()
        .map(|p| quote_part(p, true))
        .collect::<Vec<_>>()
        .join(".")
}

/// The full name of a table native SQL reads, quoted as the SQL quoted it (an unquoted part
/// keeps the warehouse's case rules); `db..t` for the warehouse's default schema.
fn sql_full_name(t: &TableRef) -> String {
    let part = |p: &Part| quote_part(&p.value, p.quoted);
    let mut parts = Vec::new();
    if let Some(d) = &t.database {
        parts.push(part(d));
        parts.push(t.schema.as_ref().map(part).unwrap_or_default());
    } else if let Some(s) = &t.schema {
        parts.push(part(s));
    }
    parts.push(part(&t.name));
    parts.join(".")
}

/// Where a relation is read through: the dataset and its table.
pub(crate) struct Through<'a> {
    pub(crate) integration: &'a str,
    pub(crate) report_id: &'a str,
    pub(crate) dataset_id: &'a str,
    pub(crate) table: &'a str,
}

/// The rows of what one dataset table reads, one per source (`Found` from the M reader).
/// Navigation and misses are read through the dataset (`via = published`: a dataset is a
/// shared model, published apart from its reports); native SQL through `custom_sql`. `via_id`
/// is `{dataset id}/{table name}` either way.
pub(crate) fn relations_of(through: &Through, found: &[Found]) -> Vec<RelationUse> {
    let via_id = format!("{}/{}", through.dataset_id, through.table);
    let row = |via: Via, relation_id: String, kind: RelationKind| RelationUse {
        integration: through.integration.to_string(),
        asset_id: through.report_id.to_string(),
        via,
        via_id: via_id.clone(),
        relation_id,
        name: None,
        full_name: None,
        schema: None,
        database: None,
        kind,
        detail: None,
    };
    let mut out = Vec::new();
    for f in found {
        match f {
            Found::Table {
                database,
                schema,
                name,
                ..
            } => {
                let full = navigation_full_name(database.as_deref(), schema.as_deref(), name);
                out.push(RelationUse {
                    name: Some(name.clone()),
                    full_name: Some(full.clone()),
                    schema: schema.clone(),
                    database: database.clone(),
                    ..row(Via::Published, full, RelationKind::Table)
                });
            }
            Found::Sql {
                tables: Ok(tables), ..
            } => {
                for t in tables {
                    let full = sql_full_name(t);
                    out.push(RelationUse {
                        name: Some(t.name.value.clone()),
                        full_name: Some(full.clone()),
                        schema: t.schema.as_ref().map(|s| s.value.clone()),
                        database: t.database.as_ref().map(|d| d.value.clone()),
                        ..row(Via::CustomSql, full, RelationKind::Table)
                    });
                }
            }
            Found::Sql {
                tables: Err(failure),
                ..
            } => {
                out.push(RelationUse {
                    detail: Some(failure.to_string()),
                    ..row(Via::CustomSql, String::new(), RelationKind::UnparsedSql)
                });
            }
            Found::Miss { reason, detail } => {
                // The relation id keeps the reason, so a file and a web call of the same
                // name stay two relations.
                let text = format!("{}: {detail}", miss_text(*reason));
                let kind = miss_kind(*reason);
                let detail = if kind == RelationKind::File {
                    detail.clone()
                } else {
                    text.clone()
                };
                out.push(RelationUse {
                    detail: Some(detail),
                    ..row(Via::Published, text, kind)
                });
            }
        }
    }
    out.sort_by(|a, b| a.key().cmp(&b.key()));
    out.dedup_by(|b, a| a.key() == b.key());
    out
}

/// What one table's M expression reads (`m::read`: navigation, native SQL, or why not).
fn read_m(expression: &str, ctx: &Context) -> Vec<Found> {
    super::m::read(expression, ctx)
}

/// The owner of a report: `createdBy`, else `modifiedBy`, else the dataset's `configuredBy`
/// (reference section 3); each a user principal name, so also the email when it looks like one.
fn owner(r: &super::model::Report, ds: Option<&Dataset>) -> (Option<String>, Option<String>) {
    let set = |v: Option<&String>| v.filter(|s| !s.trim().is_empty()).cloned();
    let who = set(r.created_by.as_ref())
        .or_else(|| set(r.modified_by.as_ref()))
        .or_else(|| ds.and_then(|d| set(d.configured_by.as_ref())));
    let email = who
        .clone()
        .filter(|w| w.contains('@') && !w.contains(char::is_whitespace));
    (who, email)
}

/// The neutral rows: the tenant, every report of a selected workspace that is not an app copy,
/// and what its dataset's tables read (the dataset wherever it lives).
pub(crate) fn rows(x: &TenantExtract) -> (rows::Instance, Vec<rows::Asset>, Vec<RelationUse>) {
    let i = &x.integration;
    let instance = rows::Instance {
        integration: i.clone(),
        tool: Tool::PowerBi,
        label: x.tenant_id.clone(),
        complete: x.complete,
    };
    let datasets: BTreeMap<&str, &Dataset> = x
        .workspaces
        .iter()
        .flat_map(|w| &w.datasets)
        .map(|d| (d.id.as_str(), d))
        .collect();
    // What each dataset's tables read, once per dataset however many reports read it, the
    // datasets in parallel (the M reader is most of extract's own work on a large tenant).
    let wanted: std::collections::BTreeSet<&str> = x
        .workspaces
        .iter()
        .filter(|w| x.selected.contains(&w.id))
        .flat_map(|w| w.reports.iter().filter(|r| !r.is_app_copy()))
        .filter_map(|r| r.dataset_id.as_deref())
        .filter(|d| datasets.contains_key(d))
        .collect();
    let read: BTreeMap<&str, Vec<(&str, Vec<Found>)>> = wanted
        .into_par_iter()
        .map(|d| (d, read_dataset(datasets[d], x.parameters.get(d))))
        .collect();
    let mut assets = Vec::new();
    let mut relations = Vec::new();
    for w in x.workspaces.iter().filter(|w| x.selected.contains(&w.id)) {
        for r in w.reports.iter().filter(|r| !r.is_app_copy()) {
            let ds = r
                .dataset_id
                .as_deref()
                .and_then(|d| datasets.get(d).copied());
            let (owner_name, owner_email) = owner(r, ds);
            assets.push(rows::Asset {
                integration: i.clone(),
                id: r.id.clone(),
                asset_ref: r.id.clone(),
                name: r.name.clone().unwrap_or_default(),
                folder_ref: Some(w.id.clone()),
                folder: w.name.clone(),
                description: None,
                owner_name,
                owner_email,
                url: x.report_urls.get(&r.id).map(|(u, _)| u.clone()),
                tags: Vec::new(),
                meta: r
                    .dataset_id
                    .iter()
                    .map(|d| ("dataset_id".to_string(), d.clone()))
                    .collect(),
            });
            let Some(ds) = ds else { continue };
            for (table, found) in &read[ds.id.as_str()] {
                let through = Through {
                    integration: i,
                    report_id: &r.id,
                    dataset_id: &ds.id,
                    table,
                };
                relations.extend(relations_of(&through, found));
            }
        }
    }
    assets.sort_by(|a, b| a.id.cmp(&b.id));
    relations.sort_by(|a, b| a.key().cmp(&b.key()));
    (instance, assets, relations)
}

/// Whether a dataset's M names a parameter the scan's expressions give no value for: only
/// then is `datasets/{id}/parameters` worth a call (issue #14: the scan's expressions first).
pub(crate) fn needs_parameters(ds: &Dataset) -> bool {
    read_dataset(ds, None)
        .iter()
        .flat_map(|(_, found)| found)
        .any(|f| {
            matches!(
                f,
                Found::Miss {
                    reason: MissKind::UnresolvedParameter,
                    ..
                }
            )
        })
}

/// Each table of a dataset and what it reads, in name order.
fn read_dataset<'d>(
    ds: &'d Dataset,
    api_parameters: Option<&Vec<super::model::Parameter>>,
) -> Vec<(&'d str, Vec<Found>)> {
    // A table's M may name another table of its dataset as it names a shared expression
    // (`Source = Orders`): the tables come after the shared expressions, which win a name
    // both have (the first found is the one read).
    let expressions: Vec<(String, String)> = ds
        .expressions
        .iter()
        .map(|e| (e.name.clone(), e.expression.clone().unwrap_or_default()))
        .chain(
            ds.tables
                .iter()
                .filter_map(|t| Some((t.name.clone(), t.expression()?.to_string()))),
        )
        .collect();
    let parameters: Vec<(String, String)> = api_parameters
        .into_iter()
        .flatten()
        .filter_map(|p| p.value_text().map(|v| (p.name.clone(), v)))
        .collect();
    let ctx = Context {
        expressions: &expressions,
        parameters: &parameters,
    };
    let mut out: Vec<(&str, Vec<Found>)> = ds
        .tables
        .iter()
        .map(|t| {
            let found = match t.expression().filter(|e| !e.trim().is_empty()) {
                Some(m) => read_m(m, &ctx),
                None => vec![Found::Miss {
                    reason: MissKind::NoSource,
                    detail: format!("table {:?} has no M source (a calculated table, or metadata scanning without datasetExpressions)", t.name),
                }],
            };
            (t.name.as_str(), found)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

/// The summary's lines about reports read but not imported.
pub(crate) fn left_out_lines(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn.prepare("SELECT left_out, count(*) FROM powerbi_reports WHERE left_out = 'app_copy' GROUP BY left_out")?;
    let rows: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows
        .into_iter()
        .map(|(_, n)| {
            format!(
                "Reports left out:     {n} (app copies; their original reports are the exposures)"
            )
        })
        .collect())
}

/// The tables of extract that hold the rows of every integration, keyed by `integration`.
/// (`bi_refresh_targets`, shared too, is replaced per tenant through `bulk::Replace`, and an
/// integration gone from the config goes in `integrations::forget_removed`.)
const SHARED: [&str; 2] = ["extract_warnings", "raw_responses"];

/// The `powerbi_*` tables every extract rewrites whole: what the tenant and its scans were.
const OWN: [&str; 2] = ["powerbi_tenants", "powerbi_scans"];

/// The `powerbi_*` tables each tenant's `write` replaces through `bulk::Replace`, writing only
/// the rows that changed (a night that scanned a few workspaces changes a few rows). A tenant
/// gone from the config goes in `powerbi::sync::forget_removed`.
pub(crate) const KEYED: [&str; 7] = [
    "powerbi_workspaces",
    "powerbi_reports",
    "powerbi_datasets",
    "powerbi_tables",
    "powerbi_expressions",
    "powerbi_parameters",
    "powerbi_datasources",
];

/// Deletes every row of the tables in `OWN`, and in the shared tables the rows of the tenants
/// written before (as `powerbi_tenants` lists them); another integration's rows stay. The
/// `KEYED` tables stay for `write` to replace.
pub(crate) fn clear(tx: &Transaction) -> Result<()> {
    for t in SHARED {
        tx.execute(
            &format!(
                "DELETE FROM {t} WHERE integration IN (SELECT integration FROM powerbi_tenants)"
            ),
            [],
        )?;
    }
    for t in OWN {
        tx.execute(&format!("DELETE FROM {t}"), [])?;
    }
    Ok(())
}

fn json_list(ids: impl Iterator<Item = Option<String>>) -> Result<String> {
    Ok(serde_json::to_string(&ids.flatten().collect::<Vec<_>>())?)
}

fn left_out_workspace(x: &TenantExtract, w: &Workspace) -> Option<&'static str> {
    if x.selected.contains(&w.id) {
        None
    } else if w.is_personal() {
        Some("personal_workspace")
    } else if w.is_inactive() {
        Some("inactive_workspace")
    } else {
        Some("not_selected")
    }
}

/// The record of what the tenant said, and its rows of the shared tables.
pub(crate) fn write(tx: &Transaction, x: &TenantExtract) -> Result<()> {
    let i = &x.integration;
    for t in SHARED {
        tx.execute(&format!("DELETE FROM {t} WHERE integration = ?1"), [i])?;
    }
    tx.execute(
        "INSERT INTO powerbi_tenants (integration, tenant_id, api_url, workspaces_filter, workspaces_listed, complete) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![i, x.tenant_id, x.api_url, serde_json::to_string(&x.workspaces_filter)?, x.listed as i64, x.complete],
    )?;
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO powerbi_scans (integration, scan_id, purpose, workspace_ids, status, polls) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for s in &x.scans {
        st.execute(params![
            i,
            s.id,
            s.purpose,
            serde_json::to_string(&s.workspaces)?,
            s.status,
            s.polls
        ])?;
    }
    // A workspace, report or dataset the scan lists twice keeps its first row, as INSERT OR
    // IGNORE did.
    let replace = |table: &'static str, columns: &[&'static str]| {
        bulk::Replace::new(tx, table, columns, true, Some(i))
    };
    let mut ws = replace(
        "powerbi_workspaces",
        &[
            "integration",
            "id",
            "name",
            "type",
            "state",
            "selected",
            "left_out",
        ],
    )?;
    let mut rep = replace(
        "powerbi_reports",
        &[
            "integration",
            "id",
            "workspace_id",
            "name",
            "dataset_id",
            "dataset_workspace_id",
            "report_type",
            "created_by",
            "modified_by",
            "created_at",
            "modified_at",
            "app_id",
            "original_report_id",
            "url",
            "url_source",
            "left_out",
        ],
    )?;
    let mut dst = replace(
        "powerbi_datasets",
        &[
            "integration",
            "id",
            "workspace_id",
            "name",
            "configured_by",
            "target_storage_mode",
            "datasource_ids",
            "misconfigured_datasource_ids",
            "upstream_dataflows",
            "schema_retrieval_error",
        ],
    )?;
    let mut tbl = replace(
        "powerbi_tables",
        &[
            "integration",
            "dataset_id",
            "name",
            "is_hidden",
            "m_expression",
        ],
    )?;
    let mut exp = replace(
        "powerbi_expressions",
        &[
            "integration",
            "dataset_id",
            "name",
            "m_expression",
            "is_parameter",
        ],
    )?;
    for w in &x.workspaces {
        let selected = x.selected.contains(&w.id);
        ws.row(&[
            i.into(),
            (&w.id).into(),
            (&w.name).into(),
            (&w.kind).into(),
            (&w.state).into(),
            selected.into(),
            left_out_workspace(x, w).into(),
        ])?;
        for r in &w.reports {
            let left_out = if r.is_app_copy() {
                Some("app_copy")
            } else if !selected {
                Some("not_selected")
            } else {
                None
            };
            let url = x.report_urls.get(&r.id);
            rep.row(&[
                i.into(),
                (&r.id).into(),
                (&w.id).into(),
                (&r.name).into(),
                (&r.dataset_id).into(),
                (&r.dataset_workspace_id).into(),
                (&r.report_type).into(),
                (&r.created_by).into(),
                (&r.modified_by).into(),
                (&r.created_date_time).into(),
                (&r.modified_date_time).into(),
                (&r.app_id).into(),
                r.original().into(),
                url.map(|u| u.0.as_str()).into(),
                url.map(|u| u.1.as_str()).into(),
                left_out.into(),
            ])?;
        }
        for d in &w.datasets {
            let usages = json_list(
                d.datasource_usages
                    .iter()
                    .map(|u| u.datasource_instance_id.clone()),
            )?;
            let misconfigured = json_list(
                d.misconfigured_datasource_usages
                    .iter()
                    .map(|u| u.datasource_instance_id.clone()),
            )?;
            let dataflows = serde_json::to_string(&d.upstream_dataflows)?;
            let error = d.schema_retrieval_error.as_ref().map(|e| e.to_string());
            dst.row(&[
                i.into(),
                (&d.id).into(),
                (&w.id).into(),
                (&d.name).into(),
                (&d.configured_by).into(),
                (&d.target_storage_mode).into(),
                (&usages).into(),
                (&misconfigured).into(),
                (&dataflows).into(),
                (&error).into(),
            ])?;
            for t in &d.tables {
                tbl.row(&[
                    i.into(),
                    (&d.id).into(),
                    (&t.name).into(),
                    t.is_hidden.into(),
                    t.expression().into(),
                ])?;
            }
            for e in &d.expressions {
                exp.row(&[
                    i.into(),
                    (&d.id).into(),
                    (&e.name).into(),
                    (&e.expression).into(),
                    e.is_parameter().into(),
                ])?;
            }
        }
    }
    for r in [ws, rep, dst, tbl, exp] {
        r.finish()?;
    }
    let mut par = replace(
        "powerbi_parameters",
        &[
            "integration",
            "dataset_id",
            "name",
            "type",
            "current_value",
            "is_required",
        ],
    )?;
    for (ds, ps) in &x.parameters {
        for p in ps {
            let value = p.value_text();
            par.row(&[
                i.into(),
                ds.into(),
                (&p.name).into(),
                (&p.kind).into(),
                (&value).into(),
                p.is_required.into(),
            ])?;
        }
    }
    par.finish()?;
    let mut src = replace(
        "powerbi_datasources",
        &[
            "integration",
            "datasource_id",
            "datasource_type",
            "gateway_id",
            "server",
            "database",
            "connection_details",
            "misconfigured",
        ],
    )?;
    for (list, misconfigured) in [
        (&x.datasource_instances, false),
        (&x.misconfigured_instances, true),
    ] {
        for d in list {
            let Some(id) = &d.datasource_id else { continue };
            let detail = |k: &str| d.connection_details.as_ref().and_then(|c| c[k].as_str());
            let details = d.connection_details.as_ref().map(|c| c.to_string());
            src.row(&[
                i.into(),
                id.into(),
                (&d.datasource_type).into(),
                (&d.gateway_id).into(),
                detail("server").into(),
                detail("database").into(),
                (&details).into(),
                misconfigured.into(),
            ])?;
        }
    }
    src.finish()?;
    let mut warn = tx.prepare_cached(
        "INSERT INTO extract_warnings (integration, query, page, code, severity, message, action) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for w in &x.warnings {
        warn.execute(params![
            i,
            w.query,
            0,
            w.code,
            "warning",
            crate::http::scrub(&w.message),
            w.action
        ])?;
    }
    let mut raw = tx.prepare_cached(
        "INSERT INTO raw_responses (integration, seq, method, path, status, bytes, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (n, r) in x.responses.iter().enumerate() {
        raw.execute(params![
            i,
            n as i64 + 1,
            r.method,
            r.path,
            r.status,
            r.bytes as i64,
            r.body
        ])?;
    }
    write_refresh_targets(tx, x)
}

/// The refresh targets (`bi_refresh_targets`, read by the refresh stage, issue #15): for every
/// report that is an asset, its dataset, where the scan lists it, when refreshing it imports
/// anything (`Dataset::refreshable`). `target_ref` is `{workspace id}/{dataset id}`, the two ids
/// the refresh call names; a dataset read by several reports is one target, so the refresh
/// stage sends it once. A report on a DirectQuery dataset has no target: the stage records it
/// `not_applicable` (the dataset's mode stays in powerbi_datasets.target_storage_mode).
fn write_refresh_targets(tx: &Transaction, x: &TenantExtract) -> Result<()> {
    let home: BTreeMap<&str, (&str, &Dataset)> = x
        .workspaces
        .iter()
        .flat_map(|w| {
            w.datasets
                .iter()
                .map(move |d| (d.id.as_str(), (w.id.as_str(), d)))
        })
        .collect();
    // A report the scan lists twice keeps its first target, as INSERT OR IGNORE did.
    let mut ins = bulk::Replace::new(
        tx,
        "bi_refresh_targets",
        &crate::refresh::TARGET_COLUMNS,
        true,
        Some(&x.integration),
    )?;
    for w in x.workspaces.iter().filter(|w| x.selected.contains(&w.id)) {
        for r in w.reports.iter().filter(|r| !r.is_app_copy()) {
            let Some(&(ws, ds)) = r.dataset_id.as_deref().and_then(|d| home.get(d)) else {
                continue;
            };
            if !ds.refreshable() {
                continue;
            }
            let name = ds.name.as_deref().unwrap_or(&ds.id);
            let target = format!("{ws}/{}", ds.id);
            ins.row(&[
                (&x.integration).into(),
                (&r.id).into(),
                crate::refresh::tags::Kind::Dataset.into(),
                (&target).into(),
                name.into(),
            ])?;
        }
    }
    ins.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::{Dialect, ParseFailure};

    fn through() -> Through<'static> {
        Through {
            integration: "corp",
            report_id: "r1",
            dataset_id: "d1",
            table: "Orders",
        }
    }

    fn part(v: &str, quoted: bool) -> Part {
        Part {
            value: v.into(),
            quoted,
        }
    }

    fn sql(tables: Result<Vec<TableRef>, ParseFailure>) -> Found {
        Found::Sql {
            connector: "Sql.Database".into(),
            server: Some("sql01".into()),
            dialect: Dialect::MsSql,
            database: Some("dw".into()),
            schema: Some("dbo".into()),
            sql: "select 1".into(),
            tables,
        }
    }

    #[test]
    fn a_navigated_table_is_a_table_row_with_quoted_parts() {
        let found = [Found::Table {
            connector: "Snowflake.Databases".into(),
            server: Some("acme-xy12345.snowflakecomputing.com".into()),
            database: Some("ANALYTICS".into()),
            schema: Some("MARTS".into()),
            name: "FCT_\"ORDERS\"".into(),
        }];
        let rows = relations_of(&through(), &found);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (r.via, r.via_id.as_str(), r.kind),
            (Via::Published, "d1/Orders", RelationKind::Table)
        );
        assert_eq!(
            r.full_name.as_deref(),
            Some(r#""ANALYTICS"."MARTS"."FCT_""ORDERS""""#)
        );
        assert_eq!(r.relation_id, r.full_name.clone().unwrap());
        assert_eq!(
            (
                r.database.as_deref(),
                r.schema.as_deref(),
                r.name.as_deref()
            ),
            (Some("ANALYTICS"), Some("MARTS"), Some("FCT_\"ORDERS\""))
        );
        assert_eq!(
            (
                r.integration.as_str(),
                r.asset_id.as_str(),
                r.detail.as_deref()
            ),
            ("corp", "r1", None)
        );
        // The key normalize makes of it: three parts, quotes and case folded as for Tableau's.
        let named = crate::keys::NamedRelation {
            name: r.name.as_deref(),
            full_name: r.full_name.as_deref(),
            schema: r.schema.as_deref(),
            database: r.database.as_deref(),
        };
        let k = crate::keys::bi_key(&named, &Default::default(), &Default::default()).unwrap();
        assert_eq!(k.text(), "analytics.marts.fct_\"orders\"");
        // Without a database (a two-level connector), two parts.
        let two = relations_of(
            &through(),
            &[Found::Table {
                connector: "MySQL.Database".into(),
                server: None,
                database: None,
                schema: Some("shop".into()),
                name: "orders".into(),
            }],
        );
        assert_eq!(two[0].full_name.as_deref(), Some(r#""shop"."orders""#));
    }

    #[test]
    fn native_sql_is_one_row_per_table_read() {
        let t = |d: Option<Part>, s: Option<Part>, n: Part, default_schema: bool| TableRef {
            database: d,
            schema: s,
            name: n,
            default_schema,
            completed: true,
            written: String::new(),
        };
        let found = [sql(Ok(vec![
            t(
                Some(part("dw", true)),
                Some(part("dbo", false)),
                part("fct_orders", false),
                false,
            ),
            t(Some(part("dw", false)), None, part("Odd Name", true), true),
            t(None, Some(part("marts", false)), part("dim", false), false),
        ]))];
        let rows = relations_of(&through(), &found);
        let names: Vec<&str> = rows
            .iter()
            .map(|r| r.full_name.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            [r#""dw".dbo.fct_orders"#, r#"dw.."Odd Name""#, "marts.dim"]
        );
        assert!(rows.iter().all(|r| r.via == Via::CustomSql
            && r.kind == RelationKind::Table
            && r.via_id == "d1/Orders"));
        assert_eq!(
            (
                rows[1].database.as_deref(),
                rows[1].schema.as_deref(),
                rows[1].name.as_deref()
            ),
            (Some("dw"), None, Some("Odd Name"))
        );
        // Reading no table at all gives no row.
        assert!(relations_of(&through(), &[sql(Ok(vec![]))]).is_empty());
    }

    #[test]
    fn unparsed_sql_keeps_the_parsers_message() {
        let f = ParseFailure {
            message: "Expected: an expression, found: EOF".into(),
            line: Some(1),
            column: Some(8),
        };
        let rows = relations_of(&through(), &[sql(Err(f))]);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].kind, rows[0].via, rows[0].relation_id.as_str()),
            (RelationKind::UnparsedSql, Via::CustomSql, "")
        );
        assert_eq!(
            rows[0].detail.as_deref(),
            Some("Expected: an expression, found: EOF (line 1, column 8)")
        );
    }

    #[test]
    fn a_miss_carries_its_reason_in_kind_and_detail() {
        use crate::tags::{MissReason, Tag};
        let miss = |reason, detail: &str| Found::Miss {
            reason,
            detail: detail.into(),
        };
        let found = [
            miss(MissKind::UnsupportedMFunction, "Web.Contents"),
            miss(MissKind::UnresolvedParameter, "Database"),
            miss(MissKind::FileConnection, "Excel.Workbook"),
            miss(MissKind::Dataflow, "PowerPlatform.Dataflows"),
            miss(MissKind::NoSource, "table \"Calc\" has no M source"),
            miss(MissKind::Unreadable, "unterminated string at byte 12"),
        ];
        let rows = relations_of(&through(), &found);
        let got: Vec<(RelationKind, &str)> = rows
            .iter()
            .map(|r| (r.kind, r.detail.as_deref().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (RelationKind::NoLineage, "dataflow: PowerPlatform.Dataflows"),
                (RelationKind::File, "Excel.Workbook"),
                (
                    RelationKind::NoLineage,
                    "no_source: table \"Calc\" has no M source"
                ),
                (
                    RelationKind::NoLineage,
                    "unreadable_m: unterminated string at byte 12"
                ),
                (RelationKind::NoLineage, "unresolved_parameter: Database"),
                (
                    RelationKind::NoLineage,
                    "unsupported_m_function: Web.Contents"
                ),
            ]
        );
        // The relation id always starts with the reason; only a file's detail is the bare name
        // (normalize words it as a file connection).
        assert!(rows
            .iter()
            .all(|r| r.relation_id.ends_with(r.detail.as_deref().unwrap())
                && r.via == Via::Published));
        assert!(rows.iter().all(|r| r
            .relation_id
            .split(": ")
            .next()
            .is_some_and(|k| MissReason::parse(k).is_some())));
        // The same miss twice (both branches of an `if`) is one row.
        assert_eq!(
            relations_of(
                &through(),
                &[miss(MissKind::Dataflow, "x"), miss(MissKind::Dataflow, "x")]
            )
            .len(),
            1
        );
    }

    /// A table's M naming another table of the dataset reads what that table reads; a shared
    /// expression of the same name wins; a name neither has stays a miss.
    #[test]
    fn a_table_may_read_another_table_of_its_dataset() {
        let nav = |item: &str| {
            format!("let Source = Sql.Database(\"srv\", \"dw\"), T = Source{{[Schema=\"dbo\",Item=\"{item}\"]}}[Data] in T")
        };
        let ds = serde_json::json!({
            "id": "d",
            "tables": [
                {"name": "Orders", "source": [{"expression": nav("orders")}]},
                {"name": "Regions", "source": [{"expression": nav("regions_table")}]},
                {"name": "Joined", "source": [{"expression": "let S = Table.NestedJoin(Orders, {\"k\"}, Regions, {\"k\"}, \"r\", JoinKind.Inner), T = Table.Combine({S, Missing}) in T"}]},
            ],
            "expressions": [{"name": "Regions", "expression": nav("regions_shared")}],
        });
        let ds: Dataset = serde_json::from_value(ds).unwrap();
        let read = read_dataset(&ds, None);
        let joined = &read.iter().find(|(t, _)| *t == "Joined").unwrap().1;
        let names: Vec<String> = joined
            .iter()
            .map(|f| match f {
                Found::Table { name, .. } => name.clone(),
                Found::Miss { reason, detail } => format!("{}: {detail}", miss_text(*reason)),
                Found::Sql { .. } => "sql".into(),
            })
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(&names[..2], ["orders", "regions_shared"]);
        assert!(
            names[2].starts_with("unresolved_parameter: Missing"),
            "{names:?}"
        );
    }

    #[test]
    fn owners_fall_back_from_created_to_modified_to_the_dataset() {
        let report: super::super::model::Report = serde_json::from_str(
            r#"{"id": "r", "createdBy": " ", "modifiedBy": "ann@contoso.com"}"#,
        )
        .unwrap();
        let ds: Dataset =
            serde_json::from_str(r#"{"id": "d", "configuredBy": "Bob Builder"}"#).unwrap();
        assert_eq!(
            owner(&report, Some(&ds)),
            (
                Some("ann@contoso.com".into()),
                Some("ann@contoso.com".into())
            )
        );
        let report: super::super::model::Report = serde_json::from_str(r#"{"id": "r"}"#).unwrap();
        assert_eq!(
            owner(&report, Some(&ds)),
            (Some("Bob Builder".into()), None)
        );
        assert_eq!(owner(&report, None), (None, None));
    }
}
