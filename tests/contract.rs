//! The contract every integration passes, over each case folder of `testdata/contract/`.
//!
//! A case is a folder holding an `autoexpose.yml` (paths relative to it) and whatever inputs it
//! needs that the repo does not already hold; nothing in it reaches a network (recorded
//! responses, files). Adding a case is adding a folder: this file names no integration, no
//! tool-specific table and no env var. Each case is run in a scratch copy, never in testdata:
//!
//! - (a) `run` end to end; the files it writes (exposures.json, each YAML file) and every
//!   table but `runs` (found through sqlite_master) are snapshots `contract@<case>__…`;
//! - (b) the stages one by one (`extract`, `normalize`, `match`, `emit`) into a second copy
//!   write the very rows, in the same order, and the very bytes of every file;
//! - (c) with every env var the config names (`…_env` keys: PAT names and secrets) set to a
//!   distinctive value, the run still comes to (a), and no value appears in the SQLite file
//!   (rows and raw bytes), stdout, stderr, or any file written;
//! - (d) a rerun over (a) changes nothing: the same rows, the same bytes, and emit finds every
//!   file unchanged (each `action` that was `written` is `unchanged`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// The time every case runs at (`--now`).
const NOW: &str = "2026-12-01T02:00:00Z";

/// The stages `run` drives, in order, as their commands.
const STAGES: &[&str] = &["extract", "normalize", "match", "emit"];

/// Every table but `runs` (which holds times), each in the order SQLite keeps its rows.
type Tables = BTreeMap<String, Vec<BTreeMap<String, serde_json::Value>>>;

/// One case in its scratch copy.
struct Case {
    name: String,
    /// The scratch root; dropped last.
    _root: tempfile::TempDir,
    /// The copy of the case folder; the config is `dir/autoexpose.yml`.
    dir: PathBuf,
    /// The case folder's own files (relative path → bytes), to tell the inputs from what a run wrote.
    fixture: BTreeMap<String, Vec<u8>>,
    /// The config's `database`, relative to `dir`.
    database: String,
    /// Every env var the config names (the values of its `…_env` keys).
    env_vars: Vec<String>,
}

impl Case {
    /// A scratch copy of the case folder `src`, at the same depth below a scratch root as `src`
    /// sits below the repo, every other entry on the way a symlink to the repo's own: the
    /// config, unchanged, finds its inputs by the same relative paths (`../../dbt/…`), while
    /// what it writes lands in the copy.
    fn copy(src: &Path) -> Case {
        let repo = repo().canonicalize().unwrap();
        let src = src.canonicalize().unwrap();
        let rel = src
            .strip_prefix(&repo)
            .unwrap_or_else(|_| panic!("{} is not inside the repo", src.display()));
        let root = tempfile::tempdir().unwrap();
        let (mut from, mut to) = (repo.clone(), root.path().to_path_buf());
        for part in rel.components() {
            for entry in std::fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                if entry.file_name() != part.as_os_str() {
                    std::os::unix::fs::symlink(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
            from = from.join(part);
            to = to.join(part);
            std::fs::create_dir(&to).unwrap();
        }
        let fixture = files(&src);
        for (path, bytes) in &fixture {
            let dest = to.join(path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, bytes).unwrap();
        }
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        let config: serde_yaml::Value = serde_yaml::from_slice(&fixture["autoexpose.yml"]).unwrap();
        let database = config["database"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: the config has no `database`"))
            .to_string();
        // What a run writes must stay in the copy: no way out through the symlinks.
        let project_dir = config["dbt"]["project_dir"].as_str().unwrap_or(".");
        for (key, value) in [
            ("database", database.as_str()),
            ("dbt.project_dir", project_dir),
        ] {
            let p = Path::new(value);
            assert!(
                p.is_relative()
                    && p.components().all(|c| matches!(
                        c,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    )),
                "{name}: {key} {value:?} must stay inside the case folder"
            );
        }
        let mut env_vars = Vec::new();
        env_keys(&config, &mut env_vars);
        env_vars.sort();
        env_vars.dedup();
        Case {
            name,
            _root: root,
            dir: to,
            fixture,
            database,
            env_vars,
        }
    }

    /// The binary on this case's config, with none of the env vars the config names unless
    /// given in `env`.
    fn run(&self, global: &[&str], command: &str, env: &[(String, String)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autoexpose"));
        cmd.args(global)
            .arg(command)
            .arg("--config")
            .arg(self.dir.join("autoexpose.yml"))
            .current_dir(&self.dir);
        if matches!(command, "run" | "extract") {
            // One clock for every run: the rows it dates (sync_bases.full_sync_at) are the same.
            cmd.args(["--now", NOW]);
        }
        for var in &self.env_vars {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}: autoexpose {command} exited {:?}\nstderr:\n{}",
            self.name,
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn db(&self) -> PathBuf {
        self.dir.join(&self.database)
    }

    fn tables(&self) -> Tables {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'runs' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut tables: Tables = names
            .into_iter()
            .map(|t| {
                (
                    t.clone(),
                    dump_query_unsorted(&conn, &format!("SELECT * FROM \"{t}\"")),
                )
            })
            .collect();
        for value in tables
            .values_mut()
            .flatten()
            .flat_map(|row| row.values_mut())
        {
            if let serde_json::Value::String(s) = value {
                *s = String::from_utf8(self.mask(s.as_bytes())).unwrap();
            }
        }
        tables
    }

    /// `bytes` with the scratch root written `[scratch]`: a stored input path is the same in
    /// every copy.
    fn mask(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let root = self._root.path();
        for r in [root.to_path_buf(), root.canonicalize().unwrap()] {
            let needle = r.to_string_lossy().into_owned().into_bytes();
            let mut masked = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i..].starts_with(&needle) {
                    masked.extend_from_slice(b"[scratch]");
                    i += needle.len();
                } else {
                    masked.push(out[i]);
                    i += 1;
                }
            }
            out = masked;
        }
        out
    }

    /// Every file a run wrote (relative path → bytes): what the copy holds beyond the case's own
    /// files and the database. The case's own files must come out untouched.
    fn outputs(&self) -> BTreeMap<String, Vec<u8>> {
        let mut now = files(&self.dir);
        for (path, bytes) in &self.fixture {
            assert!(
                now.remove(path).as_ref() == Some(bytes),
                "{}: the run changed or removed the case's own file {path}",
                self.name
            );
        }
        now.retain(|path, _| {
            !["", "-wal", "-journal", "-shm"]
                .iter()
                .any(|suffix| *path == format!("{}{suffix}", self.database))
        });
        now.into_iter()
            .map(|(path, bytes)| (path, self.mask(&bytes)))
            .collect()
    }
}

/// Every file under `dir`, relative path (with `/`) → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap();
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

/// The values of every `…_env` key, at any depth: the env vars a config reads.
fn env_keys(v: &serde_yaml::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                match (k.as_str(), v.as_str()) {
                    (Some(k), Some(var)) if k.ends_with("_env") => out.push(var.to_string()),
                    _ => env_keys(v, out),
                }
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| env_keys(v, out)),
        _ => {}
    }
}

/// Which tables and files differ between two states, to keep a failure readable.
fn differences(
    what: &str,
    a: &(Tables, BTreeMap<String, Vec<u8>>),
    b: &(Tables, BTreeMap<String, Vec<u8>>),
) -> Vec<String> {
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> = a.0.keys().chain(b.0.keys()).collect();
    for t in names {
        if a.0.get(t) != b.0.get(t) {
            out.push(format!("{what}: table {t}"));
        }
    }
    let paths: std::collections::BTreeSet<&String> = a.1.keys().chain(b.1.keys()).collect();
    for p in paths {
        if a.1.get(p) != b.1.get(p) {
            out.push(format!("{what}: file {p}"));
        }
    }
    out
}

fn text(case: &str, path: &str, bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| panic!("{case}: {path} is not UTF-8"))
}

#[test]
fn every_case_keeps_the_contract() {
    insta::glob!("../testdata/contract", "*/autoexpose.yml", |config| {
        let case_dir = config.parent().unwrap();
        let whole = Case::copy(case_dir);
        let name = whole.name.clone();
        let mut settings = settings();
        settings.remove_snapshot_suffix();
        if let Ok(readme) = std::fs::read_to_string(case_dir.join("README.md")) {
            settings.set_description(readme.trim());
        }
        let _guard = settings.bind_to_scope();

        // (a) `run` end to end, as snapshots.
        whole.run(&[], "run", &[]);
        let a = (whole.tables(), whole.outputs());
        assert!(!a.1.is_empty(), "{name}: `run` wrote no file");
        assert!(
            a.0.values().any(|rows| !rows.is_empty()),
            "{name}: `run` wrote no row"
        );
        insta::assert_yaml_snapshot!(format!("contract@{name}__tables"), a.0);
        for (path, bytes) in &a.1 {
            insta::assert_snapshot!(
                format!("contract@{name}__{}", path.replace('/', "__")),
                text(&name, path, bytes)
            );
        }

        // (b) The stages one by one, from a fresh copy: the same rows in the same order, the
        // same bytes.
        let staged = Case::copy(case_dir);
        for stage in STAGES {
            staged.run(&[], stage, &[]);
        }
        let b = (staged.tables(), staged.outputs());
        assert_eq!(
            differences(
                &format!("{name}: the stages one by one against `run`"),
                &b,
                &a
            ),
            Vec::<String>::new()
        );

        // (c) Every env var the config names set to a secret: found nowhere, and the same
        // result (a replay reads no credentials and must not care).
        let secret_run = Case::copy(case_dir);
        let env: Vec<(String, String)> = secret_run
            .env_vars
            .iter()
            .enumerate()
            .map(|(i, var)| {
                (
                    var.clone(),
                    format!("AeContract{i}Zq7sEcReTvAlUe9Lw2Vb8Nm4Kd6Rf3Tx{i}"),
                )
            })
            .collect();
        let out = secret_run.run(&["--verbose"], "run", &env);
        let c = (secret_run.tables(), secret_run.outputs());
        assert_eq!(
            differences(
                &format!("{name}: with the env vars set, against `run`"),
                &c,
                &a
            ),
            Vec::<String>::new()
        );
        let mut places = vec![
            (format!("{name}: stdout"), out.stdout.clone()),
            (format!("{name}: stderr"), out.stderr.clone()),
        ];
        places.extend(database_places(&name, &secret_run.db()));
        places.extend(folder_places(&name, &secret_run.dir));
        let leaks: Vec<String> = env
            .iter()
            .flat_map(|(var, secret)| {
                places
                    .iter()
                    .filter(|(_, bytes)| {
                        bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
                    })
                    .map(move |(place, _)| format!("the value of {var} in {place}"))
            })
            .collect();
        assert_eq!(leaks, Vec::<String>::new());

        // (d) A rerun over (a) changes nothing; emit finds each file as it left it.
        whole.run(&[], "run", &[]);
        let mut d = (whole.tables(), whole.outputs());
        // An integration that syncs incrementally builds on (a) and fetches nothing (nothing
        // changed); its record of that, and of the fewer requests it sent, are all that moves.
        let sync = |t: &Tables, table: &str, col: &str| {
            t.get(table)
                .into_iter()
                .flatten()
                .map(|r| r[col].clone())
                .collect::<Vec<_>>()
        };
        assert!(
            sync(&d.0, "sync_bases", "mode")
                .iter()
                .all(|m| m == "incremental"),
            "{name}: a rerun was not incremental: {:?}",
            d.0.get("sync_bases")
        );
        assert!(
            !sync(&d.0, "sync_state", "action")
                .iter()
                .any(|a| a == "fetched"),
            "{name}: a rerun over an unchanged source fetched {:?}",
            d.0.get("sync_state")
        );
        let mut first = a.clone();
        for table in [
            "sync_bases",
            "sync_state",
            "raw_responses",
            "extract_warnings",
        ] {
            d.0.remove(table);
            first.0.remove(table);
        }
        // Emit's record of what it did to each file (a table with an `action` column, wherever
        // it is): every `written` of the first run is `unchanged` now; nothing else moves.
        let mut rewritten = 0;
        for (table, rows) in d.0.iter_mut() {
            let Some(first) = a.0.get(table).filter(|first| first.len() == rows.len()) else {
                continue; // differences() below names the table
            };
            for (row, was) in rows.iter_mut().zip(first) {
                if was.get("action").is_some_and(|v| v == "written") {
                    assert_eq!(
                        row["action"], "unchanged",
                        "{name}: a rerun did not leave {table} row {was:?} unchanged"
                    );
                    row.insert("action".into(), was["action"].clone());
                    rewritten += 1;
                }
            }
        }
        assert!(
            rewritten > 0,
            "{name}: the first run recorded no file `written`"
        );
        assert_eq!(
            differences(
                &format!("{name}: a rerun against the first run"),
                &d,
                &first
            ),
            Vec::<String>::new()
        );
    });
}
