//! Runs the stages the command asks for, each bracketed by a `runs` row, and prints the
//! summary. Exit codes are decided here and only here.

use std::process::ExitCode;

use anyhow::Result;
use rusqlite::Connection;

use crate::cli::{Args, Command};
use crate::config::Config;
use crate::db;
use crate::extract;
use crate::http::HttpMode;
use crate::log;
use crate::normalize::RelationKey;
use crate::rows::Extracted;

const EXIT_ERROR: u8 = 1;
const EXIT_INCOMPLETE: u8 = 3;
const EXIT_REFRESH_FAILED: u8 = 4;

/// How a command ended, when it did not fail. Its exit code is `exit_code`'s to decide.
///
/// It may hold the stages' rows `run` worked with (millions of strings at scale): dropping it
/// frees them; a process about to exit can `std::mem::forget` it instead, as the binary does.
pub struct Outcome {
    incomplete: bool,
    refresh_failed: bool,
}

impl Outcome {
    /// Whether a site's extraction was incomplete (exit code 3).
    pub fn incomplete(&self) -> bool {
        self.incomplete
    }

    /// Whether a refresh target failed (exit code 4).
    pub fn refresh_failed(&self) -> bool {
        self.refresh_failed
    }
}

/// The process's exit code for what `run` returned; every code is decided here (the usage
/// error, 2, is clap's). `cli::AFTER_HELP` documents them.
pub fn exit_code(result: &Result<Outcome>) -> ExitCode {
    match result {
        Err(_) => ExitCode::from(EXIT_ERROR),
        Ok(o) if o.refresh_failed => ExitCode::from(EXIT_REFRESH_FAILED),
        Ok(o) if o.incomplete => ExitCode::from(EXIT_INCOMPLETE),
        Ok(_) => ExitCode::SUCCESS,
    }
}

/// Runs the command `args` names, logging as `args` says (the first call in a process sets
/// the log level and format for the process). Errors are returned, not printed.
pub fn run(args: &Args) -> Result<Outcome> {
    log::init(args.verbosity(), args.log_format);
    let Some(stage_args) = args.stage_args() else {
        if let Command::ParseManifest { path } = &args.command {
            let started = std::time::Instant::now();
            let (m, bytes) = crate::manifest::load(path)?;
            crate::outln!(
                "parsed {} bytes, {} models, seeds and snapshots, {} sources in {:.3}s",
                bytes.len(),
                m.nodes.len(),
                m.sources.len(),
                started.elapsed().as_secs_f64()
            );
        }
        return Ok(Outcome { incomplete: false, refresh_failed: false });
    };
    let mut config = Config::load(&stage_args.config)?;
    if let Some(db) = &stage_args.db {
        config.database = db.clone();
    }
    let mode = if let Some(dir) = &args.record {
        HttpMode::Record(dir.clone())
    } else if let Some(dir) = args.replay.clone().or_else(|| config.replay.clone()) {
        HttpMode::Replay(dir)
    } else {
        HttpMode::Live
    };
    // One autoexpose per database, taken before anything opens it (see `lock`); held until
    // this function returns, whatever it returns.
    let _lock = crate::lock::acquire(&config.database)?;
    // The PAT locks the stages take (`lock::acquire_pat`) go when this returns, too.
    let _pat_locks = crate::lock::PatLocks;
    stages(args, &config, &mode).map_err(|e| db::name_busy(e, &config.database))
}

fn stages(args: &Args, config: &Config, mode: &HttpMode) -> Result<Outcome> {
    let mut conn = db::open(&config.database)?;
    let interrupted = db::mark_interrupted(&conn)?;
    if interrupted > 0 {
        log::warn(&format!(
            "database {}: {interrupted} stage(s) of an earlier autoexpose never finished (killed or crashed); marked `interrupted` in `runs`",
            config.database.display()
        ));
    }
    // Before any stage: finish (or roll back) the file changes of an emit that was stopped.
    crate::emit_pending::recover(&conn, config)?;
    let mut incomplete = false;
    let mut refresh_failed = false;
    match &args.command {
        Command::Extract(_) => incomplete |= extract(&mut conn, config, mode)?.0,
        // A stage run on its own reads its inputs back from the file; `run` hands them over.
        //
        // One state for all of them. Each loader reads on a connection of its own (in parallel)
        // inside one read transaction, so its tables agree with each other; and the loaders
        // agree with one another because nothing can commit between their reads:
        // - another autoexpose cannot: the per-database lock (`lock.rs`, taken in `run` above)
        //   is held for the whole command, and this process writes nothing until the loads end;
        // - a foreign writer (the sqlite3 shell, another tool that ignores the lock) cannot
        //   either while `one_state` holds its read transaction on `conn`: in SQLite's rollback
        //   journal mode, which autoexpose's files use, a commit waits for every SHARED lock to
        //   go. What such a writer can do is make the loads fail: once it waits to commit
        //   (PENDING), new readers get SQLITE_BUSY, reported naming the database
        //   (`db::name_busy`); it cannot mix two states. Were the file switched to WAL mode by
        //   hand, readers would no longer hold writers off, and each loader would see the state
        //   of its own first read.
        Command::Normalize(_) => {
            let x = one_state(&conn, || {
                db::require_stage(&conn, "extract", &config.database)?;
                Extracted::load(&config.database)
            })?;
            normalize(&mut conn, config, &x)?;
        }
        Command::Match(_) => {
            let (x, keys) = one_state(&conn, || {
                db::require_stage(&conn, "normalize", &config.database)?;
                let (x, keys) = rayon::join(|| Extracted::load(&config.database), || crate::normalize::load(&config.database));
                Ok((x?, keys?))
            })?;
            matching(&mut conn, config, &x, &keys)?;
        }
        Command::Emit(e) => {
            let (x, deps) = one_state(&conn, || {
                db::require_stage(&conn, "match", &config.database)?;
                let (x, deps) = rayon::join(|| Extracted::load(&config.database), || crate::matching::load(&config.database));
                Ok((x?, deps?))
            })?;
            let links: Vec<_> = deps.iter().map(|d| d.link()).collect();
            emit(&mut conn, config, &x, &links, e.allow_empty)?;
        }
        Command::Run(r) => {
            // Settle the refresh switches first: a bad env var should fail before any work.
            let settings = refresh_settings(config)?;
            let ran = crate::run::run(&mut conn, config, mode, r.allow_empty)?;
            incomplete |= ran.incomplete;
            print_summary(&conn, config, &ran.summary, incomplete)?;
            if settings.enabled {
                let _ = std::io::Write::write_all(&mut std::io::stdout(), b"\n");
                refresh_failed = refresh(&mut conn, config, mode, &r.refresh, settings)?;
            }
        }
        Command::Refresh(r) => {
            let settings = refresh_settings(config)?;
            if settings.enabled {
                db::require_stage(&conn, "emit", &config.database)?;
                refresh_failed = refresh(&mut conn, config, mode, r, settings)?;
            } else {
                log::info("Active exposures are disabled: nothing to refresh. Enable them with DBT_ACTIVE_EXPOSURES=1 or `active_exposures: {enabled: true}` in the config.");
            }
        }
        Command::ParseManifest { .. } => unreachable!("handled above: it has no config"),
    }
    Ok(Outcome { incomplete, refresh_failed })
}

/// Runs `load` inside a read transaction on `conn`, whose SHARED lock (taken by its first
/// read, held to the end) keeps any writer from committing while the loaders, on connections
/// of their own, read: see the comment in `stages`.
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

fn refresh_settings(config: &Config) -> Result<crate::config::ActiveExposures> {
    config.active_exposures.with_env(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)
}

fn refresh(
    conn: &mut Connection,
    config: &Config,
    mode: &HttpMode,
    args: &crate::cli::RefreshArgs,
    settings: crate::config::ActiveExposures,
) -> Result<bool> {
    let now = match &args.now {
        Some(text) => crate::clock::Instant::parse(text)
            .ok_or_else(|| anyhow::anyhow!("--now {text:?}: give an RFC 3339 time such as 2026-11-25T02:00:00Z"))?,
        None => crate::clock::Instant::system(),
    };
    let opts = crate::refresh::Options {
        now,
        dry_run: args.dry_run,
        wait: args.wait,
        wait_timeout: std::time::Duration::from_secs(args.wait_timeout),
        settings,
    };
    let mut summary = None;
    db::run_stage(conn, "refresh", &config.sha256, |c| {
        let (report, s) = crate::refresh::run(c, config, mode, &opts)?;
        summary = Some(s);
        Ok(report)
    })?;
    Ok(summary.is_some_and(|s| s.any_failure()))
}

/// Runs `body` as stage `stage` (see `db::run_stage`) and hands back what it produced.
fn stage<T>(
    conn: &mut Connection,
    config: &Config,
    stage: &str,
    body: impl FnOnce(&mut Connection) -> Result<(db::StageReport, T)>,
) -> Result<(db::StageReport, T)> {
    let mut out = None;
    let report = db::run_stage(conn, stage, &config.sha256, |c| {
        let (report, value) = body(c)?;
        out = Some(value);
        Ok(report)
    })?;
    Ok((report, out.expect("run_stage returns Ok only after the stage did")))
}

fn extract(conn: &mut Connection, config: &Config, mode: &HttpMode) -> Result<(bool, Extracted)> {
    let (report, x) = stage(conn, config, "extract", |c| extract::run(c, config, mode))?;
    Ok((report.incomplete, x))
}

fn normalize(conn: &mut Connection, config: &Config, x: &Extracted) -> Result<Vec<RelationKey>> {
    Ok(stage(conn, config, "normalize", |c| crate::normalize::run(c, config, x))?.1)
}

fn matching(conn: &mut Connection, config: &Config, x: &Extracted, keys: &[RelationKey]) -> Result<()> {
    stage(conn, config, "match", |c| Ok((crate::matching::run(c, x, keys)?, ())))?;
    Ok(())
}

fn emit(conn: &mut Connection, config: &Config, x: &Extracted, deps: &[crate::matching::Link], allow_empty: bool) -> Result<crate::emit::EmitSummary> {
    Ok(stage(conn, config, "emit", |c| crate::emit::run(c, config, x, deps, allow_empty))?.1)
}

/// The summary of a `run`, on stdout: it is the run's result (`autoexpose run > summary.txt`
/// keeps it), while progress, warnings and errors go to stderr. Printed whatever the log
/// level, as refresh's decision lines are.
fn print_summary(conn: &Connection, config: &Config, s: &crate::emit::EmitSummary, incomplete: bool) -> Result<()> {
    let text = summary_text(conn, config, s)?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) must not turn a finished run into an error.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
    if incomplete {
        log::warn("the extraction was incomplete: see `SELECT * FROM extract_warnings` in the SQLite file");
    }
    Ok(())
}

fn summary_text(conn: &Connection, config: &Config, s: &crate::emit::EmitSummary) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let workbooks: i64 = conn.query_row("SELECT count(*) FROM tableau_workbooks", [], |r| r.get(0))?;
    writeln!(out)?;
    writeln!(out, "Workbooks seen:       {workbooks}")?;
    let mut st = conn.prepare("SELECT reason, count(*) FROM tableau_left_out_workbooks GROUP BY reason ORDER BY reason")?;
    let left_out: Vec<(String, i64)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    for (reason, n) in &left_out {
        let why = match reason.as_str() {
            "personal_space" => "in personal spaces; include_personal_spaces: true imports them",
            other => other,
        };
        writeln!(out, "Workbooks left out:   {n} ({why})")?;
    }
    writeln!(out, "Exposures written:    {}", s.written)?;
    writeln!(out, "Dependencies:         {}", s.dependencies)?;
    // A table, not a path to it: one read through an embedded and a published data source (or
    // by two workbooks) counts once. Unsupported custom SQL has no table id; its query counts.
    let table = "integration || char(0) || CASE WHEN table_id = '' THEN 'sql:' || via_id ELSE table_id END";
    let total: i64 = conn.query_row(&format!("SELECT count(DISTINCT {table}) FROM unmatched_tables"), [], |r| r.get(0))?;
    let mut st = conn.prepare(&format!("SELECT reason, count(DISTINCT {table}) FROM unmatched_tables GROUP BY reason ORDER BY reason"))?;
    let reasons: Vec<(String, i64)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    writeln!(out, "Unmatched tables:     {total}")?;
    for (reason, n) in reasons {
        writeln!(out, "  {reason:<20}{n}")?;
    }
    if !s.without_dependencies.is_empty() {
        writeln!(out, "Workbooks with no dbt dependency (not written): {}", s.without_dependencies.len())?;
        for w in &s.without_dependencies {
            writeln!(out, "  {w}")?;
        }
    }
    if !s.removed_left_config.is_empty() {
        writeln!(out, "Files deleted (their integration left the config): {}", s.removed_left_config.len())?;
        for (integration, f) in &s.removed_left_config {
            writeln!(out, "  {} ({integration})", f.display())?;
        }
    }
    if !s.foreign.is_empty() {
        writeln!(out, "Files left alone (generated for an integration not in this config, not by this database): {}", s.foreign.len())?;
        for (integration, f) in &s.foreign {
            writeln!(out, "  {} ({integration})", f.display())?;
        }
    }
    writeln!(out, "Exposures YAML:       {}", s.dir.display())?;
    writeln!(out, "SQLite file:          {}", config.database.display())?;
    Ok(out)
}

#[cfg(test)]
mod one_state_tests {
    use super::*;

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
        foreign.execute_batch("CREATE TABLE foreign_t (x); INSERT INTO foreign_t VALUES (1)").unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM foreign_t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        // An error inside still ends the transaction.
        assert!(one_state(&conn, || -> Result<()> { anyhow::bail!("load failed") }).is_err());
        assert!(conn.is_autocommit());
    }
}
