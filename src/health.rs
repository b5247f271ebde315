//! Each exposure's health, in dbt Explorer's words (Healthy, Caution, Degraded, Unknown), from
//! what the SQLite file knows: the last dbt run results of its upstream nodes and of the tests
//! on them, whether its integration's last extraction was complete, and how its last refresh
//! went. Read-only: nothing here is written, and the same rows give the same health.
//!
//! dbt's criteria for an exposure (docs.getdbt.com/docs/explore/data-health-signals, tab
//! "Exposures"; dbt-labs/docs.getdbt.com `website/docs/docs/explore/data-health-signals.md`):
//! Healthy when the underlying sources are fresh, the underlying models built successfully and
//! their tests pass; Caution when a source's freshness check warned, an underlying model was
//! skipped, or a model's tests warned; Degraded when a source's freshness check errored, an
//! underlying model did not build, or a model's tests errored; Unknown when no job run
//! processed the resource. "Underlying" is read here as every node upstream of the exposure
//! (its dependencies and their parents, transitively over `dbt_nodes.depends_on`), and "a
//! job run" as the one run_results.json extract mirrored into `dbt_run_results`.
//!
//! Beyond dbt's list, two things only autoexpose knows: a partial extraction of the
//! exposure's integration (its dependencies may be missing: Caution) and a failed last refresh
//! of its extracts or datasets (the dashboard shows older data than the build made: Caution, as
//! a stale source is). Statuses dbt's page does not name are read the closest way: a test that
//! was skipped or a model built only in part (`partial success`) is Caution.
//!
//! A known problem outranks not knowing: Degraded, then Caution, then Unknown, then Healthy;
//! every reason is kept, worst first, each a sentence naming the nodes or the cause.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::view::{ExposureView, GraphNode, Health, HealthLevel};

/// How many names a reason lists before "and N more".
const NAMES_SHOWN: usize = 5;

/// Fills `health` of every exposure from the database's run results, graph, instances and
/// (already loaded) refresh events.
pub(crate) fn assess(conn: &Connection, exposures: &mut [ExposureView]) -> Result<()> {
    use rayon::prelude::*;
    let facts = Facts::load(conn)?;
    let dense = Dense::of(&facts);
    exposures
        .par_iter_mut()
        .for_each(|e| e.health = facts.judge_with(&dense, e));
    Ok(())
}

/// The last dbt invocation, as `dbt_run_results` holds it.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RunResults {
    /// `dbt <command>` that wrote it, when it said.
    pub(crate) command: Option<String>,
    pub(crate) generated_at: Option<String>,
    /// unique_id → status, for every node and test it ran.
    pub(crate) status: BTreeMap<String, String>,
}

/// What health is judged from, beside each exposure's own rows.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// None: `dbt_run_results` is empty (no run_results.json at the last extract).
    pub(crate) run: Option<RunResults>,
    pub(crate) graph: BTreeMap<String, GraphNode>,
    /// integration → whether its last extraction was complete (bi_instances.complete).
    pub(crate) complete: BTreeMap<String, bool>,
}

impl Facts {
    pub(crate) fn load(conn: &Connection) -> Result<Facts> {
        let mut st = conn.prepare("SELECT unique_id, status, command, generated_at FROM dbt_run_results ORDER BY unique_id")?;
        let mut rows = st.query([])?;
        let mut run: Option<RunResults> = None;
        while let Some(r) = rows.next()? {
            let run = run.get_or_insert_with(RunResults::default);
            run.status.insert(r.get(0)?, r.get(1)?);
            if run.command.is_none() {
                run.command = r.get(2)?;
            }
            if run.generated_at.is_none() {
                run.generated_at = r.get(3)?;
            }
        }
        drop(rows);
        drop(st);
        let mut st =
            conn.prepare("SELECT integration, complete FROM bi_instances ORDER BY integration")?;
        let complete = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?
            .collect::<rusqlite::Result<_>>()
            .context("reading table bi_instances")?;
        Ok(Facts {
            run,
            graph: crate::view::load_graph(conn)?,
            complete,
        })
    }

    /// Every node upstream of `e`: its dependencies and, transitively, their parents — as
    /// positions in `dense`, and the dependencies the graph does not hold, by unique_id.
    fn upstream<'a>(&self, dense: &Dense<'a>, e: &'a ExposureView) -> Upstream<'a> {
        let mut seen = vec![false; dense.keys.len()];
        let mut up = Upstream::default();
        let mut todo: Vec<u32> = Vec::new();
        for d in &e.dependencies {
            match dense.pos.get(d.unique_id.as_str()) {
                Some(&i) => todo.push(i),
                None => {
                    up.outside.insert(d.unique_id.as_str());
                }
            }
        }
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut seen[i as usize], true) {
                continue;
            }
            up.nodes.push(i);
            todo.extend(
                dense.parents[i as usize]
                    .iter()
                    .copied()
                    .filter(|p| !seen[*p as usize]),
            );
            up.outside
                .extend(dense.foreign_parents[i as usize].iter().copied());
        }
        up
    }

    #[cfg(test)]
    pub(crate) fn judge(&self, e: &ExposureView) -> Health {
        self.judge_with(&Dense::of(self), e)
    }

    /// `e`'s health; `dense` is `Dense::of(self)`, built once for every exposure.
    pub(crate) fn judge_with(&self, dense: &Dense<'_>, e: &ExposureView) -> Health {
        let mut found: Vec<(HealthLevel, String)> = Vec::new();
        let upstream = self.upstream(dense, e);
        found.extend(self.run_findings(dense, &upstream));
        if self.complete.get(&e.integration) == Some(&false) {
            found.push((
                HealthLevel::Caution,
                format!(
                    "The last extraction of integration {} was partial (see table extract_warnings): some of the tables it reads may be missing from its dependencies.",
                    e.integration
                ),
            ));
        }
        found.extend(refresh_findings(e));
        let rank = |l: HealthLevel| match l {
            HealthLevel::Degraded => 0,
            HealthLevel::Caution => 1,
            HealthLevel::Unknown => 2,
            HealthLevel::Healthy => 3,
        };
        // Stable: within a level, the order the rules found them in.
        found.sort_by_key(|(l, _)| rank(*l));
        let level = found.first().map_or(HealthLevel::Healthy, |(l, _)| *l);
        Health {
            level,
            reasons: found.into_iter().map(|(_, r)| r).collect(),
        }
    }

    /// What the last dbt run says of the nodes upstream and the tests on them.
    fn run_findings(
        &self,
        dense: &Dense<'_>,
        upstream: &Upstream<'_>,
    ) -> Vec<(HealthLevel, String)> {
        let Some(run) = &self.run else {
            return vec![(
                HealthLevel::Unknown,
                "No dbt run results: the last extract found no run_results.json (dbt.run_results); run `dbt build` before `autoexpose run`.".into(),
            )];
        };
        if upstream.is_empty() {
            return vec![(
                HealthLevel::Unknown,
                "It depends on no dbt node, so no dbt run speaks for it.".into(),
            )];
        }
        let invocation = match (&run.command, &run.generated_at) {
            (Some(c), Some(t)) => format!("the last dbt run (`dbt {c}`, {t})"),
            (Some(c), None) => format!("the last dbt run (`dbt {c}`)"),
            (None, Some(t)) => format!("the last dbt run ({t})"),
            (None, None) => "the last dbt run".into(),
        };
        // (level, what happened) → names, by resource type.
        let mut groups: BTreeMap<(u8, &str, &str), BTreeSet<String>> = BTreeMap::new();
        let mut processed = 0usize;
        let mut tests_run = 0usize;
        let mut test_seen = vec![false; dense.tests.len()];
        let mut tests: Vec<u32> = Vec::new();
        let in_graph = upstream.nodes.iter().map(|&i| {
            (
                dense.keys[i as usize],
                Some(i as usize),
                dense.status[i as usize],
            )
        });
        let outside = upstream
            .outside
            .iter()
            .map(|&id| (id, None, run.status.get(id).map(String::as_str)));
        for (id, at, status) in in_graph.chain(outside) {
            let node = at.map(|i| dense.nodes[i]);
            if let Some(i) = at {
                for &t in &dense.node_tests[i] {
                    if !std::mem::replace(&mut test_seen[t as usize], true) {
                        tests.push(t);
                    }
                }
            }
            let Some(status) = status else { continue };
            processed += 1;
            let kind = node.map_or_else(
                || id.split('.').next().unwrap_or("node"),
                |n| n.resource_type.as_str(),
            );
            let is_source = kind == "source";
            let what = match status {
                "error" | "runtime error" if is_source => Some((0, "failed its freshness check")),
                "error" | "runtime error" | "fail" => Some((0, "failed to build")),
                "warn" if is_source => Some((1, "warned on its freshness check")),
                "warn" => Some((1, "warned")),
                "skipped" => Some((1, "was skipped")),
                "partial success" => Some((1, "built only in part (partial success)")),
                _ => None,
            };
            if let Some((order, what)) = what {
                groups
                    .entry((order, what, kind_key(kind)))
                    .or_default()
                    .insert(display_name(id, node));
            }
        }
        for &t in &tests {
            let (t, status) = dense.tests[t as usize];
            let Some(status) = status else { continue };
            tests_run += 1;
            let what = match status {
                "fail" | "error" | "runtime error" => Some((0, "failed")),
                "warn" => Some((1, "warned")),
                "skipped" => Some((1, "was skipped")),
                _ => None,
            };
            if let Some((order, what)) = what {
                groups
                    .entry((order, what, "test"))
                    .or_default()
                    .insert(test_name(t));
            }
        }
        if processed == 0 && tests_run == 0 {
            return vec![(
                HealthLevel::Unknown,
                format!(
                    "{} processed none of its {} upstream nodes.",
                    capitalised(&invocation),
                    upstream.len()
                ),
            )];
        }
        if groups.is_empty() {
            return vec![(
                HealthLevel::Healthy,
                format!(
                    "{} built {processed} of its {} upstream nodes and ran {tests_run} {} on them: none failed, warned or was skipped.",
                    capitalised(&invocation),
                    upstream.len(),
                    if tests_run == 1 { "test" } else { "tests" }
                ),
            )];
        }
        groups
            .into_iter()
            .map(|((order, what, kind), names)| {
                let level = if order == 0 {
                    HealthLevel::Degraded
                } else {
                    HealthLevel::Caution
                };
                let n = names.len();
                let subject = if kind == "test" {
                    format!("{n} {} on upstream nodes", plural(kind, n))
                } else {
                    format!("{n} upstream {}", plural(kind, n))
                };
                let verb = if n == 1 {
                    what.to_string()
                } else {
                    plural_verb(what)
                };
                (
                    level,
                    format!("{subject} {verb} in {invocation}: {}.", listed(&names)),
                )
            })
            .collect()
    }
}

/// The graph and the run's statuses by position rather than by unique_id, built once per
/// `assess`: at L (20,000 exposures, each with thousands of upstream nodes) the walk by
/// string lookups took 30 s of a 34 s `report`.
pub(crate) struct Dense<'a> {
    keys: Vec<&'a str>,
    nodes: Vec<&'a GraphNode>,
    pos: std::collections::HashMap<&'a str, u32>,
    parents: Vec<Vec<u32>>,
    /// Each node's parents that are not nodes of the graph, by unique_id (the walk counts
    /// them as `outside`, as it does dependencies the graph does not hold).
    foreign_parents: Vec<Vec<&'a str>>,
    /// The last run's status of each node.
    status: Vec<Option<&'a str>>,
    /// Each node's tests, as positions in `tests`.
    node_tests: Vec<Vec<u32>>,
    /// Every test some node has, with its status in the last run.
    tests: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> Dense<'a> {
    pub(crate) fn of(facts: &'a Facts) -> Dense<'a> {
        let status_of = |id: &str| {
            facts
                .run
                .as_ref()
                .and_then(|r| r.status.get(id))
                .map(String::as_str)
        };
        let keys: Vec<&str> = facts.graph.keys().map(String::as_str).collect();
        let nodes: Vec<&GraphNode> = facts.graph.values().collect();
        let pos: std::collections::HashMap<&str, u32> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u32))
            .collect();
        let parents = nodes
            .iter()
            .map(|n| {
                n.parents
                    .iter()
                    .filter_map(|p| pos.get(p.as_str()).copied())
                    .collect()
            })
            .collect();
        let foreign_parents = nodes
            .iter()
            .map(|n| {
                n.parents
                    .iter()
                    .map(String::as_str)
                    .filter(|p| !pos.contains_key(p))
                    .collect()
            })
            .collect();
        let mut test_pos: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        let mut tests: Vec<(&str, Option<&str>)> = Vec::new();
        let node_tests = nodes
            .iter()
            .map(|n| {
                n.tests
                    .iter()
                    .map(|t| {
                        *test_pos.entry(t.as_str()).or_insert_with(|| {
                            tests.push((t.as_str(), status_of(t)));
                            (tests.len() - 1) as u32
                        })
                    })
                    .collect()
            })
            .collect();
        let status = keys.iter().map(|k| status_of(k)).collect();
        Dense {
            keys,
            nodes,
            pos,
            parents,
            foreign_parents,
            status,
            node_tests,
            tests,
        }
    }
}

/// The nodes upstream of one exposure (see `Facts::upstream`).
#[derive(Default)]
struct Upstream<'a> {
    nodes: Vec<u32>,
    outside: BTreeSet<&'a str>,
}

impl Upstream<'_> {
    fn len(&self) -> usize {
        self.nodes.len() + self.outside.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The newest refresh run that was not a dry run: failed requests and failed jobs.
fn refresh_findings(e: &ExposureView) -> Vec<(HealthLevel, String)> {
    let Some(newest) = e
        .refreshes
        .iter()
        .filter(|r| !r.dry_run)
        .map(|r| r.run_id)
        .max()
    else {
        return Vec::new();
    };
    let events: Vec<_> = e
        .refreshes
        .iter()
        .filter(|r| !r.dry_run && r.run_id == newest)
        .collect();
    let target = |r: &crate::view::RefreshEvent| match (&r.target_kind, &r.target_name) {
        (Some(k), Some(n)) => format!("{k} {n}"),
        (Some(k), None) => k.clone(),
        (None, _) => "its refresh".into(),
    };
    let mut out = Vec::new();
    let failed: BTreeSet<String> = events
        .iter()
        .filter(|r| r.decision == "failed")
        .map(|r| match &r.reason {
            Some(reason) => format!("{} ({reason})", target(r)),
            None => target(r),
        })
        .collect();
    if !failed.is_empty() {
        out.push((
            HealthLevel::Caution,
            format!(
                "The last refresh (run {newest}) failed to start for {}: the dashboard may show data older than the last build.",
                listed(&failed)
            ),
        ));
    }
    let jobs: BTreeSet<String> = events
        .iter()
        .filter_map(|r| match r.job_status.as_deref() {
            Some(s @ ("failed" | "cancelled" | "timeout" | "poll_failed")) => {
                Some(format!("{} ({s})", target(r)))
            }
            _ => None,
        })
        .collect();
    if !jobs.is_empty() {
        out.push((
            HealthLevel::Caution,
            format!(
                "The refresh jobs of the last refresh (run {newest}) did not succeed for {}: the dashboard may show data older than the last build.",
                listed(&jobs)
            ),
        ));
    }
    out
}

/// The resource types reasons name, as their own words (anything else is a "node").
fn kind_key(kind: &str) -> &'static str {
    match kind {
        "model" => "model",
        "seed" => "seed",
        "snapshot" => "snapshot",
        "source" => "source",
        _ => "node",
    }
}

fn plural(kind: &str, n: usize) -> String {
    if n == 1 {
        kind.to_string()
    } else {
        format!("{kind}s")
    }
}

/// "failed to build" → "failed to build"; "was skipped" → "were skipped"; "warned on its …" →
/// "warned on their …".
fn plural_verb(what: &str) -> String {
    what.replacen("was ", "were ", 1)
        .replacen(" its ", " their ", 1)
}

/// A node as a reason names it: a source as `source_name.name`, anything else by its name.
fn display_name(id: &str, node: Option<&GraphNode>) -> String {
    match node {
        Some(n) => match &n.source_name {
            Some(s) if n.resource_type == "source" => format!("{s}.{}", n.name),
            _ => n.name.clone(),
        },
        None => id.to_string(),
    }
}

/// `test.<package>.<name>.<hash>` → `<name>`; anything else whole.
fn test_name(id: &str) -> String {
    let parts: Vec<&str> = id.split('.').collect();
    match parts.as_slice() {
        ["test", _, name, ..] => (*name).to_string(),
        _ => id.to_string(),
    }
}

/// "a, b, c" or "a, b, c, d, e and 12 more".
fn listed(names: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = names.iter().take(NAMES_SHOWN).map(String::as_str).collect();
    let mut out = shown.join(", ");
    if names.len() > NAMES_SHOWN {
        out.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{Dependency, RefreshEvent};

    fn node(id: &str, parents: &[&str], tests: &[&str]) -> (String, GraphNode) {
        let kind = id.split('.').next().unwrap().to_string();
        let is_source = kind == "source";
        (
            id.to_string(),
            GraphNode {
                unique_id: id.into(),
                name: id.rsplit('.').next().unwrap().into(),
                source_name: is_source.then(|| id.split('.').nth(2).unwrap().to_string()),
                resource_type: kind,
                enabled: true,
                parents: parents.iter().map(|s| s.to_string()).collect(),
                tests: tests.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    /// fct_orders ← stg_orders ← source raw.orders; the exposure reads fct_orders.
    fn facts(statuses: &[(&str, &str)]) -> Facts {
        Facts {
            run: Some(RunResults {
                command: Some("build".into()),
                generated_at: Some("2026-11-25T01:00:00Z".into()),
                status: statuses
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            }),
            graph: [
                node(
                    "model.p.fct_orders",
                    &["model.p.stg_orders"],
                    &["test.p.unique_fct_orders_id.1"],
                ),
                node(
                    "model.p.stg_orders",
                    &["source.p.raw.orders"],
                    &["test.p.not_null_stg_orders_id.2"],
                ),
                node("source.p.raw.orders", &[], &[]),
                node("model.p.other", &[], &["test.p.not_null_other.3"]),
            ]
            .into_iter()
            .collect(),
            complete: [("prod".to_string(), true)].into_iter().collect(),
        }
    }

    fn exposure(deps: &[&str]) -> ExposureView {
        ExposureView {
            integration: "prod".into(),
            tool: "tableau".into(),
            instance: "site".into(),
            folder: None,
            asset_ref: "luid".into(),
            name: "sales".into(),
            label: "Sales".into(),
            exposure_type: "dashboard".into(),
            owner_name: None,
            owner_email: None,
            url: None,
            exposure_mode: "auto".into(),
            status: "written".into(),
            file: None,
            dependencies: deps
                .iter()
                .map(|d| Dependency {
                    unique_id: d.to_string(),
                    relation_id: "r".into(),
                    via: "embedded".into(),
                    key: "k".into(),
                })
                .collect(),
            unmatched: Vec::new(),
            refreshes: Vec::new(),
            health: Health {
                level: HealthLevel::Unknown,
                reasons: Vec::new(),
            },
        }
    }

    const ALL_GOOD: &[(&str, &str)] = &[
        ("model.p.fct_orders", "success"),
        ("model.p.stg_orders", "success"),
        ("test.p.unique_fct_orders_id.1", "pass"),
        ("test.p.not_null_stg_orders_id.2", "pass"),
        ("model.p.other", "error"),
        ("test.p.not_null_other.3", "fail"),
    ];

    #[track_caller]
    fn judged(facts: &Facts, e: &ExposureView) -> (HealthLevel, Vec<String>) {
        let h = facts.judge(e);
        (h.level, h.reasons)
    }

    #[test]
    fn healthy_when_everything_upstream_built_and_passed() {
        // model.p.other failed, but it is not upstream.
        let (level, reasons) = judged(&facts(ALL_GOOD), &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Healthy);
        assert_eq!(reasons, ["The last dbt run (`dbt build`, 2026-11-25T01:00:00Z) built 2 of its 3 upstream nodes and ran 2 tests on them: none failed, warned or was skipped."]);
    }

    #[test]
    fn an_upstream_error_is_degraded_transitively() {
        let mut s = ALL_GOOD.to_vec();
        s[1] = ("model.p.stg_orders", "error");
        s[0] = ("model.p.fct_orders", "skipped");
        let (level, reasons) = judged(&facts(&s), &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Degraded);
        assert_eq!(
            reasons,
            [
                "1 upstream model failed to build in the last dbt run (`dbt build`, 2026-11-25T01:00:00Z): stg_orders.",
                "1 upstream model was skipped in the last dbt run (`dbt build`, 2026-11-25T01:00:00Z): fct_orders.",
            ]
        );
    }

    #[test]
    fn skipped_is_caution() {
        let mut s = ALL_GOOD.to_vec();
        s[0] = ("model.p.fct_orders", "skipped");
        let (level, reasons) = judged(&facts(&s), &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Caution);
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].starts_with("1 upstream model was skipped in"),
            "{reasons:?}"
        );
    }

    #[test]
    fn failing_tests_are_degraded_and_warnings_caution() {
        let mut s = ALL_GOOD.to_vec();
        s[3] = ("test.p.not_null_stg_orders_id.2", "fail");
        let (level, reasons) = judged(&facts(&s), &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Degraded);
        assert_eq!(reasons, ["1 test on upstream nodes failed in the last dbt run (`dbt build`, 2026-11-25T01:00:00Z): not_null_stg_orders_id."]);
        s[3] = ("test.p.not_null_stg_orders_id.2", "warn");
        s[2] = ("test.p.unique_fct_orders_id.1", "warn");
        let (level, reasons) = judged(&facts(&s), &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Caution);
        assert_eq!(reasons, ["2 tests on upstream nodes warned in the last dbt run (`dbt build`, 2026-11-25T01:00:00Z): not_null_stg_orders_id, unique_fct_orders_id."]);
    }

    #[test]
    fn source_freshness_errors_and_warnings() {
        let mut s = ALL_GOOD.to_vec();
        s.push(("source.p.raw.orders", "warn"));
        let (level, reasons) = judged(&facts(&s), &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Caution);
        assert_eq!(reasons, ["1 upstream source warned on its freshness check in the last dbt run (`dbt build`, 2026-11-25T01:00:00Z): raw.orders."]);
        *s.last_mut().unwrap() = ("source.p.raw.orders", "error");
        assert_eq!(
            judged(&facts(&s), &exposure(&["model.p.fct_orders"])).0,
            HealthLevel::Degraded
        );
    }

    #[test]
    fn long_lists_are_cut() {
        let mut f = facts(&[]);
        let ids: Vec<String> = (0..17).map(|i| format!("model.p.m{i:02}")).collect();
        for id in &ids {
            f.graph.insert(id.clone(), node(id, &[], &[]).1);
            f.run
                .as_mut()
                .unwrap()
                .status
                .insert(id.clone(), "error".into());
        }
        let deps: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (level, reasons) = judged(&f, &exposure(&deps));
        assert_eq!(level, HealthLevel::Degraded);
        assert_eq!(reasons, ["17 upstream models failed to build in the last dbt run (`dbt build`, 2026-11-25T01:00:00Z): m00, m01, m02, m03, m04 and 12 more."]);
    }

    #[test]
    fn unknown_without_run_results_or_when_none_ran() {
        let mut f = facts(ALL_GOOD);
        f.run = None;
        let (level, reasons) = judged(&f, &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Unknown);
        assert!(
            reasons[0]
                .starts_with("No dbt run results: the last extract found no run_results.json"),
            "{reasons:?}"
        );
        let (level, reasons) = judged(
            &facts(&[("model.p.other", "success")]),
            &exposure(&["model.p.fct_orders"]),
        );
        assert_eq!(level, HealthLevel::Unknown);
        assert_eq!(reasons, ["The last dbt run (`dbt build`, 2026-11-25T01:00:00Z) processed none of its 3 upstream nodes."]);
        let (level, _) = judged(&facts(ALL_GOOD), &exposure(&[]));
        assert_eq!(level, HealthLevel::Unknown);
    }

    #[test]
    fn a_partial_extraction_is_caution_and_outranks_unknown() {
        let mut f = facts(ALL_GOOD);
        f.complete.insert("prod".into(), false);
        let (level, reasons) = judged(&f, &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Caution);
        assert_eq!(reasons[0], "The last extraction of integration prod was partial (see table extract_warnings): some of the tables it reads may be missing from its dependencies.");
        assert_eq!(
            reasons.len(),
            2,
            "the Healthy finding stays as a reason: {reasons:?}"
        );
        f.run = None;
        let (level, reasons) = judged(&f, &exposure(&["model.p.fct_orders"]));
        assert_eq!(level, HealthLevel::Caution);
        assert!(reasons[1].starts_with("No dbt run results"), "{reasons:?}");
    }

    fn event(
        run_id: i64,
        dry_run: bool,
        decision: &str,
        reason: Option<&str>,
        job_status: Option<&str>,
    ) -> RefreshEvent {
        RefreshEvent {
            run_id,
            decided_at: "2026-11-25T02:00:00Z".into(),
            dry_run,
            target_kind: Some("datasource".into()),
            target_name: Some("Orders".into()),
            decision: decision.into(),
            reason: reason.map(str::to_string),
            detail: None,
            job_status: job_status.map(str::to_string),
        }
    }

    #[test]
    fn the_last_real_refresh_counts() {
        let f = facts(ALL_GOOD);
        let mut e = exposure(&["model.p.fct_orders"]);
        // Newest first, as view::load orders them: a dry run after a failed real run.
        e.refreshes = vec![
            event(9, true, "triggered", None, None),
            event(8, false, "failed", Some("forbidden"), None),
            event(7, false, "triggered", None, Some("failed")),
        ];
        let (level, reasons) = judged(&f, &e);
        assert_eq!(level, HealthLevel::Caution);
        assert_eq!(reasons[0], "The last refresh (run 8) failed to start for datasource Orders (forbidden): the dashboard may show data older than the last build.");
        e.refreshes = vec![
            event(8, false, "triggered", None, Some("failed")),
            event(7, false, "failed", Some("forbidden"), None),
        ];
        let (level, reasons) = judged(&f, &e);
        assert_eq!(level, HealthLevel::Caution);
        assert_eq!(reasons[0], "The refresh jobs of the last refresh (run 8) did not succeed for datasource Orders (failed): the dashboard may show data older than the last build.");
        e.refreshes = vec![
            event(9, false, "triggered", None, Some("success")),
            event(8, false, "failed", Some("forbidden"), None),
        ];
        assert_eq!(judged(&f, &e).0, HealthLevel::Healthy);
    }

    /// From the tables, as `list` and `report` call it.
    #[test]
    fn assess_reads_the_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO dbt_nodes (unique_id, resource_type, package_name, name, identifier, enabled, depends_on, tests)
               VALUES ('model.p.a', 'model', 'p', 'a', 'a', 1, '[\"model.p.b\"]', '[]'),
                      ('model.p.b', 'model', 'p', 'b', 'b', 1, '[]', '[\"test.p.t.1\"]');
             INSERT INTO dbt_run_results (command, generated_at, unique_id, resource_type, status)
               VALUES ('build', 'T', 'model.p.a', 'model', 'success'), ('build', 'T', 'model.p.b', 'model', 'success'),
                      ('build', 'T', 'test.p.t.1', 'test', 'fail');",
        )
        .unwrap();
        let mut list = vec![exposure(&["model.p.a"])];
        assess(&conn, &mut list).unwrap();
        assert_eq!(list[0].health.level, HealthLevel::Degraded);
        assert_eq!(
            list[0].health.reasons,
            ["1 test on upstream nodes failed in the last dbt run (`dbt build`, T): t."]
        );
    }
}
