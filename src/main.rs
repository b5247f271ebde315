//! autoexpose: Tableau workbooks as dbt exposures, one SQLite file as the record of every
//! decision. `main` only parses arguments, runs, and maps the outcome to an exit code.

/// mimalloc rather than glibc's allocator: stages allocate and free millions of short strings
/// and a few buffers of hundreds of MB, and glibc's consolidation of those (malloc_consolidate,
/// unlink_chunk) took about a tenth of a run on the 50k-model benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod atomic;
mod bulk;
mod cli;
mod clock;
mod config;
mod db;
mod emit;
mod emit_pending;
mod extract;
mod fault;
mod http;
mod keys;
mod lock;
mod log;
mod manifest;
mod matching;
mod naming;
mod normalize;
mod pipeline;
#[cfg(test)]
mod proptests;
mod refresh;
mod rows;
mod run;
mod tags;
mod yaml;
mod run_results;
mod tableau;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::parse();
    log::init(args.verbosity(), args.log_format);
    let code = match pipeline::run(&args) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            log::error(&format!("{err:#}"));
            ExitCode::from(pipeline::EXIT_ERROR)
        }
    };
    if let Some(kib) = peak_rss_kib() {
        log::debug(&format!("peak RSS: {kib} KiB"));
    }
    if let Some((user, system)) = cpu_seconds() {
        log::debug(&format!("CPU time: user {user:.3}s, system {system:.3}s"));
    }
    code
}

/// The process's CPU time so far, all threads, in seconds (user, system), where /proc tells
/// it. Steadier than wall time on a shared machine, so the benchmark reports both.
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    // USER_HZ is 100 on every Linux the kernel ABI allows user space to see.
    Some((ticks(14)? / 100.0, ticks(15)? / 100.0))
}

/// The process's peak resident set (VmHWM), where /proc tells it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
