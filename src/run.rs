//! `autoexpose run`: extract, normalize, match and emit, with the SQLite writes on a second
//! thread. Each stage is worked out from the previous stage's rows in memory, then handed to
//! the writer; while the writer stores one stage's rows, the next stage is already being
//! worked out. On two cores that hides most of the writing (a third of a large run) behind
//! the work.
//!
//! The file goes through the same states as with the stages run one by one: the writer runs
//! the stages' writes in order, each in its own transaction with its `runs` row, and after a
//! failure (its own, or a stage that could not be worked out) it writes nothing more. Emit's
//! files are written by the writer too, after the earlier stages committed.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::Scope;

use anyhow::{anyhow, Result};
use rusqlite::Connection;

use crate::config::Config;
use crate::db;
use crate::emit::{self, EmitSummary};
use crate::extract;
use crate::http::HttpMode;
use crate::log;
use crate::matching;
use crate::normalize;

/// Whether any site was incomplete, and what emit did.
pub(crate) struct Ran {
    pub(crate) incomplete: bool,
    pub(crate) summary: EmitSummary,
}

type Job<'a> = Box<dyn FnOnce(&mut Connection) -> Result<()> + Send + 'a>;

/// The writer's end: jobs run in the order sent, until one fails.
struct Writer<'a> {
    jobs: mpsc::Sender<Job<'a>>,
}

impl<'a> Writer<'a> {
    fn spawn<'env>(scope: &'a Scope<'a, 'env>, conn: &'a mut Connection) -> (Writer<'a>, std::thread::ScopedJoinHandle<'a, Result<()>>) {
        let (jobs, queue) = mpsc::channel::<Job<'a>>();
        let handle = scope.spawn(move || {
            for job in queue {
                job(conn)?;
            }
            Ok(())
        });
        (Writer { jobs }, handle)
    }

    /// Queues a stage's writes, bracketed by its `runs` row.
    fn stage(&self, config: &'a Config, stage: &'static str, write: impl FnOnce(&mut Connection) -> Result<db::StageReport> + Send + 'a) {
        // A send fails only when the writer stopped after a failure, which join reports.
        let _ = self.jobs.send(Box::new(move |c| db::run_stage(c, stage, &config.sha256, write).map(|_| ())));
    }

    /// Records that `stage` failed before it had anything to write; the writer then stops.
    fn failed(&self, config: &'a Config, stage: &'static str, error: anyhow::Error) {
        self.stage(config, stage, move |_| Err(error));
    }
}

/// Runs the four stages, writing into `conn`.
/// `allow_empty`: as `emit --allow-empty` (`emit::refuse_empty`).
pub(crate) fn run(conn: &mut Connection, config: &Config, mode: &HttpMode, allow_empty: bool) -> Result<Ran> {
    let summary: Mutex<Option<EmitSummary>> = Mutex::new(None);
    let (incomplete, written) = std::thread::scope(|scope| {
        let (writer, handle) = Writer::spawn(scope, conn);
        let incomplete = work(&writer, config, mode, &summary, allow_empty);
        drop(writer);
        (incomplete, handle.join())
    });
    written.map_err(|_| anyhow!("the SQLite writer thread panicked"))??;
    let incomplete = incomplete.ok_or_else(|| anyhow!("a stage failed without saying why"))?;
    let summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Ran { incomplete, summary: summary.ok_or_else(|| anyhow!("emit wrote nothing"))? })
}

/// Works out each stage and queues its writes. `None` when a stage failed: its error went to
/// the writer, which records it in `runs` and reports it.
fn work<'a>(writer: &Writer<'a>, config: &'a Config, mode: &HttpMode, summary: &'a Mutex<Option<EmitSummary>>, allow_empty: bool) -> Option<bool> {
    let timed = |stage: &str, started: std::time::Instant| {
        log::debug(&format!("stage {stage} worked out in {:.3}s", started.elapsed().as_secs_f64()));
    };
    let started = std::time::Instant::now();
    let (read, x) = match extract::read(config, mode) {
        Ok(r) => r,
        Err(e) => {
            writer.failed(config, "extract", e);
            return None;
        }
    };
    let x = Arc::new(x);
    let incomplete = read.incomplete;
    timed("extract", started);
    let xw = Arc::clone(&x);
    writer.stage(config, "extract", move |c| {
        let written = extract::write(c, config, &read, &xw);
        left_to_exit((read, xw));
        written
    });

    let started = std::time::Instant::now();
    let keys = Arc::new(normalize::compute(&x, config));
    timed("normalize", started);
    let kw = Arc::clone(&keys);
    writer.stage(config, "normalize", move |c| {
        let written = normalize::write(c, &kw);
        left_to_exit(kw);
        written
    });

    let started = std::time::Instant::now();
    let matched = Arc::new(matching::compute(&x, &keys));
    timed("match", started);
    let (mx, mk, mw) = (Arc::clone(&x), Arc::clone(&keys), Arc::clone(&matched));
    writer.stage(config, "match", move |c| {
        let written = matching::write(c, &mx, &mk, &mw);
        left_to_exit((mx, mk, mw));
        written
    });

    let started = std::time::Instant::now();
    let plan = match emit::plan(config, &x, &matched.links(&x), allow_empty) {
        Ok(p) => p,
        Err(e) => {
            writer.failed(config, "emit", e);
            return None;
        }
    };
    timed("emit", started);
    left_to_exit((x, keys, matched));
    writer.stage(config, "emit", move |c| {
        let (report, s) = emit::write(c, config, plan)?;
        *summary.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
        Ok(report)
    });
    Some(incomplete)
}

/// Lets go of the stages' rows without freeing them: the process ends right after `run` (and
/// the refresh that may follow needs little memory), and freeing millions of strings one by
/// one took 0.15 s of CPU at 20k workbooks, on whichever thread dropped the last reference,
/// often the writer's, in the middle of the run. Peak memory is the same either way.
fn left_to_exit<T>(rows: T) {
    std::mem::forget(rows);
}
