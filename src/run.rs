//! The stage driver: the one place that knows the stages' order (extract → normalize → match
//! → emit → refresh), what a stage run alone reads back from the database, and the `runs` row
//! around every stage (`record`, the only caller of `db::run_stage`). `autoexpose run` drives
//! them all; a single-stage command (`autoexpose normalize`, ...) drives one.
//!
//! `run` has the SQLite writes on a second thread. Each stage is worked out from the previous
//! stage's rows in memory, then handed to the writer; while the writer stores one stage's rows,
//! the next stage is already being worked out. On two cores that hides most of the writing (a
//! third of a large run) behind the work.
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

use crate::cli::RefreshArgs;
use crate::config::{ActiveExposures, Config};
use crate::db::{self, StageReport};
use crate::emit::{self, EmitSummary};
use crate::extract;
use crate::http::HttpMode;
use crate::log;
use crate::matching::{self, Matched};
use crate::normalize::{self, RelationKey};
use crate::rows::Extracted;

/// The stages, in the order they run: each reads the tables of the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Extract,
    Normalize,
    Match,
    Emit,
    Refresh,
}

impl Stage {
    const ORDER: [Stage; 5] = [
        Stage::Extract,
        Stage::Normalize,
        Stage::Match,
        Stage::Emit,
        Stage::Refresh,
    ];

    /// Its name, in `runs.stage` and on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::Extract => "extract",
            Stage::Normalize => "normalize",
            Stage::Match => "match",
            Stage::Emit => "emit",
            Stage::Refresh => "refresh",
        }
    }

    /// The stage whose tables this one reads: it must have succeeded in the database before
    /// this one runs alone.
    fn before(self) -> Option<Stage> {
        let i = Stage::ORDER.iter().position(|s| *s == self)?;
        Stage::ORDER.get(i.checked_sub(1)?).copied()
    }
}

/// Which stages to drive.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Steps {
    /// Every stage in order, as `autoexpose run`: extract to emit pipelined, then the summary,
    /// then refresh (when `Options::refresh` says so).
    All,
    /// One stage, its inputs read back from the database (`autoexpose normalize`, ...).
    One(Stage),
}

/// What the stages need beyond the config.
pub(crate) struct Options<'a> {
    /// As `emit --allow-empty` (`emit::refuse_empty`).
    pub(crate) allow_empty: bool,
    /// Refresh's arguments and settled switches; `None`: no refresh (active exposures are
    /// disabled).
    pub(crate) refresh: Option<(&'a RefreshArgs, ActiveExposures)>,
}

/// What the driven stages came to.
#[derive(Default)]
pub(crate) struct Driven {
    /// Some site's extraction was incomplete.
    pub(crate) incomplete: bool,
    /// Some refresh target failed.
    pub(crate) refresh_failed: bool,
    /// The rows `run`'s stages worked with, handed to the caller to free (or not) when it
    /// likes: freeing millions of strings one by one took 0.15 s of CPU at 20k workbooks, and
    /// a process that exits next need not (the binary lets them go with `mem::forget`).
    pub(crate) rows: Option<Rows>,
}

/// The rows of a `run`, owned (see `Driven::rows`).
pub(crate) struct Rows {
    _read: Option<extract::Read>,
    _extracted: Arc<Extracted>,
    _keys: Arc<Vec<RelationKey>>,
    _matched: Arc<Matched>,
}

/// Drives `steps` over `conn`. After emit, `run` calls `after_emit` with emit's summary and
/// whether the extraction was incomplete (the command prints its summary there).
pub(crate) fn drive(
    conn: &mut Connection,
    config: &Config,
    mode: &HttpMode,
    steps: Steps,
    opts: &Options,
    after_emit: impl FnOnce(&Connection, &EmitSummary, bool) -> Result<()>,
) -> Result<Driven> {
    match steps {
        Steps::All => {
            let (incomplete, summary, rows) = pipelined(conn, config, mode, opts.allow_empty)?;
            after_emit(conn, &summary, incomplete)?;
            let refresh_failed = match &opts.refresh {
                Some(refresh) => self::refresh(conn, config, mode, refresh)?,
                None => false,
            };
            Ok(Driven {
                incomplete,
                refresh_failed,
                rows: Some(rows),
            })
        }
        Steps::One(stage) => alone(conn, config, mode, stage, opts),
    }
}

/// Runs `body` as `stage`, bracketed by its `runs` row (`db::run_stage`), and hands back what
/// it produced.
fn record<T>(
    conn: &mut Connection,
    config: &Config,
    stage: Stage,
    body: impl FnOnce(&mut Connection) -> Result<(StageReport, T)>,
) -> Result<(StageReport, T)> {
    let mut out = None;
    let report = db::run_stage(conn, stage.name(), &config.sha256, |c| {
        let (report, value) = body(c)?;
        out = Some(value);
        Ok(report)
    })?;
    let value =
        out.ok_or_else(|| anyhow!("stage {} succeeded without its result", stage.name()))?;
    Ok((report, value))
}

/// Fails unless the stage `stage` reads the tables of has succeeded in the database.
fn require_before(conn: &Connection, config: &Config, stage: Stage) -> Result<()> {
    match stage.before() {
        Some(before) => db::require_stage(conn, before.name(), &config.database),
        None => Ok(()),
    }
}

/// Runs `stage` alone, reading its inputs back from the file where `run` hands them over.
///
/// One state for all of them. Each loader reads on a connection of its own (in parallel)
/// inside one read transaction, so its tables agree with each other; and the loaders agree
/// with one another because nothing can commit between their reads:
/// - another autoexpose cannot: the per-database lock (`lock.rs`, taken in `pipeline::run`)
///   is held for the whole command, and this process writes nothing until the loads end;
/// - a foreign writer (the sqlite3 shell, another tool that ignores the lock) cannot either
///   while `one_state` holds its read transaction on `conn`: in SQLite's rollback journal mode,
///   which autoexpose's files use, a commit waits for every SHARED lock to go. What such a
///   writer can do is make the loads fail: once it waits to commit (PENDING), new readers get
///   SQLITE_BUSY, reported naming the database (`db::name_busy`); it cannot mix two states.
///   Were the file switched to WAL mode by hand, readers would no longer hold writers off, and
///   each loader would see the state of its own first read.
fn alone(
    conn: &mut Connection,
    config: &Config,
    mode: &HttpMode,
    stage: Stage,
    opts: &Options,
) -> Result<Driven> {
    let db = &config.database;
    let mut driven = Driven::default();
    match stage {
        Stage::Extract => {
            let (report, _x) = record(conn, config, stage, |c| extract::run(c, config, mode))?;
            driven.incomplete = report.incomplete;
        }
        Stage::Normalize => {
            let x = one_state(conn, || {
                require_before(conn, config, stage)?;
                Extracted::load(db)
            })?;
            record(conn, config, stage, |c| normalize::run(c, config, &x))?;
        }
        Stage::Match => {
            let (x, keys) = one_state(conn, || {
                require_before(conn, config, stage)?;
                let (x, keys) = rayon::join(|| Extracted::load(db), || normalize::load(db));
                Ok((x?, keys?))
            })?;
            record(conn, config, stage, |c| {
                Ok((matching::run(c, &x, &keys)?, ()))
            })?;
        }
        Stage::Emit => {
            let (x, deps) = one_state(conn, || {
                require_before(conn, config, stage)?;
                let (x, deps) = rayon::join(|| Extracted::load(db), || matching::load(db));
                Ok((x?, deps?))
            })?;
            let links: Vec<_> = deps.iter().map(|d| d.link()).collect();
            record(conn, config, stage, |c| {
                emit::run(c, config, &x, &links, opts.allow_empty)
            })?;
        }
        Stage::Refresh => {
            if let Some(refresh) = &opts.refresh {
                require_before(conn, config, stage)?;
                driven.refresh_failed = self::refresh(conn, config, mode, refresh)?;
            }
        }
    }
    Ok(driven)
}

/// Runs `load` inside a read transaction on `conn`, whose SHARED lock (taken by its first
/// read, held to the end) keeps any writer from committing while the loaders, on connections
/// of their own, read: see `alone`.
fn one_state<T>(conn: &Connection, load: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN DEFERRED")?;
    let loaded = conn
        .query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
        .map_err(anyhow::Error::from)
        .and_then(|_| load());
    // Nothing was written: COMMIT and ROLLBACK end it alike.
    let ended = conn.execute_batch("COMMIT");
    let value = loaded?;
    ended?;
    Ok(value)
}

/// Runs stage refresh; whether some target failed.
fn refresh(
    conn: &mut Connection,
    config: &Config,
    mode: &HttpMode,
    (args, settings): &(&RefreshArgs, ActiveExposures),
) -> Result<bool> {
    let now = crate::clock::Instant::from_arg(args.now.as_deref())?;
    let opts = crate::refresh::Options {
        now,
        dry_run: args.dry_run,
        wait: args.wait,
        wait_timeout: std::time::Duration::from_secs(args.wait_timeout),
        settings: *settings,
    };
    let (_, summary) = record(conn, config, Stage::Refresh, |c| {
        crate::refresh::run(c, config, mode, &opts)
    })?;
    Ok(summary.any_failure())
}

type Job<'a> = Box<dyn FnOnce(&mut Connection) -> Result<()> + Send + 'a>;

/// The writer's end: jobs run in the order sent, until one fails.
struct Writer<'a> {
    jobs: mpsc::Sender<Job<'a>>,
}

impl<'a> Writer<'a> {
    fn spawn<'env>(
        scope: &'a Scope<'a, 'env>,
        conn: &'a mut Connection,
    ) -> (Writer<'a>, std::thread::ScopedJoinHandle<'a, Result<()>>) {
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
    fn stage(
        &self,
        config: &'a Config,
        stage: Stage,
        write: impl FnOnce(&mut Connection) -> Result<StageReport> + Send + 'a,
    ) {
        let job =
            move |c: &mut Connection| record(c, config, stage, |c| Ok((write(c)?, ()))).map(|_| ());
        // A send fails only when the writer stopped after a failure, which join reports.
        let _ = self.jobs.send(Box::new(job));
    }

    /// Records that `stage` failed before it had anything to write; the writer then stops.
    fn failed(&self, config: &'a Config, stage: Stage, error: anyhow::Error) {
        self.stage(config, stage, move |_| Err(error));
    }
}

/// Runs extract, normalize, match and emit, writing into `conn` on a second thread: whether
/// the extraction was incomplete, what emit did, and the rows.
fn pipelined(
    conn: &mut Connection,
    config: &Config,
    mode: &HttpMode,
    allow_empty: bool,
) -> Result<(bool, EmitSummary, Rows)> {
    let summary: Mutex<Option<EmitSummary>> = Mutex::new(None);
    let read: Mutex<Option<extract::Read>> = Mutex::new(None);
    let (worked, written) = std::thread::scope(|scope| {
        let (writer, handle) = Writer::spawn(scope, conn);
        let worked = work(&writer, config, mode, &summary, &read, allow_empty);
        drop(writer);
        (worked, handle.join())
    });
    written.map_err(|_| anyhow!("the SQLite writer thread panicked"))??;
    let (incomplete, (x, keys, matched)) =
        worked.ok_or_else(|| anyhow!("a stage failed without saying why"))?;
    let summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    let summary = summary.ok_or_else(|| anyhow!("emit wrote nothing"))?;
    let read = read.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok((
        incomplete,
        summary,
        Rows {
            _read: read,
            _extracted: x,
            _keys: keys,
            _matched: matched,
        },
    ))
}

/// The stages' rows in memory, shared with the writer's jobs.
type Shared = (Arc<Extracted>, Arc<Vec<RelationKey>>, Arc<Matched>);

/// Works out each stage and queues its writes; hands back whether the extraction was
/// incomplete, and the rows. `None` when a stage failed: its error went to the writer, which
/// records it in `runs` and reports it.
///
/// The writer's jobs drop only their clones of the rows' `Arc`s: this thread keeps its own
/// until the writer is done, so the writer never frees them in the middle of the run. Extract's
/// `Read` goes back into `read` once written, for the caller to drop.
fn work<'a>(
    writer: &Writer<'a>,
    config: &'a Config,
    mode: &HttpMode,
    summary: &'a Mutex<Option<EmitSummary>>,
    read: &'a Mutex<Option<extract::Read>>,
    allow_empty: bool,
) -> Option<(bool, Shared)> {
    let timed = |stage: Stage, started: std::time::Instant| {
        log::debug(&format!(
            "stage {} worked out in {:.3}s",
            stage.name(),
            started.elapsed().as_secs_f64()
        ));
    };
    let started = std::time::Instant::now();
    let (got, x) = match extract::read(config, mode) {
        Ok(r) => r,
        Err(e) => {
            writer.failed(config, Stage::Extract, e);
            return None;
        }
    };
    let x = Arc::new(x);
    let incomplete = got.incomplete;
    timed(Stage::Extract, started);
    let xw = Arc::clone(&x);
    writer.stage(config, Stage::Extract, move |c| {
        let written = extract::write(c, config, &got, &xw);
        *read.lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
        written
    });

    let started = std::time::Instant::now();
    let keys = Arc::new(normalize::compute(&x, config));
    timed(Stage::Normalize, started);
    let kw = Arc::clone(&keys);
    writer.stage(config, Stage::Normalize, move |c| normalize::write(c, &kw));

    let started = std::time::Instant::now();
    let matched = Arc::new(matching::compute(&x, &keys));
    timed(Stage::Match, started);
    let (mx, mk, mw) = (Arc::clone(&x), Arc::clone(&keys), Arc::clone(&matched));
    writer.stage(config, Stage::Match, move |c| {
        matching::write(c, &mx, &mk, &mw)
    });

    let started = std::time::Instant::now();
    let plan = match emit::plan(config, &x, &matched.links(&x), allow_empty) {
        Ok(p) => p,
        Err(e) => {
            writer.failed(config, Stage::Emit, e);
            return None;
        }
    };
    timed(Stage::Emit, started);
    writer.stage(config, Stage::Emit, move |c| {
        let (report, s) = emit::write(c, config, plan)?;
        *summary.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
        Ok(report)
    });
    Some((incomplete, (x, keys, matched)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_reads_the_one_before() {
        let before: Vec<_> = Stage::ORDER
            .iter()
            .map(|s| (s.name(), s.before().map(Stage::name)))
            .collect();
        assert_eq!(
            before,
            [
                ("extract", None),
                ("normalize", Some("extract")),
                ("match", Some("normalize")),
                ("emit", Some("match")),
                ("refresh", Some("emit")),
            ]
        );
    }

    /// While `one_state` runs its loads, a writer on another connection cannot commit (it gets
    /// SQLITE_BUSY); once it returns, the same write goes through. Loads on their own
    /// connections meanwhile read fine.
    #[test]
    fn no_writer_commits_while_the_loads_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let conn = db::open(&path).unwrap();
        let foreign = Connection::open(&path).unwrap();
        foreign.busy_timeout(std::time::Duration::ZERO).unwrap();
        let seen = one_state(&conn, || {
            let write = foreign.execute_batch("CREATE TABLE foreign_t (x); INSERT INTO foreign_t VALUES (1)");
            let busy = matches!(&write, Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy);
            let reader = db::reader(&path)?;
            let runs: i64 = reader.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))?;
            Ok((busy, runs, write.err().map(|e| e.to_string())))
        })
        .unwrap();
        assert_eq!((seen.0, seen.1), (true, 0), "{:?}", seen.2);
        // A failed statement inside an implicit transaction rolls back; nothing half-written.
        let _ = foreign.execute_batch("ROLLBACK");
        foreign
            .execute_batch("CREATE TABLE foreign_t (x); INSERT INTO foreign_t VALUES (1)")
            .unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM foreign_t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        // An error inside still ends the transaction.
        assert!(one_state(&conn, || -> Result<()> { anyhow::bail!("load failed") }).is_err());
        assert!(conn.is_autocommit());
    }
}
