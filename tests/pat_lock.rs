//! One session per PAT (src/tableau/session_lock.rs, over src/lock.rs's `acquire_session`;
//! src/config.rs): Tableau ends a PAT's earlier session at each sign-in, so two autoexposes
//! with different configs and databases but one PAT are refused at once (the second, before it
//! sends anything), and so are two integrations of one config with one PAT. Every test sets AUTOEXPOSE_RUNTIME_DIR to a folder
//! of its own, so tests share no PAT locks.

use crate::common::*;
use crate::support::tableau_server::{Faults, ServerOptions, TableauServer};

fn pat_locks(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("pat-"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn a_second_process_with_the_same_pat_is_refused_before_it_signs_in() {
    let runtime = tempfile::tempdir().unwrap();
    let rt = runtime.path().to_str().unwrap();
    // A slow server keeps the first run signed in while the second starts; the test waits for
    // the first's PAT lock, not a time.
    let options = ServerOptions {
        latency_ms: 200,
        ..ServerOptions::default()
    };
    let server = TableauServer::start_with(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
        options,
    );
    // Two configs, two databases, one PAT.
    let (a, b) = (
        Workspace::new(&[SiteConfig::mini(&server.base_url)], None),
        Workspace::new(&[SiteConfig::mini(&server.base_url)], None),
    );
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_autoexpose"));
    first
        .args(["run", "--config"])
        .arg(&a.config)
        .envs(MINI_PAT)
        .env("AUTOEXPOSE_RUNTIME_DIR", rt)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut first = first.spawn().unwrap();
    let holder = format!("pid {}\n", first.id());
    let lock = loop {
        if let Some(p) = pat_locks(runtime.path())
            .into_iter()
            .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.starts_with(&holder)))
        {
            break p;
        }
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the first run ended ({status}) before its PAT lock was seen; the server is not slow enough");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(
        text.contains("integration mini\n")
            && text.contains(&format!("server {}\n", server.base_url)),
        "{text}"
    );
    for (_, v) in MINI_PAT {
        assert!(
            !text.contains(v) && !lock.to_string_lossy().contains(v),
            "the lock file names the PAT: {text}"
        );
    }
    let requests_before = server.request_count();
    let mut env = MINI_PAT.to_vec();
    env.push(("AUTOEXPOSE_RUNTIME_DIR", rt));
    let started = std::time::Instant::now();
    let second = b.run(&[], "run", &env);
    let took = started.elapsed();
    let first = first.wait_with_output().unwrap();
    assert_ok(&first);
    assert_eq!(
        second.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&second)
    );
    let err = stderr(&second);
    let want = format!(
        "tableau \"mini\": another autoexpose (pid {}, started ",
        holder.trim_start_matches("pid ").trim_end()
    );
    assert!(err.contains(&want), "stderr lacks {want:?}:\n{err}");
    assert!(
        err.contains("integration \"mini\") is signed in to")
            && err.contains("same PAT (the name in env var AE_MINI_NAME)"),
        "{err}"
    );
    assert!(
        took < std::time::Duration::from_secs(10),
        "the second waited {took:?}"
    );
    // The second sent nothing: every sign-in the server saw is the first's one.
    let log = server.requests();
    assert_eq!(
        log.iter()
            .filter(|r| r.path.ends_with("/auth/signin"))
            .count(),
        1,
        "{requests_before} before"
    );
    assert_eq!(
        count(&b.conn(), "SELECT count(*) FROM tableau_workbooks"),
        0
    );
    assert!(count(&a.conn(), "SELECT count(*) FROM tableau_workbooks") > 0);
    // Released with the first: the lock file is gone, and the second now runs.
    assert!(
        pat_locks(runtime.path()).is_empty(),
        "{:?}",
        pat_locks(runtime.path())
    );
    assert_ok(&b.run(&[], "run", &env));
    assert!(pat_locks(runtime.path()).is_empty());
    server.stop();
}

/// A PAT lock left by a dead process (its file still there, unlocked) is taken over.
#[test]
fn a_dead_process_pat_lock_is_taken_over() {
    let runtime = tempfile::tempdir().unwrap();
    let server = TableauServer::start(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
    );
    let ws = Workspace::new(&[SiteConfig::mini(&server.base_url)], None);
    let mut env = MINI_PAT.to_vec();
    env.push(("AUTOEXPOSE_RUNTIME_DIR", runtime.path().to_str().unwrap()));
    assert_ok(&ws.run(&[], "extract", &env));
    assert!(pat_locks(runtime.path()).is_empty());
    // A lock file as a killed process leaves it: written, locked by no one. Its name is the
    // hash of the server and the PAT's name (src/lock.rs, `session_lock_path`, kind `pat`).
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(format!("{}\n{}", server.base_url, MINI_PAT[0].1))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stale = runtime.path().join(format!("pat-{}.lock", &digest[..32]));
    std::fs::write(
        &stale,
        "pid 999999\nstarted 2026-01-01T00:00:00Z\nintegration mini\n",
    )
    .unwrap();
    let out = ws.run(&["-v"], "extract", &env);
    assert_ok(&out);
    assert!(
        !stale.exists(),
        "the taken-over lock file was not removed at the end"
    );
    server.stop();
}

/// Two integrations of one config with one PAT: refused at config load when they read the
/// name from one env var, and before any request when two env vars hold the same name.
#[test]
fn one_config_cannot_use_one_pat_twice() {
    let runtime = tempfile::tempdir().unwrap();
    let rt = runtime.path().to_str().unwrap();
    let server = TableauServer::start(
        &repo().join("testdata/tableau/mini.site.json"),
        Faults::default(),
    );
    let first = SiteConfig::mini(&server.base_url);
    let mut second = SiteConfig::mini(&server.base_url);
    second.name = "mini_again".into();

    let ws = Workspace::new(&[first.clone(), second.clone()], None);
    let mut env = MINI_PAT.to_vec();
    env.push(("AUTOEXPOSE_RUNTIME_DIR", rt));
    let out = ws.run(&[], "extract", &env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "tableau[0] (\"mini\") and tableau[1] (\"mini_again\") use the same PAT on {}: both read its name from env var AE_MINI_NAME",
            server.base_url
        )),
        "{err}"
    );

    second.token_env = ("AE_OTHER_NAME".into(), "AE_OTHER_SECRET".into());
    let ws = Workspace::new(&[first, second], None);
    env.extend([
        ("AE_OTHER_NAME", MINI_PAT[0].1),
        ("AE_OTHER_SECRET", MINI_PAT[1].1),
    ]);
    let out = ws.run(&[], "extract", &env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tableau \"mini_again\" and tableau \"mini\" sign in to")
            && err.contains("with the same PAT"),
        "{err}"
    );
    assert_eq!(
        server.request_count(),
        0,
        "a request was sent: {:?}",
        server
            .requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
    assert!(pat_locks(runtime.path()).is_empty());
    server.stop();
}
