//! Writes one site's extraction into the `tableau_*` tables, `extract_warnings` and
//! `raw_responses`. Runs inside the extract stage's transaction.

use anyhow::Result;
use rusqlite::{params, Transaction};

use super::extract::SiteExtract;
use super::model::{Table, Workbook};

/// Deletes every Tableau row, for all integrations: extract replaces its rows wholesale.
pub(crate) fn clear(tx: &Transaction) -> Result<()> {
    for t in [
        "tableau_sites",
        "tableau_projects",
        "tableau_workbooks",
        "tableau_datasources",
        "tableau_workbook_datasources",
        "tableau_tables",
        "tableau_custom_sql",
        "extract_warnings",
        "raw_responses",
    ] {
        tx.execute(&format!("DELETE FROM {t}"), [])?;
    }
    Ok(())
}

/// The browser URL of a workbook: `{server}/#/site/{content}/workbooks/{vizportal id}`, the
/// Default site without the `/site/…` part. The numeric id comes from `vizportalUrlId`, or
/// else from the tail of `uri` (`sites/1/workbooks/42`).
pub(crate) fn workbook_url(server: &str, content_url: &str, w: &Workbook) -> Option<String> {
    let id = w
        .vizportal_url_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| w.uri.as_deref().and_then(|u| u.rsplit('/').next()).map(str::to_string))?;
    let site_part = if content_url.is_empty() { String::new() } else { format!("/site/{content_url}") };
    Some(format!("{}/#{site_part}/workbooks/{id}", server.trim_end_matches('/')))
}

pub(crate) fn write(tx: &Transaction, x: &SiteExtract) -> Result<()> {
    let i = &x.integration;
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
            x.workbooks_total.map(|t| t as i64),
            x.complete
        ],
    )?;
    {
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO tableau_projects (integration, luid, name, parent_luid, selected) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for p in &x.projects {
            st.execute(params![i, p.luid, p.name, p.parent_luid, x.selected_projects.contains(&p.luid)])?;
        }
    }
    let mut wb = tx.prepare_cached(
        "INSERT INTO tableau_workbooks (integration, id, luid, name, project_luid, project_name, description, owner_name, owner_email,
            owner_username, uri, vizportal_url_id, url, created_at, updated_at, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    let mut ds = tx.prepare_cached(
        "INSERT INTO tableau_datasources (integration, id, kind, luid, name, has_extracts, workbook_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (integration, id) DO NOTHING",
    )?;
    let mut table_st = tx.prepare_cached(INSERT_TABLE)?;
    let mut link = tx.prepare_cached(
        "INSERT OR IGNORE INTO tableau_workbook_datasources (integration, workbook_id, embedded_id, published_id) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for w in &x.workbooks {
        let Some(luid) = w.luid.as_deref().filter(|l| !l.is_empty()) else {
            crate::log::warn(&format!("tableau {i}: workbook {} has no luid; skipped", w.id));
            continue;
        };
        let owner = w.owner.clone().unwrap_or_default();
        let mut tags: Vec<String> = w.tags.iter().flatten().filter_map(|t| t.name.clone()).collect();
        tags.sort();
        tags.dedup();
        wb.execute(params![
            i,
            w.id,
            luid,
            w.name.clone().unwrap_or_default(),
            w.project_luid,
            w.project_name,
            w.description,
            owner.name,
            owner.email,
            owner.username,
            w.uri,
            w.vizportal_url_id,
            workbook_url(&x.server_url, &x.content_url, w),
            w.created_at,
            w.updated_at,
            serde_json::to_string(&tags)?
        ])?;
        for e in w.embedded_datasources.iter().flatten() {
            ds.execute(params![i, e.id, "embedded", Option::<String>::None, e.name, e.has_extracts, w.id])?;
            for t in e.upstream_tables.iter().flatten() {
                insert_table(&mut table_st, i, &w.id, "embedded", &e.id, t)?;
            }
            for p in e.upstream_datasources.iter().flatten() {
                ds.execute(params![i, p.id, "published", p.luid, p.name, p.has_extracts, Option::<String>::None])?;
                link.execute(params![i, w.id, e.id, p.id])?;
                for t in p.upstream_tables.iter().flatten() {
                    insert_table(&mut table_st, i, &w.id, "published", &p.id, t)?;
                }
            }
        }
    }
    let mut sql = tx.prepare_cached(
        "INSERT INTO tableau_custom_sql (integration, id, name, query, is_unsupported, connection_type, database_name, workbook_ids)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let known: std::collections::BTreeSet<&str> = x.workbooks.iter().map(|w| w.id.as_str()).collect();
    for c in &x.custom_sql {
        let mut wbs: Vec<&str> =
            c.downstream_workbooks.iter().flatten().map(|w| w.id.as_str()).filter(|id| known.contains(id)).collect();
        wbs.sort_unstable();
        wbs.dedup();
        let tables = c.tables.clone().unwrap_or_default();
        let unsupported = c.is_unsupported_custom_sql.unwrap_or(false) || tables.is_empty();
        sql.execute(params![
            i,
            c.id,
            c.name,
            c.query,
            unsupported,
            c.connection_type,
            c.database.as_ref().and_then(|d| d.name.clone()),
            serde_json::to_string(&wbs)?
        ])?;
        for w in &wbs {
            if tables.is_empty() {
                // A placeholder row, so match can say why this workbook's SQL gave no lineage.
                insert_table(&mut table_st, i, w, "custom_sql", &c.id, &Table::default())?;
            }
            for t in &tables {
                insert_table(&mut table_st, i, w, "custom_sql", &c.id, t)?;
            }
        }
    }
    let mut warn = tx.prepare_cached(
        "INSERT INTO extract_warnings (integration, query, page, code, severity, message, action) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for w in &x.warnings {
        warn.execute(params![i, w.query, w.page, w.code, w.severity, w.message, w.action])?;
    }
    let mut raw = tx.prepare_cached(
        "INSERT INTO raw_responses (integration, seq, method, path, status, bytes, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (n, r) in x.responses.iter().enumerate() {
        raw.execute(params![i, n as i64 + 1, r.method, r.path, r.status, r.bytes as i64, r.body])?;
    }
    Ok(())
}

const INSERT_TABLE: &str = "INSERT OR IGNORE INTO tableau_tables (integration, workbook_id, via, via_id, table_id, table_luid, name,
        full_name, schema, database_name, database_type, connection_type)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

fn insert_table(st: &mut rusqlite::Statement, integration: &str, workbook_id: &str, via: &str, via_id: &str, t: &Table) -> Result<()> {
    let db = t.database.as_ref();
    st.execute(params![
        integration,
        workbook_id,
        via,
        via_id,
        t.id,
        t.luid,
        t.name,
        t.full_name,
        t.schema,
        db.and_then(|d| d.name.as_deref()),
        db.and_then(|d| d.typename.as_deref()),
        t.connection_type.as_deref().or(db.and_then(|d| d.connection_type.as_deref()))
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_for_named_and_default_sites() {
        let w = Workbook { vizportal_url_id: Some("42".into()), ..Default::default() };
        assert_eq!(workbook_url("https://t.example.com/", "acme", &w).unwrap(), "https://t.example.com/#/site/acme/workbooks/42");
        assert_eq!(workbook_url("https://t.example.com", "", &w).unwrap(), "https://t.example.com/#/workbooks/42");
        let w = Workbook { uri: Some("sites/1/workbooks/77".into()), ..Default::default() };
        assert_eq!(workbook_url("https://t", "a", &w).unwrap(), "https://t/#/site/a/workbooks/77");
    }
}
