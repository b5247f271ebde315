//! Test helpers: a scratch workspace with a config, the binary, and table dumps for snapshots.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn demo_manifest() -> PathBuf {
    repo().join("testdata/dbt/demo/artifacts/manifest.json")
}

/// insta settings shared by every snapshot: the top-level `snapshots/` folder, no module prefix.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(repo().join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_sort_maps(true);
    s
}

/// A temporary folder holding a config, the database and a dbt project folder for emit.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

/// The PAT of testdata/tableau/mini.site.json.
pub const MINI_PAT: [(&str, &str); 2] = [("AE_MINI_NAME", "ci"), ("AE_MINI_SECRET", "mini-secret")];

#[derive(Clone)]
pub struct SiteConfig {
    pub name: String,
    pub server_url: String,
    pub site: String,
    pub projects: Vec<String>,
    pub page_size: u32,
    pub token_env: (String, String),
    pub extra: String,
}

impl SiteConfig {
    /// testdata/tableau/mini.site.json's site; its PAT is `MINI_PAT`.
    pub fn mini(server_url: &str) -> SiteConfig {
        SiteConfig {
            name: "mini".into(),
            server_url: server_url.into(),
            site: "mini".into(),
            projects: vec![],
            page_size: 2,
            token_env: ("AE_MINI_NAME".into(), "AE_MINI_SECRET".into()),
            extra: String::new(),
        }
    }

    pub fn demo(server_url: &str) -> SiteConfig {
        SiteConfig {
            name: "demo".into(),
            server_url: server_url.into(),
            site: "demo".into(),
            projects: vec!["Finance".into(), "Marketing".into()],
            page_size: 5,
            token_env: ("AE_TEST_PAT_NAME".into(), "AE_TEST_PAT_SECRET".into()),
            extra: "    database_aliases: {prod_demo: demo}\n".into(),
        }
    }
}

impl Workspace {
    pub fn new(sites: &[SiteConfig], replay: Option<&Path>) -> Workspace {
        Workspace::with_manifest(sites, replay, &demo_manifest())
    }

    pub fn with_manifest(
        sites: &[SiteConfig],
        replay: Option<&Path>,
        manifest: &Path,
    ) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dbt")).unwrap();
        let mut yaml = format!(
            "database: autoexpose.db\ndbt:\n  project_dir: dbt\n  manifest: {}\n",
            manifest.display()
        );
        if let Some(r) = replay {
            yaml.push_str(&format!("replay: {}\n", r.display()));
        }
        yaml.push_str("tableau:\n");
        for s in sites {
            yaml.push_str(&format!(
                "  - name: {}\n    server_url: {}\n    site: {}\n    token_name_env: {}\n    token_secret_env: {}\n    projects: [{}]\n    page_size: {}\n    retry: {{attempts: 4, base_delay_ms: 20}}\n{}",
                s.name,
                s.server_url,
                s.site,
                s.token_env.0,
                s.token_env.1,
                s.projects.join(", "),
                s.page_size,
                s.extra
            ));
        }
        yaml.push_str("exposures:\n  dir: models/imported_from_tableau\n  maturity: medium\n");
        let config = dir.path().join("autoexpose.yml");
        std::fs::write(&config, yaml).unwrap();
        Workspace { dir, config }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn db(&self) -> PathBuf {
        self.path("autoexpose.db")
    }

    pub fn exposures_dir(&self) -> PathBuf {
        self.path("dbt/models/imported_from_tableau")
    }

    /// Runs the binary with `--config` appended after the stage.
    pub fn run(&self, global: &[&str], stage: &str, env: &[(&str, &str)]) -> Output {
        self.run_with(global, stage, &[], env)
    }

    /// As `run`, with `args` after the command (`--allow-empty`).
    pub fn run_with(
        &self,
        global: &[&str],
        stage: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoexpose"));
        cmd.args(global)
            .arg(stage)
            .args(args)
            .arg("--config")
            .arg(&self.config);
        for k in [
            "AE_TEST_PAT_NAME",
            "AE_TEST_PAT_SECRET",
            "AE_MINI_NAME",
            "AE_MINI_SECRET",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).unwrap()
    }

    /// Every generated file under the exposures folder: relative path → content.
    pub fn yaml_files(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let dir = self.exposures_dir();
        if !dir.is_dir() {
            return out;
        }
        for e in walkdir::WalkDir::new(&dir).sort_by_file_name() {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e.path().strip_prefix(&dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(e.path()).unwrap());
            }
        }
        out
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstderr:\n{}",
        o.status.code(),
        stderr(o)
    );
}

/// All rows of a table, sorted by every column, as YAML-friendly maps.
pub fn dump(conn: &rusqlite::Connection, table: &str) -> Vec<BTreeMap<String, serde_json::Value>> {
    dump_query(conn, &format!("SELECT * FROM {table}"))
}

pub fn dump_query(
    conn: &rusqlite::Connection,
    sql: &str,
) -> Vec<BTreeMap<String, serde_json::Value>> {
    let mut rows = dump_query_unsorted(conn, sql);
    rows.sort_by_key(|r| serde_json::to_string(r).unwrap());
    rows
}

/// The rows of a query in the order SQLite returns them.
pub fn dump_query_unsorted(
    conn: &rusqlite::Connection,
    sql: &str,
) -> Vec<BTreeMap<String, serde_json::Value>> {
    let mut st = conn.prepare(sql).unwrap();
    let cols: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
    let rows: Vec<BTreeMap<String, serde_json::Value>> = st
        .query_map([], |r| {
            let mut m = BTreeMap::new();
            for (i, c) in cols.iter().enumerate() {
                let v = match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                    rusqlite::types::ValueRef::Integer(n) => serde_json::json!(n),
                    rusqlite::types::ValueRef::Real(f) => serde_json::json!(f),
                    rusqlite::types::ValueRef::Text(t) => {
                        serde_json::json!(String::from_utf8_lossy(t))
                    }
                    rusqlite::types::ValueRef::Blob(b) => {
                        serde_json::json!(format!("<{} bytes>", b.len()))
                    }
                };
                m.insert(c.clone(), v);
            }
            Ok(m)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows
}

pub fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every text or blob value of every table (found through sqlite_master), labelled with its
/// table and column, and the raw bytes of the file and its journal (a secret may sit in a
/// freed page): the places a secret scan looks.
pub fn database_places(what: &str, db: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() > 10, "{what}: only tables {tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let mut st = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let names: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, col) in names.iter().enumerate() {
                if let rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) =
                    row.get_ref(i).unwrap()
                {
                    out.push((format!("{what}: table {t}, column {col}"), b.to_vec()));
                }
            }
        }
    }
    for suffix in ["", "-wal", "-journal"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&f) {
            out.push((format!("{what}: file {}", f.display()), bytes));
        }
    }
    out
}

/// Every file under `dir` (none when it does not exist), labelled `what: path`.
pub fn folder_places(what: &str, dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            out.push((
                format!("{what}: {}", e.path().display()),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out
}

/// The tables extract writes for the demo (its Tableau record and the neutral rows).
pub const EXTRACT_TABLES: &[&str] = &[
    "dbt_nodes",
    "dbt_exposures",
    "tableau_sites",
    "tableau_projects",
    "tableau_workbooks",
    "tableau_datasources",
    "tableau_workbook_datasources",
    "tableau_tables",
    "bi_instances",
    "bi_assets",
    "bi_relations",
    "tableau_custom_sql",
    "extract_warnings",
];

/// Every table a stage of `run` writes: extract's, then normalize's, match's and emit's.
pub fn stage_tables() -> Vec<&'static str> {
    let mut all = EXTRACT_TABLES.to_vec();
    all.extend([
        "relation_keys",
        "exposure_dependencies",
        "unmatched_tables",
        "exposures",
        "emitted_files",
    ]);
    all
}

/// A run_results.json v6 as `dbt build` writes it, for the given node statuses.
pub fn run_results(which: &str, statuses: &[(&str, &str)]) -> serde_json::Value {
    let results: Vec<serde_json::Value> = statuses
        .iter()
        .map(|(id, status)| {
            serde_json::json!({
                "status": status,
                "timing": [{"name": "compile", "started_at": "2026-11-25T01:00:00.000000Z", "completed_at": "2026-11-25T01:00:01.000000Z"},
                           {"name": "execute", "started_at": "2026-11-25T01:00:01.000000Z", "completed_at": "2026-11-25T01:00:02.000000Z"}],
                "thread_id": "Thread-1 (worker)", "execution_time": 1.5, "adapter_response": {},
                "message": if *status == "error" { "Runtime Error in model" } else { "OK" },
                "failures": null, "unique_id": id, "compiled": true, "compiled_code": "select 1",
                "relation_name": null, "batch_results": null
            })
        })
        .collect();
    serde_json::json!({
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json", "dbt_version": "1.10.23",
                     "generated_at": "2026-11-25T01:00:03.000000Z", "invocation_id": "00000000-0000-4000-8000-0000000000aa",
                     "invocation_started_at": "2026-11-25T01:00:00.000000Z", "env": {}},
        "results": results,
        "elapsed_time": 3.0,
        "args": {"which": which, "invocation_command": format!("dbt {which}")}
    })
}

/// Every table of `conn` but `skip`, as pretty JSON by `table <name>`, each in the order SQLite
/// keeps its rows; the caches (`*_cache`, looked up by key, where a rerun keeps the rows it
/// reused in place) by key. What an incremental rerun and a full run must agree on.
pub fn tables_but(conn: &rusqlite::Connection, skip: &[&str]) -> BTreeMap<String, String> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    tables
        .into_iter()
        .filter(|t| !skip.contains(&t.as_str()))
        .map(|t| {
            let order = if t.ends_with("_cache") {
                " ORDER BY integration, id"
            } else {
                ""
            };
            let rows = dump_query_unsorted(conn, &format!("SELECT * FROM {t}{order}"));
            (
                format!("table {t}"),
                serde_json::to_string_pretty(&rows).unwrap(),
            )
        })
        .collect()
}
