//! The SQLite file: open, migrate, and the bookkeeping every stage shares.
//!
//! Migrations live in `sql/` as numbered, forward-only files, applied in one exclusive
//! transaction and tracked with `PRAGMA user_version` (the approach cargo uses for its cache
//! database). Never remove or edit a shipped entry of `MIGRATIONS`; append a new one.
//!
//! Each stage writes its rows in one transaction (all or none) and is bracketed by a `runs`
//! row, committed on its own so a failed stage still leaves a record of the failure.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, TransactionBehavior};

pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../sql/0001_init.sql"),
    include_str!("../sql/0002_refresh.sql"),
    include_str!("../sql/0003_raw_response_bodies.sql"),
    include_str!("../sql/0004_append_only_tables.sql"),
    include_str!("../sql/0005_xxh3_input_hashes.sql"),
    include_str!("../sql/0006_left_out_workbooks.sql"),
    include_str!("../sql/0007_emit_pending.sql"),
    include_str!("../sql/0008_neutral_rows.sql"),
    include_str!("../sql/0009_refresh_targets.sql"),
    include_str!("../sql/0010_inventory.sql"),
    include_str!("../sql/0011_custom_sql_lineage.sql"),
    include_str!("../sql/0012_powerbi.sql"),
    include_str!("../sql/0013_asset_meta.sql"),
    include_str!("../sql/0014_refresh_matched_by.sql"),
    include_str!("../sql/0015_dbt_graph.sql"),
    include_str!("../sql/0016_assets_by_ref.sql"),
    include_str!("../sql/0017_incremental_sync.sql"),
    include_str!("../sql/0018_powerbi_incremental.sql"),
    include_str!("../sql/0019_keyed_stage_tables.sql"),
    include_str!("../sql/0020_binary_tableau_cache.sql"),
];

/// How long a statement waits for another program's write transaction before SQLITE_BUSY.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub(crate) fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("database {}: cannot create its folder", path.display())
            })?;
        }
    }
    let mut conn = Connection::open(path)
        .with_context(|| format!("database {}: cannot open it", path.display()))?;
    // SQLite opens lazily: a file that is not a database (`--db autoexpose.yml`) first fails
    // on the pragmas below, so they get a context naming the file and what to do.
    let not_usable = || {
        format!(
            "database {}: cannot use it as autoexpose's SQLite file; check --db or `database:` in the config (it must name a database autoexpose made, or a new file)",
            path.display()
        )
    };
    conn.busy_timeout(BUSY_TIMEOUT).with_context(not_usable)?;
    // 64 KiB pages (SQLite's default is 4 KiB): stages write hundreds of thousands of rows at
    // a time, and bigger pages mean fewer B-tree splits and page writes (a quarter less time
    // writing at 20k workbooks). Takes effect only on a new file; an existing one keeps its size.
    conn.pragma_update(None, "page_size", 65_536)
        .with_context(not_usable)?;
    conn.pragma_update(None, "foreign_keys", true)
        .with_context(not_usable)?;
    // Stages write hundreds of thousands of rows in one transaction: a page cache of 64 MiB
    // (SQLite's default is 2 MiB) keeps the indexes in memory while they grow.
    conn.pragma_update(None, "cache_size", -65_536)
        .with_context(not_usable)?;
    conn.pragma_update(None, "temp_store", "memory")
        .with_context(not_usable)?;
    migrate(&mut conn).with_context(|| format!("database {}: migration failed", path.display()))?;
    Ok(conn)
}

/// A read-only connection to an existing file, for loading a stage's inputs alongside other
/// loads (each load on its own connection, in parallel).
pub(crate) fn reader(db: &Path) -> Result<Connection> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(db, flags)
        .with_context(|| format!("database {}: cannot open it to read", db.display()))
}

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        bail!(
            "schema version {version} is newer than this autoexpose knows ({}); use a newer autoexpose or a new database file",
            MIGRATIONS.len()
        );
    }
    for sql in &MIGRATIONS[version..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    tx.commit()?;
    Ok(())
}

/// What a stage hands back for its `runs` row.
#[derive(Debug, Default)]
pub(crate) struct StageReport {
    pub(crate) inputs: BTreeMap<String, String>,
    pub(crate) row_counts: BTreeMap<String, i64>,
    pub(crate) incomplete: bool,
}

impl StageReport {
    /// Records an input file by its XXH3-128 hex (`config::hex_xxh3`), as `runs.inputs`
    /// holds it since migration 0005: `xxh3:<hex>`.
    pub(crate) fn input(&mut self, path: &std::path::Path, xxh3: &str) {
        self.inputs
            .insert(path.display().to_string(), format!("xxh3:{xxh3}"));
    }
}

/// Wall-clock time as RFC 3339 UTC, for the `runs` log only (decisions use `clock`).
pub(crate) fn now_rfc3339() -> String {
    crate::clock::Instant::system().rfc3339()
}

/// Runs `body` as stage `stage`, recording start, end, inputs, counts and outcome in `runs`.
pub(crate) fn run_stage<F>(
    conn: &mut Connection,
    stage: &str,
    config_hash: &str,
    body: F,
) -> Result<StageReport>
where
    F: FnOnce(&mut Connection) -> Result<StageReport>,
{
    conn.execute(
        "INSERT INTO runs (stage, started_at, tool_version, config_hash, status) VALUES (?1, ?2, ?3, ?4, 'running')",
        params![stage, now_rfc3339(), env!("CARGO_PKG_VERSION"), config_hash],
    )?;
    let run_id = conn.last_insert_rowid();
    let started = std::time::Instant::now();
    let result = body(conn);
    crate::log::debug(&format!(
        "stage {stage} took {:.3}s",
        started.elapsed().as_secs_f64()
    ));
    let (status, error, inputs, counts) = match &result {
        Ok(r) => (
            if r.incomplete { "incomplete" } else { "ok" },
            None,
            serde_json::to_string(&r.inputs)?,
            serde_json::to_string(&r.row_counts)?,
        ),
        // Scrubbed at the boundary: an error may be made of anything a server said.
        Err(e) => (
            "failed",
            Some(crate::http::scrub_secrets(&format!("{e:#}"))),
            "{}".into(),
            "{}".into(),
        ),
    };
    conn.execute(
        "UPDATE runs SET finished_at = ?1, status = ?2, error = ?3, inputs = ?4, row_counts = ?5 WHERE run_id = ?6",
        params![now_rfc3339(), status, error, inputs, counts, run_id],
    )?;
    result
}

/// Marks `runs` rows still `running` as `interrupted`: called by the process that holds the
/// database's lock (`lock::acquire`), so no live process can own them; their process was
/// killed or crashed before it could record an outcome. `status` is free text (0001), so the
/// new value needs no migration. Returns how many rows it marked.
pub(crate) fn mark_interrupted(conn: &Connection) -> Result<usize> {
    let n = conn.execute(
        "UPDATE runs SET status = 'interrupted', finished_at = ?1, \
         error = 'interrupted: its process ended before the stage finished (killed or crashed); found by the next autoexpose' \
         WHERE status = 'running'",
        params![now_rfc3339()],
    )?;
    Ok(n)
}

/// Names the database in a "database is locked" (SQLITE_BUSY) error anywhere in `err`'s chain:
/// another autoexpose is refused by the lock file before it gets here, so this is some other
/// program (a `sqlite3` shell, a backup tool) holding a write transaction longer than the busy
/// timeout.
pub(crate) fn name_busy(err: anyhow::Error, db: &Path) -> anyhow::Error {
    let busy = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _))
                if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    });
    if busy {
        err.context(format!(
            "database {} is locked by another program (not autoexpose, whose lock file {} would have said so) for more than {}s; close it and try again",
            db.display(),
            crate::lock::lock_path(db).display(),
            BUSY_TIMEOUT.as_secs()
        ))
    } else {
        err
    }
}

/// Fails unless `stage` has succeeded in this database: a stage reads the tables of the one
/// before it, and empty tables would pass for "nothing matched".
pub(crate) fn require_stage(conn: &Connection, stage: &str, db: &Path) -> Result<()> {
    let done: i64 = conn.query_row(
        "SELECT count(*) FROM runs WHERE stage = ?1 AND status IN ('ok', 'incomplete')",
        params![stage],
        |r| r.get(0),
    )?;
    if done == 0 {
        bail!("database {}: `{stage}` has not run here yet; run `autoexpose {stage}` (or `autoexpose run`) first", db.display());
    }
    Ok(())
}

/// Row counts of the given tables, for the `runs` row.
pub(crate) fn count_rows(conn: &Connection, tables: &[&str]) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for t in tables {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
        out.insert((*t).to_string(), n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len());
    }

    #[test]
    fn raw_response_bodies_survive_0003() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO raw_responses VALUES ('prod', 1, 'GET', '/api', 200, 'été')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let row: (i64, String) = conn
            .query_row(
                "SELECT bytes, body FROM raw_responses WHERE seq = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(row, (5, "été".to_string()));
        conn.execute(
            "INSERT INTO raw_responses VALUES ('prod', 2, 'GET', '/api', 200, 10, NULL)",
            [],
        )
        .unwrap();
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
