//! What the data-driven corpus tests share (SQL lineage's `testdata/sql_lineage`, the M
//! reader's `testdata/m_corpus`): their case files and where their snapshots go.

use std::path::{Path, PathBuf};

/// The `.yml` files of `testdata/<dir>`, in name order.
pub(crate) fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

/// Snapshots in the top-level `snapshots/`, named without the module path.
pub(crate) fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}
