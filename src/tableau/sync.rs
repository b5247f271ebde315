//! A Tableau site read incrementally (see `crate::sync` for when): which workbooks and custom
//! SQL queries to fetch again, which to take from the last extraction's cache, and the cache
//! rows this extraction leaves for the next (`tableau_workbook_cache`,
//! `tableau_custom_sql_cache`).
//!
//! A workbook is fetched again when it is new, its `updatedAt` or project changed, or a
//! published data source it read changed (its `updatedAt` in `publishedDatasourcesConnection`,
//! ../shared/reference/tableau_metadata.graphql: `PublishedDatasource.updatedAt`): a
//! published data source's tables reach a workbook's details without the workbook changing.
//! A custom SQL query is fetched again when it is new, the workbooks downstream of it changed,
//! or one of them was fetched again (its SQL lives in a data source that changed with it).
//! Everything else is reused as it was fetched; whatever was fetched is assembled with it in id
//! order, so the rows that follow are the rows a full extraction of the same state makes.
//!
//! Which changes move `updatedAt` is not documented on the Metadata API reference pages we
//! could find (UNVERIFIED: an owner change, a table renamed under a connection): the periodic
//! full sync (`full_sync_every_days`) bounds how long such a change can go unseen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{params, Transaction};
use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::model::{CustomSql, Workbook};
use crate::config::TableauSite;
use crate::sync::{Action, Decision, State};

/// A workbook as the id listing gives it (`workbook_ids.graphql`).
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listed {
    pub(crate) id: String,
    pub(crate) updated_at: Option<String>,
    pub(crate) project_luid: Option<String>,
}

/// A published data source's version (`datasource_versions.graphql`).
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Version {
    pub(crate) id: String,
    pub(crate) updated_at: Option<String>,
}

/// A custom SQL query as the id listing gives it (`custom_sql_ids.graphql`).
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SqlListed {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) downstream_workbooks: Option<Vec<IdOnly>>,
}

#[derive(Deserialize, Debug, Clone)]
pub(crate) struct IdOnly {
    pub(crate) id: String,
}

impl SqlListed {
    fn workbooks(&self) -> Vec<String> {
        sorted(
            self.downstream_workbooks
                .iter()
                .flatten()
                .map(|w| w.id.clone()),
        )
    }
}

fn sorted(ids: impl Iterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = ids.collect();
    set.into_iter().collect()
}

/// The last extraction's cache of one site.
#[derive(Default)]
pub(crate) struct Base {
    workbooks: FxHashMap<String, CachedWorkbook>,
    custom_sql: FxHashMap<String, CachedSql>,
}

struct CachedWorkbook {
    updated_at: Option<String>,
    datasources: Vec<(String, Option<String>)>,
    details: Vec<u8>,
}

struct CachedSql {
    workbooks: Vec<String>,
    details: Vec<u8>,
}

/// A node's details as the cache keeps them: postcard, serde's compact binary encoding, not
/// JSON. The cache is written by every first run and read back by every night; at 20k
/// workbooks JSON made it 144 MB, written in the extract stage's transaction, and its
/// serialization and first-touched memory cost a fresh L `run` 0.5 s of 3.5 s. postcard has no
/// field names and no escaping. Its bytes follow the field order of `model`'s structs, so a
/// cache written by another build may not decode: a change of tool version makes the next
/// sync full anyway (`crate::sync`), and a row that does not decode is fetched again, with
/// that reason in `sync_state`.
pub(crate) fn encode<T: serde::Serialize>(node: &T) -> Result<Vec<u8>> {
    Ok(postcard::to_allocvec(node)?)
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// A cache row's details column, whichever storage class it has.
fn details_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    Ok(r.get_ref(i)?
        .as_bytes()
        .map(<[u8]>::to_vec)
        .unwrap_or_default())
}

/// The settings that decide what a site's extraction reads; a change makes the next one full.
pub(crate) fn settings_hash(site: &TableauSite) -> String {
    let settings = serde_json::json!({
        "server_url": site.server_url,
        "site": site.site,
        "projects": site.projects,
        "include_personal_spaces": site.include_personal_spaces,
    });
    crate::config::hex_xxh3(settings.to_string().as_bytes())
}

/// The cache rows of `integration` in `db`.
pub(crate) fn load(db: &Path, integration: &str) -> Result<Base> {
    let conn = crate::db::reader(db)?;
    let tx = conn.unchecked_transaction()?;
    let mut base = Base::default();
    let mut st = tx.prepare("SELECT id, updated_at, datasources, details FROM tableau_workbook_cache WHERE integration = ?1")?;
    let mut rows = st.query([integration])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let datasources: String = r.get(2)?;
        let datasources = serde_json::from_str(&datasources).with_context(|| {
            format!(
                "database {}: tableau_workbook_cache.datasources of workbook {id:?}",
                db.display()
            )
        })?;
        base.workbooks.insert(
            id,
            CachedWorkbook {
                updated_at: r.get(1)?,
                datasources,
                details: details_of(r, 3)?,
            },
        );
    }
    drop(rows);
    let mut st = tx.prepare(
        "SELECT id, workbooks, details FROM tableau_custom_sql_cache WHERE integration = ?1",
    )?;
    let mut rows = st.query([integration])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let workbooks: String = r.get(1)?;
        let workbooks = serde_json::from_str(&workbooks).with_context(|| {
            format!(
                "database {}: tableau_custom_sql_cache.workbooks of {id:?}",
                db.display()
            )
        })?;
        base.custom_sql.insert(
            id,
            CachedSql {
                workbooks,
                details: details_of(r, 2)?,
            },
        );
    }
    Ok(base)
}

/// What the listings say of the site now.
pub(crate) struct Now<'a> {
    pub(crate) workbooks: &'a [Listed],
    pub(crate) datasources: &'a FxHashMap<String, Option<String>>,
}

/// The workbooks to fetch, the ones reused (details parsed from the cache), and a state row
/// for every listed or removed workbook. Without a base, every listed workbook is fetched.
pub(crate) fn plan_workbooks(
    base: Option<&Base>,
    now: &Now<'_>,
    full_why: &str,
) -> (Vec<String>, Vec<Workbook>, Vec<State>) {
    let mut fetch = Vec::new();
    let mut reused = Vec::new();
    let mut states = Vec::new();
    let state = |id: &str, action, reason: String| State {
        kind: "workbook",
        id: id.to_string(),
        action,
        reason,
    };
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
    for l in now.workbooks {
        let Some(base) = base else {
            fetch.push(l.id.clone());
            states.push(state(
                &l.id,
                Action::Fetched,
                format!("full sync: {full_why}"),
            ));
            continue;
        };
        let why = match base.workbooks.get(&l.id) {
            None => Err("new since the last extraction".to_string()),
            Some(_) if l.updated_at.is_none() => {
                Err("the listing gave no updatedAt to compare".to_string())
            }
            Some(c) if c.updated_at != l.updated_at => Err(format!(
                "changed: updatedAt {} → {}",
                shown(&c.updated_at),
                shown(&l.updated_at)
            )),
            Some(c) => match c
                .datasources
                .iter()
                .find(|(id, v)| now.datasources.get(id) != Some(v))
            {
                Some((id, v)) => Err(match now.datasources.get(id) {
                    Some(n) => format!(
                        "published data source {id} changed: updatedAt {} → {}",
                        shown(v),
                        shown(n)
                    ),
                    None => format!("published data source {id} is no longer listed"),
                }),
                None => match decode::<Workbook>(&c.details) {
                    Err(e) => Err(format!("its cached details could not be read ({e})")),
                    Ok(w) if w.project_luid != l.project_luid => Err(format!(
                        "moved: project {} → {}",
                        shown(&w.project_luid),
                        shown(&l.project_luid)
                    )),
                    Ok(w) => Ok((
                        w,
                        format!("unchanged since updatedAt {}", shown(&l.updated_at)),
                    )),
                },
            },
        };
        match why {
            Ok((w, reason)) => {
                reused.push(w);
                states.push(state(&l.id, Action::Reused, reason));
            }
            Err(reason) => {
                fetch.push(l.id.clone());
                states.push(state(&l.id, Action::Fetched, reason));
            }
        }
    }
    if let Some(base) = base {
        let listed: BTreeSet<&str> = now.workbooks.iter().map(|l| l.id.as_str()).collect();
        let mut gone: Vec<&String> = base
            .workbooks
            .keys()
            .filter(|id| !listed.contains(id.as_str()))
            .collect();
        gone.sort();
        for id in gone {
            states.push(state(id, Action::Removed, "no longer listed (deleted, moved out of the selected projects, or hidden from the PAT's user)".into()));
        }
    }
    (fetch, reused, states)
}

/// The custom SQL queries to fetch, the ones reused, and their state rows; `fetched` are the
/// workbooks whose details were fetched this time.
pub(crate) fn plan_custom_sql(
    base: &Base,
    listed: &[SqlListed],
    fetched: &BTreeSet<&str>,
) -> (Vec<String>, Vec<CustomSql>, Vec<State>) {
    let mut fetch = Vec::new();
    let mut reused = Vec::new();
    let mut states = Vec::new();
    let state = |id: &str, action, reason: String| State {
        kind: "custom_sql",
        id: id.to_string(),
        action,
        reason,
    };
    for l in listed {
        let workbooks = l.workbooks();
        let why = match base.custom_sql.get(&l.id) {
            None => Err("new since the last extraction".to_string()),
            Some(c) if c.workbooks != workbooks => {
                Err("the workbooks downstream of it changed".to_string())
            }
            Some(_) if workbooks.iter().any(|w| fetched.contains(w.as_str())) => Err(format!(
                "workbook {} downstream of it was fetched again",
                workbooks
                    .iter()
                    .find(|w| fetched.contains(w.as_str()))
                    .map_or("?", String::as_str)
            )),
            Some(c) => match decode::<CustomSql>(&c.details) {
                Err(e) => Err(format!("its cached details could not be read ({e})")),
                Ok(q) => Ok(q),
            },
        };
        match why {
            Ok(q) => {
                reused.push(q);
                states.push(state(
                    &l.id,
                    Action::Reused,
                    "unchanged: none of the workbooks downstream of it changed".into(),
                ));
            }
            Err(reason) => {
                fetch.push(l.id.clone());
                states.push(state(&l.id, Action::Fetched, reason));
            }
        }
    }
    let listed: BTreeSet<&str> = listed.iter().map(|l| l.id.as_str()).collect();
    let mut gone: Vec<&String> = base
        .custom_sql
        .keys()
        .filter(|id| !listed.contains(id.as_str()))
        .collect();
    gone.sort();
    for id in gone {
        states.push(state(id, Action::Removed, "no longer listed".into()));
    }
    (fetch, reused, states)
}

/// What a site's extraction leaves for the next one, written with its rows.
pub(crate) struct Outcome {
    pub(crate) decision: Decision,
    pub(crate) settings_hash: String,
    pub(crate) states: Vec<State>,
    /// Cache rows of what was fetched: (id, updated_at, datasources JSON, details `encode`d).
    pub(crate) workbooks: Vec<(String, Option<String>, String, Vec<u8>)>,
    /// (id, workbooks JSON, details `encode`d).
    pub(crate) custom_sql: Vec<(String, String, Vec<u8>)>,
}

/// The cache row of a fetched workbook: what it was fetched from.
pub(crate) fn workbook_row(
    w: &Workbook,
    listed: &FxHashMap<&str, &Listed>,
    versions: &FxHashMap<String, Option<String>>,
) -> Result<(String, Option<String>, String, Vec<u8>)> {
    let datasources: BTreeMap<&str, Option<String>> = w
        .embedded_datasources
        .iter()
        .flatten()
        .flat_map(|e| e.upstream_datasources.iter().flatten())
        .map(|p| (p.id.as_str(), versions.get(&p.id).cloned().flatten()))
        .collect();
    let datasources: Vec<(&str, Option<String>)> = datasources.into_iter().collect();
    let updated_at = listed.get(w.id.as_str()).and_then(|l| l.updated_at.clone());
    Ok((
        w.id.clone(),
        updated_at,
        serde_json::to_string(&datasources)?,
        encode(w)?,
    ))
}

/// The cache row of a fetched custom SQL query.
pub(crate) fn custom_sql_row(q: &CustomSql) -> Result<(String, String, Vec<u8>)> {
    let workbooks = sorted(
        q.downstream_workbooks
            .iter()
            .flatten()
            .map(|w| w.id.clone()),
    );
    Ok((q.id.clone(), serde_json::to_string(&workbooks)?, encode(q)?))
}

/// Writes `o` for `integration`: a full sync replaces its cache; an incremental one replaces
/// the rows of what it fetched and deletes those of what was removed, leaving the reused ones
/// as they are.
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
    if o.decision.incremental {
        let mut del_w = tx.prepare_cached(
            "DELETE FROM tableau_workbook_cache WHERE integration = ?1 AND id = ?2",
        )?;
        let mut del_q = tx.prepare_cached(
            "DELETE FROM tableau_custom_sql_cache WHERE integration = ?1 AND id = ?2",
        )?;
        for s in o.states.iter().filter(|s| s.action != Action::Reused) {
            match s.kind {
                "workbook" => del_w.execute(params![integration, s.id])?,
                _ => del_q.execute(params![integration, s.id])?,
            };
        }
    } else {
        tx.execute(
            "DELETE FROM tableau_workbook_cache WHERE integration = ?1",
            [integration],
        )?;
        tx.execute(
            "DELETE FROM tableau_custom_sql_cache WHERE integration = ?1",
            [integration],
        )?;
    }
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO tableau_workbook_cache (integration, id, updated_at, datasources, details) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (id, updated_at, datasources, details) in &o.workbooks {
        st.execute(params![integration, id, updated_at, datasources, details])?;
    }
    let mut st = tx.prepare_cached("INSERT OR REPLACE INTO tableau_custom_sql_cache (integration, id, workbooks, details) VALUES (?1, ?2, ?3, ?4)")?;
    for (id, workbooks, details) in &o.custom_sql {
        st.execute(params![integration, id, workbooks, details])?;
    }
    Ok(())
}

/// Deletes the cache of sites no longer in the config (their `tableau_sites` rows are gone).
pub(crate) fn forget_removed(tx: &Transaction) -> Result<()> {
    let caches = ["tableau_workbook_cache", "tableau_custom_sql_cache"];
    let tables = caches.into_iter().chain(super::store::KEYED);
    crate::integrations::delete_gone(tx, tables, "tableau_sites")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str, updated_at: Option<&str>, project: &str) -> Listed {
        Listed {
            id: id.into(),
            updated_at: updated_at.map(str::to_string),
            project_luid: Some(project.into()),
        }
    }

    fn cached(
        updated_at: &str,
        project: &str,
        datasources: &[(&str, Option<&str>)],
    ) -> CachedWorkbook {
        let w = Workbook {
            id: "x".into(),
            project_luid: Some(project.into()),
            ..Default::default()
        };
        CachedWorkbook {
            updated_at: Some(updated_at.into()),
            datasources: datasources
                .iter()
                .map(|(d, v)| (d.to_string(), v.map(str::to_string)))
                .collect(),
            details: encode(&w).unwrap(),
        }
    }

    #[test]
    fn each_workbook_is_fetched_reused_or_removed_with_its_reason() {
        let mut base = Base::default();
        for (id, c) in [
            ("same", cached("t1", "p", &[("ds1", Some("v1"))])),
            ("edited", cached("t1", "p", &[])),
            ("moved", cached("t1", "p", &[])),
            ("ds_changed", cached("t1", "p", &[("ds1", Some("v0"))])),
            ("ds_gone", cached("t1", "p", &[("ds9", Some("v1"))])),
            ("no_version", cached("t1", "p", &[])),
            ("gone", cached("t1", "p", &[])),
        ] {
            base.workbooks.insert(id.into(), c);
        }
        base.workbooks.insert(
            "broken".into(),
            CachedWorkbook {
                updated_at: Some("t1".into()),
                datasources: vec![],
                details: b"{".to_vec(),
            },
        );
        let workbooks = vec![
            listed("broken", Some("t1"), "p"),
            listed("ds_changed", Some("t1"), "p"),
            listed("ds_gone", Some("t1"), "p"),
            listed("edited", Some("t2"), "p"),
            listed("moved", Some("t1"), "q"),
            listed("new", Some("t1"), "p"),
            listed("no_version", None, "p"),
            listed("same", Some("t1"), "p"),
        ];
        let datasources: FxHashMap<String, Option<String>> =
            [("ds1".to_string(), Some("v1".to_string()))]
                .into_iter()
                .collect();
        let (fetch, reused, states) = plan_workbooks(
            Some(&base),
            &Now {
                workbooks: &workbooks,
                datasources: &datasources,
            },
            "unused",
        );
        assert_eq!(
            fetch,
            [
                "broken",
                "ds_changed",
                "ds_gone",
                "edited",
                "moved",
                "new",
                "no_version"
            ]
        );
        assert_eq!(reused.len(), 1);
        let reasons: Vec<String> = states
            .iter()
            .map(|s| format!("{} {:?} {}", s.id, s.action, s.reason))
            .collect();
        insta::assert_debug_snapshot!(reasons, @r#"
        [
            "broken Fetched its cached details could not be read (Hit the end of buffer, expected more data)",
            "ds_changed Fetched published data source ds1 changed: updatedAt v0 → v1",
            "ds_gone Fetched published data source ds9 is no longer listed",
            "edited Fetched changed: updatedAt t1 → t2",
            "moved Fetched moved: project p → q",
            "new Fetched new since the last extraction",
            "no_version Fetched the listing gave no updatedAt to compare",
            "same Reused unchanged since updatedAt t1",
            "gone Removed no longer listed (deleted, moved out of the selected projects, or hidden from the PAT's user)",
        ]
        "#);
        // Without a base, everything listed is fetched, for the full sync's reason.
        let (fetch, reused, states) = plan_workbooks(
            None,
            &Now {
                workbooks: &workbooks,
                datasources: &datasources,
            },
            "--full",
        );
        assert_eq!((fetch.len(), reused.len()), (8, 0));
        assert!(states
            .iter()
            .all(|s| s.action == Action::Fetched && s.reason == "full sync: --full"));
    }

    #[test]
    fn custom_sql_follows_the_workbooks_downstream_of_it() {
        let q = |id: &str, wbs: &[&str]| CustomSql {
            id: id.into(),
            downstream_workbooks: Some(
                wbs.iter()
                    .map(|w| super::super::model::WorkbookRef {
                        id: w.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        let mut base = Base::default();
        for c in [
            q("same", &["a"]),
            q("refetched", &["b"]),
            q("regrouped", &["a"]),
            q("gone", &["a"]),
        ] {
            let (id, workbooks, details) = custom_sql_row(&c).unwrap();
            base.custom_sql.insert(
                id,
                CachedSql {
                    workbooks: serde_json::from_str(&workbooks).unwrap(),
                    details,
                },
            );
        }
        let l = |id: &str, wbs: &[&str]| SqlListed {
            id: id.into(),
            downstream_workbooks: Some(wbs.iter().map(|w| IdOnly { id: w.to_string() }).collect()),
        };
        let listed = [
            l("new", &["a"]),
            l("refetched", &["b"]),
            l("regrouped", &["c", "a"]),
            l("same", &["a"]),
        ];
        let fetched: BTreeSet<&str> = ["b"].into_iter().collect();
        let (fetch, reused, states) = plan_custom_sql(&base, &listed, &fetched);
        assert_eq!(fetch, ["new", "refetched", "regrouped"]);
        assert_eq!(
            reused.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
            ["same"]
        );
        let removed: Vec<&str> = states
            .iter()
            .filter(|s| s.action == Action::Removed)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(removed, ["gone"]);
        assert_eq!(
            states[1].reason,
            "workbook b downstream of it was fetched again"
        );
        assert_eq!(states[2].reason, "the workbooks downstream of it changed");
    }
}
