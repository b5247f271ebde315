//! A Power BI tenant read incrementally (see `crate::sync` for when): which workspaces to scan
//! again, which to take from the last extraction's cache (`powerbi_workspace_cache`), and the
//! cache rows this extraction leaves for the next.
//!
//! Every workspace id is listed as in a full extract (`workspaces/modified` without
//! `modifiedSince`: which exist now); then `workspaces/modified?modifiedSince=T`, T the start of
//! the extraction this one builds on, says which of them changed (shared/reference/powerbi.md
//! section 2). A workspace is scanned again when it is new (not in the cache) or modified since
//! T; the others are reused as cached: the workspace of its scan result, the data source
//! instances its datasets and dataflows use, what `groups/{id}/reports` answered (reference
//! section 7) and the `datasets/{id}/parameters` answers of its datasets (section 11). A
//! workspace no longer listed is removed. The cache is rewritten whole from what the
//! extraction assembled, so it and the rows are what a full extract of the same state writes.
//!
//! `modifiedSince` must be 30 minutes to 30 days ago (section 2: 400 `InvalidRequest`
//! otherwise): a last start younger than that asks from 31 minutes ago (a wider window, so
//! nothing is missed); one older, or a replay (no recording answers a `modifiedSince` of the
//! run's clock), makes the extract full, and it says why. Which changes mark a
//! workspace modified is not spelled out in the reference (UNVERIFIED: a dataset parameter's
//! current value, a gateway's connection details): the periodic full sync
//! (`full_sync_every_days`) bounds how long such a change can go unseen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{params, Transaction};
use serde::{Deserialize, Serialize};

use super::model::{DatasourceInstance, Parameter, Workspace};
use crate::clock::Instant;
use crate::config::PowerBiTenant;
use crate::sync::{Decision, State};

/// The youngest `modifiedSince` sent: the service's 30 minutes (reference section 2), plus a
/// minute for a service clock behind ours.
const MIN_AGE_SECS: i64 = 31 * 60;
/// The oldest: the service's 30 days less an hour, for the time between the run's start and
/// the call, and a service clock ahead of ours.
const MAX_AGE_SECS: i64 = 30 * 86_400 - 3600;

/// Where a tenant's extraction finds what the last one left, and whether it may build on it.
#[derive(Clone, Copy)]
pub(crate) struct SyncFrom<'a> {
    pub(crate) db: &'a Path,
    pub(crate) settings: &'a crate::config::SyncSettings,
    /// Replaying recordings: a `modifiedSince` of the run's clock has no recording.
    pub(crate) replaying: bool,
}

/// The settings that decide what a tenant's extraction reads; a change makes the next one full.
pub(crate) fn settings_hash(t: &PowerBiTenant) -> String {
    let settings = serde_json::json!({
        "tenant_id": t.tenant_id,
        "api_url": t.api_url,
        "workspaces": t.workspaces,
    });
    crate::config::hex_xxh3(settings.to_string().as_bytes())
}

/// `crate::sync::decide`, then full unless the last extraction's start is a `modifiedSince`
/// the service takes.
pub(crate) fn decide(
    from: SyncFrom<'_>,
    integration: &str,
    settings_hash: &str,
) -> Result<Decision> {
    let d = crate::sync::decide(from.db, integration, settings_hash, from.settings)?;
    if !d.incremental {
        return Ok(d);
    }
    let full = |why: String| Decision {
        incremental: false,
        why,
        full_sync_at: d.now,
        base_extracted_at: None,
        now: d.now,
    };
    if from.replaying {
        return Ok(full("replaying recordings: workspaces/modified?modifiedSince names the last extraction's start, which no recording answers".into()));
    }
    let Some(since) = d.base_extracted_at else {
        return Ok(full(
            "the last extraction did not record when it started".into(),
        ));
    };
    let age = d.now.0 - since.0;
    if (0..MIN_AGE_SECS).contains(&age) {
        // Too recent for the service: ask from 31 minutes ago instead, a wider window that
        // still holds every change since the last start (a few workspaces more are scanned).
        let since = Instant(d.now.0 - MIN_AGE_SECS);
        return Ok(Decision {
            why: format!("{}; scanning the workspaces modified since {} (the last extraction started {} minutes before, under the 30 minutes workspaces/modified takes)", d.why, since.rfc3339(), age / 60),
            base_extracted_at: Some(since),
            ..d
        });
    }
    if !(MIN_AGE_SECS..=MAX_AGE_SECS).contains(&age) {
        let ago = if age.abs() < 2 * 86_400 {
            format!("{} minutes", age / 60)
        } else {
            format!("{} days", age / 86_400)
        };
        return Ok(full(format!(
            "the last extraction started at {} ({ago} before); workspaces/modified takes a modifiedSince 30 minutes to 30 days ago only",
            since.rfc3339()
        )));
    }
    Ok(Decision {
        why: format!(
            "{}; scanning the workspaces modified since {}",
            d.why,
            since.rfc3339()
        ),
        ..d
    })
}

/// What a call answered, as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Answer<T> {
    NotAsked,
    /// The principal may not read it (the client's `Ok(None)`).
    NotAllowed,
    Got(T),
}

/// One workspace as an extraction assembled it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) workspace: Workspace,
    pub(crate) instances: Vec<DatasourceInstance>,
    pub(crate) misconfigured: Vec<DatasourceInstance>,
    /// `groups/{id}/reports`: report id → `webUrl`, those worth writing.
    pub(crate) reports: Answer<BTreeMap<String, String>>,
    /// `datasets/{id}/parameters` of its datasets, by dataset id.
    pub(crate) parameters: BTreeMap<String, Answer<Vec<Parameter>>>,
    /// Taken from the cache, not scanned.
    pub(crate) reused: bool,
}

/// A cache row's `details` (as written: borrowed).
#[derive(Serialize)]
struct CachedOut<'a> {
    workspace: &'a Workspace,
    datasource_instances: &'a [DatasourceInstance],
    misconfigured_datasource_instances: &'a [DatasourceInstance],
    reports: &'a Answer<BTreeMap<String, String>>,
    parameters: &'a BTreeMap<String, Answer<Vec<Parameter>>>,
}

/// A cache row's `details` (as read).
#[derive(Deserialize)]
struct CachedIn {
    workspace: Workspace,
    datasource_instances: Vec<DatasourceInstance>,
    misconfigured_datasource_instances: Vec<DatasourceInstance>,
    reports: Answer<BTreeMap<String, String>>,
    parameters: BTreeMap<String, Answer<Vec<Parameter>>>,
}

/// The last extraction's cache of one tenant: workspace id → `details`, unread.
pub(crate) type Base = BTreeMap<String, String>;

/// The cache rows of `integration` in `db`.
pub(crate) fn load(db: &Path, integration: &str) -> Result<Base> {
    let conn = crate::db::reader(db)?;
    let mut st =
        conn.prepare("SELECT id, details FROM powerbi_workspace_cache WHERE integration = ?1")?;
    let rows = st.query_map([integration], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<rusqlite::Result<Base>>()
        .with_context(|| format!("database {}: table powerbi_workspace_cache", db.display()))
}

/// The cached workspace `id`, if the cache holds it and it reads; else why it must be scanned.
pub(crate) fn reuse(base: &Base, id: &str) -> Result<Entry, String> {
    let Some(details) = base.get(id) else {
        return Err("new since the last extraction".into());
    };
    let c: CachedIn = serde_json::from_str(details)
        .map_err(|e| format!("its cached scan result could not be read ({e})"))?;
    Ok(Entry {
        workspace: c.workspace,
        instances: c.datasource_instances,
        misconfigured: c.misconfigured_datasource_instances,
        reports: c.reports,
        parameters: c.parameters,
        reused: true,
    })
}

/// The cache row of `e`.
pub(crate) fn row(e: &Entry) -> Result<(String, String)> {
    let out = CachedOut {
        workspace: &e.workspace,
        datasource_instances: &e.instances,
        misconfigured_datasource_instances: &e.misconfigured,
        reports: &e.reports,
        parameters: &e.parameters,
    };
    Ok((e.workspace.id.clone(), serde_json::to_string(&out)?))
}

/// Splits one scan result into its workspaces, each with the data source instances its
/// datasets and dataflows use (reference section 4: `datasourceUsages[].datasourceInstanceId`
/// = `datasourceId`). An instance no usage names goes with every workspace of the scan.
pub(crate) fn split(result: super::model::ScanResult) -> Vec<Entry> {
    let super::model::ScanResult {
        workspaces,
        datasource_instances: instances,
        misconfigured_datasource_instances: misconfigured,
    } = result;
    let uses = |w: &Workspace| -> BTreeSet<String> {
        let datasets = w.datasets.iter().flat_map(|d| {
            d.datasource_usages
                .iter()
                .chain(&d.misconfigured_datasource_usages)
        });
        let mut ids: BTreeSet<String> = datasets
            .filter_map(|u| u.datasource_instance_id.clone())
            .collect();
        for f in &w.dataflows {
            for u in f["datasourceUsages"].as_array().into_iter().flatten() {
                if let Some(i) = u["datasourceInstanceId"].as_str() {
                    ids.insert(i.to_string());
                }
            }
        }
        ids
    };
    let used: Vec<BTreeSet<String>> = workspaces.iter().map(uses).collect();
    let anyone: BTreeSet<&String> = used.iter().flatten().collect();
    let pick = |list: &[DatasourceInstance], mine: &BTreeSet<String>| -> Vec<DatasourceInstance> {
        let mut out: Vec<DatasourceInstance> = list
            .iter()
            .filter(|i| match &i.datasource_id {
                Some(id) => mine.contains(id) || !anyone.contains(id),
                None => true,
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| a.datasource_id.cmp(&b.datasource_id));
        out
    };
    let mut out = Vec::new();
    for (mut w, mine) in workspaces.into_iter().zip(&used) {
        w.reports.sort_by(|a, b| a.id.cmp(&b.id));
        w.datasets.sort_by(|a, b| a.id.cmp(&b.id));
        out.push(Entry {
            workspace: w,
            instances: pick(&instances, mine),
            misconfigured: pick(&misconfigured, mine),
            reports: Answer::NotAsked,
            parameters: BTreeMap::new(),
            reused: false,
        });
    }
    out
}

/// What a tenant's extraction leaves for the next one, written with its rows.
pub(crate) struct Outcome {
    pub(crate) decision: Decision,
    pub(crate) settings_hash: String,
    pub(crate) states: Vec<State>,
    /// (workspace id, details JSON) of every workspace assembled.
    pub(crate) rows: Vec<(String, String)>,
}

/// When an incremental extraction asks what changed: the start of the one it builds on.
pub(crate) fn since(d: &Decision) -> Option<Instant> {
    d.incremental.then_some(d.base_extracted_at).flatten()
}

/// Writes `o` for `integration`: `sync_bases`, `sync_state`, and its cache, replaced whole.
pub(crate) fn write(
    tx: &Transaction,
    integration: &str,
    o: &Outcome,
    complete: bool,
) -> Result<()> {
    crate::sync::write(
        tx,
        integration,
        &o.decision,
        &o.settings_hash,
        complete,
        &o.states,
    )?;
    tx.execute(
        "DELETE FROM powerbi_workspace_cache WHERE integration = ?1",
        [integration],
    )?;
    let mut st = tx.prepare_cached("INSERT OR REPLACE INTO powerbi_workspace_cache (integration, id, details) VALUES (?1, ?2, ?3)")?;
    for (id, details) in &o.rows {
        st.execute(params![integration, id, details])?;
    }
    Ok(())
}

/// Deletes the cache and the keyed rows of tenants no longer in the config (their
/// `powerbi_tenants` rows are gone).
pub(crate) fn forget_removed(tx: &Transaction) -> Result<()> {
    let tables = std::iter::once("powerbi_workspace_cache").chain(super::store::KEYED);
    crate::integrations::delete_gone(tx, tables, "powerbi_tenants")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_go_with_the_workspaces_that_use_them() {
        let r: super::super::model::ScanResult = serde_json::from_value(serde_json::json!({
            "workspaces": [
                {"id": "w2", "datasets": [{"id": "d2", "datasourceUsages": [{"datasourceInstanceId": "i2"}]}]},
                {"id": "w1", "datasets": [{"id": "d1", "datasourceUsages": [{"datasourceInstanceId": "i1"}]}],
                 "dataflows": [{"objectId": "f", "datasourceUsages": [{"datasourceInstanceId": "i3"}]}]},
            ],
            "datasourceInstances": [{"datasourceId": "i3"}, {"datasourceId": "i1"}, {"datasourceId": "i2"}, {"datasourceId": "nobody"}],
        }))
        .unwrap();
        let got: Vec<(String, Vec<String>)> = split(r)
            .into_iter()
            .map(|e| {
                (
                    e.workspace.id,
                    e.instances
                        .into_iter()
                        .map(|i| i.datasource_id.unwrap())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("w2".to_string(), vec!["i2".to_string(), "nobody".into()]),
                ("w1".into(), vec!["i1".into(), "i3".into(), "nobody".into()])
            ]
        );
    }

    #[test]
    fn a_cache_row_reads_back_as_it_was_written() {
        let w: Workspace = serde_json::from_value(serde_json::json!({"id": "w", "name": "Sales", "type": "Workspace", "state": "Active",
            "reports": [{"id": "r", "name": "R", "datasetId": "d", "appId": null}],
            "datasets": [{"id": "d", "tables": [{"name": "T", "source": [{"expression": "let x = 1 in x"}]}], "expressions": [{"name": "P", "expression": "\"v\" meta [IsParameterQuery=true]"}]}]}))
        .unwrap();
        let mut params = BTreeMap::new();
        params.insert("d".to_string(), Answer::NotAllowed);
        let e = Entry {
            workspace: w,
            instances: vec![],
            misconfigured: vec![],
            reports: Answer::Got(BTreeMap::new()),
            parameters: params,
            reused: false,
        };
        let (id, details) = row(&e).unwrap();
        let base: Base = [(id.clone(), details.clone())].into_iter().collect();
        let back = reuse(&base, &id).unwrap();
        assert!(back.reused);
        assert_eq!(row(&back).unwrap().1, details);
        assert_eq!(
            reuse(&base, "other").unwrap_err(),
            "new since the last extraction"
        );
    }
}
