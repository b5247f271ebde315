//! Stage `extract`: manifest.json into `dbt_*`, and every configured BI integration into its
//! own raw tables and the neutral `bi_*` rows (`seam`).
//!
//! Reads: the manifest file, dbt's run_results.json when it is there, each integration's
//! source (an API live, recorded or replayed; a file). Writes: dbt_manifest, dbt_nodes (with
//! the graph: each node's parents and tests), dbt_run_results (emptied without the file),
//! dbt_exposures, bi_instances, bi_assets,
//! bi_relations, each integration's raw tables, extract_warnings, raw_responses.
//! All reading happens before the one write transaction, so a failure anywhere (a bad manifest,
//! a wrong credential, an unreachable server) leaves the previous rows untouched.

use std::path::Path;

use anyhow::Result;
use rusqlite::{params, Connection, Transaction};

use crate::config::Config;
use crate::db::{count_rows, StageReport};
use crate::http::HttpMode;
use crate::integrations;
use crate::log;
use crate::manifest::{self, Manifest};
use crate::rows::{self, Extracted};
use crate::run_results::{self, RunResults};
use crate::seam::{Extraction, Source};

/// Everything extract read, before anything is written.
pub(crate) struct Read {
    /// The manifest without its nodes and sources, which moved into `rows`.
    manifest: Manifest,
    xxh3: String,
    /// dbt.run_results and its hash, when the file is there (for `dbt_run_results`).
    run_results: Option<(RunResults, String)>,
    sources: Vec<Box<dyn Extraction>>,
    /// An integration came back incomplete (and `allow_partial` did not excuse it).
    pub(crate) incomplete: bool,
}

/// Runs the stage and hands back the rows it wrote that later stages read.
pub(crate) fn run(
    conn: &mut Connection,
    config: &Config,
    mode: &HttpMode,
) -> Result<(StageReport, Extracted)> {
    let (read, x) = read(config, mode)?;
    let report = write(conn, config, &read, &x)?;
    Ok((report, x))
}

/// Reads the manifest and every integration, at the same time: the parse keeps one core busy
/// and the integrations' requests and responses the other. Credentials and the manifest file
/// are checked before any request is sent; a manifest that fails to parse stops the
/// integrations' requests (`Source::cancel`) and its error is the one reported. Memory stays low because
/// the parse gives back the pages of the file it has read (`manifest::Cursor`).
///
/// Hands back what `write` needs, and beside it the rows the later stages read, sorted as
/// their tables' keys. The rows are made from the manifest's nodes and the integrations' rows,
/// which move into them: they exist once in memory, not twice.
pub(crate) fn read(config: &Config, mode: &HttpMode) -> Result<(Read, Extracted)> {
    let clients = integrations::sources(config, mode)?;
    let bytes = manifest::read(&config.manifest, config.max_manifest_mb)?;
    // Small beside the manifest, and checked before any request is sent, as the manifest is.
    let run_results = run_results::load_if_there(&config.run_results)?
        .map(|(rr, bytes)| (rr, crate::config::hex_xxh3(&bytes)));
    if run_results.is_none() {
        log::debug(&format!(
            "No dbt run results at {} (dbt.run_results): health will be Unknown until `dbt build` writes them",
            config.run_results.display()
        ));
    }
    let (parsed, sites) = std::thread::scope(|scope| {
        let parse = scope.spawn(|| {
            let parsed = manifest::parse_hashed(&config.manifest, &bytes);
            if parsed.is_err() {
                clients.iter().for_each(|c| c.cancel());
            }
            parsed.map(|(mut manifest, xxh3)| {
                let counts = (manifest.nodes.len(), manifest.sources.len());
                let mut rows = dbt_rows(&mut manifest);
                rows.sort();
                link_graph(&mut rows.nodes, std::mem::take(&mut manifest.tests));
                (manifest, xxh3, counts, rows)
            })
        });
        // Each half's rows are made and sorted on the thread that read it. In replay the
        // integrations are done first, so theirs are made while the manifest is still parsed.
        let sites = extract_all(&clients).map(|(mut sites, incomplete)| {
            let mut rows = bi_rows(&mut sites);
            rows.sort();
            (sites, incomplete, rows)
        });
        (
            parse
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            sites,
        )
    });
    drop(bytes);
    let (manifest, xxh3, (models, sources), dbt) = parsed?;
    log::info(&format!(
        "Read manifest {} ({models} models, seeds and snapshots; {sources} sources)",
        config.manifest.display(),
    ));
    let (sources, incomplete, bi) = sites?;
    // Each half was sorted on its thread; together they are in order.
    let rows = Extracted {
        instances: bi.instances,
        assets: bi.assets,
        relations: bi.relations,
        ..dbt
    };
    Ok((
        Read {
            manifest,
            xxh3,
            run_results,
            sources,
            incomplete,
        },
        rows,
    ))
}

/// Every integration in config order; whether any is incomplete without `allow_partial`.
fn extract_all(sources: &[Box<dyn Source + '_>]) -> Result<(Vec<Box<dyn Extraction>>, bool)> {
    let mut out = Vec::new();
    let mut incomplete = false;
    for source in sources {
        log::info(&format!("Extracting {}", source.describe()));
        let x = source.extract()?;
        log::info(&format!(
            "  {}{}",
            x.summary(),
            if x.complete() {
                ""
            } else {
                " — INCOMPLETE, see table extract_warnings"
            }
        ));
        if !x.complete() && source.allow_partial() {
            log::warn(&format!(
                "{}: incomplete, allowed by allow_partial",
                source.describe()
            ));
        }
        incomplete |= !x.complete() && !source.allow_partial();
        out.push(x);
    }
    Ok((out, incomplete))
}

/// The dbt half of the rows. The manifest's nodes and sources move into them.
fn dbt_rows(manifest: &mut Manifest) -> Extracted {
    Extracted {
        project_name: manifest.metadata.project_name.clone().unwrap_or_default(),
        adapter_type: manifest.metadata.adapter_type.clone(),
        nodes: node_rows(manifest),
        hand_written_exposures: manifest
            .exposures
            .values()
            .filter(|e| e.autoexpose_luid().is_none())
            .map(|e| e.name.clone())
            .collect(),
        ..Extracted::default()
    }
}

/// The integrations' half of the rows, moved out of their extractions.
fn bi_rows(sources: &mut [Box<dyn Extraction>]) -> Extracted {
    let mut out = Extracted::default();
    for x in sources {
        let rows = x.take_rows();
        out.instances.extend(rows.instances);
        out.assets.extend(rows.assets);
        out.relations.extend(rows.relations);
    }
    out
}

/// Replaces extract's rows with `read` and `x`, in one transaction.
pub(crate) fn write(
    conn: &mut Connection,
    config: &Config,
    read: &Read,
    x: &Extracted,
) -> Result<StageReport> {
    let mut report = StageReport {
        incomplete: read.incomplete,
        ..Default::default()
    };
    report.input(&config.manifest, &read.xxh3);
    if let Some((_, xxh3)) = &read.run_results {
        report.input(&config.run_results, xxh3);
    }
    let tx = conn.transaction()?;
    // Where extract's transaction spends its time (`-v`; BENCHMARKS.md's "What bounds `run`").
    let t = std::time::Instant::now();
    write_manifest(&tx, &config.manifest, &read.manifest, &read.xxh3, &x.nodes)?;
    run_results::store(&tx, read.run_results.as_ref().map(|(rr, _)| rr))?;
    let t1 = t.elapsed().as_secs_f64();
    integrations::clear_raw(&tx)?;
    for source in &read.sources {
        source.store(&tx)?;
    }
    let t2 = t.elapsed().as_secs_f64();
    rows::replace_bi_rows(&tx, x)?;
    integrations::forget_removed(&tx)?;
    let t3 = t.elapsed().as_secs_f64();
    log::debug(&format!(
        "extract's writes: dbt {t1:.3}s, integrations' own tables {:.3}s, bi_* rows {:.3}s",
        t2 - t1,
        t3 - t2
    ));
    // The big tables' counts are known (their rows are unique in memory and every stage
    // replaces its tables whole); counting them again would scan them.
    report.row_counts = count_rows(
        &tx,
        &["dbt_exposures", "dbt_run_results", "extract_warnings"],
    )?;
    for (table, n) in [
        ("dbt_nodes", x.nodes.len()),
        ("bi_assets", x.assets.len()),
        ("bi_relations", x.relations.len()),
    ] {
        report.row_counts.insert(table.to_string(), n as i64);
    }
    crate::fault::point("extract.commit");
    tx.commit()?;
    Ok(report)
}

fn write_manifest(
    tx: &Transaction,
    path: &Path,
    m: &Manifest,
    xxh3: &str,
    nodes: &[rows::Node],
) -> Result<()> {
    // dbt_nodes is replaced by `rows::insert_nodes`, writing only the nodes that changed.
    for t in ["dbt_manifest", "dbt_exposures"] {
        tx.execute(&format!("DELETE FROM {t}"), [])?;
    }
    let project = m.metadata.project_name.clone().unwrap_or_default();
    tx.execute(
        "INSERT INTO dbt_manifest (path, xxh3, schema_version, dbt_version, project_name, adapter_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            path.display().to_string(),
            xxh3,
            m.metadata.dbt_schema_version,
            m.metadata.dbt_version,
            project,
            m.metadata.adapter_type
        ],
    )?;
    rows::insert_nodes(tx, nodes)?;
    let mut ex = tx.prepare_cached(
        "INSERT INTO dbt_exposures (unique_id, name, package_name, original_file_path, autoexpose_luid) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (id, e) in &m.exposures {
        ex.execute(params![
            id,
            e.name,
            e.package_name,
            e.original_file_path,
            e.autoexpose_luid()
        ])?;
    }
    Ok(())
}

/// The `dbt_nodes` rows: enabled relation nodes, then sources, then disabled entries (nodes
/// or sources alike), in that order, so that sorting keeps the first of a `unique_id` as
/// `INSERT OR IGNORE` did. The manifest's nodes, sources and disabled entries move into them.
fn node_rows(m: &mut Manifest) -> Vec<rows::Node> {
    let mut out = Vec::with_capacity(m.nodes.len() + m.sources.len());
    for (id, n) in std::mem::take(&mut m.nodes) {
        out.extend(node_row(id, n, true));
    }
    for (id, s) in std::mem::take(&mut m.sources) {
        out.push(rows::Node {
            unique_id: id,
            resource_type: "source".into(),
            package_name: s.package_name,
            identifier: s.identifier.unwrap_or_else(|| s.name.clone()),
            name: s.name,
            source_name: Some(s.source_name),
            version: None,
            latest_version: None,
            database: s.database,
            schema: s.schema,
            relation_name: s.relation_name,
            materialized: None,
            access: None,
            enabled: s.config.enabled.unwrap_or(true),
            depends_on: Vec::new(),
            tests: Vec::new(),
        });
    }
    for (key, list) in std::mem::take(&mut m.disabled) {
        for mut n in list {
            let id = n.unique_id.take().unwrap_or_else(|| key.clone());
            out.extend(node_row(id, n, false));
        }
    }
    out
}

/// The row of a model, seed or snapshot, or of a source found under `disabled`; `None` for
/// other resource types. The physical name is `alias` for nodes and `identifier` for sources;
/// models without an `access` are protected, dbt's default.
fn node_row(id: String, n: manifest::Node, enabled: bool) -> Option<rows::Node> {
    let is_source = n.resource_type == "source";
    if !is_source && !matches!(n.resource_type.as_str(), "model" | "seed" | "snapshot") {
        return None;
    }
    let physical = if is_source { n.identifier } else { n.alias };
    let is_model = n.resource_type == "model";
    Some(rows::Node {
        unique_id: id,
        package_name: n.package_name,
        identifier: physical.unwrap_or_else(|| n.name.clone()),
        name: n.name,
        source_name: n.source_name,
        version: n.version.as_ref().map(|v| v.to_text()),
        latest_version: n.latest_version.as_ref().map(|v| v.to_text()),
        database: n.database,
        schema: n.schema,
        relation_name: n.relation_name,
        materialized: n.config.materialized,
        access: n
            .access
            .or_else(|| is_model.then(|| "protected".to_string())),
        enabled: enabled && n.config.enabled.unwrap_or(true),
        resource_type: n.resource_type,
        depends_on: n.depends_on.nodes,
        tests: Vec::new(),
    })
}

/// The graph on the `dbt_nodes` rows (`nodes`, sorted by unique_id and unique, as
/// `Extracted::sort` leaves them): each row's `depends_on` keeps only parents that are rows
/// themselves (not macros' nodes, analyses, or what the manifest lacks), sorted and unique;
/// each row's `tests` gets the test nodes whose `depends_on.nodes` name it (a relationships
/// test is on both its models), sorted and unique. Lookups are binary searches in the sorted
/// rows, so no index is built beside them.
fn link_graph(nodes: &mut [rows::Node], tests: Vec<manifest::TestOn>) {
    let find = |nodes: &[rows::Node], id: &str| {
        nodes
            .binary_search_by(|n| n.unique_id.as_str().cmp(id))
            .ok()
    };
    for i in 0..nodes.len() {
        let mut parents = std::mem::take(&mut nodes[i].depends_on);
        parents.retain(|p| find(nodes, p).is_some());
        parents.sort_unstable();
        parents.dedup();
        nodes[i].depends_on = parents;
    }
    for test in tests {
        for parent in &test.nodes {
            if let Some(i) = find(nodes, parent) {
                nodes[i].tests.push(test.unique_id.clone());
            }
        }
    }
    for n in nodes.iter_mut().filter(|n| !n.tests.is_empty()) {
        n.tests.sort_unstable();
        n.tests.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, depends_on: &[&str]) -> rows::Node {
        rows::Node {
            unique_id: id.into(),
            resource_type: id.split('.').next().unwrap().into(),
            package_name: "p".into(),
            name: id.rsplit('.').next().unwrap().into(),
            source_name: None,
            version: None,
            latest_version: None,
            database: None,
            schema: None,
            identifier: "x".into(),
            relation_name: None,
            materialized: None,
            access: None,
            enabled: true,
            depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
            tests: Vec::new(),
        }
    }

    /// Parents that are rows, sorted and once; tests on every row they name, sorted and once.
    #[test]
    fn the_graph_keeps_rows_only_sorted() {
        let mut nodes = vec![
            node(
                "model.p.a",
                &["source.p.s.t", "model.p.b", "analysis.p.gone", "model.p.b"],
            ),
            node("model.p.b", &["seed.p.c"]),
            node("seed.p.c", &[]),
            node("source.p.s.t", &[]),
        ];
        let tests = vec![
            manifest::TestOn {
                unique_id: "test.p.z".into(),
                nodes: vec!["model.p.a".into(), "model.p.b".into()],
            },
            manifest::TestOn {
                unique_id: "test.p.y".into(),
                nodes: vec![
                    "model.p.a".into(),
                    "model.p.a".into(),
                    "model.p.missing".into(),
                ],
            },
        ];
        link_graph(&mut nodes, tests);
        let graph: Vec<(&str, Vec<&str>, Vec<&str>)> = nodes
            .iter()
            .map(|n| {
                (
                    n.unique_id.as_str(),
                    n.depends_on.iter().map(String::as_str).collect(),
                    n.tests.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            graph,
            [
                (
                    "model.p.a",
                    vec!["model.p.b", "source.p.s.t"],
                    vec!["test.p.y", "test.p.z"]
                ),
                ("model.p.b", vec!["seed.p.c"], vec!["test.p.z"]),
                ("seed.p.c", vec![], vec![]),
                ("source.p.s.t", vec![], vec![]),
            ]
        );
    }
}
