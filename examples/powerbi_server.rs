//! Runs the local Power BI test server (tests/support/powerbi_server.rs) until killed.
//!
//! ```text
//! cargo run --example powerbi_server -- --fixture testdata/powerbi/corp.tenant.json [--port N]
//!     [--rate-limit-at 3,7] [--expire-token-after N] [--token-expires-in SECS]
//!     [--polls-to-succeed N] [--upper-case-statuses] [--fail-scans-of ID,ID] [--never-finish]
//!     [--cut-body-at 4,9] [--refresh-running ID,ID] [--running-as-400] [--daily-limit-of ID,ID]
//!     [--refresh-forbidden ID,ID] [--refresh-fails-of ID,ID] [--refresh-polls N]
//!     [--scheduled-after-post] [--refresh-location] [--refresh-clock RFC3339] [--quiet]
//! ```
//! Prints `listening on http://127.0.0.1:PORT` on stdout (use it as both `api_url` and
//! `login_url`), then one line per request on stderr.

#[path = "../tests/support/powerbi_server.rs"]
mod powerbi_server;

use std::io::Write;
use std::path::PathBuf;

use powerbi_server::{Faults, PowerBiServer};

const USAGE: &str = "usage: powerbi_server --fixture FILE [--port N] [--rate-limit-at N,N] [--expire-token-after N] \
[--token-expires-in SECS] [--polls-to-succeed N] [--upper-case-statuses] [--fail-scans-of ID,ID] [--never-finish] \
[--cut-body-at N,N] [--refresh-running ID,ID] [--running-as-400] [--daily-limit-of ID,ID] \
[--refresh-forbidden ID,ID] [--refresh-fails-of ID,ID] [--refresh-polls N] [--scheduled-after-post] [--refresh-location] \
[--refresh-clock RFC3339] [--quiet]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut fixture, mut port, mut echo, mut faults) = (None, 0u16, true, Faults::default());
    let mut clock: Option<String> = None;
    let mut it = args.into_iter();
    let fail = |msg: String| -> ! {
        eprintln!("powerbi_server: {msg}\n{USAGE}");
        std::process::exit(2)
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| fail(format!("{flag} needs a value")))
        };
        let number = |v: String| {
            v.trim()
                .parse::<usize>()
                .unwrap_or_else(|_| fail(format!("not a number: {v}")))
        };
        let numbers = |v: String| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| number(s.to_string()))
                .collect::<Vec<_>>()
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            "--fixture" => fixture = Some(PathBuf::from(value())),
            "--port" => port = number(value()) as u16,
            "--quiet" => echo = false,
            "--rate-limit-at" => faults.rate_limit_at.extend(numbers(value())),
            "--cut-body-at" => faults.cut_body_at.extend(numbers(value())),
            "--expire-token-after" => faults.expire_token_after = Some(number(value())),
            "--token-expires-in" => faults.token_expires_in = number(value()) as u64,
            "--polls-to-succeed" => faults.polls_to_succeed = number(value()) as u32,
            "--upper-case-statuses" => faults.upper_case_statuses = true,
            "--fail-scans-of" => faults.fail_scans_of.extend(
                value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "--never-finish" => faults.never_finish = true,
            "--latency-ms" => faults.latency_ms = number(value()) as u64,
            "--refresh-running" => faults.refresh_running.extend(
                value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "--running-as-400" => faults.running_as_400 = true,
            "--daily-limit-of" => faults.daily_limit_of.extend(
                value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "--refresh-forbidden" => faults.refresh_forbidden.extend(
                value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "--refresh-fails-of" => faults.refresh_fails_of.extend(
                value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "--refresh-polls" => faults.refresh_polls = number(value()) as u32,
            "--scheduled-after-post" => faults.scheduled_after_post = true,
            "--refresh-location" => faults.refresh_location = true,
            "--refresh-clock" => clock = Some(value()),
            other => fail(format!("unknown argument {other}")),
        }
    }
    let fixture = fixture.unwrap_or_else(|| fail("--fixture is required".into()));
    if !fixture.is_file() {
        fail(format!("fixture {} does not exist", fixture.display()));
    }
    let server = PowerBiServer::start_on(&fixture, faults, port, echo);
    if let Some(c) = clock {
        server.set_refresh_clock(&c);
    }
    // Standalone, the server judges `modifiedSince` on the system clock, as the service does
    // on its own: a client's incremental rerun against it sends a time from that clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    server.set_now_epoch(now);
    // Its fixture's workspaces without `modified_at` changed when it started on that fixture
    // (a restart on another fixture is the tenant after a day of work).
    server.set_unstamped_modified_at(now);
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", server.base_url).expect("stdout");
    out.flush().expect("stdout");
    loop {
        std::thread::park();
    }
}
