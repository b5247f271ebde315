//! Runs the local Tableau test server (tests/support/tableau_server.rs) until killed.
//!
//! ```text
//! cargo run --example tableau_server -- --fixture testdata/tableau/demo.site.json [--port N]
//!     [--rate-limit-at 3,7] [--server-error-at 4] [--expire-token-after N]
//!     [--node-limit-above N] [--max-page-size N [--max-page-size-named]] [--cut-body-at 4,9]
//!     [--permissions-mode-switched]
//!     [--metadata-timeout-at 5,6] [--metadata-cancel-timeout-at 5] [--metadata-rate-exceeded-at 5]
//!     [--redirect-signin] [--refresh-forbidden LUID,LUID] [--job-outcome LUID=CODE[:NOTES]]...
//!     [--job-polls-to-finish N] [--refresh-in-flight-limit N] [--redact-tables] [--quiet]
//! ```
//! Prints `listening on http://127.0.0.1:PORT` on stdout, then one line per request on stderr.

#[path = "../tests/support/tableau_server.rs"]
mod tableau_server;

use std::io::Write;
use std::path::PathBuf;

use tableau_server::{Faults, ServerOptions, TableauServer};

const USAGE: &str = "usage: tableau_server --fixture FILE [--port N] [--rate-limit-at N,N] \
[--server-error-at N,N] [--expire-token-after N] [--node-limit-above N] [--max-page-size N] \
[--max-page-size-named] [--cut-body-at N,N] \
[--permissions-mode-switched] [--metadata-timeout-at N,N] [--metadata-cancel-timeout-at N,N] \
[--metadata-rate-exceeded-at N,N] [--redirect-signin] [--refresh-forbidden LUID,LUID] \
[--job-outcome LUID=CODE[:NOTES]]... [--job-polls-to-finish N] [--refresh-in-flight-limit N] [--redact-tables] [--latency-ms N] [--quiet]";

fn main() {
    match parse(std::env::args().skip(1).collect()) {
        Ok(Some((fixture, faults, options))) => run(&fixture, faults, options),
        Ok(None) => println!("{USAGE}"),
        Err(msg) => {
            eprintln!("tableau_server: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    }
}

fn run(fixture: &std::path::Path, faults: Faults, options: ServerOptions) {
    let server = TableauServer::start_with(fixture, faults, options);
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", server.base_url).expect("stdout");
    out.flush().expect("stdout");
    loop {
        std::thread::park();
    }
}

type Parsed = (PathBuf, Faults, ServerOptions);

fn parse(args: Vec<String>) -> Result<Option<Parsed>, String> {
    let mut fixture = None;
    let mut faults = Faults::default();
    let mut options = ServerOptions {
        port: 0,
        echo_requests: true,
        latency_ms: 0,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--fixture" => fixture = Some(PathBuf::from(value()?)),
            "--port" => options.port = number(&flag, &value()?)?,
            "--latency-ms" => options.latency_ms = number(&flag, &value()?)?,
            "--quiet" => options.echo_requests = false,
            "--rate-limit-at" => faults.rate_limit_at.extend(numbers(&flag, &value()?)?),
            "--server-error-at" => faults.server_error_at.extend(numbers(&flag, &value()?)?),
            "--expire-token-after" => faults.expire_token_after = Some(number(&flag, &value()?)?),
            "--node-limit-above" => faults.node_limit_above = Some(number(&flag, &value()?)?),
            "--max-page-size" => faults.max_page_size = Some(number(&flag, &value()?)?),
            "--max-page-size-named" => faults.max_page_size_named = true,
            "--cut-body-at" => faults.cut_body_at.extend(numbers(&flag, &value()?)?),
            "--permissions-mode-switched" => faults.permissions_mode_switched = true,
            "--metadata-timeout-at" => faults
                .metadata_timeout_at
                .extend(numbers(&flag, &value()?)?),
            "--metadata-cancel-timeout-at" => faults
                .metadata_cancel_timeout_at
                .extend(numbers(&flag, &value()?)?),
            "--metadata-rate-exceeded-at" => faults
                .metadata_rate_exceeded_at
                .extend(numbers(&flag, &value()?)?),
            "--redirect-signin" => faults.redirect_signin = true,
            "--refresh-forbidden" => faults.refresh_forbidden.extend(
                value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "--job-outcome" => {
                let v = value()?;
                let (luid, rest) = v
                    .split_once('=')
                    .ok_or_else(|| format!("{flag} wants LUID=CODE[:NOTES], got {v}"))?;
                let (code, notes) = match rest.split_once(':') {
                    Some((c, n)) => (c, Some(n.to_string())),
                    None => (rest, None),
                };
                faults
                    .job_outcomes
                    .insert(luid.to_string(), (number(&flag, code)?, notes));
            }
            "--refresh-in-flight-limit" => {
                faults.refresh_in_flight_limit = Some(number(&flag, &value()?)?)
            }
            "--redact-tables" => faults.redact_tables = true,
            "--job-polls-to-finish" => faults.job_polls_to_finish = number(&flag, &value()?)?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let fixture = fixture.ok_or("--fixture is required")?;
    if !fixture.is_file() {
        return Err(format!("fixture {} does not exist", fixture.display()));
    }
    Ok(Some((fixture, faults, options)))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{flag}: not a number: {v}"))
}

fn numbers(flag: &str, v: &str) -> Result<Vec<usize>, String> {
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| number(flag, s))
        .collect()
}
