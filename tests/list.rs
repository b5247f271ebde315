//! `autoexpose list` over the demo (the recorded Tableau site and the inventory file beside it,
//! with dbt's run_results.json of the demo build): the table, JSON and CSV as snapshots, health
//! from a failing build, hostile names, and a database where emit never ran.

use serde_json::Value;

use crate::common::*;

const INVENTORY: &str =
    "inventory:\n  - name: bi\n    file: dashboards.yml\n    database_aliases: {prod_demo: demo}\n";

/// The demo site (replayed) and the demo inventory, with `run_results` (or the demo build's)
/// installed where dbt writes it, after `autoexpose run`.
fn demo(run_results: Option<&Value>) -> Workspace {
    let ws = Workspace::new(
        &[SiteConfig::demo("https://tableau.example.com")],
        Some(&repo().join("testdata/http/demo")),
    );
    std::fs::copy(
        repo().join("testdata/inventory/demo.dashboards.yml"),
        ws.path("dashboards.yml"),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(&ws.config).unwrap();
    config.push_str(INVENTORY);
    std::fs::write(&ws.config, config).unwrap();
    let target = ws.path("dbt/target");
    std::fs::create_dir_all(&target).unwrap();
    match run_results {
        Some(rr) => std::fs::write(
            target.join("run_results.json"),
            serde_json::to_vec(rr).unwrap(),
        )
        .unwrap(),
        None => {
            std::fs::copy(
                repo().join("testdata/dbt/demo/artifacts/run_results.json"),
                target.join("run_results.json"),
            )
            .unwrap();
        }
    }
    assert_ok(&ws.run(&[], "run", &[]));
    ws
}

fn list(ws: &Workspace, format: &str) -> String {
    let out = ws.run_with(&[], "list", &["--format", format], &[]);
    assert_ok(&out);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_demo_as_table_json_and_csv() {
    let ws = demo(None);
    let table = list(&ws, "table");
    let json = list(&ws, "json");
    let csv = list(&ws, "csv");
    settings().bind(|| {
        insta::assert_snapshot!("list_table@demo", table);
        insta::assert_snapshot!("list_json@demo", json);
        insta::assert_snapshot!("list_csv@demo", csv);
    });
    // The same exposures, in the same order, in all three.
    let objects: Vec<Value> = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    let csv_names: Vec<&str> = csv
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(names, csv_names);
    assert_eq!(table.lines().count(), names.len() + 1, "{table}");
    let exposures = count(&ws.conn(), "SELECT count(*) FROM exposures");
    assert_eq!(names.len() as i64, exposures);
    // The table is the default, and a second list prints the same bytes.
    let out = ws.run(&[], "list", &[]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), table);
    // Reading took no lock and wrote nothing: no runs row was added.
    assert_eq!(count(&ws.conn(), "SELECT count(*) FROM runs WHERE stage NOT IN ('extract', 'normalize', 'match', 'emit')"), 0);
}

/// A build where a model upstream of some dashboards failed and a test on another warned:
/// their health says so, naming the nodes; the rest stay Healthy.
#[test]
fn health_follows_the_last_build() {
    let rr = run_results(
        "build",
        &[
            ("model.autoexpose_demo.stg_orders", "error"),
            ("model.autoexpose_demo.fct_orders", "skipped"),
            ("model.autoexpose_demo.stg_customers", "success"),
            ("model.autoexpose_demo.stg_payments", "success"),
        ],
    );
    let ws = demo(Some(&rr));
    assert_eq!(count(&ws.conn(), "SELECT count(*) FROM dbt_run_results"), 4);
    let objects: Vec<Value> = serde_json::from_str(&list(&ws, "json")).unwrap();
    let health: Vec<Value> = objects
        .iter()
        .map(|o| serde_json::json!({"name": o["name"], "health": o["health"], "health_reasons": o["health_reasons"]}))
        .collect();
    settings().bind(|| insta::assert_yaml_snapshot!("list_health@failed_build", health));
    assert!(
        objects.iter().any(|o| o["health"] == "Degraded"),
        "{objects:?}"
    );
}

/// No run_results.json at extract: the table is emptied and every health is Unknown, saying why.
#[test]
fn without_run_results_health_is_unknown() {
    let ws = demo(None);
    std::fs::remove_file(ws.path("dbt/target/run_results.json")).unwrap();
    assert_ok(&ws.run(&[], "extract", &[]));
    assert_eq!(count(&ws.conn(), "SELECT count(*) FROM dbt_run_results"), 0);
    let objects: Vec<Value> = serde_json::from_str(&list(&ws, "json")).unwrap();
    assert!(!objects.is_empty());
    for o in &objects {
        assert_eq!(o["health"], "Unknown", "{o}");
        assert!(
            o["health_reasons"][0]
                .as_str()
                .unwrap()
                .contains("no run_results.json"),
            "{o}"
        );
    }
}

/// A run_results.json that is there but is not run results stops extract, naming the file;
/// the rows of the last good extract stay.
#[test]
fn bad_run_results_stop_extract_naming_the_file() {
    let ws = demo(None);
    let before = count(&ws.conn(), "SELECT count(*) FROM dbt_run_results");
    std::fs::write(ws.path("dbt/target/run_results.json"), b"{\"metadata\": ").unwrap();
    let out = ws.run(&[], "extract", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("run results ") && err.contains("run_results.json: line 1"),
        "{err}"
    );
    assert_eq!(
        count(&ws.conn(), "SELECT count(*) FROM dbt_run_results"),
        before
    );
}

#[test]
fn hostile_names_stay_inert_in_every_format() {
    let hostile = "</script><script>alert(1)</script>\nline two \u{1b}[31mred\u{1b}[0m {{ env_var('HOME') }}\u{202e}";
    let ws = Workspace::new(&[], None);
    let dashboards = serde_json::json!({"dashboards": [
        {"id": "h-1", "name": hostile, "owner": {"name": "Eve\r\nMallory", "email": "eve@example.com"}, "folder": "Ops",
         "tables": ["demo.main.fct_orders"]},
    ]});
    std::fs::write(
        ws.path("dashboards.json"),
        serde_json::to_vec(&dashboards).unwrap(),
    )
    .unwrap();
    let config = std::fs::read_to_string(&ws.config)
        .unwrap()
        .replace("tableau:\n", "tableau: []\n");
    std::fs::write(&ws.config, format!("{config}inventory:\n  - name: bi\n    file: dashboards.json\n    database_aliases: {{}}\n")).unwrap();
    assert_ok(&ws.run(&[], "run", &[]));

    let table = list(&ws, "table");
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        !table.contains('\u{1b}') && !table.contains('\r') && !table.contains('\u{202e}'),
        "{table:?}"
    );
    // Made visible, and cut at the column's 40 cells with "…".
    assert!(
        table.contains("  </script><script>alert(1)</script>\\nlin…  "),
        "{table}"
    );
    assert!(table.contains("Eve\\r\\nMallory"), "{table}");

    let json = list(&ws, "json");
    assert!(
        !json.contains('\u{1b}') && !json.contains('\u{202e}'),
        "{json:?}"
    );
    let objects: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(objects[0]["label"], hostile);
    assert_eq!(objects[0]["owner"], "Eve\r\nMallory");

    let csv = list(&ws, "csv");
    // The label is one quoted field with its line break inside; the record ends in CRLF.
    assert!(csv.contains(&format!(",\"{hostile}\",")), "{csv:?}");
    assert!(csv.ends_with("\r\n"), "{csv:?}");
    settings().bind(|| insta::assert_snapshot!("list_table@hostile", table));
}

#[test]
fn before_emit_or_without_a_database_list_says_what_to_run() {
    let ws = Workspace::new(
        &[SiteConfig::demo("https://tableau.example.com")],
        Some(&repo().join("testdata/http/demo")),
    );
    let out = ws.run(&[], "list", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("autoexpose.db does not exist: run `autoexpose run`"),
        "{err}"
    );
    assert!(!ws.db().exists(), "list created the database");
    assert_ok(&ws.run(&[], "extract", &[]));
    let out = ws.run_with(&[], "list", &["--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "`emit` has not run here yet; run `autoexpose emit` (or `autoexpose run`) first"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // `report` reads the same way, and says the same.
    let out = ws.run_with(
        &[],
        "report",
        &["--out", ws.path("r.html").to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`emit` has not run here yet"),
        "{}",
        stderr(&out)
    );
    assert!(
        !ws.path("r.html").exists(),
        "report wrote a page before emit ran"
    );
}
