//! Runs the command: takes the database's lock, opens it, has the stage driver (`run.rs`) run
//! the stages the command asks for, and prints `run`'s summary. Exit codes are decided here
//! and only here.

use std::process::ExitCode;

use anyhow::Result;
use rusqlite::Connection;

use crate::cli::{Args, Command};
use crate::config::Config;
use crate::db;
use crate::http::HttpMode;
use crate::log;
use crate::run::{Options, Stage, Steps};

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
    /// `run`'s rows (`run::Driven::rows`): never read, kept to be dropped or forgotten.
    _rows: Option<crate::run::Rows>,
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
        return Ok(Outcome {
            incomplete: false,
            refresh_failed: false,
            _rows: None,
        });
    };
    let mut config = Config::load(&stage_args.config)?;
    if let Some(db) = &stage_args.db {
        config.database = db.clone();
    }
    if let Some((full, now)) = args.sync_args() {
        config.sync.force_full = full;
        config.sync.now = crate::clock::Instant::from_arg(now)?;
    }
    if let Command::List(l) = &args.command {
        // Read-only: no lock, no recovery of a stopped emit, no `runs` row (see `list`).
        crate::list::run(&config.database, l.format.into())?;
        return Ok(Outcome {
            incomplete: false,
            refresh_failed: false,
            _rows: None,
        });
    }
    if let Command::Report(r) = &args.command {
        // Read-only, like `list`: a report during a nightly run shows the last committed state.
        return report(&config, r.out.as_deref());
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
    // The session locks the stages take (`lock::acquire_session`) go when this returns, too.
    let _session_locks = crate::lock::SessionLocks;
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
    let no_refresh = Options {
        allow_empty: false,
        refresh: None,
    };
    let (steps, opts) = match &args.command {
        Command::Extract(_) => (Steps::One(Stage::Extract), no_refresh),
        Command::Normalize(_) => (Steps::One(Stage::Normalize), no_refresh),
        Command::Match(_) => (Steps::One(Stage::Match), no_refresh),
        Command::Emit(e) => (
            Steps::One(Stage::Emit),
            Options {
                allow_empty: e.allow_empty,
                refresh: None,
            },
        ),
        Command::Run(r) => {
            // Settle the refresh switches first: a bad env var should fail before any work.
            let settings = refresh_settings(config)?;
            (
                Steps::All,
                Options {
                    allow_empty: r.allow_empty,
                    refresh: settings.enabled.then_some((&r.refresh, settings)),
                },
            )
        }
        Command::Refresh(r) => {
            let settings = refresh_settings(config)?;
            if !settings.enabled {
                log::info("Active exposures are disabled: nothing to refresh. Enable them with DBT_ACTIVE_EXPOSURES=1 or `active_exposures: {enabled: true}` in the config.");
                return Ok(Outcome {
                    incomplete: false,
                    refresh_failed: false,
                    _rows: None,
                });
            }
            (
                Steps::One(Stage::Refresh),
                Options {
                    allow_empty: false,
                    refresh: Some((r, settings)),
                },
            )
        }
        Command::ParseManifest { .. } => unreachable!("handled above: it has no config"),
        Command::List(_) => unreachable!("handled above: it reads only"),
        Command::Report(_) => unreachable!("handled in `run`: it runs no stage"),
    };
    let refreshes = opts.refresh.is_some();
    let driven = crate::run::drive(
        &mut conn,
        config,
        mode,
        steps,
        &opts,
        |conn, summary, incomplete| {
            print_summary(conn, config, summary, incomplete)?;
            if refreshes {
                // A blank line between the summary and refresh's decisions.
                let _ = std::io::Write::write_all(&mut std::io::stdout(), b"\n");
            }
            Ok(())
        },
    )?;
    Ok(Outcome {
        incomplete: driven.incomplete,
        refresh_failed: driven.refresh_failed,
        _rows: driven.rows,
    })
}

/// `report`: reads one consistent state of the database (after emit), writes the page; no
/// stage runs, no row is written.
fn report(config: &Config, out: Option<&std::path::Path>) -> Result<Outcome> {
    let path = crate::report::default_path(&config.database, out);
    let page = crate::list::read_with(&config.database, |tx| crate::report::build(tx))?;
    let written = crate::report::write(&page, &path)?;
    crate::outln!(
        "Report: {} ({} exposures, {} bytes)",
        written.path.display(),
        written.exposures,
        written.bytes
    );
    Ok(Outcome {
        incomplete: false,
        refresh_failed: false,
        _rows: None,
    })
}

fn refresh_settings(config: &Config) -> Result<crate::config::ActiveExposures> {
    config
        .active_exposures
        .with_env(|k| std::env::var(k).ok())
        .map_err(anyhow::Error::msg)
}

/// The summary of a `run`, on stdout: it is the run's result (`autoexpose run > summary.txt`
/// keeps it), while progress, warnings and errors go to stderr. Printed whatever the log
/// level, as refresh's decision lines are.
fn print_summary(
    conn: &Connection,
    config: &Config,
    s: &crate::emit::EmitSummary,
    incomplete: bool,
) -> Result<()> {
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

fn summary_text(
    conn: &Connection,
    config: &Config,
    s: &crate::emit::EmitSummary,
) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let assets: i64 = conn.query_row("SELECT count(*) FROM bi_assets", [], |r| r.get(0))?;
    writeln!(out)?;
    writeln!(out, "Dashboards seen:      {assets}")?;
    for line in crate::integrations::left_out_lines(conn)? {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "Exposures written:    {}", s.written)?;
    writeln!(out, "Dependencies:         {}", s.dependencies)?;
    // A table, not a path to it: one read through an embedded and a published data source (or
    // by two workbooks) counts once. Unsupported custom SQL has no table id; its query counts.
    let table = "integration || char(0) || CASE WHEN relation_id = '' THEN 'sql:' || via_id ELSE relation_id END";
    let total: i64 = conn.query_row(
        &format!("SELECT count(DISTINCT {table}) FROM unmatched_tables"),
        [],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(&format!("SELECT reason, count(DISTINCT {table}) FROM unmatched_tables GROUP BY reason ORDER BY reason"))?;
    let reasons: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    writeln!(out, "Unmatched tables:     {total}")?;
    for (reason, n) in reasons {
        writeln!(out, "  {reason:<20}{n}")?;
    }
    if !s.without_dependencies.is_empty() {
        writeln!(
            out,
            "Dashboards with no dbt dependency (not written): {}",
            s.without_dependencies.len()
        )?;
        for w in &s.without_dependencies {
            writeln!(out, "  {w}")?;
        }
    }
    if !s.removed_left_config.is_empty() {
        writeln!(
            out,
            "Files deleted (their integration left the config): {}",
            s.removed_left_config.len()
        )?;
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
