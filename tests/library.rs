//! The library target: `autoexpose::run` called in the test's own process, twice, and stage by
//! stage, over the recorded demo site. Nothing of one call may linger into the next (no global
//! state, nothing leaked in place of being dropped), and the stages driven one at a time come
//! to what `run` does.

use std::collections::BTreeMap;

use crate::common::*;

type State = (
    BTreeMap<String, Vec<BTreeMap<String, serde_json::Value>>>,
    BTreeMap<String, String>,
    String,
);

fn demo() -> Workspace {
    Workspace::new(
        &[SiteConfig::demo("https://tableau.example.com")],
        Some(&repo().join("testdata/http/demo")),
    )
}

/// Runs `command` through the library, as the binary would with `--quiet`.
fn run(ws: &Workspace, command: &str) -> autoexpose::Outcome {
    let args = autoexpose::cli::parse_from([
        "autoexpose".as_ref(),
        "--quiet".as_ref(),
        command.as_ref(),
        "--config".as_ref(),
        ws.config.as_os_str(),
    ])
    .unwrap();
    let outcome = autoexpose::run(&args).unwrap_or_else(|e| panic!("autoexpose {command}: {e:#}"));
    assert!(
        !outcome.incomplete() && !outcome.refresh_failed(),
        "autoexpose {command}: incomplete or refresh failed"
    );
    outcome
}

fn state(ws: &Workspace) -> State {
    let conn = ws.conn();
    let tables = stage_tables()
        .iter()
        .map(|t| (t.to_string(), dump(&conn, t)))
        .collect();
    (
        tables,
        ws.yaml_files(),
        std::fs::read_to_string(ws.path("exposures.json")).unwrap(),
    )
}

fn runs(ws: &Workspace) -> Vec<(String, String)> {
    let conn = ws.conn();
    let mut st = conn
        .prepare("SELECT stage, status FROM runs ORDER BY run_id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn stages(names: &[&str], times: usize) -> Vec<(String, String)> {
    let once = names.iter().map(|s| (s.to_string(), "ok".to_string()));
    once.cycle().take(names.len() * times).collect()
}

/// Which parts of two states differ (tables by name, then the files), to keep a failure short.
fn differences(a: &State, b: &State) -> Vec<String> {
    let mut out: Vec<String> = stage_tables()
        .iter()
        .filter(|t| a.0[**t] != b.0[**t])
        .map(|t| t.to_string())
        .collect();
    if a.1 != b.1 {
        out.push("the YAML files".into());
    }
    if a.2 != b.2 {
        out.push("exposures.json".into());
    }
    out
}

#[test]
fn run_twice_in_one_process_comes_to_the_same_state() {
    let ws = demo();
    let first = run(&ws, "run");
    let after_first = state(&ws);
    assert!(
        !after_first.1.is_empty(),
        "the demo's run wrote no exposures"
    );
    assert!(
        !after_first.0["exposure_dependencies"].is_empty(),
        "the demo's run matched nothing"
    );
    drop(first);
    // The same database again: what a nightly rerun does, here in the same process. Only
    // emit's record of what it did to each file changes: nothing, this time.
    let second = run(&ws, "run");
    let mut after_second = state(&ws);
    let actions: Vec<_> = after_second.0["emitted_files"]
        .iter()
        .map(|f| f["action"].clone())
        .collect();
    assert_eq!(
        actions,
        vec![serde_json::json!("unchanged"); after_first.0["emitted_files"].len()]
    );
    after_second.0.insert(
        "emitted_files".into(),
        after_first.0["emitted_files"].clone(),
    );
    assert_eq!(
        differences(&after_second, &after_first),
        Vec::<String>::new()
    );
    assert_eq!(
        runs(&ws),
        stages(&["extract", "normalize", "match", "emit"], 2)
    );
    drop(second);

    // And into a fresh database, in the same process still: the very state of the first.
    let fresh = demo();
    drop(run(&fresh, "run"));
    assert_eq!(
        differences(&state(&fresh), &after_first),
        Vec::<String>::new()
    );
}

#[test]
fn stages_driven_one_by_one_come_to_what_run_does() {
    let whole = demo();
    drop(run(&whole, "run"));
    let one_by_one = demo();
    for stage in ["extract", "normalize", "match", "emit"] {
        drop(run(&one_by_one, stage));
    }
    assert_eq!(
        differences(&state(&one_by_one), &state(&whole)),
        Vec::<String>::new()
    );
    assert_eq!(runs(&one_by_one), runs(&whole));
}
