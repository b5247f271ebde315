//! autoexpose: Tableau workbooks as dbt exposures, one SQLite file as the record of every
//! decision.
//!
//! The binary (`src/main.rs`) only parses the command line, calls [`run`], prints the error
//! once and exits with [`exit_code`]'s code. Everything else is internal to this crate; what is
//! public is what the binary, the integration tests and the examples need.

mod atomic;
mod bulk;
pub mod cli;
mod clock;
mod config;
#[cfg(test)]
mod corpus;
mod db;
mod emit;
mod emit_pending;
mod extract;
mod fault;
mod health;
mod http;
mod integrations;
mod inventory;
mod keys;
mod lineage;
mod list;
mod lock;
pub mod log;
mod manifest;
mod matching;
mod naming;
mod normalize;
mod pipeline;
mod powerbi;
#[cfg(test)]
mod proptests;
mod refresh;
mod report;
mod rows;
mod run;
mod run_results;
mod seam;
mod sync;
mod tableau;
mod tags;
mod view;
mod yaml;

pub use cli::Args;
pub use pipeline::{exit_code, run, Outcome};
