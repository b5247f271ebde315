//! One autoexpose per database: a second process is refused at once by the lock beside the
//! database (`src/lock.rs`), a lock left by a dead process is taken over, and the `runs` rows a
//! killed process left `running` become `interrupted`.

use std::collections::BTreeMap;
use std::os::unix::io::AsRawFd;

use crate::common::*;

fn demo() -> Workspace {
    Workspace::new(
        &[SiteConfig::demo("https://tableau.example.com")],
        Some(&repo().join("testdata/http/demo")),
    )
}

fn lock_file(ws: &Workspace) -> std::path::PathBuf {
    ws.path("autoexpose.db.lock")
}

fn rows(ws: &Workspace) -> Vec<Vec<BTreeMap<String, serde_json::Value>>> {
    let conn = ws.conn();
    [
        "runs",
        "dbt_nodes",
        "tableau_workbooks",
        "bi_relations",
        "exposure_dependencies",
        "exposures",
        "emitted_files",
    ]
    .iter()
    .map(|t| dump(&conn, t))
    .collect()
}

#[test]
fn a_second_process_is_refused_at_once_and_changes_nothing() {
    let ws = demo();
    assert_ok(&ws.run(&[], "run", &[]));
    assert!(
        !lock_file(&ws).exists(),
        "a finished run left its lock file behind"
    );
    let (before_rows, before_yaml) = (rows(&ws), ws.yaml_files());

    // The first process is this test: it holds the lock the way autoexpose does (flock on the
    // file beside the database, its pid and start time inside).
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(lock_file(&ws))
        .unwrap();
    assert_eq!(
        unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let content = format!("pid {}\nstarted 2026-12-01T23:00:00Z\n", std::process::id());
    std::fs::write(lock_file(&ws), &content).unwrap();

    // A --dry-run refresh reads the tables, so it must wait its turn too.
    for stage in ["run", "extract", "emit", "refresh"] {
        let out = if stage == "refresh" {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_autoexpose"));
            cmd.args(["refresh", "--dry-run", "--config"])
                .arg(&ws.config)
                .env("DBT_ACTIVE_EXPOSURES", "1");
            cmd.output().unwrap()
        } else {
            ws.run(&[], stage, &[])
        };
        assert_eq!(
            out.status.code(),
            Some(1),
            "{stage}: stderr:\n{}",
            stderr(&out)
        );
        let want = format!(
            "another autoexpose (pid {}, started 2026-12-01T23:00:00Z) is using {}; wait for it to finish, or remove {} if that process is gone",
            std::process::id(),
            ws.db().display(),
            lock_file(&ws).display()
        );
        assert!(
            stderr(&out).contains(&want),
            "{stage}: stderr lacks {want:?}:\n{}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read_to_string(lock_file(&ws)).unwrap(),
            content,
            "{stage} touched the holder's lock file"
        );
    }
    // The readers take no lock: `list` and `report` show the last committed state meanwhile.
    let out = ws.run_with(&[], "list", &["--format", "json"], &[]);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"name\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let page = ws.path("during.html");
    assert_ok(&ws.run_with(&[], "report", &["--out", page.to_str().unwrap()], &[]));
    assert!(std::fs::read_to_string(&page)
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    assert_eq!(
        std::fs::read_to_string(lock_file(&ws)).unwrap(),
        content,
        "a reader touched the holder's lock file"
    );
    assert_eq!(
        rows(&ws),
        before_rows,
        "a refused process wrote to the database"
    );
    assert_eq!(ws.yaml_files(), before_yaml, "a refused process wrote YAML");

    // Once the holder is gone, the next process runs.
    drop(holder);
    assert_ok(&ws.run(&[], "run", &[]));
    assert!(!lock_file(&ws).exists());
}

#[test]
fn an_error_exit_removes_the_lock_file_too() {
    let ws = demo();
    let text = std::fs::read_to_string(&ws.config).unwrap();
    std::fs::write(
        &ws.config,
        text.replacen("artifacts/manifest.json", "artifacts/nope.json", 1),
    )
    .unwrap();
    let out = ws.run(&[], "run", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("nope.json"), "{}", stderr(&out));
    assert!(
        !lock_file(&ws).exists(),
        "a failed run left its lock file behind"
    );
}

#[test]
fn a_dead_process_lock_is_taken_over_and_its_running_rows_become_interrupted() {
    let ws = demo();
    assert_ok(&ws.run(&[], "run", &[]));
    // What a SIGKILLed autoexpose leaves: its lock file (the kernel dropped the flock) and a
    // `runs` row still `running`.
    std::fs::write(
        lock_file(&ws),
        "pid 999999999\nstarted 2026-12-01T22:00:00Z\n",
    )
    .unwrap();
    ws.conn()
        .execute(
            "INSERT INTO runs (stage, started_at, tool_version, config_hash, status) VALUES ('match', '2026-12-01T22:00:01Z', '0', 'x', 'running')",
            [],
        )
        .unwrap();
    let out = ws.run(&[], "extract", &[]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("1 stage(s) of an earlier autoexpose never finished"),
        "{}",
        stderr(&out)
    );
    assert!(!lock_file(&ws).exists());
    let conn = ws.conn();
    let (status, finished, error): (String, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT status, finished_at, error FROM runs WHERE started_at = '2026-12-01T22:00:01Z'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(status, "interrupted");
    assert!(finished.is_some());
    assert!(error.unwrap().contains("ended before the stage finished"));
    assert_eq!(
        count(&conn, "SELECT count(*) FROM runs WHERE status = 'running'"),
        0
    );
    // The interrupted stage does not count as done: emit still needs a finished match, and
    // the last extract succeeded.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM runs WHERE stage = 'extract' AND status = 'ok'"
        ),
        2
    );
}

#[test]
fn a_database_locked_by_another_program_is_named() {
    let ws = demo();
    assert_ok(&ws.run(&[], "extract", &[]));
    // Another program (not autoexpose) holds a write transaction past the busy timeout.
    let other = ws.conn();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = ws.run(&[], "normalize", &[]);
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "database {} is locked by another program",
            ws.db().display()
        )),
        "{err}"
    );
    assert!(!lock_file(&ws).exists());
}

#[test]
fn two_autoexpose_processes_the_second_is_refused_while_the_first_runs() {
    use crate::support::tableau_server::{Faults, ServerOptions, TableauServer};
    // A slow server keeps the first `run` busy (and holding its lock) while the second starts;
    // nothing here depends on how slow: the test waits for the first's lock file, not a time.
    let options = ServerOptions {
        latency_ms: 200,
        ..ServerOptions::default()
    };
    let server = TableauServer::start_with(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
        options,
    );
    let ws = Workspace::new(&[SiteConfig::mini(&server.base_url)], None);
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_autoexpose"));
    first
        .args(["run", "--config"])
        .arg(&ws.config)
        .envs(MINI_PAT)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut first = first.spawn().unwrap();
    let holder = format!("pid {}\n", first.id());
    loop {
        if std::fs::read_to_string(lock_file(&ws)).is_ok_and(|t| t.starts_with(&holder)) {
            break;
        }
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the first run ended ({status}) before its lock was seen; the server is not slow enough");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = ws.run(&[], "run", &MINI_PAT);
    let first = first.wait_with_output().unwrap();
    assert_ok(&first);
    assert_eq!(
        second.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&second)
    );
    let want = format!("another autoexpose (pid {}, started ", first_pid(&holder));
    assert!(
        stderr(&second).contains(&want),
        "stderr lacks {want:?}:\n{}",
        stderr(&second)
    );
    assert!(
        stderr(&second).contains(&format!("is using {};", ws.db().display())),
        "{}",
        stderr(&second)
    );
    // Every row is the first's: its four stages, all finished, and nothing from the second.
    let conn = ws.conn();
    let stages: Vec<(String, String)> = conn
        .prepare("SELECT stage, status FROM runs ORDER BY run_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let want: Vec<(String, String)> = ["extract", "normalize", "match", "emit"]
        .iter()
        .map(|s| (s.to_string(), "ok".to_string()))
        .collect();
    assert_eq!(stages, want);
    assert!(count(&conn, "SELECT count(*) FROM tableau_workbooks") > 0);
    assert!(!lock_file(&ws).exists());
}

fn first_pid(holder: &str) -> &str {
    holder.trim_start_matches("pid ").trim_end()
}
