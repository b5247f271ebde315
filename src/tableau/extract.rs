//! One Tableau site, read whole: projects, workbooks with their data sources and tables, and
//! custom SQL. Paging follows `pageInfo` to the end in `ID` order; warnings are kept, and the
//! result says whether it is complete.
//!
//! Workbooks come in two passes: first their ids (cheap pages, in the selected projects), then
//! their details in chunks of `page_size` ids (`filter: {idWithin: …}`), `concurrency` chunks
//! at a time over the one session, so a slow server's latency overlaps. The first chunk runs
//! alone and settles the page size the node limit allows; the rest start from it. Results are
//! assembled in chunk order, so rows and warnings do not depend on timing.
//!
//! Node limits: a page answered with `NODE_LIMIT_EXCEEDED` is partial, so the page size is
//! halved and the same page fetched again; only a page that is still partial at size 1 is kept
//! as it is, and then the extraction is incomplete. `MAX_PAGE_SIZE_EXCEEDED` names (or shows)
//! the server's maximum: the page is fetched again once at that size, unless it was the last
//! page and came back whole. Both are rows in `extract_warnings`; being recovered, they are
//! logged as info, not as warnings on every run.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::client::{Client, Project, RawResponse};
use super::model::{Connection, CustomSql, GraphqlError, Workbook};
use super::sync;
use crate::config::TableauSite;
use crate::log;

// Every GraphQL document the client sends is one of these files, or `workbook_ids_query`'s
// rendering of the first; `schema_check.rs` validates each against Tableau's schema.
const WORKBOOK_IDS_QUERY: &str = include_str!("workbook_ids.graphql");
pub(crate) const WORKBOOKS_QUERY: &str = include_str!("workbooks.graphql");
/// Page size of the id listing: one node per workbook, far below any node limit. The server's
/// maximum page size is not documented; above it Tableau answers MAX_PAGE_SIZE_EXCEEDED and
/// the page is fetched again at the maximum (see `paged`).
const ID_PAGE_SIZE: u32 = 1000;
const CUSTOM_SQL_QUERY: &str = include_str!("custom_sql.graphql");
const CUSTOM_SQL_IDS_QUERY: &str = include_str!("custom_sql_ids.graphql");
pub(crate) const DATASOURCE_VERSIONS_QUERY: &str = include_str!("datasource_versions.graphql");

#[derive(Debug, Clone)]
pub(crate) struct Warning {
    pub(crate) query: String,
    pub(crate) page: u32,
    pub(crate) code: Option<String>,
    pub(crate) severity: Option<String>,
    pub(crate) message: String,
    pub(crate) action: String,
    /// The page size a node-limit warning made us shrink to.
    pub(crate) shrunk_to: Option<u32>,
}

pub(crate) struct SiteExtract {
    pub(crate) integration: String,
    pub(crate) server_url: String,
    pub(crate) content_url: String,
    pub(crate) site_luid: Option<String>,
    pub(crate) api_version: String,
    pub(crate) product_version: Option<String>,
    pub(crate) projects_filter: Vec<String>,
    pub(crate) projects: Vec<Project>,
    pub(crate) selected_projects: BTreeSet<String>,
    pub(crate) workbooks: Vec<Workbook>,
    pub(crate) workbooks_total: Option<u64>,
    pub(crate) custom_sql: Vec<CustomSql>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) responses: Vec<RawResponse>,
    pub(crate) complete: bool,
    /// Workbooks read but not imported, with the reason (`tableau_left_out_workbooks`).
    pub(crate) left_out: Vec<LeftOut>,
    /// What this extraction leaves for the next one (`super::sync`).
    pub(crate) sync: Option<sync::Outcome>,
}

/// A workbook the site holds that does not become an exposure, and why.
#[derive(Debug, Clone)]
pub(crate) struct LeftOut {
    pub(crate) id: String,
    pub(crate) luid: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) project_luid: Option<String>,
    pub(crate) project_name: Option<String>,
    pub(crate) owner_username: Option<String>,
    pub(crate) reason: LeftOutReason,
    pub(crate) detail: String,
}

crate::tags::text_tag! {
    /// Why a workbook read was not imported (`tableau_left_out_workbooks.reason`).
    pub(crate) enum LeftOutReason in "reason" {
        /// In a user's personal space, and the site does not ask for those.
        PersonalSpace = "personal_space",
    }
}

/// How a workbook was recognised as being in a personal space (`personal_space`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersonalSpace {
    /// No project at all.
    NoProject,
    /// In a project named "Personal Space" that Query Projects does not list.
    UnlistedProject,
}

/// The name Tableau's web UI gives a personal space; the Metadata API may or may not report
/// it as the workbook's `projectName` (see `personal_space`).
pub(crate) const PERSONAL_SPACE: &str = "Personal Space";

/// Why a workbook is in a user's personal space, or `None` when it is in a project.
///
/// What Tableau reports for such a workbook is not documented on the Metadata API reference
/// pages we could find, so both shapes seen or suggested elsewhere are taken:
/// - no project at all (`projectName` and `projectLuid` null or empty): how REST clients see
///   it ("the workbook ... is in user's personal space, which is not belong to any project",
///   open-metadata/OpenMetadata#14325, where a project-name filter could not exclude it; and
///   ../shared/reference/tableau.md §5: "Personal-space workbooks have no project (null
///   `projectName`)");
/// - a project named "Personal Space" that Query Projects does not list: a personal space has
///   a LUID of its own that is not a project's (tableau.github.io/tableau-mcp, Move Workbook:
///   "Do not pass a Personal Space LUID here"), and the UI calls it "Personal Space". UNVERIFIED
///   for the Metadata API; a real project of that name is listed by Query Projects, so it is
///   never mistaken for one.
pub(crate) fn personal_space(
    w: &Workbook,
    listed_projects: &BTreeSet<&str>,
) -> Option<PersonalSpace> {
    let blank = |s: &Option<String>| s.as_deref().map_or(true, |s| s.trim().is_empty());
    if blank(&w.project_name) && blank(&w.project_luid) {
        return Some(PersonalSpace::NoProject);
    }
    let listed = w
        .project_luid
        .as_deref()
        .is_some_and(|l| listed_projects.contains(l));
    if !listed
        && w.project_name
            .as_deref()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case(PERSONAL_SPACE))
    {
        return Some(PersonalSpace::UnlistedProject);
    }
    None
}

/// Splits off the personal-space workbooks unless the site asks for them.
fn leave_out_personal_spaces(
    site: &TableauSite,
    projects: &[Project],
    workbooks: &mut Vec<Workbook>,
) -> Vec<LeftOut> {
    if site.include_personal_spaces {
        return Vec::new();
    }
    let listed: BTreeSet<&str> = projects.iter().map(|p| p.luid.as_str()).collect();
    let mut left_out = Vec::new();
    workbooks.retain(|w| {
        let Some(why) = personal_space(w, &listed) else { return true };
        left_out.push(LeftOut {
            id: w.id.clone(),
            luid: w.luid.clone(),
            name: w.name.clone(),
            project_luid: w.project_luid.clone(),
            project_name: w.project_name.clone(),
            owner_username: w.owner.as_ref().and_then(|o| o.username.clone()),
            reason: LeftOutReason::PersonalSpace,
            detail: match why {
                PersonalSpace::NoProject => "in a personal space (no project); set include_personal_spaces: true to import it".into(),
                PersonalSpace::UnlistedProject => format!("in a personal space ({PERSONAL_SPACE:?}, not a listed project); set include_personal_spaces: true to import it"),
            },
        });
        false
    });
    left_out
}

/// Where a site's extraction finds what the last one left (`super::sync`), and the settings
/// that decide whether it may build on it.
#[derive(Clone, Copy)]
pub(crate) struct SyncFrom<'a> {
    pub(crate) db: &'a std::path::Path,
    pub(crate) settings: &'a crate::config::SyncSettings,
}

/// Signs in, reads everything, and signs out (on errors too).
pub(crate) fn extract_site(
    site: &TableauSite,
    client: &Client,
    from: SyncFrom<'_>,
) -> Result<SiteExtract> {
    let settings_hash = sync::settings_hash(site);
    let decision = crate::sync::decide(from.db, &site.name, &settings_hash, from.settings)?;
    // Read before anything is sent: a cache that cannot be read stops the run, not a request.
    let base = if decision.incremental {
        Some(sync::load(from.db, &site.name)?)
    } else {
        None
    };
    log::info(&format!(
        "tableau {}: {} sync ({})",
        site.name,
        decision.mode(),
        decision.why
    ));
    client.server_info()?;
    client.sign_in()?;
    let result = read_site(site, client, base.as_ref(), decision, settings_hash);
    client.sign_out();
    let mut extract = result?;
    extract.server_url = client.server();
    extract.responses = client.take_responses();
    Ok(extract)
}

fn read_site(
    site: &TableauSite,
    client: &Client,
    base: Option<&sync::Base>,
    decision: crate::sync::Decision,
    settings_hash: String,
) -> Result<SiteExtract> {
    let mut warnings = Vec::new();
    let projects = client.projects()?;
    let selected = select_projects(&site.projects, &projects)
        .with_context(|| format!("tableau {:?}: projects", site.name))?;
    let filter: Option<Vec<String>> = if site.projects.is_empty() {
        None
    } else {
        Some(selected.iter().cloned().collect())
    };

    let id_query = workbook_ids_query(filter.is_some());
    let vars = workbook_ids_vars(filter.as_deref());
    let (listed, workbooks_total, ids_complete) = paged::<sync::Listed>(
        client,
        "WorkbookIds",
        &id_query,
        "workbooksConnection",
        &vars,
        ID_PAGE_SIZE,
        &mut warnings,
    )?;
    // Only a record of what the details were fetched from: a data source missing from these
    // pages makes the workbooks that read it be fetched again, never reused.
    let (versions, _, _) = paged::<sync::Version>(
        client,
        "DatasourceVersions",
        DATASOURCE_VERSIONS_QUERY,
        "publishedDatasourcesConnection",
        &serde_json::Map::new(),
        ID_PAGE_SIZE,
        &mut warnings,
    )?;
    let versions: rustc_hash::FxHashMap<String, Option<String>> =
        versions.into_iter().map(|v| (v.id, v.updated_at)).collect();
    let now = sync::Now {
        workbooks: &listed,
        datasources: &versions,
    };
    let (fetch_ids, reused, mut states) = sync::plan_workbooks(base, &now, &decision.why);
    let fetching: BTreeSet<&str> = fetch_ids.iter().map(String::as_str).collect();
    // Custom SQL pages are read on their own thread while the workbook chunks are fetched; its
    // warnings are appended after the workbooks' so the order does not depend on timing. With
    // one request at a time (replay), they are read after the workbooks instead.
    let custom_sql = || {
        let mut w = Vec::new();
        let r = read_custom_sql(client, site, base, &fetching, &decision.why, &mut w);
        (r, w)
    };
    let (details, custom) = if client.concurrency(site.concurrency) == 1 {
        let details = workbook_details(client, &fetch_ids, site, &mut warnings);
        (details, Ok(custom_sql()))
    } else {
        std::thread::scope(|scope| {
            let custom = scope.spawn(custom_sql);
            let details = workbook_details(client, &fetch_ids, site, &mut warnings);
            (details, custom.join())
        })
    };
    let (fetched, wb_complete) = details?;
    let (custom, custom_warnings) =
        custom.map_err(|_| anyhow::anyhow!("the custom SQL reader panicked"))?;
    let (mut custom_sql, sql_complete, sql_states, sql_rows) = custom?;
    warnings.extend(custom_warnings);
    states.extend(sql_states);
    let by_id: rustc_hash::FxHashMap<&str, &sync::Listed> =
        listed.iter().map(|l| (l.id.as_str(), l)).collect();
    let workbook_rows = fetched
        .iter()
        .map(|w| sync::workbook_row(w, &by_id, &versions))
        .collect::<Result<Vec<_>>>()?;
    let mut workbooks = reused;
    workbooks.extend(fetched);
    workbooks.sort_by(|a, b| a.id.cmp(&b.id));
    custom_sql.sort_by(|a, b| a.id.cmp(&b.id));
    let outcome = sync::Outcome {
        decision,
        settings_hash,
        states,
        workbooks: workbook_rows,
        custom_sql: sql_rows,
    };
    let wb_complete = wb_complete && ids_complete;
    if let Some(f) = &filter {
        // Older servers ignore unknown filters; never trust the filter alone.
        workbooks.retain(|w| w.project_luid.as_ref().is_some_and(|p| f.contains(p)));
    }
    // With a `projects` list, personal spaces (in no listed project) are already out.
    let left_out = leave_out_personal_spaces(site, &projects, &mut workbooks);
    if !left_out.is_empty() {
        log::info(&format!(
            "tableau {}: {} workbook(s) in personal spaces left out (include_personal_spaces: true imports them)",
            site.name,
            left_out.len()
        ));
    }
    let mut redacted_complete = true;
    for w in &workbooks {
        let n = redacted_tables(w);
        if n > 0 {
            let name = w.name.as_deref().unwrap_or("?");
            log::warn(&format!(
                "tableau {}: workbook {name:?}: {n} upstream table(s) came back without names (Tableau Catalog permissions); its lineage is incomplete",
                site.name
            ));
            warnings.push(Warning {
                query: "Workbooks".into(),
                page: 0,
                code: Some("REDACTED_TABLES".into()),
                severity: Some("WARNING".into()),
                message: format!("workbook {name:?} ({}): {n} upstream table(s) with null name, fullName, schema and database.name", w.luid.as_deref().unwrap_or("?")),
                action: "recorded as unmatched (redacted_name); extraction incomplete".into(),
                shrunk_to: None,
            });
            redacted_complete = false;
        }
    }
    let workbook_ids: BTreeSet<&str> = workbooks.iter().map(|w| w.id.as_str()).collect();

    custom_sql.retain(|c| {
        c.downstream_workbooks
            .iter()
            .flatten()
            .any(|w| workbook_ids.contains(w.id.as_str()))
    });

    Ok(SiteExtract {
        integration: site.name.clone(),
        server_url: String::new(),
        content_url: site.site.clone(),
        site_luid: client.site_luid(),
        api_version: client.api_version(),
        product_version: client.product_version(),
        projects_filter: site.projects.clone(),
        projects,
        selected_projects: selected,
        workbooks,
        workbooks_total,
        custom_sql,
        warnings,
        responses: Vec::new(),
        complete: wb_complete && sql_complete && redacted_complete,
        left_out,
        sync: Some(outcome),
    })
}

/// The id-listing document, with the project filter (`$projectLuids`, Workbook_Filter's
/// `projectLuidWithin: [String]`) or without it.
pub(crate) fn workbook_ids_query(project_filter: bool) -> String {
    let (var, filter) = if project_filter {
        (
            ", $projectLuids: [String]",
            ", filter: {projectLuidWithin: $projectLuids}",
        )
    } else {
        ("", "")
    };
    WORKBOOK_IDS_QUERY
        .replace("$PROJECT_VAR", var)
        .replace("$PROJECT_FILTER", filter)
}

/// Variables of the id listing besides paging: the project luids when filtered.
pub(crate) fn workbook_ids_vars(projects: Option<&[String]>) -> serde_json::Map<String, Value> {
    let mut vars = serde_json::Map::new();
    if let Some(p) = projects {
        vars.insert("projectLuids".into(), json!(p));
    }
    vars
}

/// The custom SQL document: every query on the site, or (`by_id`) those in `$ids`
/// (CustomSQLTable_Filter's `idWithin: [ID]`).
pub(crate) fn custom_sql_query(by_id: bool) -> String {
    let (var, filter) = if by_id {
        (", $ids: [ID]", ", filter: {idWithin: $ids}")
    } else {
        ("", "")
    };
    CUSTOM_SQL_QUERY
        .replace("$IDS_VAR", var)
        .replace("$IDS_FILTER", filter)
}

/// The custom SQL id listing (each query's id and the workbooks downstream of it).
#[cfg(test)]
pub(crate) fn custom_sql_ids_query() -> &'static str {
    CUSTOM_SQL_IDS_QUERY
}

type CustomSqlRead = (
    Vec<CustomSql>,
    bool,
    Vec<crate::sync::State>,
    Vec<(String, String, Vec<u8>)>,
);

/// The site's custom SQL: without a base every query, paged; with one, the id listing, then
/// only the queries `sync::plan_custom_sql` says to fetch, by id, in chunks of `page_size`.
fn read_custom_sql(
    client: &Client,
    site: &TableauSite,
    base: Option<&sync::Base>,
    fetching: &BTreeSet<&str>,
    full_why: &str,
    warnings: &mut Vec<Warning>,
) -> Result<CustomSqlRead> {
    let Some(base) = base else {
        let (all, _, complete) = paged::<CustomSql>(
            client,
            "CustomSql",
            &custom_sql_query(false),
            "customSQLTablesConnection",
            &serde_json::Map::new(),
            site.page_size,
            warnings,
        )?;
        let states = all
            .iter()
            .map(|q| crate::sync::State {
                kind: "custom_sql",
                id: q.id.clone(),
                action: crate::sync::Action::Fetched,
                reason: format!("full sync: {full_why}"),
            })
            .collect();
        let rows = all
            .iter()
            .map(sync::custom_sql_row)
            .collect::<Result<_>>()?;
        return Ok((all, complete, states, rows));
    };
    let (listed, _, ids_complete) = paged::<sync::SqlListed>(
        client,
        "CustomSqlIds",
        CUSTOM_SQL_IDS_QUERY,
        "customSQLTablesConnection",
        &serde_json::Map::new(),
        ID_PAGE_SIZE,
        warnings,
    )?;
    let (fetch, mut all, states) = sync::plan_custom_sql(base, &listed, fetching);
    let mut complete = ids_complete;
    let mut rows = Vec::new();
    let query = custom_sql_query(true);
    for chunk in fetch.chunks(site.page_size.max(1) as usize) {
        let mut vars = serde_json::Map::new();
        vars.insert("ids".into(), json!(chunk));
        let (nodes, _, c) = paged::<CustomSql>(
            client,
            "CustomSql",
            &query,
            "customSQLTablesConnection",
            &vars,
            site.page_size,
            warnings,
        )?;
        complete &= c;
        for q in &nodes {
            rows.push(sync::custom_sql_row(q)?);
        }
        all.extend(nodes);
    }
    Ok((all, complete, states, rows))
}

/// Variables of one details chunk besides paging: its workbook ids (`$ids: [ID]`).
pub(crate) fn workbook_details_vars(chunk: &[String]) -> serde_json::Map<String, Value> {
    let mut vars = serde_json::Map::new();
    vars.insert("ids".into(), json!(chunk));
    vars
}

/// A page's variables: `base` plus `first` and `after` (`null` on the first page).
pub(crate) fn page_variables(
    base: &serde_json::Map<String, Value>,
    first: u32,
    after: Option<&str>,
) -> serde_json::Map<String, Value> {
    let mut vars = base.clone();
    vars.insert("first".into(), json!(first));
    vars.insert("after".into(), json!(after));
    vars
}

/// Fetches workbook details for `ids` in chunks of `page_size`, `concurrency` at a time.
fn workbook_details(
    client: &Client,
    ids: &[String],
    site: &TableauSite,
    warnings: &mut Vec<Warning>,
) -> Result<(Vec<Workbook>, bool)> {
    let chunks: Vec<&[String]> = ids.chunks(site.page_size as usize).collect();
    if chunks.is_empty() {
        return Ok((Vec::new(), true));
    }
    type ChunkResult = Result<(Vec<Workbook>, bool, Vec<Warning>, u32)>;
    let fetch = |chunk: &[String], first: u32| -> ChunkResult {
        let vars = workbook_details_vars(chunk);
        let mut w = Vec::new();
        let (nodes, _, complete) = paged::<Workbook>(
            client,
            "Workbooks",
            WORKBOOKS_QUERY,
            "workbooksConnection",
            &vars,
            first,
            &mut w,
        )?;
        let settled = w.iter().filter_map(|x| x.shrunk_to).min().unwrap_or(first);
        Ok((nodes, complete, w, settled))
    };
    let bar = log::progress(chunks.len() as u64, &format!("{}: workbooks", site.name));
    let (first_nodes, first_complete, first_warnings, settled) = fetch(chunks[0], site.page_size)?;
    bar.inc(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<ChunkResult>>> = (1..chunks.len())
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let workers = client
        .concurrency(site.concurrency)
        .clamp(1, chunks.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i + 1 >= chunks.len() {
                    break;
                }
                let r = fetch(chunks[i + 1], settled);
                bar.inc(1);
                let failed = r.is_err();
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                if failed {
                    // Let the other workers finish their chunk, then stop taking new ones.
                    next.store(chunks.len(), std::sync::atomic::Ordering::SeqCst);
                    break;
                }
            });
        }
    });
    bar.finish_and_clear();
    let results = slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()));
    let mut all = first_nodes;
    let mut complete = first_complete;
    warnings.extend(first_warnings);
    let mut seen: BTreeSet<String> = all.iter().map(|w| w.id.clone()).collect();
    for r in results {
        let Some(r) = r else {
            continue; // not fetched because an earlier chunk failed; that failure is reported below
        };
        let (nodes, c, w, _) = r?;
        complete &= c;
        warnings.extend(w);
        for n in nodes {
            if seen.insert(n.id.clone()) {
                all.push(n);
            }
        }
    }
    if all.len() != ids.len() {
        let msg = format!(
            "{} workbook ids listed, {} workbooks fetched",
            ids.len(),
            all.len()
        );
        log::warn(&format!("Workbooks: {msg}"));
        warnings.push(Warning {
            query: "Workbooks".into(),
            page: 0,
            code: Some("COUNT_MISMATCH".into()),
            severity: Some("WARNING".into()),
            message: msg,
            action: "recorded (workbooks may have been deleted during the run)".into(),
            shrunk_to: None,
        });
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((all, complete))
}

/// Tables Tableau returned with every naming field null: hidden by Catalog permissions.
fn redacted_tables(w: &Workbook) -> usize {
    let redacted = |t: &&super::model::Table| {
        t.name.is_none()
            && t.full_name.is_none()
            && t.schema.is_none()
            && t.database.as_ref().and_then(|d| d.name.as_ref()).is_none()
    };
    let mut ids = BTreeSet::new();
    for e in w.embedded_datasources.iter().flatten() {
        ids.extend(
            e.upstream_tables
                .iter()
                .flatten()
                .filter(redacted)
                .map(|t| t.id.clone()),
        );
        for p in e.upstream_datasources.iter().flatten() {
            ids.extend(
                p.upstream_tables
                    .iter()
                    .flatten()
                    .filter(redacted)
                    .map(|t| t.id.clone()),
            );
        }
    }
    ids.len()
}

/// The luids of the named projects and of every project nested below them.
fn select_projects(names: &[String], projects: &[Project]) -> Result<BTreeSet<String>> {
    if names.is_empty() {
        return Ok(projects.iter().map(|p| p.luid.clone()).collect());
    }
    let mut selected = BTreeSet::new();
    for name in names {
        let hits: Vec<&Project> = projects.iter().filter(|p| &p.name == name).collect();
        if hits.is_empty() {
            let mut all: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
            all.sort_unstable();
            all.dedup();
            bail!(
                "project {name:?} is not on the site (names are case-sensitive; the PAT's user sees: {}). Fix `projects` in the config",
                all.join(", ")
            );
        }
        selected.extend(hits.iter().map(|p| p.luid.clone()));
    }
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in projects {
        if let Some(parent) = &p.parent_luid {
            children
                .entry(parent.as_str())
                .or_default()
                .push(p.luid.as_str());
        }
    }
    let mut stack: Vec<String> = selected.iter().cloned().collect();
    while let Some(luid) = stack.pop() {
        for child in children.get(luid.as_str()).into_iter().flatten() {
            if selected.insert((*child).to_string()) {
                stack.push((*child).to_string());
            }
        }
    }
    Ok(selected)
}

/// Follows a `…Connection` to its end. Returns the nodes (de-duplicated by id, in the order
/// received), `totalCount`, and whether every page came back whole.
fn paged<T: DeserializeOwned + HasId>(
    client: &Client,
    name: &str,
    query: &str,
    field: &str,
    base_vars: &serde_json::Map<String, Value>,
    page_size: u32,
    warnings: &mut Vec<Warning>,
) -> Result<(Vec<T>, Option<u64>, bool)> {
    let mut first = page_size;
    let mut after: Option<String> = None;
    let mut seen_cursors = BTreeSet::new();
    let mut seen_ids = BTreeSet::new();
    let mut out = Vec::new();
    let mut total = None;
    let mut complete = true;
    let mut page = 1u32;
    let mut timeouts = 0u32;
    loop {
        let vars = page_variables(base_vars, first, after.as_deref());
        // Straight from bytes into the typed page, once: no `Value` tree for pages of nested
        // tables. A body cut short is asked for again inside `graphql`, under `retry:`.
        let body: GraphqlResponse<T> = client
            .graphql(name, query, &Value::Object(vars))
            .with_context(|| format!("Tableau Metadata API, query {name}, page {page}"))?;
        // Server text, scrubbed in full as it enters (names too: see `http::secrets`).
        let mut errors = body.errors.unwrap_or_default();
        for e in &mut errors {
            e.message = crate::http::scrub(&e.message);
        }
        if let Some(e) = errors.iter().find(|e| e.is_retryable()) {
            timeouts += 1;
            if timeouts >= 5 {
                bail!("{name} page {page}: Tableau kept timing out: {}", e.message);
            }
            let wait =
                std::time::Duration::from_millis(1000 * u64::from(timeouts * timeouts).min(60));
            log::warn(&format!(
                "{name} page {page}: {}; asking again in {}s",
                e.message,
                wait.as_secs()
            ));
            warnings.push(warn_row(name, page, e, "page asked again after a pause"));
            std::thread::sleep(wait);
            continue;
        }
        timeouts = 0;
        if let Some(e) = errors
            .iter()
            .find(|e| !e.is_warning() && !e.is_node_limit())
        {
            let code = e.code().map(|c| format!(" [{c}]")).unwrap_or_default();
            bail!(
                "Tableau Metadata API, query {name}, page {page}{code}: {}",
                e.message
            );
        }
        let conn = body.data.and_then(|mut d| d.remove(field)).flatten();
        // Node limit: the page's nested lists may be cut anywhere, so the page is asked for
        // again at half the size. Handled and recovered, it is a row in extract_warnings and
        // an info line, not a warning on every run.
        if let Some(e) = errors.iter().find(|e| e.is_node_limit()) {
            if first > 1 {
                let smaller = (first / 2).max(1);
                let mut row = warn_row(
                    name,
                    page,
                    e,
                    &format!("page fetched again with first={smaller} (was {first})"),
                );
                row.shrunk_to = Some(smaller);
                warnings.push(row);
                log::info(&format!(
                    "{name} page {page}: {}; fetching it again with page size {smaller}",
                    short(&e.message)
                ));
                first = smaller;
                continue;
            }
            warnings.push(warn_row(
                name,
                page,
                e,
                "kept partial page at page size 1; extraction incomplete",
            ));
            log::warn(&format!(
                "{name} page {page}: {} even at page size 1; kept the partial page",
                short(&e.message)
            ));
            complete = false;
        } else if let Some(e) = errors.iter().find(|e| e.is_max_page_size()) {
            // Above the server's maximum page size Tableau limits the page to that maximum
            // (help.tableau.com meta_api_errors.html). Take the maximum it names; if it names
            // none, a page cut to fewer nodes than asked shows it; only then halve.
            let (nodes, has_next) = conn
                .as_ref()
                .map_or((0, true), |c| (c.nodes.len(), c.page_info.has_next_page));
            let named = e.max_page_size().filter(|&m| m >= 1 && m < first);
            let seen = (has_next && nodes >= 1 && (nodes as u64) < u64::from(first))
                .then_some(nodes as u32);
            let max = named.or(seen).unwrap_or((first / 2).max(1));
            if !has_next && conn.is_some() {
                // The last page, whole: nothing was cut off, so it is not asked for again. Only
                // a maximum the warning names is worth starting later chunks from.
                let action = match named {
                    Some(m) => {
                        format!("last page complete; kept; page size {m} from here (was {first})")
                    }
                    None => "last page complete; kept".to_string(),
                };
                let mut row = warn_row(name, page, e, &action);
                row.shrunk_to = named;
                warnings.push(row);
                log::debug(&format!("{name} page {page}: above the maximum page size, but the page was already complete"));
                first = named.unwrap_or(first);
            } else if first > 1 {
                let mut row = warn_row(
                    name,
                    page,
                    e,
                    &format!("page fetched again with first={max} (was {first})"),
                );
                row.shrunk_to = Some(max);
                warnings.push(row);
                log::info(&format!("{name} page {page}: the server's maximum page size is {max}; fetching the page again with it (was {first})"));
                first = max;
                continue;
            } else {
                warnings.push(warn_row(
                    name,
                    page,
                    e,
                    "kept page at page size 1; extraction incomplete",
                ));
                complete = false;
            }
        }
        for e in errors
            .iter()
            .filter(|e| e.is_warning() && !e.is_node_limit() && !e.is_max_page_size())
        {
            warnings.push(warn_row(
                name,
                page,
                e,
                "recorded; results may be incomplete",
            ));
            log::warn(&format!(
                "{name} page {page}: Tableau warning {}: {}",
                e.code().unwrap_or("-"),
                short(&e.message)
            ));
            complete = false;
        }
        let Some(conn) = conn else {
            bail!("Tableau Metadata API, query {name}, page {page}: no data.{field} in the answer");
        };
        if total.is_none() {
            total = conn.total_count;
        }
        for node in conn.nodes {
            if seen_ids.insert(node.id().to_string()) {
                out.push(node);
            }
        }
        if !conn.page_info.has_next_page {
            break;
        }
        let Some(cursor) = conn.page_info.end_cursor else {
            bail!("Tableau Metadata API, query {name}, page {page}: hasNextPage is true but endCursor is null");
        };
        if !seen_cursors.insert(cursor.clone()) {
            bail!("Tableau Metadata API, query {name}, page {page}: endCursor repeated; paging would loop");
        }
        after = Some(cursor);
        page += 1;
    }
    if let Some(t) = total {
        if t != out.len() as u64 && complete {
            let msg = format!("totalCount says {t}, paging returned {}", out.len());
            log::warn(&format!("{name}: {msg}"));
            warnings.push(Warning {
                query: name.into(),
                page,
                code: Some("COUNT_MISMATCH".into()),
                severity: Some("WARNING".into()),
                message: msg,
                action: "recorded (the catalog may have changed during the run)".into(),
                shrunk_to: None,
            });
        }
    }
    Ok((out, total, complete))
}

fn short(msg: &str) -> &str {
    msg.split_once(". ").map(|(a, _)| a).unwrap_or(msg)
}

fn warn_row(query: &str, page: u32, e: &GraphqlError, action: &str) -> Warning {
    Warning {
        query: query.into(),
        page,
        code: e.code().map(str::to_string),
        severity: e.severity().map(str::to_string),
        message: e.message.clone(),
        action: action.into(),
        shrunk_to: None,
    }
}

/// A GraphQL answer: `data` (possibly partial, possibly null) and `errors` (warnings too).
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub(crate) struct GraphqlResponse<T> {
    #[serde(default)]
    data: Option<BTreeMap<String, Option<Connection<T>>>>,
    #[serde(default)]
    errors: Option<Vec<GraphqlError>>,
}

pub(crate) trait HasId {
    fn id(&self) -> &str;
}
impl HasId for sync::Listed {
    fn id(&self) -> &str {
        &self.id
    }
}
impl HasId for sync::Version {
    fn id(&self) -> &str {
        &self.id
    }
}
impl HasId for sync::SqlListed {
    fn id(&self) -> &str {
        &self.id
    }
}
impl HasId for Workbook {
    fn id(&self) -> &str {
        &self.id
    }
}
impl HasId for CustomSql {
    fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(luid: &str, name: &str, parent: Option<&str>) -> Project {
        Project {
            luid: luid.into(),
            name: name.into(),
            parent_luid: parent.map(str::to_string),
        }
    }

    #[test]
    fn max_page_size_is_read_tolerantly() {
        let e = |message: &str, props: Option<Value>| -> GraphqlError {
            let mut v = json!({"message": message, "extensions": {"severity": "WARNING", "code": "MAX_PAGE_SIZE_EXCEEDED"}});
            if let Some(p) = props {
                v["extensions"]["properties"] = p;
            }
            serde_json::from_value(v).unwrap()
        };
        // Tableau's documented wording names no number.
        let documented = "The value chosen for \u{201c}first\u{201d} exceeded the maximum page size, so the query results will be limited to the maximum page size instead of the value chosen for \u{201c}first\u{201d}.";
        assert_eq!(e(documented, None).max_page_size(), None);
        assert_eq!(
            e(
                "The requested page size 1000 exceeds the maximum page size of 100.",
                None
            )
            .max_page_size(),
            Some(100)
        );
        assert_eq!(
            e(documented, Some(json!({"maxPageSize": 250}))).max_page_size(),
            Some(250)
        );
        assert_eq!(
            e(documented, Some(json!({"limit": "50"}))).max_page_size(),
            Some(50)
        );
        assert_eq!(
            e("maximum page size of 99999999999", None).max_page_size(),
            None
        );
    }

    #[test]
    fn selection_includes_nested_projects() {
        let all = vec![
            p("a", "Finance", None),
            p("b", "Monthly", Some("a")),
            p("c", "Deep", Some("b")),
            p("d", "Other", None),
        ];
        let got = select_projects(&["Finance".into()], &all).unwrap();
        assert_eq!(got.into_iter().collect::<Vec<_>>(), vec!["a", "b", "c"]);
        let err = select_projects(&["finance".into()], &all)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"finance\" is not on the site") && err.contains("Finance, Monthly"),
            "{err}"
        );
    }
}
