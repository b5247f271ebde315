//! One integration-test binary (faster to link than one per file).
//!
//! - `stages`: each stage's tables and the emitted YAML over the recorded demo site, as insta
//!   snapshots in the top-level `snapshots/` folder.
//! - `e2e`: the binary against the local Tableau-speaking server, with faults.
//! - `bad_input`: clear errors, non-zero exits, and nothing lost.
//! - `sites_and_files`: personal spaces, files of integrations that left the config, the summary.
//! - `lock`: one autoexpose per database; stale locks and interrupted `runs` rows.
//! - `pat_lock`: one autoexpose per PAT (Tableau keeps one session per PAT); one PAT per integration.
//! - `secrets_hostile`: hostile PAT names and secrets, echoed by the server, found in no output.
//! - `shared_tables`: patterns of real dbt projects (a source over a seed's table, tables
//!   without a schema, old manifests).

mod common;
mod support;

mod bad_input;
mod e2e;
mod lock;
mod pat_lock;
mod refresh;
mod secrets_hostile;
mod shared_tables;
mod sites_and_files;
mod stages;
