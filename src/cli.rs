//! The command line. The only module that knows clap; everything after it sees `Args`.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::log::{Format, Level};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  error: bad config or input, HTTP failure, database problem (nothing was committed)
  2  usage error
  3  finished, but the extraction was incomplete (BI tool warnings, redacted tables);
     the SQLite file says why (table extract_warnings)
  4  refresh: some target failed (or, with --wait, some job failed, was cancelled or timed out)

Example:
  autoexpose run --config autoexpose.yml
  autoexpose --replay testdata/http/demo run --config examples/demo/autoexpose.yml";

/// Tableau workbooks and Power BI reports as dbt exposures, with every matching decision kept in SQLite.
#[derive(Parser, Debug)]
#[command(name = "autoexpose", version, about, after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    pub(crate) command: Command,

    /// Record every HTTP exchange into DIR (secrets scrubbed), for replay in tests and CI.
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "replay")]
    pub(crate) record: Option<PathBuf>,

    /// Answer every HTTP request from recordings in DIR; no network, no credentials needed.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) replay: Option<PathBuf>,

    /// More output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Only errors and warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// How log lines look on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub(crate) log_format: Format,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Read manifest.json and every configured Tableau site and Power BI tenant into the SQLite file.
    ///
    /// Example: autoexpose extract --config autoexpose.yml
    Extract(ExtractArgs),
    /// Derive one comparable database.schema.identifier key per relation, on both sides.
    ///
    /// Example: autoexpose normalize --db autoexpose.db
    Normalize(StageArgs),
    /// Match the BI tools' tables to dbt nodes; record dependencies and why the rest did not match.
    ///
    /// Example: autoexpose match && sqlite3 autoexpose.db 'select reason, count(*) from unmatched_tables group by 1'
    Match(StageArgs),
    /// Write exposures YAML into the dbt project (and exposures.json beside the database).
    ///
    /// Example: autoexpose emit --config autoexpose.yml
    Emit(EmitArgs),
    /// extract, normalize, match and emit, in order; then refresh when active exposures are on.
    ///
    /// Example: autoexpose run --config autoexpose.yml
    Run(RunArgs),
    /// Active exposures: after `dbt build`, refresh the Tableau extracts and Power BI datasets
    /// behind exposures whose upstream models were rebuilt, at most once per target every build_after_minutes.
    ///
    /// Enabled by DBT_ACTIVE_EXPOSURES=1 or `active_exposures.enabled: true`; the cadence is
    /// DBT_ACTIVE_EXPOSURES_BUILD_AFTER (minutes) or `active_exposures.build_after_minutes`
    /// (default 1440). The env vars win over the config.
    ///
    /// Example: dbt build && DBT_ACTIVE_EXPOSURES=1 autoexpose refresh --wait
    Refresh(RefreshArgs),
    /// Print the exposures in the SQLite file: name, label, health, type, owner, owner email,
    /// integration, exposure mode, dependencies, unmatched tables, last refresh.
    ///
    /// Reads only (no stage runs, no lock is taken). Health uses dbt Explorer's words
    /// (Healthy, Caution, Degraded, Unknown), from the dbt run results extract read, the
    /// completeness of the last extraction and the last refresh; JSON gives the reasons.
    ///
    /// Example: autoexpose list --format csv > exposures.csv
    List(ListArgs),
    /// Write the exposures, their health, details and lineage as one self-contained HTML page
    /// (no network: scripts, styles and data inline), for a CI artifact or a file share.
    ///
    /// Example: autoexpose report --out public/exposures.html
    Report(ReportArgs),
    /// Parse a manifest.json into the fields autoexpose uses, and nothing else: the floor that
    /// `just bench` compares a whole run with.
    #[command(hide = true)]
    ParseManifest {
        /// The manifest.json.
        path: PathBuf,
    },
}

#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct EmitArgs {
    #[command(flatten)]
    pub(crate) stage: StageArgs,

    /// Emit even if the inputs look empty while the last emit had exposures (a site with no
    /// workbooks, a manifest with no nodes), deleting the generated files that go with them.
    #[arg(long)]
    pub(crate) allow_empty: bool,
}

#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) stage: StageArgs,

    /// table: aligned columns for a terminal; json: one object per exposure, with health
    /// reasons; csv: one RFC 4180 record per exposure.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: ListFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListFormat {
    Table,
    Json,
    Csv,
}

impl From<ListFormat> for crate::list::Format {
    fn from(f: ListFormat) -> crate::list::Format {
        match f {
            ListFormat::Table => crate::list::Format::Table,
            ListFormat::Json => crate::list::Format::Json,
            ListFormat::Csv => crate::list::Format::Csv,
        }
    }
}

#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub(crate) stage: StageArgs,

    /// Where to write the page; default: autoexpose-report.html beside the database.
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct ExtractArgs {
    #[command(flatten)]
    pub(crate) stage: StageArgs,

    #[command(flatten)]
    pub(crate) sync: SyncArgs,

    /// The moment the days since the last full sync are counted to (RFC 3339); default: the
    /// system clock.
    #[arg(long, value_name = "RFC3339")]
    pub(crate) now: Option<String>,
}

/// How extract reads the BI tools: incrementally (only what changed since the last
/// extraction) when it can, see `full_sync_every_days`.
#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct SyncArgs {
    /// Fetch every workbook and query again instead of reusing what the last extraction
    /// fetched and has not changed since (table sync_bases says which a run did, and why).
    #[arg(long)]
    pub(crate) full: bool,
}

#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) refresh: RefreshArgs,

    #[command(flatten)]
    pub(crate) sync: SyncArgs,

    /// Emit even if the inputs look empty while the last emit had exposures; see `emit`.
    #[arg(long)]
    pub(crate) allow_empty: bool,
}

/// `refresh` (and the refresh at the end of `run`). No `--allow-empty`: refresh deletes no
/// files, so the flag would be accepted and mean nothing.
#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    pub(crate) stage: StageArgs,

    /// The moment refresh decisions are made at (RFC 3339, e.g. 2026-11-25T02:00:00Z); default:
    /// the system clock. Nothing else reads the clock in decisions, so runs are reproducible.
    #[arg(long, value_name = "RFC3339")]
    pub(crate) now: Option<String>,

    /// Decide and print everything, send no refresh, write no refresh state.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Poll each triggered job until it finishes (or --wait-timeout passes) and record its result.
    #[arg(long)]
    pub(crate) wait: bool,

    /// How long --wait may take in all, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "1800")]
    pub(crate) wait_timeout: u64,
}

#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct StageArgs {
    /// The config file; relative paths inside it are relative to its folder.
    #[arg(
        long,
        short = 'c',
        value_name = "PATH",
        default_value = "autoexpose.yml"
    )]
    pub(crate) config: PathBuf,

    /// The SQLite file (overrides `database` in the config).
    #[arg(long, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,
}

impl Args {
    pub(crate) fn verbosity(&self) -> Level {
        if self.quiet {
            Level::Warn
        } else if self.verbose > 0 {
            Level::Debug
        } else {
            Level::Info
        }
    }

    /// `--full` and the clock extract counts days on, for the commands that extract.
    pub(crate) fn sync_args(&self) -> Option<(bool, Option<&str>)> {
        match &self.command {
            Command::Extract(a) => Some((a.sync.full, a.now.as_deref())),
            Command::Run(a) => Some((a.sync.full, a.refresh.now.as_deref())),
            _ => None,
        }
    }

    pub(crate) fn stage_args(&self) -> Option<&StageArgs> {
        Some(match &self.command {
            Command::Extract(a) => &a.stage,
            Command::Normalize(a) | Command::Match(a) => a,
            Command::Emit(a) => &a.stage,
            Command::Run(a) => &a.refresh.stage,
            Command::Refresh(a) => &a.stage,
            Command::List(a) => &a.stage,
            Command::Report(a) => &a.stage,
            Command::ParseManifest { .. } => return None,
        })
    }
}

/// The process's command line; on a usage error clap prints it and exits with 2.
pub fn parse() -> Args {
    Args::parse()
}

/// `args` as a command line (the first is the program's name), for tests and examples.
pub fn parse_from<I, T>(args: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Args::try_parse_from(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_empty_is_for_emit_and_run_only() {
        let err = Args::try_parse_from(["autoexpose", "refresh", "--allow-empty"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument, "{err}");
        let run = Args::try_parse_from(["autoexpose", "run", "--allow-empty", "--wait"]).unwrap();
        assert!(matches!(
            run.command,
            Command::Run(RunArgs {
                allow_empty: true,
                refresh: RefreshArgs { wait: true, .. },
                ..
            })
        ));
        assert!(Args::try_parse_from(["autoexpose", "emit", "--allow-empty"]).is_ok());
    }
}
