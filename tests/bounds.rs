//! Bounds (issue #11, item 6): a server that stops sending fails after the read-idle timeout,
//! under the retry policy; `Retry-After` is capped (and the cap logged); a manifest that is
//! not a regular file or is larger than `dbt.max_manifest_mb` is refused before it is read.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::tableau_server::{Faults, NotDataFaults, TableauServer};

const PAT: [(&str, &str); 2] = [
    ("AE_TEST_PAT_NAME", "autoexpose-demo"),
    ("AE_TEST_PAT_SECRET", "demo-pat-secret"),
];

fn demo_fixture() -> std::path::PathBuf {
    repo().join("testdata/tableau/demo.site.json")
}

/// A server that reads each request, then answers (or not) and stops sending, holding the
/// connection open until it is stopped.
struct StallServer {
    url: String,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy, Debug)]
enum Stall {
    /// No byte of an answer.
    BeforeHeaders,
    /// The headers (Content-Length: 1000) and 20 bytes of the body.
    MidBody,
}

impl StallServer {
    fn start(stall: Stall) -> StallServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(5)))
                            .unwrap();
                        read_request_head(&mut stream);
                        if let Stall::MidBody = stall {
                            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/xml;charset=utf-8\r\nContent-Length: 1000\r\n\r\n";
                            let _ = stream.write_all(head.as_bytes());
                            let _ = stream.write_all(b"<?xml version='1.0'?>");
                            let _ = stream.flush();
                        }
                        held.push(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        StallServer {
            url,
            connections,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for StallServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request_head(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => return,
        }
    }
}

/// With `limits.read_idle_timeout_secs: 1`, a server that goes quiet (before the headers, or
/// in the middle of the body) costs about a second per try, not the whole-request timeout
/// (120 s by default): each of the 4 tries fails, then the run fails naming the call.
#[test]
fn a_server_that_stops_sending_fails_after_the_idle_timeout() {
    for stall in [Stall::MidBody, Stall::BeforeHeaders] {
        let server = StallServer::start(stall);
        let mut site = SiteConfig::demo(&server.url);
        site.extra
            .push_str("    limits: {read_idle_timeout_secs: 1}\n");
        let ws = Workspace::new(&[site], None);
        let started = Instant::now();
        let out = ws.run(&[], "extract", &PAT);
        let elapsed = started.elapsed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{stall:?}: {err}");
        let call = format!("GET {}/api/2.4/serverInfo: ", server.url);
        assert!(
            err.contains(&format!("error: tableau \"demo\"")),
            "{stall:?}: {err}"
        );
        assert!(
            err.contains(&format!(
                "{call}nothing arrived for 1 s (limits.read_idle_timeout_secs)"
            )),
            "{stall:?}: {err}"
        );
        assert!(
            err.contains("(try 4 of 4)"),
            "{stall:?}: not retried under the policy: {err}"
        );
        assert_eq!(
            server.connections.load(Ordering::SeqCst),
            4,
            "{stall:?}: {err}"
        );
        // Generous: 4 tries of ~1 s each; without the bound it would be 4 × 120 s.
        assert!(
            elapsed < Duration::from_secs(60),
            "{stall:?}: took {elapsed:?}"
        );
        assert_eq!(count(&ws.conn(), "SELECT count(*) FROM tableau_sites"), 0);
    }
}

/// `Retry-After: 100000` on a 429 and on a 503, with `retry.max_retry_after_secs: 1`: the run
/// waits a second per try, says it capped the wait, and finishes.
#[test]
fn retry_after_is_capped_in_a_real_run() {
    // Request 1 is serverInfo (2 its retry, 3 sign-in), 4 the projects list.
    let not_data = NotDataFaults {
        huge_retry_after_at: vec![(1, 503), (4, 429)],
        ..Default::default()
    };
    let server = TableauServer::start(
        &demo_fixture(),
        Faults {
            not_data,
            ..Faults::default()
        },
    );
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let capped = text.replace(
        "retry: {attempts: 4, base_delay_ms: 20}",
        "retry: {attempts: 4, base_delay_ms: 20, max_retry_after_secs: 1}",
    );
    assert_ne!(capped, text);
    std::fs::write(&ws.config, capped).unwrap();
    let started = Instant::now();
    let out = ws.run(&[], "extract", &PAT);
    let elapsed = started.elapsed();
    assert_ok(&out);
    let err = stderr(&out);
    let capped_lines = err
        .matches("Retry-After: 100000 is above retry.max_retry_after_secs; waiting 1s")
        .count();
    assert_eq!(capped_lines, 2, "{err}");
    assert!(
        err.contains("HTTP 503; retrying in 1.0s (try 2 of 4)"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 429; retrying in 1.0s (try 2 of 4)"),
        "{err}"
    );
    let log = server.requests();
    assert_eq!(
        (log[0].status, log[1].status, log[0].path == log[1].path),
        (503, 200, true),
        "{log:#?}"
    );
    assert_eq!(
        (log[3].status, log[4].status, log[3].path == log[4].path),
        (429, 200, true),
        "{log:#?}"
    );
    // Two waits of a second each, and nothing near 100000 s.
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(60),
        "took {elapsed:?}"
    );
    assert_eq!(count(&ws.conn(), "SELECT complete FROM tableau_sites"), 1);
    server.stop();
}

/// A manifest that is a symlink to /dev/zero or a FIFO is refused, naming the file, before
/// anything reads it (a FIFO without a writer would block the open; /dev/zero never ends).
#[test]
fn a_manifest_that_is_not_a_regular_file_is_refused() {
    let server = TableauServer::start(&demo_fixture(), Faults::default());
    let ws = Workspace::new(&[SiteConfig::demo(&server.base_url)], None);
    assert_ok(&ws.run(&[], "run", &PAT));
    let files = ws.yaml_files();
    assert!(!files.is_empty());
    let zero = ws.path("zero-manifest.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = ws.path("fifo-manifest.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let manifest_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("manifest:"))
        .unwrap()
        .to_string();
    for (path, what) in [(&zero, "a character device"), (&fifo, "a FIFO")] {
        std::fs::write(
            &ws.config,
            text.replace(&manifest_line, &format!("  manifest: {}", path.display())),
        )
        .unwrap();
        let started = Instant::now();
        let out = ws.run(&[], "run", &PAT);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains(&format!(
                "manifest {}: not a regular file ({what})",
                path.display()
            )),
            "{what}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: took {:?}",
            started.elapsed()
        );
        assert_eq!(ws.yaml_files(), files, "{what}: files changed");
    }
    server.stop();
}

/// `dbt.max_manifest_mb`: a manifest above it is refused before it is read, naming the file
/// and the setting; at or under it, it is read.
#[test]
fn a_manifest_larger_than_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("manifest.json");
    // The demo manifest, padded with whitespace to just over 1 MiB: still a valid manifest.
    let mut bytes = std::fs::read(demo_manifest()).unwrap();
    bytes.resize(1024 * 1024 + 1, b' ');
    std::fs::write(&big, &bytes).unwrap();
    let server = TableauServer::start(&demo_fixture(), Faults::default());
    let ws = Workspace::with_manifest(&[SiteConfig::demo(&server.base_url)], None, &big);
    let text = std::fs::read_to_string(&ws.config).unwrap();
    let with_limit = |mb: u64| text.replace("dbt:\n", &format!("dbt:\n  max_manifest_mb: {mb}\n"));
    std::fs::write(&ws.config, with_limit(1)).unwrap();
    let out = ws.run(&[], "run", &PAT);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "manifest {}: 2 MiB is larger than dbt.max_manifest_mb (1 MiB)",
            big.display()
        )),
        "{err}"
    );
    assert_eq!(count(&ws.conn(), "SELECT count(*) FROM dbt_nodes"), 0);
    assert!(
        server.requests().is_empty(),
        "requests sent before the manifest was refused: {:#?}",
        server.requests()
    );
    std::fs::write(&ws.config, with_limit(2)).unwrap();
    assert_ok(&ws.run(&[], "run", &PAT));
    assert!(count(&ws.conn(), "SELECT count(*) FROM dbt_nodes") > 0);
    server.stop();
}
