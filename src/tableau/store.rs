//! One site's extraction as rows: the neutral rows later stages read (`rows`: the site as an
//! instance, workbooks as assets, every upstream table as a relation), and the record of what
//! Tableau said, written into the `tableau_*` tables, `extract_warnings` and `raw_responses`
//! (`write`). Runs inside the extract stage's transaction.

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::custom_sql::{self, Read};
use super::extract::{LeftOutReason, SiteExtract};
use super::model::{CustomSql, Table, Workbook};
use crate::integrations::Tool;
use crate::refresh::tags::Kind;
use crate::tags::{RelationKind, Via};
use crate::{bulk, rows};

/// `__typename`s and connection types that are files or web connectors, not warehouse tables.
const FILE_TYPES: &[&str] = &["File", "CloudFile", "WebDataConnector"];
const FILE_CONNECTIONS: &[&str] = &[
    "excel-direct",
    "excel",
    "textscan",
    "hyper",
    "dataengine",
    "csv",
    "google-sheets",
    "box",
    "dropbox",
    "onedrive",
];

/// A site's extraction, as the seam hands it around.
pub(crate) struct Extracted {
    pub(crate) x: SiteExtract,
    pub(crate) requests: usize,
    pub(crate) max_in_flight: usize,
    /// What only Tableau says of each table (`tableau_table_details`), filled by `take_rows`.
    pub(crate) details: Vec<TableDetail>,
    /// What our parser made of each custom SQL query, in `x.custom_sql`'s order, filled by
    /// `take_rows`.
    pub(crate) reads: Vec<Read>,
}

/// Each table id's details, the first row's (`table_row`).
type Details = rustc_hash::FxHashMap<String, TableDetail>;

/// A `tableau_table_details` row.
#[derive(Debug, Clone)]
pub(crate) struct TableDetail {
    table_id: String,
    table_luid: Option<String>,
    database_type: Option<String>,
    connection_type: Option<String>,
}

impl crate::seam::Extraction for Extracted {
    fn complete(&self) -> bool {
        self.x.complete
    }

    fn summary(&self) -> String {
        format!(
            "{} workbooks, {} custom SQL queries, {} requests ({} at most in flight)",
            self.x.workbooks.len(),
            self.x.custom_sql.len(),
            self.requests,
            self.max_in_flight
        )
    }

    fn take_rows(&mut self) -> rows::Extracted {
        self.reads = read_custom_sql(&self.x);
        let (instance, assets, relations, details) = rows(&mut self.x, &self.reads);
        self.details = details;
        rows::Extracted {
            instances: vec![instance],
            assets,
            relations,
            ..Default::default()
        }
    }

    fn store(&self, tx: &Transaction) -> Result<()> {
        write(tx, &self.x, &self.reads)?;
        if let Some(sync) = &self.x.sync {
            super::sync::write(tx, &self.x.integration, sync, self.x.complete)?;
        }
        write_details(tx, &self.x.integration, &self.details)
    }
}

/// The summary's lines about workbooks read but not imported.
pub(crate) fn left_out_lines(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn.prepare(
        "SELECT reason, count(*) FROM tableau_left_out_workbooks GROUP BY reason ORDER BY reason",
    )?;
    let left_out: Vec<(LeftOutReason, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| anyhow::anyhow!("table tableau_left_out_workbooks: {e}"))?;
    Ok(left_out
        .into_iter()
        .map(|(reason, n)| {
            let why = match reason {
                LeftOutReason::PersonalSpace => {
                    "in personal spaces; include_personal_spaces: true imports them"
                }
            };
            format!("Workbooks left out:   {n} ({why})")
        })
        .collect())
}

/// Deletes the rows extract replaces, before the sites are written: every row of the
/// `tableau_*` tables (extract reads every configured site, so a site gone from the config
/// goes with them) but the keyed ones `KEYED` names, which `write` replaces per site writing
/// only what changed (a site gone goes in `tableau::sync::forget_removed`), and in the tables every integration writes to (`SHARED`) only the rows of
/// the Tableau sites written before, as `tableau_sites` lists them. `write` deletes each site's
/// own rows there too, so a site new to the config replaces whatever its name had. Another
/// integration's rows in the shared tables are its own and stay.
pub(crate) fn clear(tx: &Transaction) -> Result<()> {
    for t in SHARED {
        tx.execute(
            &format!(
                "DELETE FROM {t} WHERE integration IN (SELECT integration FROM tableau_sites)"
            ),
            [],
        )?;
    }
    for t in [
        "tableau_sites",
        "tableau_projects",
        "tableau_custom_sql",
        "tableau_left_out_workbooks",
    ] {
        tx.execute(&format!("DELETE FROM {t}"), [])?;
    }
    Ok(())
}

/// The `tableau_*` tables each site's `write` replaces through `bulk::Replace`.
pub(crate) const KEYED: [&str; 4] = [
    "tableau_workbooks",
    "tableau_datasources",
    "tableau_workbook_datasources",
    "tableau_table_details",
];

/// The tables of extract that hold the rows of every integration, keyed by `integration`.
/// (`bi_refresh_targets`, shared too, is replaced per site through `bulk::Replace`, and an
/// integration gone from the config goes in `integrations::forget_removed`.)
const SHARED: [&str; 2] = ["extract_warnings", "raw_responses"];

crate::tags::text_tag! {
    /// `tableau_datasources.kind`.
    pub(crate) enum DatasourceKind in "kind" {
        /// Embedded in a workbook (no luid; refreshed through its workbook).
        Embedded = "embedded",
        Published = "published",
    }
}

/// The browser URL of a workbook: `{server}/#/site/{content}/workbooks/{vizportal id}`, the
/// Default site without the `/site/…` part. The numeric id comes from `vizportalUrlId`, or
/// else from the tail of `uri` (`sites/1/workbooks/42`).
pub(crate) fn workbook_url(server: &str, content_url: &str, w: &Workbook) -> Option<String> {
    let id = w
        .vizportal_url_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            w.uri
                .as_deref()
                .and_then(|u| u.rsplit('/').next())
                .map(str::to_string)
        })?;
    let site_part = if content_url.is_empty() {
        String::new()
    } else {
        format!("/site/{content_url}")
    };
    Some(format!(
        "{}/#{site_part}/workbooks/{id}",
        server.trim_end_matches('/')
    ))
}

/// The neutral rows later stages read: the site, its workbooks and every upstream table of
/// each (through embedded and published data sources, and custom SQL), and beside them what
/// only Tableau says of each table. The data sources' upstream tables move into the rows;
/// `write` does not need them.
pub(crate) fn rows(
    x: &mut SiteExtract,
    reads: &[Read],
) -> (
    rows::Instance,
    Vec<rows::Asset>,
    Vec<rows::RelationUse>,
    Vec<TableDetail>,
) {
    let i = &x.integration;
    let site = rows::Instance {
        integration: i.clone(),
        tool: Tool::Tableau,
        label: x.content_url.clone(),
        complete: x.complete,
    };
    let mut workbooks = Vec::with_capacity(x.workbooks.len());
    // Sized up front: hundreds of thousands of rows, grown by doubling, were a tenth of extract.
    let tables_of = |t: &Option<Vec<Table>>| t.as_ref().map_or(0, Vec::len);
    let count: usize = x
        .workbooks
        .iter()
        .flat_map(|w| w.embedded_datasources.iter().flatten())
        .map(|e| {
            tables_of(&e.upstream_tables)
                + e.upstream_datasources
                    .iter()
                    .flatten()
                    .map(|p| tables_of(&p.upstream_tables))
                    .sum::<usize>()
        })
        .sum();
    let mut tables = Vec::with_capacity(count + x.custom_sql.len() * 2);
    let mut details = Details::default();
    let mut custom = custom_sql_rows(x, reads, &mut details);
    for w in &mut x.workbooks {
        let Some(luid) = luid(w) else {
            crate::log::warn(&format!(
                "tableau {i}: workbook {} has no luid; skipped",
                w.id
            ));
            continue;
        };
        let owner = w.owner.clone().unwrap_or_default();
        workbooks.push(rows::Asset {
            integration: i.clone(),
            id: w.id.clone(),
            asset_ref: luid.to_string(),
            name: w.name.clone().unwrap_or_default(),
            folder_ref: w.project_luid.clone(),
            folder: w.project_name.clone(),
            description: w.description.clone(),
            // A user without a display name is shown by their username.
            owner_name: owner
                .name
                .filter(|n| !n.trim().is_empty())
                .or(owner.username),
            owner_email: owner.email,
            url: workbook_url(&x.server_url, &x.content_url, w),
            tags: tags(w),
            meta: Default::default(),
        });
        let start = tables.len();
        for e in w.embedded_datasources.iter_mut().flatten() {
            for t in e.upstream_tables.take().into_iter().flatten() {
                tables.push(table_row(i, &w.id, Via::Embedded, &e.id, t, &mut details));
            }
            for p in e.upstream_datasources.iter_mut().flatten() {
                for t in p.upstream_tables.take().into_iter().flatten() {
                    tables.push(table_row(i, &w.id, Via::Published, &p.id, t, &mut details));
                }
            }
        }
        tables.extend(custom.remove(&w.id).unwrap_or_default());
        // Each workbook's rows in key order; workbooks come in id order, so the whole list is
        // then in key order without a sort of 300k rows (`Extracted` checks, and sorts if not).
        tables[start..].sort_by(|a, b| a.key().cmp(&b.key()));
    }
    // Custom SQL of workbooks skipped above (no luid): kept, as the rows always were.
    let mut rest: Vec<rows::RelationUse> = custom.into_values().flatten().collect();
    rest.sort_by(|a, b| a.key().cmp(&b.key()));
    tables.extend(rest);
    // One row per table id (a table read by many workbooks is one table), in id order.
    let mut details: Vec<TableDetail> = details.into_values().collect();
    details.sort_unstable_by(|a, b| a.table_id.cmp(&b.table_id));
    (site, workbooks, tables, details)
}

/// A workbook's tag names, sorted, without duplicates.
fn tags(w: &Workbook) -> Vec<String> {
    let mut tags: Vec<String> = w
        .tags
        .iter()
        .flatten()
        .filter_map(|t| t.name.clone())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// Every custom SQL query of a site read by our parser, in parallel (rayon), with one debug
/// line of what it cost (`just bench` reports lineage's share of `run` from it).
fn read_custom_sql(x: &SiteExtract) -> Vec<Read> {
    use rayon::prelude::*;
    let started = std::time::Instant::now();
    let reads: Vec<Read> = x.custom_sql.par_iter().map(custom_sql::read).collect();
    let failed = reads
        .iter()
        .filter(|r| matches!(r, Read::Failed(_)))
        .count();
    crate::log::debug(&format!(
        "sql lineage: {} queries read in {:.3}s ({failed} unparseable)",
        reads.len(),
        started.elapsed().as_secs_f64()
    ));
    reads
}

crate::tags::text_tag! {
    /// Which list of tables a custom SQL query's rows come from (`tableau_custom_sql.lineage`).
    pub(crate) enum Lineage in "lineage" {
        /// Our parser read the query: its tables, whatever Tableau listed.
        Parsed = "parsed",
        /// Our parser could not, and Tableau listed tables: Tableau's.
        Tableau = "tableau",
        /// Neither: one `unparsed_sql` row, so match says why the query gave no lineage.
        None = "none",
    }
}

impl Lineage {
    fn of(read: &Read, tableau: &[Table]) -> Lineage {
        match read {
            Read::Tables(_) => Lineage::Parsed,
            _ if !tableau.is_empty() => Lineage::Tableau,
            _ => Lineage::None,
        }
    }
}

/// The custom SQL rows of a site, by workbook id: the tables each query reads as our parser
/// read them (relation id `sql:` + the quoted full name, so one table read by many queries is
/// one relation), else as Tableau listed them, else one `unparsed_sql` placeholder whose
/// detail is the parser's message (none when there was no text to parse), so match can say why
/// the query gave no lineage.
fn custom_sql_rows(
    x: &SiteExtract,
    reads: &[Read],
    details: &mut Details,
) -> rustc_hash::FxHashMap<String, Vec<rows::RelationUse>> {
    let i = &x.integration;
    let known: std::collections::BTreeSet<&str> =
        x.workbooks.iter().map(|w| w.id.as_str()).collect();
    let mut out: rustc_hash::FxHashMap<String, Vec<rows::RelationUse>> = Default::default();
    let empty = Vec::new();
    for (c, read) in x.custom_sql.iter().zip(reads) {
        let listed = c.tables.as_ref().unwrap_or(&empty);
        let lineage = Lineage::of(read, listed);
        for w in custom_sql_workbooks(c, &known) {
            let list = out.entry(w.to_string()).or_default();
            match (lineage, read) {
                (Lineage::Parsed, Read::Tables(tables)) => {
                    for t in tables {
                        let full_name = custom_sql::full_name(t);
                        list.push(rows::RelationUse {
                            integration: i.clone(),
                            asset_id: w.to_string(),
                            via: Via::CustomSql,
                            via_id: c.id.clone(),
                            relation_id: format!("sql:{full_name}"),
                            name: Some(t.name.value.clone()),
                            full_name: Some(full_name),
                            schema: t.schema.as_ref().map(|p| p.value.clone()),
                            database: t.database.as_ref().map(|p| p.value.clone()),
                            kind: RelationKind::Table,
                            detail: None,
                        });
                    }
                }
                (Lineage::Tableau, _) => {
                    for t in listed {
                        list.push(table_row(i, w, Via::CustomSql, &c.id, t.clone(), details));
                    }
                }
                _ => {
                    let mut row = table_row(i, w, Via::CustomSql, &c.id, Table::default(), details);
                    row.kind = RelationKind::UnparsedSql;
                    if let Read::Failed(f) = read {
                        row.detail = Some(f.to_string());
                    }
                    list.push(row);
                }
            }
        }
    }
    out
}

/// A workbook's REST luid; a workbook without one is skipped (it cannot be an exposure).
fn luid(w: &Workbook) -> Option<&str> {
    w.luid.as_deref().filter(|l| !l.is_empty())
}

/// The extracted workbooks that read a custom SQL query, sorted.
fn custom_sql_workbooks<'a>(
    c: &'a CustomSql,
    known: &std::collections::BTreeSet<&str>,
) -> Vec<&'a str> {
    let mut wbs: Vec<&str> = c
        .downstream_workbooks
        .iter()
        .flatten()
        .map(|w| w.id.as_str())
        .filter(|id| known.contains(id))
        .collect();
    wbs.sort_unstable();
    wbs.dedup();
    wbs
}

/// Everything else of one site: sites, projects, workbooks as Tableau gave them, data sources
/// and their links, custom SQL, warnings and responses. Its tables are the neutral rows.
pub(crate) fn write(tx: &Transaction, x: &SiteExtract, reads: &[Read]) -> Result<()> {
    let i = &x.integration;
    for t in SHARED {
        tx.execute(&format!("DELETE FROM {t} WHERE integration = ?1"), [i])?;
    }
    tx.execute(
        "INSERT INTO tableau_sites (integration, server_url, content_url, site_luid, api_version, product_version, projects_filter, workbooks_total, complete)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            i,
            x.server_url,
            x.content_url,
            x.site_luid,
            x.api_version,
            x.product_version,
            serde_json::to_string(&x.projects_filter)?,
            x.workbooks_total.and_then(|t| i64::try_from(t).ok()),
            x.complete
        ],
    )?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO tableau_projects (integration, luid, name, parent_luid, selected) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for p in &x.projects {
            st.execute(params![
                i,
                p.luid,
                p.name,
                p.parent_luid,
                x.selected_projects.contains(&p.luid)
            ])?;
        }
    }
    write_workbooks(tx, x)?;
    // A data source (and a link) is seen once per workbook that reads it: the first stays.
    let mut ds = crate::bulk::Replace::new(
        tx,
        "tableau_datasources",
        &[
            "integration",
            "id",
            "kind",
            "luid",
            "name",
            "has_extracts",
            "workbook_id",
        ],
        true,
        Some(i),
    )?;
    let mut link = crate::bulk::Replace::new(
        tx,
        "tableau_workbook_datasources",
        &["integration", "workbook_id", "embedded_id", "published_id"],
        true,
        Some(i),
    )?;
    for w in &x.workbooks {
        if luid(w).is_none() {
            continue;
        }
        for e in w.embedded_datasources.iter().flatten() {
            let has = e
                .has_extracts
                .map(bulk::Value::from)
                .unwrap_or(bulk::Value::Null);
            ds.row(&[
                i.into(),
                (&e.id).into(),
                DatasourceKind::Embedded.into(),
                bulk::Value::Null,
                (&e.name).into(),
                has,
                (&w.id).into(),
            ])?;
            for p in e.upstream_datasources.iter().flatten() {
                let has = p
                    .has_extracts
                    .map(bulk::Value::from)
                    .unwrap_or(bulk::Value::Null);
                ds.row(&[
                    i.into(),
                    (&p.id).into(),
                    DatasourceKind::Published.into(),
                    (&p.luid).into(),
                    (&p.name).into(),
                    has,
                    bulk::Value::Null,
                ])?;
                link.row(&[i.into(), (&w.id).into(), (&e.id).into(), (&p.id).into()])?;
            }
        }
    }
    ds.finish()?;
    link.finish()?;
    let mut sql = tx.prepare_cached(
        "INSERT INTO tableau_custom_sql (integration, id, name, query, is_unsupported, connection_type, database_name, workbook_ids,
                                         lineage, parsed_tables, parse_error, tableau_tables)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let known: std::collections::BTreeSet<&str> =
        x.workbooks.iter().map(|w| w.id.as_str()).collect();
    let empty = Vec::new();
    for (c, read) in x.custom_sql.iter().zip(reads) {
        let wbs = custom_sql_workbooks(c, &known);
        let listed = c.tables.as_ref().unwrap_or(&empty);
        let unsupported = c.is_unsupported_custom_sql.unwrap_or(false) || listed.is_empty();
        let parsed = match read {
            Read::Tables(t) => Some(serde_json::to_string(
                &t.iter().map(|t| t.dotted()).collect::<Vec<_>>(),
            )?),
            _ => None,
        };
        let error = match read {
            Read::Failed(f) => Some(f.to_string()),
            _ => None,
        };
        let tableau: Vec<&str> = listed
            .iter()
            .map(|t| t.full_name.as_deref().or(t.name.as_deref()).unwrap_or(""))
            .collect();
        sql.execute(params![
            i,
            c.id,
            c.name,
            c.query,
            unsupported,
            c.connection_type,
            c.database.as_ref().and_then(|d| d.name.clone()),
            serde_json::to_string(&wbs)?,
            Lineage::of(read, listed),
            parsed,
            error,
            serde_json::to_string(&tableau)?
        ])?;
    }
    let mut left = tx.prepare_cached(
        "INSERT OR IGNORE INTO tableau_left_out_workbooks (integration, id, luid, name, project_luid, project_name, owner_username, reason, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for w in &x.left_out {
        left.execute(params![
            i,
            w.id,
            w.luid,
            w.name,
            w.project_luid,
            w.project_name,
            w.owner_username,
            w.reason,
            w.detail
        ])?;
    }
    let mut warn = tx.prepare_cached(
        "INSERT INTO extract_warnings (integration, query, page, code, severity, message, action) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for w in &x.warnings {
        // Server text, scrubbed in full at the boundary (names too: see `http::secrets`).
        warn.execute(params![
            i,
            w.query,
            w.page,
            w.code,
            w.severity,
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
    write_refresh_targets(tx, i, &x.workbooks)
}

/// The refresh targets of one site's workbooks (`bi_refresh_targets`, which the refresh stage
/// reads), from the data sources `write` has just stored: every published data source with
/// extracts that a workbook reads (refreshed by its luid), and the workbook itself when one of
/// its embedded data sources has an extract (embedded data sources have no luid: Tableau
/// refreshes them through their workbook). A data source whose kind is neither `embedded` nor
/// `published` is an error naming it: read as either, it would add or hide a target.
fn write_refresh_targets(tx: &Transaction, i: &str, workbooks: &[Workbook]) -> Result<()> {
    let unknown: Option<(String, String, String)> = tx
        .prepare_cached(
            "SELECT id, coalesce(name, ''), kind FROM tableau_datasources
             WHERE integration = ?1 AND kind NOT IN ('embedded', 'published') ORDER BY id LIMIT 1",
        )?
        .query_row([i], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((id, name, kind)) = unknown {
        anyhow::bail!(
            "table tableau_datasources, column kind of data source {id} ({name:?}, integration {i:?}): \
             unknown data source kind {kind:?} (known: embedded, published)"
        );
    }
    // Worked out from the extraction in memory, as `write` stored it: a data source's first
    // row wins (`ON CONFLICT DO NOTHING`), so its luid, name and has_extracts are the first
    // seen; links are those of workbooks with a luid. One bulk insert in key order (a query
    // and an INSERT per target cost a tenth of a second at 20k workbooks).
    let mut asset: rustc_hash::FxHashMap<&str, (&str, &str)> = Default::default();
    for w in workbooks {
        if let Some(l) = luid(w) {
            asset
                .entry(w.id.as_str())
                .or_insert((l, w.name.as_deref().unwrap_or("")));
        }
    }
    // Data source id → (kind, luid, name, has_extracts, owning workbook), first seen.
    type Ds<'a> = (
        DatasourceKind,
        Option<&'a str>,
        &'a str,
        bool,
        Option<&'a str>,
    );
    let mut first: rustc_hash::FxHashMap<&str, Ds> = Default::default();
    let mut links: Vec<(&str, &str)> = Vec::new();
    for w in workbooks.iter().filter(|w| luid(w).is_some()) {
        for e in w.embedded_datasources.iter().flatten() {
            first.entry(&e.id).or_insert((
                DatasourceKind::Embedded,
                None,
                e.name.as_deref().unwrap_or(""),
                e.has_extracts == Some(true),
                Some(&w.id),
            ));
            for p in e.upstream_datasources.iter().flatten() {
                first.entry(&p.id).or_insert((
                    DatasourceKind::Published,
                    p.luid.as_deref(),
                    p.name.as_deref().unwrap_or(""),
                    p.has_extracts == Some(true),
                    None,
                ));
                links.push((&w.id, &p.id));
            }
        }
    }
    let mut targets: std::collections::BTreeMap<(&str, Kind, &str), &str> = Default::default();
    for (workbook_id, published_id) in links {
        if let (
            Some((wb_luid, _)),
            Some(&(DatasourceKind::Published, Some(ds_luid), name, true, _)),
        ) = (asset.get(workbook_id), first.get(published_id))
        {
            targets
                .entry((wb_luid, Kind::Datasource, ds_luid))
                .or_insert(name);
        }
    }
    for &(kind, _, _, has_extracts, owner) in first.values() {
        if let (DatasourceKind::Embedded, true, Some(workbook_id)) = (kind, has_extracts, owner) {
            if let Some(&(wb_luid, name)) = asset.get(workbook_id) {
                targets
                    .entry((wb_luid, Kind::Workbook, wb_luid))
                    .or_insert(name);
            }
        }
    }
    let mut ins = crate::bulk::Replace::new(
        tx,
        "bi_refresh_targets",
        &crate::refresh::TARGET_COLUMNS,
        false,
        Some(i),
    )?;
    for ((asset_ref, kind, target_ref), name) in targets {
        ins.row(&[
            i.into(),
            asset_ref.into(),
            kind.into(),
            target_ref.into(),
            name.into(),
        ])?;
    }
    ins.finish()?;
    Ok(())
}

/// The workbooks imported, as Tableau gave them (`tableau_workbooks`), in id order.
fn write_workbooks(tx: &Transaction, x: &SiteExtract) -> Result<()> {
    let mut list: Vec<(&Workbook, &str)> = x
        .workbooks
        .iter()
        .filter_map(|w| Some((w, luid(w)?)))
        .collect();
    list.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    list.dedup_by(|b, a| a.0.id == b.0.id);
    let i = &x.integration;
    let mut st = crate::bulk::Replace::new(
        tx,
        "tableau_workbooks",
        &[
            "integration",
            "id",
            "luid",
            "name",
            "project_luid",
            "project_name",
            "description",
            "owner_name",
            "owner_email",
            "owner_username",
            "uri",
            "vizportal_url_id",
            "url",
            "created_at",
            "updated_at",
            "tags",
        ],
        false,
        Some(i),
    )?;
    for (w, luid) in list {
        let owner = w.owner.clone().unwrap_or_default();
        let url = workbook_url(&x.server_url, &x.content_url, w);
        let tags = serde_json::to_string(&tags(w))?;
        let name = w.name.clone().unwrap_or_default();
        st.row(&[
            i.into(),
            (&w.id).into(),
            luid.into(),
            (&name).into(),
            (&w.project_luid).into(),
            (&w.project_name).into(),
            (&w.description).into(),
            (&owner.name).into(),
            (&owner.email).into(),
            (&owner.username).into(),
            (&w.uri).into(),
            (&w.vizportal_url_id).into(),
            (&url).into(),
            (&w.created_at).into(),
            (&w.updated_at).into(),
            (&tags).into(),
        ])?;
    }
    st.finish()?;
    Ok(())
}

/// `tableau_table_details`, one row per table id (`rows` made them unique).
fn write_details(tx: &Transaction, integration: &str, details: &[TableDetail]) -> Result<()> {
    let mut st = crate::bulk::Replace::new(
        tx,
        "tableau_table_details",
        &[
            "integration",
            "table_id",
            "table_luid",
            "database_type",
            "connection_type",
        ],
        false,
        Some(integration),
    )?;
    for d in details {
        st.row(&[
            integration.into(),
            (&d.table_id).into(),
            (&d.table_luid).into(),
            (&d.database_type).into(),
            (&d.connection_type).into(),
        ])?;
    }
    st.finish()?;
    Ok(())
}

/// The neutral row of one use of a table, and its details once per table id (`details` may
/// hold a table twice; the first stays).
fn table_row(
    integration: &str,
    workbook_id: &str,
    via: Via,
    via_id: &str,
    t: Table,
    details: &mut Details,
) -> rows::RelationUse {
    let (database_name, database_type, db_connection) = match t.database {
        Some(d) => (d.name, d.typename, d.connection_type),
        None => (None, None, None),
    };
    let connection_type = t.connection_type.or(db_connection);
    let (dtype, ctype) = (database_type.as_deref(), connection_type.as_deref());
    let is_file = dtype.is_some_and(|d| FILE_TYPES.contains(&d))
        || ctype.is_some_and(|c| FILE_CONNECTIONS.contains(&c));
    let detail = is_file.then(|| dtype.or(ctype).unwrap_or("?").to_string());
    if !t.id.is_empty() && !details.contains_key(t.id.as_str()) {
        details.insert(
            t.id.clone(),
            TableDetail {
                table_id: t.id.clone(),
                table_luid: t.luid,
                database_type,
                connection_type,
            },
        );
    }
    rows::RelationUse {
        integration: integration.to_string(),
        asset_id: workbook_id.to_string(),
        via,
        via_id: via_id.to_string(),
        relation_id: t.id,
        name: t.name,
        full_name: t.full_name,
        schema: t.schema,
        database: database_name,
        kind: if is_file {
            RelationKind::File
        } else {
            RelationKind::Table
        },
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_deletes_the_shared_rows_of_tableau_sites_only() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO tableau_sites (integration, server_url, content_url, projects_filter, complete) VALUES ('prod', 'https://t', 'acme', '[]', 1);
             INSERT INTO extract_warnings (integration, query, page, message, action) VALUES ('prod', 'Workbooks', 1, 'm', 'a'), ('inventory', 'file', 0, 'm', 'a');
             INSERT INTO raw_responses (integration, seq, method, path, status, bytes, body) VALUES ('prod', 1, 'GET', '/', 200, 0, NULL), ('inventory', 1, 'READ', 'f', 200, 0, NULL);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        clear(&tx).unwrap();
        tx.commit().unwrap();
        let left = |t: &str| -> Vec<String> {
            let mut st = conn
                .prepare(&format!("SELECT integration FROM {t} ORDER BY integration"))
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(left("extract_warnings"), ["inventory"]);
        assert_eq!(left("raw_responses"), ["inventory"]);
        assert!(left("tableau_sites").is_empty());
    }

    /// The rows the data sources' tables hold for one workbook, as the refresh stage reads
    /// them from `bi_refresh_targets` (until 0009 it computed them from these tables itself).
    const SITE_ROWS: &str =
        "INSERT INTO tableau_datasources VALUES ('site', 'e1', 'embedded', NULL, 'E', 1, 'wb');
         INSERT INTO tableau_datasources VALUES ('site', 'e2', 'embedded', NULL, 'E2', 0, 'wb2');
         INSERT INTO tableau_datasources VALUES ('site', 'p1', 'published', 'd1', 'P', 1, NULL);
         INSERT INTO tableau_datasources VALUES ('site', 'p2', 'published', 'd2', 'Live', 0, NULL);
         INSERT INTO tableau_workbook_datasources VALUES ('site', 'wb', 'e1', 'p1');
         INSERT INTO tableau_workbook_datasources VALUES ('site', 'wb', 'e1', 'p2');
         INSERT INTO tableau_workbook_datasources VALUES ('site', 'wb2', 'e2', 'p1');";

    fn targets(conn: &rusqlite::Connection) -> Vec<(String, String, String, String)> {
        let mut st = conn
            .prepare("SELECT asset_ref, target_kind, target_ref, target_name FROM bi_refresh_targets ORDER BY asset_ref, target_kind, target_ref")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn row(a: &str, k: &str, t: &str, n: &str) -> (String, String, String, String) {
        (a.into(), k.into(), t.into(), n.into())
    }

    #[test]
    fn refresh_targets_are_the_extracts_behind_each_workbook() {
        use super::super::model::{EmbeddedDatasource, PublishedDatasource};
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn).unwrap();
        // The data sources of SITE_ROWS, as the Metadata API gave them.
        let published = |id: &str, luid: &str, name: &str, extracts: bool| PublishedDatasource {
            id: id.into(),
            luid: Some(luid.into()),
            name: Some(name.into()),
            has_extracts: Some(extracts),
            ..Default::default()
        };
        let embedded =
            |id: &str, name: &str, extracts: bool, upstream: Vec<PublishedDatasource>| {
                EmbeddedDatasource {
                    id: id.into(),
                    name: Some(name.into()),
                    has_extracts: Some(extracts),
                    upstream_datasources: Some(upstream),
                    ..Default::default()
                }
            };
        let wb = |id: &str, luid: Option<&str>, name: &str, ds: Vec<EmbeddedDatasource>| Workbook {
            id: id.into(),
            luid: luid.map(str::to_string),
            name: Some(name.into()),
            embedded_datasources: Some(ds),
            ..Default::default()
        };
        let workbooks = [
            wb(
                "wb",
                Some("w1"),
                "W",
                vec![embedded(
                    "e1",
                    "E",
                    true,
                    vec![
                        published("p1", "d1", "P", true),
                        published("p2", "d2", "Live", false),
                    ],
                )],
            ),
            wb(
                "wb2",
                Some("w2"),
                "W2",
                vec![embedded(
                    "e2",
                    "E2",
                    false,
                    vec![published("p1", "d1", "P", true)],
                )],
            ),
            wb(
                "wb3",
                None,
                "no luid",
                vec![embedded(
                    "e3",
                    "E3",
                    true,
                    vec![published("p3", "d3", "P3", true)],
                )],
            ),
        ];
        let tx = conn.transaction().unwrap();
        write_refresh_targets(&tx, "site", &workbooks).unwrap();
        tx.commit().unwrap();
        assert_eq!(
            targets(&conn),
            [
                row("w1", "datasource", "d1", "P"),
                row("w1", "workbook", "w1", "W"),
                row("w2", "datasource", "d1", "P")
            ],
            "published with extracts, and the workbook for an embedded extract; not a live one"
        );
    }

    /// A data source of a kind Tableau's tables should not hold (neither embedded nor
    /// published) stops extract, naming it, before a target is written.
    #[test]
    fn an_unknown_datasource_kind_fails_naming_the_table_and_id() {
        for (id, sql) in [
            (
                "p1",
                "UPDATE tableau_datasources SET kind = 'cube' WHERE id = 'p1'",
            ),
            (
                "e1",
                "UPDATE tableau_datasources SET kind = 'cube' WHERE id = 'e1'",
            ),
        ] {
            let mut conn = rusqlite::Connection::open_in_memory().unwrap();
            crate::db::migrate(&mut conn).unwrap();
            conn.execute_batch(SITE_ROWS).unwrap();
            conn.execute(sql, []).unwrap();
            let tx = conn.transaction().unwrap();
            let wb = Workbook {
                id: "wb".into(),
                luid: Some("w1".into()),
                name: Some("W".into()),
                ..Default::default()
            };
            let err = format!(
                "{:#}",
                write_refresh_targets(&tx, "site", &[wb]).unwrap_err()
            );
            for want in [
                "table tableau_datasources",
                &format!("data source {id}"),
                "unknown data source kind \"cube\"",
            ] {
                assert!(err.contains(want), "{want:?} not in: {err}");
            }
        }
    }

    /// A database made before 0009 gets the targets the refresh stage used to compute, so a
    /// refresh before the next extract refreshes the same extracts; an unknown kind keeps its
    /// text, which the refresh stage refuses.
    #[test]
    fn migration_0009_fills_the_targets_of_a_database_made_before() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        for sql in [
            include_str!("../../sql/0001_init.sql"),
            include_str!("../../sql/0002_refresh.sql"),
            include_str!("../../sql/0003_raw_response_bodies.sql"),
            include_str!("../../sql/0004_append_only_tables.sql"),
            include_str!("../../sql/0005_xxh3_input_hashes.sql"),
            include_str!("../../sql/0006_left_out_workbooks.sql"),
            include_str!("../../sql/0007_emit_pending.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute_batch(SITE_ROWS).unwrap();
        conn.execute_batch(
            "INSERT INTO tableau_workbooks (integration, id, luid, name) VALUES ('site', 'wb', 'w1', 'W'), ('site', 'wb2', 'w2', 'W2');
             INSERT INTO tableau_datasources VALUES ('site', 'c1', 'cube', NULL, 'C', 1, 'wb2');
             INSERT INTO refresh_events (run_id, seq, dry_run, decided_at, integration, exposure, workbook_luid, target_kind,
                target_luid, decision, tableau_code, tableau_message)
             VALUES (1, 1, 0, 't', 'site', 'e', 'w1', 'datasource', 'd1', 'already_queued', '409093', 'queued');
             INSERT INTO refresh_state VALUES ('site', 'datasource', 'd1', 'P', 't', 'already_queued', NULL, 1);",
        )
        .unwrap();
        crate::db::migrate(&mut conn).unwrap();
        assert_eq!(
            targets(&conn),
            [
                row("w1", "datasource", "d1", "P"),
                row("w1", "workbook", "w1", "W"),
                row("w2", "cube", "c1", "C"),
                row("w2", "datasource", "d1", "P")
            ]
        );
        let renamed: (String, String, String, String, String) = conn
            .query_row(
                "SELECT e.asset_ref, e.target_ref, e.service_code, e.service_message, s.target_ref FROM refresh_events e, refresh_state s",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(
            renamed,
            (
                "w1".into(),
                "d1".into(),
                "409093".into(),
                "queued".into(),
                "d1".into()
            )
        );
    }

    #[test]
    fn urls_for_named_and_default_sites() {
        let w = Workbook {
            vizportal_url_id: Some("42".into()),
            ..Default::default()
        };
        assert_eq!(
            workbook_url("https://t.example.com/", "acme", &w).unwrap(),
            "https://t.example.com/#/site/acme/workbooks/42"
        );
        assert_eq!(
            workbook_url("https://t.example.com", "", &w).unwrap(),
            "https://t.example.com/#/workbooks/42"
        );
        let w = Workbook {
            uri: Some("sites/1/workbooks/77".into()),
            ..Default::default()
        };
        assert_eq!(
            workbook_url("https://t", "a", &w).unwrap(),
            "https://t/#/site/a/workbooks/77"
        );
    }

    /// Tableau's own tags read back as written, and refuse a value they do not know.
    #[test]
    fn tableau_tags_round_trip() {
        crate::tags::tests::round_trip::<crate::tableau::extract::LeftOutReason>();
        crate::tags::tests::round_trip::<DatasourceKind>();
    }

    // How Tableau's rows go through the migrations.

    #[test]
    fn links_keep_their_rows_in_key_order_through_0004() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        for sql in &crate::db::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        for wb in ["w2", "w1"] {
            conn.execute(
                "INSERT INTO tableau_tables (integration, workbook_id, via, via_id, table_id, name) VALUES ('p', ?1, 'embedded', 'd', 't', 'orders')",
                [wb],
            )
            .unwrap();
            conn.execute("INSERT INTO exposure_dependencies VALUES ('p', ?1, 'model.x.orders', 't', 'embedded', 'db.s.orders')", [wb])
                .unwrap();
        }
        conn.execute("INSERT INTO tableau_sites (integration, server_url, content_url, projects_filter, complete) VALUES ('p', 'https://t', 'acme', '[]', 1)", [])
            .unwrap();
        crate::db::migrate(&mut conn).unwrap();
        // Through 0008 too: the rows are in bi_relations, seen through the tableau_tables view.
        for (table, column) in [
            ("tableau_tables", "workbook_id"),
            ("bi_relations", "asset_id"),
            ("exposure_dependencies", "asset_id"),
        ] {
            let mut st = conn
                .prepare(&format!("SELECT {column} FROM {table}"))
                .unwrap();
            let got: Vec<String> = st
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(got, ["w1", "w2"], "{table}");
        }
        // Through 0019: keyed again, as WITHOUT ROWID tables (rows in key order).
        for table in [
            "bi_relations",
            "exposure_dependencies",
            "relation_keys",
            "dbt_nodes",
            "exposures",
        ] {
            let wr: bool = conn
                .query_row(
                    "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(wr, "{table}");
        }
    }

    /// 0008 carries a database's Tableau rows into the neutral tables, judging files and
    /// unreadable SQL as extract does, so every stage can run on its own after the upgrade.
    #[test]
    fn rows_made_before_0008_become_neutral_rows() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        for sql in &crate::db::MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute_batch(
            "INSERT INTO tableau_sites (integration, server_url, content_url, projects_filter, complete) VALUES ('p', 'https://t', 'acme', '[]', 0);
             INSERT INTO tableau_workbooks (integration, id, luid, name, project_name, owner_name, owner_username) VALUES ('p', 'w', 'l', 'W', 'Fin', ' ', 'eve');
             INSERT INTO tableau_tables (integration, workbook_id, via, via_id, table_id, name, database_type, connection_type)
               VALUES ('p', 'w', 'embedded', 'd', 't1', 'orders', 'Database', 'snowflake'),
                      ('p', 'w', 'embedded', 'd', 't2', 'sheet', 'File', 'excel-direct'),
                      ('p', 'w', 'published', 'e', 't3', 'x', NULL, 'textscan'),
                      ('p', 'w', 'custom_sql', 'q', '', NULL, NULL, NULL);
             INSERT INTO relation_keys VALUES ('tableau', 'p', 't1', 'a.b.orders', 'a', 'b', 'orders', 'x', 'ok');",
        )
        .unwrap();
        crate::db::migrate(&mut conn).unwrap();
        let mut st = conn.prepare("SELECT relation_id, kind, coalesce(detail, '') FROM bi_relations ORDER BY via, relation_id").unwrap();
        let got: Vec<(String, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want = [
            ("", "unparsed_sql", ""),
            ("t1", "table", ""),
            ("t2", "file", "File"),
            ("t3", "file", "textscan"),
        ];
        assert_eq!(
            got,
            want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        );
        let got: (String, String, String, i64) = conn
            .query_row("SELECT a.asset_ref, a.owner_name, i.label, i.complete FROM bi_assets a JOIN bi_instances i USING (integration)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(got, ("l".into(), "eve".into(), "acme".into(), 0));
        let side: String = conn
            .query_row("SELECT side FROM relation_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(side, "bi");
        let view: i64 = conn
            .query_row(
                "SELECT count(*) FROM tableau_tables WHERE database_type = 'File'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(view, 1);
    }
}
