//! The pure half of stage `refresh`: from the exposures, dbt's run results, the last trigger
//! of every target and the clock, what to do with each exposure and each of its targets. No
//! I/O, no database, no HTTP; `act` does what is decided here, in the order decided.
//!
//! Per exposure (in the order given, which is `integration, name`):
//! - skipped / upstream_failed: a dependency errored or was skipped (its status named);
//! - skipped / not_rebuilt: no dependency was rebuilt, or the command rebuilds nothing;
//! - not_applicable / no_extracts: due, but the asset has no target to refresh;
//! - otherwise, per target: skipped / refreshed_in_this_run when an earlier exposure already
//!   claimed it, skipped / too_soon inside `build_after_minutes` of its last trigger (with the
//!   time it becomes eligible), else due.
//!
//! Why the whole run is decided up front: no decision depends on what `act` makes of an
//! earlier one. A target is claimed by the first due exposure that reaches it, whatever came
//! of that exposure's decision — too soon, sent, refused by the service or lost — and the later
//! exposures say `refreshed_in_this_run` naming it (so a failed send is not retried by a
//! second exposure in the same run: the failure is one row, and the next run sends it again).
//! The cadence reads the last triggers as they stood before the run (after the requests a
//! killed run left in flight were settled), never a trigger made in this run: a target is
//! only ever considered once per run. Dry run changes nothing here; `act` records a due
//! target as a trigger not sent.

use std::collections::{BTreeMap, BTreeSet};

use crate::clock::Instant;
use crate::refresh::seam::Target;
use crate::refresh::tags::{Kind, Reason};
use crate::run_results::RunResults;

/// A written exposure and the nodes it depends on.
#[derive(Debug, Clone)]
pub(crate) struct Exposure {
    pub(crate) integration: String,
    pub(crate) name: String,
    pub(crate) asset_ref: String,
    pub(crate) depends_on: Vec<String>,
}

/// A target across exposures: (integration, kind, target ref).
pub(crate) type TargetKey = (String, Kind, String);

pub(crate) struct Inputs<'a> {
    pub(crate) exposures: &'a [Exposure],
    pub(crate) run_results: &'a RunResults,
    /// refresh_state: the last trigger of every target.
    pub(crate) last_triggered: &'a BTreeMap<TargetKey, Instant>,
    /// The refresh targets behind each (integration, asset ref); a missing entry is none.
    pub(crate) targets_of: &'a BTreeMap<(String, String), Vec<Target>>,
    pub(crate) build_after_minutes: u64,
    pub(crate) now: Instant,
}

/// What to do with one exposure (`target` None) or one of its targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The whole exposure: upstream_failed or not_rebuilt, with the detail to record.
    Skipped { reason: Reason, detail: String },
    /// Due, but no target: live connections only.
    NoExtracts,
    /// Another exposure (named) already claimed this target in this run.
    RefreshedInThisRun { first: String },
    /// Inside the cadence of the last trigger.
    TooSoon { last: Instant, eligible_at: Instant },
    /// To be refreshed.
    Due,
}

#[derive(Debug, Clone)]
pub(crate) struct Step<'a> {
    pub(crate) exposure: &'a Exposure,
    pub(crate) target: Option<&'a Target>,
    pub(crate) plan: Plan,
}

/// Every decision of the run, in the order `act` carries them out.
pub(crate) fn decide<'a>(inp: &Inputs<'a>) -> Vec<Step<'a>> {
    let upstream = Upstream::of(inp.run_results);
    // A huge cadence means "never again", not an overflow (which panicked in debug builds and
    // went negative in release ones).
    let build_after = i64::try_from(inp.build_after_minutes)
        .ok()
        .and_then(|m| m.checked_mul(60))
        .unwrap_or(i64::MAX);
    let mut claimed: BTreeMap<TargetKey, &str> = BTreeMap::new();
    let mut steps = Vec::new();
    for e in inp.exposures {
        if let Some(plan) = upstream.skip(e) {
            steps.push(Step {
                exposure: e,
                target: None,
                plan,
            });
            continue;
        }
        let targets = inp
            .targets_of
            .get(&(e.integration.clone(), e.asset_ref.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            steps.push(Step {
                exposure: e,
                target: None,
                plan: Plan::NoExtracts,
            });
        }
        for target in targets {
            let key = (e.integration.clone(), target.kind, target.id.clone());
            let plan = if let Some(first) = claimed.get(&key) {
                Plan::RefreshedInThisRun {
                    first: (*first).to_string(),
                }
            } else {
                claimed.insert(key.clone(), &e.name);
                cadence(inp.last_triggered.get(&key).copied(), build_after, inp.now)
            };
            steps.push(Step {
                exposure: e,
                target: Some(target),
                plan,
            });
        }
    }
    steps
}

/// Due unless `now` is before the last trigger plus the cadence (exactly at it is due).
fn cadence(last: Option<Instant>, build_after_seconds: i64, now: Instant) -> Plan {
    match last {
        Some(last) => {
            let eligible_at = Instant(last.0.saturating_add(build_after_seconds));
            if now < eligible_at {
                Plan::TooSoon { last, eligible_at }
            } else {
                Plan::Due
            }
        }
        None => Plan::Due,
    }
}

/// What dbt's run says about the nodes.
struct Upstream<'r> {
    statuses: BTreeMap<&'r str, &'r str>,
    rebuilt: BTreeSet<&'r str>,
    failed: BTreeSet<&'r str>,
    rebuilds_nothing: bool,
}

impl<'r> Upstream<'r> {
    fn of(rr: &'r RunResults) -> Self {
        let ids = |keep: fn(&crate::run_results::NodeResult) -> bool| {
            rr.results
                .iter()
                .filter(|r| keep(r))
                .map(|r| r.unique_id.as_str())
                .collect()
        };
        Upstream {
            statuses: rr
                .results
                .iter()
                .map(|r| (r.unique_id.as_str(), r.status.as_str()))
                .collect(),
            rebuilt: ids(|r| r.rebuilt()),
            failed: ids(|r| r.failed_or_skipped()),
            rebuilds_nothing: rr.rebuilds_nothing(),
        }
    }

    /// Why the whole exposure is skipped, if it is: a failed dependency wins over "nothing
    /// rebuilt".
    fn skip(&self, e: &Exposure) -> Option<Plan> {
        let bad: Vec<String> = e
            .depends_on
            .iter()
            .filter(|d| self.failed.contains(d.as_str()))
            .map(|d| {
                format!(
                    "{d} ({})",
                    self.statuses.get(d.as_str()).copied().unwrap_or("?")
                )
            })
            .collect();
        if !bad.is_empty() {
            return Some(Plan::Skipped {
                reason: Reason::UpstreamFailed,
                detail: bad.join(", "),
            });
        }
        let fresh = e
            .depends_on
            .iter()
            .any(|d| self.rebuilt.contains(d.as_str()));
        if !fresh || self.rebuilds_nothing {
            let detail = "no dependency was rebuilt in this invocation".to_string();
            return Some(Plan::Skipped {
                reason: Reason::NotRebuilt,
                detail,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: i64 = 1_795_917_600; // 2026-11-29T02:00:00Z
    const MIN: i64 = 60;

    fn rr(which: &str, statuses: &[(&str, &str)]) -> RunResults {
        let results: Vec<_> = statuses
            .iter()
            .map(|(id, st)| json!({"unique_id": id, "status": st}))
            .collect();
        let v = json!({
            "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
            "results": results,
            "args": {"which": which},
        });
        serde_json::from_value(v).unwrap()
    }

    fn exposure(name: &str, workbook: &str, deps: &[&str]) -> Exposure {
        Exposure {
            integration: "site".into(),
            name: name.into(),
            asset_ref: workbook.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn ds(id: &str) -> Target {
        Target {
            kind: Kind::Datasource,
            id: id.into(),
            name: format!("DS {id}"),
        }
    }

    fn wb(id: &str) -> Target {
        Target {
            kind: Kind::Workbook,
            id: id.into(),
            name: format!("WB {id}"),
        }
    }

    /// One case: exposures, run results, targets per workbook, last triggers (target, seconds
    /// before `now`), the cadence in minutes, and the decisions as `exposure target plan`.
    struct Case {
        name: &'static str,
        exposures: Vec<Exposure>,
        rr: RunResults,
        targets: Vec<(&'static str, Vec<Target>)>,
        last: Vec<(Target, i64)>,
        minutes: u64,
        want: &'static [&'static str],
    }

    fn show(step: &Step) -> String {
        let target = step
            .target
            .map_or("-".to_string(), |t| format!("{}:{}", t.kind, t.id));
        let plan = match &step.plan {
            Plan::Skipped { reason, detail } => format!("skipped {reason} [{detail}]"),
            Plan::NoExtracts => "not_applicable no_extracts".into(),
            Plan::RefreshedInThisRun { first } => {
                format!("skipped refreshed_in_this_run [{first}]")
            }
            Plan::TooSoon { last, eligible_at } => {
                format!(
                    "skipped too_soon [-{}s, eligible +{}s]",
                    T0 - last.0,
                    eligible_at.0 - T0
                )
            }
            Plan::Due => "due".into(),
        };
        format!("{} {target} {plan}", step.exposure.name)
    }

    #[track_caller]
    fn check(case: Case) {
        let targets_of = case
            .targets
            .into_iter()
            .map(|(w, t)| (("site".to_string(), w.to_string()), t))
            .collect();
        let last_triggered = case
            .last
            .into_iter()
            .map(|(t, ago)| (("site".to_string(), t.kind, t.id), Instant(T0 - ago)))
            .collect();
        let inp = Inputs {
            exposures: &case.exposures,
            run_results: &case.rr,
            last_triggered: &last_triggered,
            targets_of: &targets_of,
            build_after_minutes: case.minutes,
            now: Instant(T0),
        };
        let got: Vec<String> = decide(&inp).iter().map(show).collect();
        assert_eq!(got, case.want, "case {}", case.name);
    }

    fn build(statuses: &[(&str, &str)]) -> RunResults {
        rr("build", statuses)
    }

    #[test]
    fn exposure_level_decisions() {
        let a = || exposure("a", "w1", &["model.p.orders", "model.p.customers"]);
        let targets = || vec![("w1", vec![ds("d1")])];
        for case in [
            Case {
                name: "one dependency rebuilt: due",
                exposures: vec![a()],
                rr: build(&[("model.p.orders", "success")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a datasource:d1 due"],
            },
            Case {
                name: "partial success counts as rebuilt",
                exposures: vec![a()],
                rr: build(&[("model.p.orders", "partial success"), ("model.p.customers", "success")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a datasource:d1 due"],
            },
            Case {
                name: "seed and snapshot are rebuilds",
                exposures: vec![exposure("s", "w1", &["seed.p.countries"]), exposure("t", "w2", &["snapshot.p.hist"])],
                rr: build(&[("seed.p.countries", "success"), ("snapshot.p.hist", "success")]),
                targets: vec![("w1", vec![ds("d1")]), ("w2", vec![ds("d2")])],
                last: vec![],
                minutes: 60,
                want: &["s datasource:d1 due", "t datasource:d2 due"],
            },
            Case {
                name: "a test passing or a source is not a rebuild",
                exposures: vec![exposure("a", "w1", &["test.p.unique_orders", "source.p.raw.orders"])],
                rr: build(&[("test.p.unique_orders", "pass"), ("source.p.raw.orders", "success")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a - skipped not_rebuilt [no dependency was rebuilt in this invocation]"],
            },
            Case {
                name: "upstream failure mixed with success: skipped, naming the failed ones",
                exposures: vec![a()],
                rr: build(&[("model.p.orders", "success"), ("model.p.customers", "error")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a - skipped upstream_failed [model.p.customers (error)]"],
            },
            Case {
                name: "skipped and failed dependencies are all named, in depends_on order",
                exposures: vec![a()],
                rr: build(&[("model.p.customers", "skipped"), ("model.p.orders", "runtime error")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a - skipped upstream_failed [model.p.orders (runtime error), model.p.customers (skipped)]"],
            },
            Case {
                name: "a failed test of a dependency fails it too",
                exposures: vec![exposure("a", "w1", &["model.p.orders", "test.p.not_null"])],
                rr: build(&[("model.p.orders", "success"), ("test.p.not_null", "fail")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a - skipped upstream_failed [test.p.not_null (fail)]"],
            },
            Case {
                name: "no dependency ran",
                exposures: vec![a()],
                rr: build(&[("model.p.other", "success")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a - skipped not_rebuilt [no dependency was rebuilt in this invocation]"],
            },
            Case {
                name: "an empty run_results: nothing is due",
                exposures: vec![a(), exposure("b", "w2", &[])],
                rr: build(&[]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &[
                    "a - skipped not_rebuilt [no dependency was rebuilt in this invocation]",
                    "b - skipped not_rebuilt [no dependency was rebuilt in this invocation]",
                ],
            },
            Case {
                name: "a command that rebuilds nothing: nothing is due even with successes",
                exposures: vec![a()],
                rr: rr("compile", &[("model.p.orders", "success")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a - skipped not_rebuilt [no dependency was rebuilt in this invocation]"],
            },
            Case {
                name: "a failure wins over a command that rebuilds nothing",
                exposures: vec![a()],
                rr: rr("test", &[("model.p.orders", "error")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &["a - skipped upstream_failed [model.p.orders (error)]"],
            },
            Case {
                name: "due but no extracts: not applicable (no targets listed, or none)",
                exposures: vec![a(), exposure("b", "w9", &["model.p.orders"])],
                rr: build(&[("model.p.orders", "success")]),
                targets: vec![("w1", vec![])],
                last: vec![],
                minutes: 60,
                want: &["a - not_applicable no_extracts", "b - not_applicable no_extracts"],
            },
            Case {
                name: "no exposures: no decisions",
                exposures: vec![],
                rr: build(&[("model.p.orders", "success")]),
                targets: targets(),
                last: vec![],
                minutes: 60,
                want: &[],
            },
        ] {
            check(case);
        }
    }

    #[test]
    fn the_cadence_boundary() {
        let e = || vec![exposure("a", "w1", &["model.p.orders"])];
        let r = || build(&[("model.p.orders", "success")]);
        for (name, ago, minutes, want) in [
            ("never triggered", None, 60, &["a datasource:d1 due"]),
            (
                "exactly build_after_minutes ago: due",
                Some(60 * MIN),
                60,
                &["a datasource:d1 due"],
            ),
            (
                "one second short: too soon",
                Some(60 * MIN - 1),
                60,
                &["a datasource:d1 skipped too_soon [-3599s, eligible +1s]"],
            ),
            (
                "one second past: due",
                Some(60 * MIN + 1),
                60,
                &["a datasource:d1 due"],
            ),
            (
                "just now",
                Some(0),
                60,
                &["a datasource:d1 skipped too_soon [-0s, eligible +3600s]"],
            ),
            (
                "cadence 0: always due",
                Some(0),
                0,
                &["a datasource:d1 due"],
            ),
            (
                "a trigger in the future (clock moved back): too soon",
                Some(-10),
                0,
                &["a datasource:d1 skipped too_soon [--10s, eligible +10s]"],
            ),
            (
                "a year ago, cadence a year and a minute",
                Some(365 * 24 * 60 * MIN),
                365 * 24 * 60 + 1,
                &["a datasource:d1 skipped too_soon [-31536000s, eligible +60s]"],
            ),
            (
                "a huge cadence means never again, not an overflow",
                Some(1),
                u64::MAX,
                &["a datasource:d1 skipped too_soon [-1s, eligible +9223372035058858207s]"],
            ),
        ] {
            let last = ago.map(|s| vec![(ds("d1"), s)]).unwrap_or_default();
            let targets = vec![("w1", vec![ds("d1")])];
            check(Case {
                name,
                exposures: e(),
                rr: r(),
                targets,
                last,
                minutes,
                want,
            });
        }
    }

    #[test]
    fn targets_shared_and_per_target_cadence() {
        let deps = &["model.p.orders"];
        let ok = || build(&[("model.p.orders", "success")]);
        for case in [
            Case {
                name: "two exposures share a data source: the first (in order) claims it",
                exposures: vec![exposure("a", "w1", deps), exposure("b", "w2", deps)],
                rr: ok(),
                targets: vec![("w1", vec![ds("d1")]), ("w2", vec![ds("d1"), wb("w2")])],
                last: vec![],
                minutes: 60,
                want: &[
                    "a datasource:d1 due",
                    "b datasource:d1 skipped refreshed_in_this_run [a]",
                    "b workbook:w2 due",
                ],
            },
            Case {
                name: "a target too soon for the first exposure is claimed all the same",
                exposures: vec![exposure("a", "w1", deps), exposure("b", "w2", deps)],
                rr: ok(),
                targets: vec![("w1", vec![ds("d1")]), ("w2", vec![ds("d1")])],
                last: vec![(ds("d1"), 10 * MIN)],
                minutes: 60,
                want: &[
                    "a datasource:d1 skipped too_soon [-600s, eligible +3000s]",
                    "b datasource:d1 skipped refreshed_in_this_run [a]",
                ],
            },
            Case {
                name: "an exposure skipped upstream claims nothing: the next one is due",
                exposures: vec![
                    exposure("a", "w1", &["model.p.bad"]),
                    exposure("b", "w2", deps),
                ],
                rr: build(&[("model.p.orders", "success"), ("model.p.bad", "error")]),
                targets: vec![("w1", vec![ds("d1")]), ("w2", vec![ds("d1")])],
                last: vec![],
                minutes: 60,
                want: &[
                    "a - skipped upstream_failed [model.p.bad (error)]",
                    "b datasource:d1 due",
                ],
            },
            Case {
                name: "the cadence is per target: one too soon, the other due",
                exposures: vec![exposure("a", "w1", deps)],
                rr: ok(),
                targets: vec![("w1", vec![ds("d1"), ds("d2"), wb("w1")])],
                last: vec![(ds("d1"), 5 * MIN), (ds("d2"), 90 * MIN)],
                minutes: 60,
                want: &[
                    "a datasource:d1 skipped too_soon [-300s, eligible +3300s]",
                    "a datasource:d2 due",
                    "a workbook:w1 due",
                ],
            },
            Case {
                name: "a workbook and a data source with the same id are two targets",
                exposures: vec![exposure("a", "w1", deps)],
                rr: ok(),
                targets: vec![("w1", vec![ds("x"), wb("x")])],
                last: vec![(ds("x"), 5 * MIN)],
                minutes: 60,
                want: &[
                    "a datasource:x skipped too_soon [-300s, eligible +3300s]",
                    "a workbook:x due",
                ],
            },
        ] {
            check(case);
        }
    }

    #[test]
    fn integrations_do_not_share_targets() {
        let mut b = exposure("b", "w1", &["model.p.orders"]);
        b.integration = "other".into();
        let exposures = vec![exposure("a", "w1", &["model.p.orders"]), b];
        let run_results = build(&[("model.p.orders", "success")]);
        let targets_of = [
            (("site".to_string(), "w1".to_string()), vec![ds("d1")]),
            (("other".to_string(), "w1".to_string()), vec![ds("d1")]),
        ]
        .into();
        let last_triggered = [(
            ("site".to_string(), Kind::Datasource, "d1".to_string()),
            Instant(T0),
        )]
        .into();
        let inp = Inputs {
            exposures: &exposures,
            run_results: &run_results,
            last_triggered: &last_triggered,
            targets_of: &targets_of,
            build_after_minutes: 60,
            now: Instant(T0),
        };
        let got: Vec<String> = decide(&inp).iter().map(show).collect();
        assert_eq!(
            got,
            [
                "a datasource:d1 skipped too_soon [-0s, eligible +3600s]",
                "b datasource:d1 due"
            ]
        );
    }
}
