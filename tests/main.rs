//! One integration-test binary (faster to link than one per file).
//!
//! - `stages`: each stage's tables and the emitted YAML over the recorded demo site, as insta
//!   snapshots in the top-level `snapshots/` folder.
//! - `contract`: the contract every integration keeps, over each case folder of
//!   testdata/contract/ (`insta::glob!`): `run`, the stages one by one, secrets, a rerun.
//! - `e2e`: the binary against the local Tableau-speaking server, with faults.
//! - `bad_input`: clear errors, non-zero exits, and nothing lost.
//! - `sites_and_files`: personal spaces, files of integrations that left the config, the summary.
//! - `emit_atomic`: emit's files and rows change once: kill walks of `run` and `emit`, a full
//!   disk, stray temporary files.
//! - `library`: `autoexpose::run` in this process, twice, and stage by stage.
//! - `list`: `autoexpose list` as table, JSON and CSV over the demo; health; hostile names.
//! - `lock`: one autoexpose per database; stale locks and interrupted `runs` rows.
//! - `bounds`: read-idle timeout, Retry-After cap, manifest size and kind.
//! - `not_data`: answers that are not Tableau's (an HTML 200, a wrong root or content type).
//! - `powerbi`: the Power BI extract against the local Power BI server (scans, tokens, faults).
//! - `powerbi_incremental`: a rerun scans only the workspaces modified since the last one and
//!   writes what a full run writes; outside `modifiedSince`'s window it is full.
//! - `powerbi_refresh`: active exposures for Power BI datasets against the same server.
//! - `pat_lock`: one autoexpose per PAT (Tableau keeps one session per PAT); one PAT per integration.
//! - `secrets_hostile`: hostile PAT names and secrets, echoed by the server, found in no output.
//! - `shared_rows`: extract replaces its own sites' warnings and responses, no other integration's.
//! - `stored_tags`: an unknown tag read back stops the stage, naming the table, column and value.
//! - `report_browser`: `autoexpose report` in headless Chromium over WebDriver (installed by
//!   scripts/chromium.sh when missing): list, search, filter, detail, lineage, hostile names.
//! - `incremental`: a nightly rerun after changes fetches only them and writes what a full run
//!   writes; `sync_state` says why.
//! - `shared_tables`: patterns of real dbt projects (a source over a seed's table, tables
//!   without a schema, old manifests).

mod common;
mod support;

mod bad_input;
mod bounds;
mod contract;
mod e2e;
mod emit_atomic;
mod incremental;
mod inventory;
mod library;
mod list;
mod lock;
mod not_data;
mod pat_lock;
mod powerbi;
mod powerbi_incremental;
mod powerbi_refresh;
mod refresh;
mod refresh_journal;
mod report_browser;
mod secrets_hostile;
mod shared_rows;
mod shared_tables;
mod sites_and_files;
mod stages;
mod stored_tags;
