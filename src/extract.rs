//! Stage `extract`: manifest.json into `dbt_*`, and every configured Tableau site into
//! `tableau_*`.
//!
//! Reads: the manifest file, the Tableau APIs (live, recorded or replayed).
//! Writes: dbt_manifest, dbt_nodes, dbt_exposures, tableau_*, extract_warnings, raw_responses.
//! All reading happens before the one write transaction, so a failure anywhere (a bad manifest,
//! a wrong PAT, an unreachable server) leaves the previous rows untouched.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, Transaction};

use crate::config::{hex_sha256, Config};
use crate::db::{count_rows, StageReport};
use crate::http::HttpMode;
use crate::manifest::{self, Manifest};
use crate::tableau;
use crate::log;

pub(crate) fn run(conn: &mut Connection, config: &Config, mode: &HttpMode) -> Result<StageReport> {
    let mut report = StageReport::default();
    let bytes = manifest::read(&config.manifest)?;
    // Hashing a several-hundred-MB file costs about as much as parsing it: do both at once.
    let (manifest, sha) = rayon::join(|| manifest::parse(&config.manifest, &bytes), || hex_sha256(&bytes));
    let manifest = manifest?;
    report.inputs.insert(config.manifest.display().to_string(), sha.clone());
    drop(bytes);
    log::info(&format!(
        "Read manifest {} ({} models, seeds and snapshots; {} sources)",
        config.manifest.display(),
        manifest.nodes.len(),
        manifest.sources.len()
    ));

    let mut sites = Vec::new();
    for site in &config.tableau {
        let client = tableau::connect(site, mode)?;
        log::info(&format!("Extracting Tableau {} (site {:?} on {})", site.name, site.site, site.server_url));
        let x = tableau::extract::extract_site(site, &client)
            .with_context(|| format!("tableau {:?} (site {:?} on {})", site.name, site.site, site.server_url))?;
        log::info(&format!(
            "  {} workbooks, {} custom SQL queries, {} requests ({} at most in flight){}",
            x.workbooks.len(),
            x.custom_sql.len(),
            client.requests_sent(),
            client.max_in_flight(),
            if x.complete { "" } else { " — INCOMPLETE, see table extract_warnings" }
        ));
        if !x.complete && site.allow_partial {
            log::warn(&format!("tableau {}: incomplete, allowed by allow_partial", site.name));
        }
        report.incomplete |= !x.complete && !site.allow_partial;
        sites.push(x);
    }

    let tx = conn.transaction()?;
    write_manifest(&tx, &config.manifest, &manifest, &sha)?;
    tableau::store::clear(&tx)?;
    for x in &sites {
        tableau::store::write(&tx, x)?;
    }
    report.row_counts = count_rows(
        &tx,
        &["dbt_nodes", "dbt_exposures", "tableau_workbooks", "tableau_tables", "tableau_custom_sql", "extract_warnings"],
    )?;
    tx.commit()?;
    Ok(report)
}

fn write_manifest(
    tx: &Transaction,
    path: &Path,
    m: &Manifest,
    sha256: &str,
) -> Result<()> {
    for t in ["dbt_manifest", "dbt_nodes", "dbt_exposures"] {
        tx.execute(&format!("DELETE FROM {t}"), [])?;
    }
    let project = m.metadata.project_name.clone().unwrap_or_default();
    tx.execute(
        "INSERT INTO dbt_manifest (path, sha256, schema_version, dbt_version, project_name, adapter_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            path.display().to_string(),
            sha256,
            m.metadata.dbt_schema_version,
            m.metadata.dbt_version,
            project,
            m.metadata.adapter_type
        ],
    )?;
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO dbt_nodes (unique_id, resource_type, package_name, name, source_name, version, latest_version, database,
            schema, identifier, relation_name, materialized, access, enabled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    // Enabled relation nodes, then sources, then disabled entries (nodes or sources alike).
    for (id, n) in &m.nodes {
        insert_node(&mut st, id, n, true)?;
    }
    for (id, s) in &m.sources {
        st.execute(params![
            id,
            "source",
            s.package_name,
            s.name,
            s.source_name,
            Option::<String>::None,
            Option::<String>::None,
            s.database,
            s.schema,
            s.identifier.clone().unwrap_or_else(|| s.name.clone()),
            s.relation_name,
            Option::<String>::None,
            Option::<String>::None,
            s.config.enabled.unwrap_or(true)
        ])?;
    }
    for (key, list) in &m.disabled {
        for n in list {
            insert_node(&mut st, n.unique_id.as_deref().unwrap_or(key), n, false)?;
        }
    }
    let mut ex = tx.prepare_cached(
        "INSERT INTO dbt_exposures (unique_id, name, package_name, original_file_path, autoexpose_luid) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (id, e) in &m.exposures {
        ex.execute(params![id, e.name, e.package_name, e.original_file_path, e.autoexpose_luid()])?;
    }
    Ok(())
}

/// One `dbt_nodes` row for a model, seed or snapshot, or a source found under `disabled`;
/// other resource types are skipped. The physical name is `alias` for nodes and `identifier`
/// for sources; models without an `access` are protected, dbt's default.
fn insert_node(st: &mut rusqlite::CachedStatement, id: &str, n: &manifest::Node, enabled: bool) -> Result<()> {
    let is_source = n.resource_type == "source";
    if !is_source && !matches!(n.resource_type.as_str(), "model" | "seed" | "snapshot") {
        return Ok(());
    }
    let physical = if is_source { &n.identifier } else { &n.alias };
    st.execute(params![
        id,
        n.resource_type,
        n.package_name,
        n.name,
        n.source_name,
        n.version.as_ref().map(|v| v.to_text()),
        n.latest_version.as_ref().map(|v| v.to_text()),
        n.database,
        n.schema,
        physical.clone().unwrap_or_else(|| n.name.clone()),
        n.relation_name,
        n.config.materialized,
        n.access.clone().or_else(|| (n.resource_type == "model").then(|| "protected".to_string())),
        enabled && n.config.enabled.unwrap_or(true)
    ])?;
    Ok(())
}
