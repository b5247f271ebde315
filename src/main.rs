//! The `autoexpose` binary: parses the command line, runs the library's `run`, prints its
//! error once, and exits with the code the library decides (`autoexpose::exit_code`).

/// mimalloc rather than glibc's allocator: stages allocate and free millions of short strings
/// and a few buffers of hundreds of MB, and glibc's consolidation of those (malloc_consolidate,
/// unlink_chunk) took about a tenth of a run on the 50k-model benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = autoexpose::cli::parse();
    let result = autoexpose::run(&args);
    if let Err(err) = &result {
        autoexpose::log::error(&format!("{err:#}"));
    }
    let code = autoexpose::exit_code(&result);
    if let Some(kib) = peak_rss_kib() {
        autoexpose::log::debug(&format!("peak RSS: {kib} KiB"));
    }
    if let Some((user, system)) = cpu_seconds() {
        autoexpose::log::debug(&format!("CPU time: user {user:.3}s, system {system:.3}s"));
    }
    if let Some(bytes) = bytes_written() {
        autoexpose::log::debug(&format!("bytes written: {bytes}"));
    }
    // The process ends here: let go of what the run kept (its stages' rows, millions of
    // strings) without freeing it piece by piece, which took 0.15 s of CPU at 20k workbooks.
    // The operating system takes the memory back at once.
    std::mem::forget(result);
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

/// The bytes this process caused to be written to storage (`write_bytes` of /proc/self/io:
/// the database, its journal, the files; what a rerun's writes are measured by).
fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The process's peak resident set (VmHWM), where /proc tells it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
