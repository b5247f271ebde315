//! One Tableau site, read whole: projects, workbooks with their data sources and tables, and
//! custom SQL. Paging follows `pageInfo` to the end in `ID` order; warnings are kept, and the
//! result says whether it is complete.
//!
//! Node limits: a page answered with `NODE_LIMIT_EXCEEDED` (or `MAX_PAGE_SIZE_EXCEEDED`) is
//! partial, so the page size is halved and the same page fetched again; only a page that is
//! still partial at size 1 is kept as it is, and then the extraction is incomplete.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::client::{Client, Project, RawResponse};
use super::model::{Connection, CustomSql, GraphqlError, Workbook};
use crate::config::TableauSite;
use crate::log;

const WORKBOOKS_QUERY: &str = include_str!("workbooks.graphql");
const CUSTOM_SQL_QUERY: &str = include_str!("custom_sql.graphql");

#[derive(Debug, Clone)]
pub(crate) struct Warning {
    pub(crate) query: String,
    pub(crate) page: u32,
    pub(crate) code: Option<String>,
    pub(crate) severity: Option<String>,
    pub(crate) message: String,
    pub(crate) action: String,
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
}

/// Signs in, reads everything, and signs out (on errors too).
pub(crate) fn extract_site(site: &TableauSite, client: &mut Client) -> Result<SiteExtract> {
    client.server_info()?;
    client.sign_in()?;
    let result = read_site(site, client);
    client.sign_out();
    let mut extract = result?;
    extract.server_url = client.server.clone();
    extract.responses = std::mem::take(&mut client.responses);
    Ok(extract)
}

fn read_site(site: &TableauSite, client: &mut Client) -> Result<SiteExtract> {
    let mut warnings = Vec::new();
    let projects = client.projects()?;
    let selected = select_projects(&site.projects, &projects)
        .with_context(|| format!("tableau {:?}: projects", site.name))?;
    let filter: Option<Vec<String>> =
        if site.projects.is_empty() { None } else { Some(selected.iter().cloned().collect()) };

    let (project_var, project_filter) = if filter.is_some() {
        (", $projectLuids: [String]", ", filter: {projectLuidWithin: $projectLuids}")
    } else {
        ("", "")
    };
    let query = WORKBOOKS_QUERY.replace("$PROJECT_VAR", project_var).replace("$PROJECT_FILTER", project_filter);
    let mut vars = serde_json::Map::new();
    if let Some(f) = &filter {
        vars.insert("projectLuids".into(), json!(f));
    }
    let (mut workbooks, workbooks_total, wb_complete) = paged::<Workbook>(
        client,
        "Workbooks",
        &query,
        "workbooksConnection",
        &vars,
        site.page_size,
        &mut warnings,
    )?;
    if let Some(f) = &filter {
        // Older servers ignore unknown filters; never trust the filter alone.
        workbooks.retain(|w| w.project_luid.as_ref().is_some_and(|p| f.contains(p)));
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
            });
            redacted_complete = false;
        }
    }
    let workbook_ids: BTreeSet<&str> = workbooks.iter().map(|w| w.id.as_str()).collect();

    let (mut custom_sql, _, sql_complete) = paged::<CustomSql>(
        client,
        "CustomSql",
        CUSTOM_SQL_QUERY,
        "customSQLTablesConnection",
        &serde_json::Map::new(),
        site.page_size,
        &mut warnings,
    )?;
    custom_sql.retain(|c| {
        c.downstream_workbooks.iter().flatten().any(|w| workbook_ids.contains(w.id.as_str()))
    });

    Ok(SiteExtract {
        integration: site.name.clone(),
        server_url: String::new(),
        content_url: site.site.clone(),
        site_luid: client.site_luid().map(str::to_string),
        api_version: client.api_version.clone(),
        product_version: client.product_version.clone(),
        projects_filter: site.projects.clone(),
        projects,
        selected_projects: selected,
        workbooks,
        workbooks_total,
        custom_sql,
        warnings,
        responses: Vec::new(),
        complete: wb_complete && sql_complete && redacted_complete,
    })
}

/// Tables Tableau returned with every naming field null: hidden by Catalog permissions.
fn redacted_tables(w: &Workbook) -> usize {
    let redacted = |t: &&super::model::Table| {
        t.name.is_none() && t.full_name.is_none() && t.schema.is_none() && t.database.as_ref().and_then(|d| d.name.as_ref()).is_none()
    };
    let mut ids = BTreeSet::new();
    for e in w.embedded_datasources.iter().flatten() {
        ids.extend(e.upstream_tables.iter().flatten().filter(redacted).map(|t| t.id.clone()));
        for p in e.upstream_datasources.iter().flatten() {
            ids.extend(p.upstream_tables.iter().flatten().filter(redacted).map(|t| t.id.clone()));
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
            children.entry(parent.as_str()).or_default().push(p.luid.as_str());
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
    client: &mut Client,
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
        let mut vars = base_vars.clone();
        vars.insert("first".into(), json!(first));
        vars.insert("after".into(), json!(after));
        let body = client.graphql(name, query, &Value::Object(vars))?;
        let errors: Vec<GraphqlError> = match body.get("errors") {
            Some(e) if !e.is_null() => serde_json::from_value(e.clone())
                .with_context(|| format!("{name} page {page}: unreadable `errors`"))?,
            _ => Vec::new(),
        };
        if let Some(e) = errors.iter().find(|e| e.is_retryable()) {
            timeouts += 1;
            if timeouts >= 5 {
                bail!("{name} page {page}: Tableau kept timing out: {}", e.message);
            }
            let wait = std::time::Duration::from_millis(1000 * u64::from(timeouts * timeouts).min(60));
            log::warn(&format!("{name} page {page}: {}; asking again in {}s", e.message, wait.as_secs()));
            warnings.push(warn_row(name, page, e, "page asked again after a pause"));
            std::thread::sleep(wait);
            continue;
        }
        timeouts = 0;
        if let Some(e) = errors.iter().find(|e| !e.is_warning() && !e.is_node_limit()) {
            let code = e.code().map(|c| format!(" [{c}]")).unwrap_or_default();
            bail!("Tableau Metadata API, query {name}, page {page}{code}: {}", e.message);
        }
        let partial = errors
            .iter()
            .find(|e| e.is_node_limit() || e.code() == Some("MAX_PAGE_SIZE_EXCEEDED"));
        if let Some(e) = partial {
            if first > 1 {
                let smaller = (first / 2).max(1);
                warnings.push(warn_row(name, page, e, &format!("page fetched again with first={smaller} (was {first})")));
                log::warn(&format!("{name} page {page}: {}; fetching it again with page size {smaller}", short(&e.message)));
                first = smaller;
                continue;
            }
            warnings.push(warn_row(name, page, e, "kept partial page at page size 1; extraction incomplete"));
            complete = false;
        }
        for e in errors.iter().filter(|e| e.is_warning() && !std::ptr::eq(*e, partial.unwrap_or(*e)) || (e.is_warning() && partial.is_none())) {
            warnings.push(warn_row(name, page, e, "recorded; results may be incomplete"));
            log::warn(&format!("{name} page {page}: Tableau warning {}: {}", e.code().unwrap_or("-"), short(&e.message)));
            complete = false;
        }
        let conn_value = body.get("data").and_then(|d| d.get(field)).cloned().unwrap_or(Value::Null);
        if conn_value.is_null() {
            bail!("Tableau Metadata API, query {name}, page {page}: no data.{field} in the answer");
        }
        let conn: Connection<T> = serde_json::from_value(conn_value)
            .with_context(|| format!("Tableau Metadata API, query {name}, page {page}: unexpected shape"))?;
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
    }
}

pub(crate) trait HasId {
    fn id(&self) -> &str;
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
        Project { luid: luid.into(), name: name.into(), parent_luid: parent.map(str::to_string) }
    }

    #[test]
    fn selection_includes_nested_projects() {
        let all = vec![p("a", "Finance", None), p("b", "Monthly", Some("a")), p("c", "Deep", Some("b")), p("d", "Other", None)];
        let got = select_projects(&["Finance".into()], &all).unwrap();
        assert_eq!(got.into_iter().collect::<Vec<_>>(), vec!["a", "b", "c"]);
        let err = select_projects(&["finance".into()], &all).unwrap_err().to_string();
        assert!(err.contains("\"finance\" is not on the site") && err.contains("Finance, Monthly"), "{err}");
    }
}
