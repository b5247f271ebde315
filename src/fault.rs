//! Crash and disk-full points for the tests that prove a bad night loses nothing.
//!
//! `AUTOEXPOSE_FAULT=<point>@<n>` makes the n-th pass through `<point>` end the process with
//! `abort()` — no destructors, no flushed buffers, no rollback: what a SIGKILL there leaves.
//! `<point>` may be `*`, which counts every point, so a test can walk a whole run
//! (`*@1`, `*@2`, … until the run ends on its own) and check after each that the files and the
//! database agree. `AUTOEXPOSE_FAULT=<point>@<n>:enospc` makes `fail` return a "no space left
//! on device" error there instead, as a full disk would.
//!
//! Only debug builds (what `cargo test` runs) read the variable; in a release build every
//! call is an empty inline function, so a stray variable in production cannot crash a run.

#[cfg(debug_assertions)]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    pub(super) struct Spec {
        pub point: String,
        pub at: u64,
        pub enospc: bool,
    }

    static SPEC: OnceLock<Option<Spec>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    pub(super) fn spec() -> Option<&'static Spec> {
        SPEC.get_or_init(|| {
            let v = std::env::var("AUTOEXPOSE_FAULT").ok()?;
            let (rest, enospc) = match v.strip_suffix(":enospc") {
                Some(r) => (r, true),
                None => (v.as_str(), false),
            };
            let (point, at) = rest.rsplit_once('@')?;
            Some(Spec {
                point: point.to_string(),
                at: at.parse().ok()?,
                enospc,
            })
        })
        .as_ref()
    }

    /// Whether this pass through `point` is the one the variable names.
    pub(super) fn due(point: &str) -> Option<&'static Spec> {
        let spec = spec()?;
        if spec.point != "*" && spec.point != point {
            return None;
        }
        let n = HITS.fetch_add(1, Ordering::SeqCst) + 1;
        (n == spec.at).then_some(spec)
    }
}

/// A moment a kill could fall on. Ends the process here when the variable names it.
#[inline]
pub(crate) fn point(name: &str) {
    #[cfg(debug_assertions)]
    if let Some(spec) = imp::due(name) {
        if !spec.enospc {
            eprintln!("autoexpose: AUTOEXPOSE_FAULT: aborting at {name}");
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// A write that a full disk could refuse. Returns the error a full disk gives when the
/// variable names it with `:enospc`; aborts like `point` when it names it without.
#[inline]
pub(crate) fn fail(name: &str) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    if let Some(spec) = imp::due(name) {
        if spec.enospc {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        eprintln!("autoexpose: AUTOEXPOSE_FAULT: aborting at {name}");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
    Ok(())
}
