//! autoexpose: Tableau workbooks as dbt exposures, one SQLite file as the record of every
//! decision. `main` only parses arguments, runs, and maps the outcome to an exit code.

/// mimalloc rather than glibc's allocator: stages allocate and free millions of short strings
/// and a few buffers of hundreds of MB, and glibc's consolidation of those (malloc_consolidate,
/// unlink_chunk) took about a tenth of a run on the 50k-model benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod atomic;
mod cli;
mod clock;
mod config;
mod db;
mod emit;
mod extract;
mod http;
mod keys;
mod log;
mod manifest;
mod matching;
mod naming;
mod normalize;
mod pipeline;
mod refresh;
mod rows;
mod run;
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
    code
}

/// The process's peak resident set (VmHWM), where /proc tells it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
