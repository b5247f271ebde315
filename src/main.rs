//! autoexpose: Tableau workbooks as dbt exposures, one SQLite file as the record of every
//! decision. `main` only parses arguments, runs, and maps the outcome to an exit code.

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
mod run_results;
mod tableau;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::parse();
    log::init(args.verbosity(), args.log_format);
    match pipeline::run(&args) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            log::error(&format!("{err:#}"));
            ExitCode::from(pipeline::EXIT_ERROR)
        }
    }
}
