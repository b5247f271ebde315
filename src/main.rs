//! The `autoexpose` binary: parses the command line, runs the library's `run`, prints its
//! error once, and exits with the code the library decides (`autoexpose::exit_code`).

/// mimalloc rather than glibc's allocator: stages allocate and free millions of short strings
/// and a few buffers of hundreds of MB, and glibc's consolidation of those (malloc_consolidate,
/// unlink_chunk) took about a tenth of a run on the 50k-model benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

/// `mi_option_purge_delay` in the mimalloc that libmimalloc-sys 0.1.49 builds (v3's
/// `mi_option_e`, include/mimalloc.h: "memory purging is delayed by N milli seconds; use 0 for
/// immediate purging or -1 for no purging at all"; its default, src/options.c, is 1000). The
/// crate's bindings leave this option out; the test below checks the index still names it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A run is one batch process that ends in seconds, and it frees and reallocates hundreds of MB
/// stage after stage. mimalloc gives freed memory back to the kernel a second after it is free,
/// and the kernel then zeroes every page again when it is reused: at 20k workbooks that was
/// 0.6–1.3 s of system time (perf: clear_page under page faults) out of a 4 s run. Kept
/// instead, the memory is reused as it is; peak RSS grows a few percent (908 → 930–964 MB at L).
fn keep_freed_memory() {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> ExitCode {
    keep_freed_memory();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The index sits just before an option the bindings do name, and reads as the documented
    /// default (1000 ms) until set: a mimalloc whose enum moved fails here, not silently.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        assert_eq!(
            libmimalloc_sys::mi_option_use_numa_nodes - 1,
            MI_OPTION_PURGE_DELAY
        );
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads mimalloc's option table.
            assert_eq!(
                unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
                1000
            );
        }
        keep_freed_memory();
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            -1
        );
    }
}
