//! One tenant's extraction: which workspaces to scan, the scanner flow (batches of at most 100
//! workspace ids, at most `scans_in_flight` scans at once, each polled with backoff until it
//! succeeds, fails or times out), the datasets of other workspaces that selected reports read,
//! report URLs and dataset parameters (shared/reference/powerbi.md sections 0, 2, 3, 6, 7, 11).
//!
//! What it does not do: turn the answers into rows (`store.rs`), read M (`m.rs`). Everything
//! is read before anything is written: a failed or timed-out scan is an error naming the scan
//! and its workspaces, and nothing of the tenant is written then.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::client::Client;
use super::model::{self, DatasourceInstance, Parameter, Workspace};
use super::sync::{self, Answer};
use crate::config::PowerBiTenant;
use crate::log;
use crate::sync::{Action, State};

/// Workspace ids per `getInfo` (reference section 2: 1–100).
pub(crate) const BATCH: usize = 100;
/// The longest wait between two polls of one scan.
const MAX_POLL_WAIT: Duration = Duration::from_secs(30);

/// A scan as it went, for `powerbi_scans`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scan {
    pub(crate) id: String,
    pub(crate) workspaces: Vec<String>,
    /// The status it ended with, as the service spelled it.
    pub(crate) status: String,
    pub(crate) polls: u32,
    /// Why it was started: the selection, or datasets other workspaces' reports read.
    pub(crate) purpose: &'static str,
}

/// A warning recorded in `extract_warnings`: something read only in part, and what was done.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Warning {
    pub(crate) query: String,
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    pub(crate) action: String,
}

/// Where a report's URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlSource {
    /// `webUrl` from `groups/{id}/reports`.
    Api,
    /// `https://app.powerbi.com/groups/{workspace}/reports/{report}` (reference section 7).
    Built,
}

impl UrlSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UrlSource::Api => "api",
            UrlSource::Built => "built",
        }
    }
}

/// Everything one tenant said, before it is stored.
pub(crate) struct TenantExtract {
    pub(crate) integration: String,
    pub(crate) tenant_id: String,
    pub(crate) api_url: String,
    pub(crate) workspaces_filter: Vec<String>,
    /// Every workspace id `workspaces/modified` listed.
    pub(crate) listed: usize,
    /// Scanned workspaces, in id order: the selected ones and those holding datasets the
    /// selected reports read.
    pub(crate) workspaces: Vec<Workspace>,
    /// Ids of the selected workspaces: their reports are the assets.
    pub(crate) selected: BTreeSet<String>,
    pub(crate) datasource_instances: Vec<DatasourceInstance>,
    pub(crate) misconfigured_instances: Vec<DatasourceInstance>,
    pub(crate) scans: Vec<Scan>,
    /// Report id → URL and where it came from.
    pub(crate) report_urls: BTreeMap<String, (String, UrlSource)>,
    /// Dataset id → its parameters from `datasets/{id}/parameters`.
    pub(crate) parameters: BTreeMap<String, Vec<Parameter>>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) responses: Vec<super::client::RawResponse>,
    pub(crate) complete: bool,
    /// What this extraction leaves for the next one (`super::sync`).
    pub(crate) sync: Option<sync::Outcome>,
}

/// Whether `s` is shaped like a workspace id (a GUID); anything else is a name.
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

pub(crate) fn extract_tenant(
    t: &PowerBiTenant,
    c: &Client,
    from: sync::SyncFrom<'_>,
) -> Result<TenantExtract> {
    let settings_hash = sync::settings_hash(t);
    let mut decision = sync::decide(from, &t.name, &settings_hash)?;
    // Read before anything is sent: a cache that cannot be read stops the run, not a request.
    let mut base = if decision.incremental {
        Some(sync::load(from.db, &t.name)?)
    } else {
        None
    };
    log::info(&format!(
        "powerbi {}: {} sync ({})",
        t.name,
        decision.mode(),
        decision.why
    ));
    let listed: Vec<String> = {
        let mut ids: Vec<String> = c.modified_workspaces()?.into_iter().map(|w| w.id).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    log::info(&format!(
        "powerbi {:?}: {} workspaces may be scanned",
        t.name,
        listed.len()
    ));
    // What changed since the extraction this one builds on (reference section 2).
    let modified: Option<(crate::clock::Instant, BTreeSet<String>)> = match sync::since(&decision) {
        Some(since) => match c.modified_workspaces_since(since) {
            Ok(list) => Some((since, list.into_iter().map(|w| w.id).collect())),
            // The service judges the window on its own clock (reference section 2: 400
            // InvalidRequest outside 30 minutes to 30 days): a clock apart from ours must not
            // stop the run, so the extraction becomes full and says why.
            Err(e) if e.status() == Some(400) => {
                let why = format!("the service refused modifiedSince {} ({e}); its clock may differ from this machine's", since.rfc3339());
                log::warn(&format!(
                    "powerbi {}: {why}; scanning every workspace",
                    t.name
                ));
                decision = crate::sync::Decision {
                    incremental: false,
                    why,
                    full_sync_at: decision.now,
                    base_extracted_at: None,
                    now: decision.now,
                };
                base = None;
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let plan = Plan {
        base: base.as_ref(),
        modified: modified.as_ref(),
        full_why: &decision.why,
    };
    let known: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    // Ids alone are scanned alone; a name can only be told from the scan, so any name in the
    // selection scans every workspace and keeps those named.
    let by_id_only = !t.workspaces.is_empty() && t.workspaces.iter().all(|w| is_guid(w.trim()));
    let to_scan: Vec<String> = if by_id_only {
        let mut ids: Vec<String> = t
            .workspaces
            .iter()
            .map(|w| w.trim().to_ascii_lowercase())
            .collect();
        ids.sort();
        ids.dedup();
        let listed_lower: BTreeMap<String, &String> =
            listed.iter().map(|l| (l.to_ascii_lowercase(), l)).collect();
        let mut out = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            match listed_lower.get(id) {
                Some(l) => out.push((*l).clone()),
                None => bail!(
                    "powerbi {:?}: workspaces[{k}] {id:?} is not among the {} workspaces the service principal may scan (personal and inactive workspaces are never scanned; is the principal allowed on it?)",
                    t.name,
                    listed.len()
                ),
            }
        }
        out
    } else {
        listed.clone()
    };
    let mut scans = Vec::new();
    let mut states = Vec::new();
    let mut entries: BTreeMap<String, sync::Entry> = BTreeMap::new();
    scan_or_reuse(
        t,
        c,
        &plan,
        &to_scan,
        "selection",
        &mut scans,
        &mut entries,
        &mut states,
    )?;
    // The selection: active, shared workspaces, by id or name (case-insensitive).
    let wanted: Vec<String> = t
        .workspaces
        .iter()
        .map(|w| w.trim().to_lowercase())
        .collect();
    let mut matched = vec![false; wanted.len()];
    let mut selected = BTreeSet::new();
    for w in entries.values().map(|e| &e.workspace) {
        if w.is_personal() || w.is_inactive() {
            continue;
        }
        let keys = [
            Some(w.id.to_lowercase()),
            w.name.as_deref().map(str::to_lowercase),
        ];
        let hit: Vec<usize> = wanted
            .iter()
            .enumerate()
            .filter(|(_, x)| keys.iter().flatten().any(|k| k == *x))
            .map(|(i, _)| i)
            .collect();
        if wanted.is_empty() || !hit.is_empty() {
            hit.iter().for_each(|&i| matched[i] = true);
            selected.insert(w.id.clone());
        }
    }
    if let Some(k) = matched.iter().position(|m| !m) {
        bail!(
            "powerbi {:?}: workspaces[{k}] {:?} matches no active shared workspace's name or id among the {} scanned",
            t.name,
            t.workspaces[k],
            to_scan.len()
        );
    }
    // Datasets in workspaces outside the selection, read by selected reports: scanned too.
    let scanned: BTreeSet<String> = entries.keys().cloned().collect();
    let have: BTreeSet<String> = entries
        .values()
        .flat_map(|e| &e.workspace.datasets)
        .map(|d| d.id.clone())
        .collect();
    let mut extra = BTreeSet::new();
    let mut warnings = Vec::new();
    let mut complete = true;
    for w in entries
        .values()
        .map(|e| &e.workspace)
        .filter(|w| selected.contains(&w.id))
    {
        for r in w.reports.iter().filter(|r| !r.is_app_copy()) {
            let Some(ds) = r.dataset_id.as_deref() else {
                continue;
            };
            if have.contains(ds) {
                continue;
            }
            match r.dataset_workspace_id.as_deref() {
                Some(other) if !scanned.contains(other) && known.contains(other) => {
                    extra.insert(other.to_string());
                }
                _ => {
                    complete = false;
                    warnings.push(Warning {
                        query: "scanResult".into(),
                        code: Some("dataset_not_scanned".into()),
                        message: format!(
                            "report {} ({:?}) in workspace {} reads dataset {ds}, which no scan returned (workspace {})",
                            r.id,
                            r.name.as_deref().unwrap_or(""),
                            w.id,
                            r.dataset_workspace_id.as_deref().unwrap_or("unknown")
                        ),
                        action: "the report is kept without tables".into(),
                    });
                }
            }
        }
    }
    if !extra.is_empty() {
        let extra: Vec<String> = extra.into_iter().collect();
        scan_or_reuse(
            t,
            c,
            &plan,
            &extra,
            "datasets of other workspaces",
            &mut scans,
            &mut entries,
            &mut states,
        )?;
    }
    if let Some(base) = &base {
        for id in base.keys().filter(|id| !entries.contains_key(*id)) {
            let reason = if known.contains(id.as_str()) {
                "no longer scanned: not selected, and no selected report reads a dataset in it"
            } else {
                "no longer listed (deleted, inactive, or no longer open to the service principal)"
            };
            states.push(State {
                kind: "workspace",
                id: id.clone(),
                action: Action::Removed,
                reason: reason.into(),
            });
        }
    }
    states.sort();
    let mut instances: Vec<DatasourceInstance> = entries
        .values()
        .flat_map(|e| e.instances.iter().cloned())
        .collect();
    let mut misconfigured: Vec<DatasourceInstance> = entries
        .values()
        .flat_map(|e| e.misconfigured.iter().cloned())
        .collect();
    let by_ds_id = |i: &DatasourceInstance| i.datasource_id.clone().unwrap_or_default();
    instances.sort_by_key(by_ds_id);
    instances.dedup_by(|b, a| a.datasource_id == b.datasource_id);
    misconfigured.sort_by_key(by_ds_id);
    misconfigured.dedup_by(|b, a| a.datasource_id == b.datasource_id);

    let report_urls = report_urls(c, &mut entries, &selected, &mut warnings)?;
    let parameters = parameters(c, &mut entries, &selected, &mut warnings)?;
    let rows = entries
        .values()
        .map(sync::row)
        .collect::<Result<Vec<_>>>()?;
    let workspaces: Vec<Workspace> = entries.into_values().map(|e| e.workspace).collect();
    Ok(TenantExtract {
        integration: t.name.clone(),
        tenant_id: t.tenant_id.clone(),
        api_url: t.api_url.clone(),
        workspaces_filter: t.workspaces.clone(),
        listed: listed.len(),
        workspaces,
        selected,
        datasource_instances: instances,
        misconfigured_instances: misconfigured,
        scans,
        report_urls,
        parameters,
        warnings,
        responses: c.take_responses(),
        complete,
        sync: Some(sync::Outcome {
            decision,
            settings_hash,
            states,
            rows,
        }),
    })
}

/// What an extraction builds on: the last one's cache and what changed since it (incremental),
/// or nothing (full).
struct Plan<'a> {
    base: Option<&'a sync::Base>,
    modified: Option<&'a (crate::clock::Instant, BTreeSet<String>)>,
    full_why: &'a str,
}

/// Takes each of `ids` from the cache when it was not modified since the last extraction, and
/// scans the rest (`run_scans`); every one becomes an entry and a state row.
#[allow(clippy::too_many_arguments)]
fn scan_or_reuse(
    t: &PowerBiTenant,
    c: &Client,
    plan: &Plan<'_>,
    ids: &[String],
    purpose: &'static str,
    scans: &mut Vec<Scan>,
    entries: &mut BTreeMap<String, sync::Entry>,
    states: &mut Vec<State>,
) -> Result<()> {
    let mut fetch = Vec::new();
    for id in ids {
        if entries.contains_key(id) {
            continue;
        }
        let why = match (plan.base, plan.modified) {
            (Some(base), Some((since, modified))) if !modified.contains(id) => {
                match sync::reuse(base, id) {
                    Ok(e) => {
                        states.push(State {
                            kind: "workspace",
                            id: id.clone(),
                            action: Action::Reused,
                            reason: format!("not modified since {}", since.rfc3339()),
                        });
                        entries.insert(id.clone(), e);
                        continue;
                    }
                    Err(reason) => reason,
                }
            }
            (Some(_), Some((since, _))) => {
                format!("modified since {} (workspaces/modified)", since.rfc3339())
            }
            _ => format!("full sync: {}", plan.full_why),
        };
        fetch.push(id.clone());
        states.push(State {
            kind: "workspace",
            id: id.clone(),
            action: Action::Fetched,
            reason: why,
        });
    }
    if fetch.is_empty() {
        return Ok(());
    }
    for result in run_scans(t, c, &fetch, purpose, scans)? {
        for e in sync::split(result) {
            entries.entry(e.workspace.id.clone()).or_insert(e);
        }
    }
    Ok(())
}

struct InFlight {
    batch: usize,
    scan: String,
    workspaces: Vec<String>,
    started: Instant,
    next_poll: Instant,
    wait: Duration,
    /// The waits before the polls so far, summed: a replay's clock for `scan_timeout_secs`,
    /// as it does not wait (a live run's time is `started.elapsed()`).
    waited: Duration,
    polls: u32,
}

/// Scans `ids` in batches of `BATCH`, at most `scans_in_flight` at once: each is started, polled
/// with a doubling wait (from `scan_poll_ms` up to 30 s) until its status, compared
/// case-insensitively, is `Succeeded` (then its result is fetched and the next batch starts)
/// or anything but `NotStarted`/`Running` (an error), or until `scan_timeout_secs` (an error).
/// Results come back in batch order, whatever order the scans finished in.
fn run_scans(
    t: &PowerBiTenant,
    c: &Client,
    ids: &[String],
    purpose: &'static str,
    scans: &mut Vec<Scan>,
) -> Result<Vec<model::ScanResult>> {
    let mut pending: VecDeque<(usize, Vec<String>)> = ids
        .chunks(BATCH)
        .map(<[String]>::to_vec)
        .enumerate()
        .collect();
    let mut results: Vec<Option<(model::ScanResult, Scan)>> =
        (0..pending.len()).map(|_| None).collect();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let first_wait = Duration::from_millis(t.scan_poll_ms);
    let timeout = Duration::from_secs(t.scan_timeout_secs);
    let max = t.scans_in_flight.clamp(1, 16) as usize;
    // Replayed, every poll is due at once: the recording answers in its order regardless.
    let waits = c.answers_change_with_time();
    loop {
        while in_flight.len() < max {
            let Some((batch, workspaces)) = pending.pop_front() else {
                break;
            };
            let started = c.start_scan(&workspaces)?;
            let now = Instant::now();
            in_flight.push(InFlight {
                batch,
                scan: started.id,
                workspaces,
                started: now,
                next_poll: now + first_wait,
                wait: first_wait,
                waited: first_wait,
                polls: 0,
            });
        }
        if in_flight.is_empty() {
            break;
        }
        let now = Instant::now();
        let soonest = in_flight.iter().map(|f| f.next_poll).min().unwrap_or(now);
        if soonest > now && waits {
            std::thread::sleep(soonest - now);
        }
        let mut k = 0;
        while k < in_flight.len() {
            let f = &mut in_flight[k];
            if waits && f.next_poll > Instant::now() {
                k += 1;
                continue;
            }
            let status = c.scan_status(&f.scan)?;
            f.polls += 1;
            let text = status.status.clone().unwrap_or_default();
            match text.to_ascii_lowercase().as_str() {
                "succeeded" => {
                    let result = c.scan_result(&f.scan)?;
                    if result.workspaces.is_empty() {
                        bail!(
                            "powerbi {:?}: scan {} of workspaces {} succeeded but its result lists no workspace (DataHub treats this as a failed scan); run extract again",
                            t.name,
                            f.scan,
                            f.workspaces.join(", ")
                        );
                    }
                    let f = in_flight.remove(k);
                    let scan = Scan {
                        id: f.scan,
                        workspaces: f.workspaces,
                        status: text,
                        polls: f.polls,
                        purpose,
                    };
                    results[f.batch] = Some((result, scan));
                }
                "notstarted" | "running" => {
                    let elapsed = if waits { f.started.elapsed() } else { f.waited };
                    if elapsed >= timeout {
                        bail!(
                            "powerbi {:?}: scan {} of workspaces {} is still {text} after {} s (scan_timeout_secs); nothing was written. Run extract again later, or raise scan_timeout_secs",
                            t.name,
                            f.scan,
                            f.workspaces.join(", "),
                            t.scan_timeout_secs
                        );
                    }
                    f.wait = (f.wait * 2).min(MAX_POLL_WAIT);
                    f.waited += f.wait;
                    f.next_poll = Instant::now() + f.wait;
                    k += 1;
                }
                _ => {
                    let why = status
                        .error
                        .as_ref()
                        .map(|e| format!(": {}", c.scrub(&e.to_string())))
                        .unwrap_or_default();
                    bail!(
                        "powerbi {:?}: scan {} of workspaces {} ended with status {:?}{why}; nothing was written",
                        t.name,
                        f.scan,
                        f.workspaces.join(", "),
                        text
                    );
                }
            }
        }
    }
    let mut out = Vec::with_capacity(results.len());
    for (result, scan) in results.into_iter().flatten() {
        scans.push(scan);
        out.push(result);
    }
    Ok(out)
}

/// `webUrl` of every selected report from `groups/{id}/reports`; a workspace the principal may
/// not read gets built URLs, and one warning. A workspace reused from the cache reuses its
/// answer too, when it was asked; every entry keeps the answer of this extraction.
fn report_urls(
    c: &Client,
    entries: &mut BTreeMap<String, sync::Entry>,
    selected: &BTreeSet<String>,
    warnings: &mut Vec<Warning>,
) -> Result<BTreeMap<String, (String, UrlSource)>> {
    let mut out = BTreeMap::new();
    for e in entries.values_mut() {
        let cached = std::mem::replace(&mut e.reports, Answer::NotAsked);
        let w = &e.workspace;
        if !selected.contains(&w.id) {
            continue;
        }
        let reports: Vec<&model::Report> = w.reports.iter().filter(|r| !r.is_app_copy()).collect();
        if reports.is_empty() {
            continue;
        }
        let answer = match cached {
            a @ (Answer::Got(_) | Answer::NotAllowed) if e.reused => a,
            _ => match c.group_reports(&w.id)? {
                Some(list) => Answer::Got(
                    list.value
                        .into_iter()
                        .filter_map(|r| r.web_url.filter(|u| is_web_url(u)).map(|u| (r.id, u)))
                        .collect(),
                ),
                None => Answer::NotAllowed,
            },
        };
        let none = BTreeMap::new();
        let from_api = match &answer {
            Answer::Got(m) => m,
            _ => {
                warnings.push(Warning {
                    query: format!("groups/{}/reports", w.id),
                    code: Some("not_allowed".into()),
                    message: format!("the service principal may not list the reports of workspace {} ({:?})", w.id, w.name.as_deref().unwrap_or("")),
                    action: "report URLs built as https://app.powerbi.com/groups/{workspace}/reports/{report}".into(),
                });
                &none
            }
        };
        for r in reports {
            let url = match from_api.get(&r.id) {
                Some(u) => (u.clone(), UrlSource::Api),
                None => (built_url(&w.id, &r.id), UrlSource::Built),
            };
            out.insert(r.id.clone(), url);
        }
        e.reports = answer;
    }
    Ok(out)
}

/// A `webUrl` worth writing into a dbt project: https, no whitespace or control characters.
fn is_web_url(u: &str) -> bool {
    u.starts_with("https://") && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The report's page when the API gives none (reference section 7); ids encoded as path parts.
pub(crate) fn built_url(workspace: &str, report: &str) -> String {
    let part = |s: &str| super::client::form_encode(s).replace('+', "%20");
    format!(
        "https://app.powerbi.com/groups/{}/reports/{}",
        part(workspace),
        part(report)
    )
}

/// Parameters from `datasets/{id}/parameters` of each dataset a selected report reads whose M
/// names a parameter the scan's own expressions give no value for: the second source after the
/// expressions (reference section 11), so a tenant whose parameters all have literals costs no
/// call. A dataset the principal may not read gets none, and one warning. A dataset of a
/// workspace reused from the cache reuses its answer, when it was asked; every entry keeps the
/// answers of this extraction for its datasets.
fn parameters(
    c: &Client,
    entries: &mut BTreeMap<String, sync::Entry>,
    selected: &BTreeSet<String>,
    warnings: &mut Vec<Warning>,
) -> Result<BTreeMap<String, Vec<Parameter>>> {
    let home: BTreeMap<&str, (&str, &super::model::Dataset)> = entries
        .values()
        .flat_map(|e| {
            e.workspace
                .datasets
                .iter()
                .map(move |d| (d.id.as_str(), (e.workspace.id.as_str(), d)))
        })
        .collect();
    let read: BTreeSet<&str> = entries
        .values()
        .map(|e| &e.workspace)
        .filter(|w| selected.contains(&w.id))
        .flat_map(|w| &w.reports)
        .filter(|r| !r.is_app_copy())
        .filter_map(|r| r.dataset_id.as_deref())
        .collect();
    // Which need the call: the M of each, read in parallel.
    use rayon::prelude::*;
    let read: Vec<&str> = read
        .into_par_iter()
        .filter(|d| {
            home.get(d)
                .is_some_and(|(_, ds)| super::store::needs_parameters(ds))
        })
        .collect();
    let mut answers: Vec<(String, String, Answer<Vec<Parameter>>)> = Vec::new();
    for ds in read {
        let ws = home[ds].0;
        let cached = entries
            .get(ws)
            .filter(|e| e.reused)
            .and_then(|e| e.parameters.get(ds))
            .filter(|a| !matches!(a, Answer::NotAsked));
        let answer = match cached {
            Some(a) => a.clone(),
            None => match c.dataset_parameters(ws, ds)? {
                Some(p) => Answer::Got(p.value),
                None => Answer::NotAllowed,
            },
        };
        answers.push((ws.to_string(), ds.to_string(), answer));
    }
    let mut out = BTreeMap::new();
    for e in entries.values_mut() {
        e.parameters.clear();
    }
    for (ws, ds, answer) in answers {
        match &answer {
            Answer::Got(p) => {
                out.insert(ds.clone(), p.clone());
            }
            _ => warnings.push(Warning {
                query: format!("groups/{ws}/datasets/{ds}/parameters"),
                code: Some("not_allowed".into()),
                message: format!(
                    "the service principal may not read the parameters of dataset {ds}"
                ),
                action: "parameters taken from the scan's expressions only".into(),
            }),
        }
        if let Some(e) = entries.get_mut(&ws) {
            e.parameters.insert(ds, answer);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_names() {
        assert!(is_guid("d507422c-8d6d-4361-ac7a-30074a8cd0a1"));
        assert!(is_guid("D507422C-8D6D-4361-AC7A-30074A8CD0A1"));
        assert!(!is_guid("Sales"));
        assert!(!is_guid("d507422c-8d6d-4361-ac7a-30074a8cd0a"));
        assert!(!is_guid("d507422c_8d6d-4361-ac7a-30074a8cd0a1"));
        assert!(!is_guid("é07422c-8d6d-4361-ac7a-30074a8cd0a1"));
    }

    #[test]
    fn built_urls_keep_ids_in_their_segments() {
        assert_eq!(
            built_url("f089354e", "5b218778"),
            "https://app.powerbi.com/groups/f089354e/reports/5b218778"
        );
        assert_eq!(
            built_url("a/b", "c d"),
            "https://app.powerbi.com/groups/a%2Fb/reports/c%20d"
        );
        assert!(is_web_url("https://app.powerbi.com/groups/x/reports/y"));
        assert!(
            !is_web_url("javascript:alert(1)")
                && !is_web_url("https://a b")
                && !is_web_url("http://x")
        );
    }
}
