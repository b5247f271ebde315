//! The report's data block: the exposures and the dbt graph as compact JSON, for page.js.
//!
//! Compact because the L benchmark has 20k exposures: every text goes once into one string
//! table (`s`) and everything else refers to it by index, and dbt nodes are referred to by
//! their index in `nodes`, so a model that 5,000 dashboards read is spelled once, not 5,000
//! times. `-1` stands for "none" wherever an index may be missing. The layout (field order
//! inside each array) is page.js's contract; `FORMAT` changes when it does.
//!
//! Deterministic: strings are numbered in the order they are first met, walking the views in
//! their order (integration, name) and the graph in unique_id order, so the same database
//! gives the same bytes.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::view::{ExposureView, GraphNode};

/// Bumped when the array layouts below change (page.js checks it).
pub(crate) const FORMAT: u32 = 1;

/// The whole data block.
/// (Not `Debug`: the standard library implements it for tuples of up to 12.)
#[derive(Serialize)]
pub(crate) struct Data {
    pub(crate) format: u32,
    /// The newest run's finished_at, as the database says it (never the clock now).
    pub(crate) generated: Option<String>,
    /// Every text, once.
    pub(crate) s: Vec<String>,
    /// [name, tool, instance] per integration.
    pub(crate) integrations: Vec<[i64; 3]>,
    /// [kind, name, unique_id, source_name, [parent node…], tests count] per dbt node.
    pub(crate) nodes: Vec<(i64, i64, i64, i64, Vec<i64>, usize)>,
    /// One array per exposure; see `exposure`.
    pub(crate) exposures: Vec<Exposure>,
}

/// [integration, folder, name, label, type, owner, email, url, mode, status, file, health,
///  [reason…], [dependency…], [unmatched…], [refresh…]]
pub(crate) type Exposure = (
    usize,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Vec<i64>,
    Vec<Dep>,
    Vec<Unm>,
    Vec<Refresh>,
);
/// [node, BI relation (its name, or its id), via, key]
pub(crate) type Dep = [i64; 4];
/// [relation (name or id), via, key, reason, suggestion, [candidate…]]
pub(crate) type Unm = (i64, i64, i64, i64, i64, Vec<i64>);
/// [run_id, decided_at, dry_run (0|1), target_kind, target_name, decision, reason, detail, job_status]
pub(crate) type Refresh = (i64, i64, u8, i64, i64, i64, i64, i64, i64);

/// Numbers strings in the order they are first seen.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as i64;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    fn opt(&mut self, s: Option<&str>) -> i64 {
        s.map_or(-1, |s| self.id(s))
    }
}

/// The data block for these views and this graph. `relation_names` maps (integration,
/// relation id) to the BI tool's name for the relation, shown instead of its opaque id.
pub(crate) fn build(
    views: &[ExposureView],
    graph: &BTreeMap<String, GraphNode>,
    relation_names: &HashMap<(String, String), String>,
    generated: Option<String>,
) -> Data {
    let mut s = Strings::default();
    let mut node_index: HashMap<&str, i64> = HashMap::new();
    let mut node_list: Vec<&GraphNode> = Vec::new();
    for (uid, node) in graph {
        node_index.insert(uid.as_str(), node_list.len() as i64);
        node_list.push(node);
    }
    // A dependency on a node the graph lacks (a database whose dbt_nodes went since) still
    // gets a node, named by its unique_id, so the page can draw it.
    let mut extra: BTreeMap<String, String> = BTreeMap::new();
    for v in views {
        for d in &v.dependencies {
            if !node_index.contains_key(d.unique_id.as_str()) {
                let kind = d.unique_id.split('.').next().unwrap_or("model").to_string();
                extra.insert(d.unique_id.clone(), kind);
            }
        }
    }
    let mut nodes = Vec::with_capacity(node_list.len() + extra.len());
    for n in &node_list {
        let parents = n
            .parents
            .iter()
            .filter_map(|p| node_index.get(p.as_str()).copied())
            .collect();
        nodes.push((
            s.id(&n.resource_type),
            s.id(&n.name),
            s.id(&n.unique_id),
            s.opt(n.source_name.as_deref()),
            parents,
            n.tests.len(),
        ));
    }
    let mut extra_index: HashMap<String, i64> = HashMap::new();
    for (uid, kind) in &extra {
        let name = uid.rsplit('.').next().unwrap_or(uid);
        extra_index.insert(uid.clone(), nodes.len() as i64);
        nodes.push((s.id(kind), s.id(name), s.id(uid), -1, Vec::new(), 0));
    }

    let mut integrations: Vec<[i64; 3]> = Vec::new();
    let mut integration_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut exposures = Vec::with_capacity(views.len());
    for v in views {
        let integ = *integration_index
            .entry(v.integration.clone())
            .or_insert_with(|| {
                integrations.push([s.id(&v.integration), s.id(&v.tool), s.id(&v.instance)]);
                integrations.len() - 1
            });
        let relation = |s: &mut Strings, id: &str, name: Option<&str>| -> i64 {
            let looked_up = relation_names
                .get(&(v.integration.clone(), id.to_string()))
                .map(String::as_str);
            match name.or(looked_up) {
                Some(n) if !n.is_empty() => s.id(n),
                _ => s.id(id),
            }
        };
        let deps = v
            .dependencies
            .iter()
            .map(|d| {
                let node = node_index
                    .get(d.unique_id.as_str())
                    .copied()
                    .or_else(|| extra_index.get(&d.unique_id).copied())
                    .unwrap_or(-1);
                [
                    node,
                    relation(&mut s, &d.relation_id, None),
                    s.id(&d.via),
                    s.id(&d.key),
                ]
            })
            .collect();
        let unmatched = v
            .unmatched
            .iter()
            .map(|u| {
                let rel = relation(&mut s, &u.relation_id, u.relation_name.as_deref());
                let candidates = u.candidates.iter().map(|c| s.id(c)).collect();
                (
                    rel,
                    s.id(&u.via),
                    s.opt(u.key.as_deref()),
                    s.id(&u.reason),
                    s.id(&u.suggestion),
                    candidates,
                )
            })
            .collect();
        let refreshes = v
            .refreshes
            .iter()
            .map(|r| {
                (
                    r.run_id,
                    s.id(&r.decided_at),
                    u8::from(r.dry_run),
                    s.opt(r.target_kind.as_deref()),
                    s.opt(r.target_name.as_deref()),
                    s.id(&r.decision),
                    s.opt(r.reason.as_deref()),
                    s.opt(r.detail.as_deref()),
                    s.opt(r.job_status.as_deref()),
                )
            })
            .collect();
        let reasons = v.health.reasons.iter().map(|r| s.id(r)).collect();
        exposures.push((
            integ,
            s.opt(v.folder.as_deref()),
            s.id(&v.name),
            s.id(&v.label),
            s.id(&v.exposure_type),
            s.opt(v.owner_name.as_deref()),
            s.opt(v.owner_email.as_deref()),
            s.opt(v.url.as_deref()),
            s.id(&v.exposure_mode),
            s.id(&v.status),
            s.opt(v.file.as_deref()),
            s.id(v.health.level.as_str()),
            reasons,
            deps,
            unmatched,
            refreshes,
        ));
    }
    Data {
        format: FORMAT,
        generated,
        s: s.list,
        integrations,
        nodes,
        exposures,
    }
}
