//! Full or incremental: what an integration's extraction may build on, and the record of what
//! it did with each asset (`sync_bases`, `sync_state`; sql/0017_incremental_sync.sql).
//!
//! An incremental extraction lists what the tool holds with a version of each asset (Tableau's
//! `updatedAt`), fetches the details of only the assets that are new or changed, and reuses
//! the details the last extraction fetched for the rest; so its rows are the rows a full
//! extraction would make of the same state. It builds only on a last extraction that was
//! complete and made by the same tool version, extraction settings and schema, and only while
//! the last full sync is recent (`full_sync_every_days`): versions that miss a change (a table
//! renamed under a data source nobody republished) are caught up by the next full sync.
//! An interrupted extraction committed nothing, so the base is still the one before it.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::clock::Instant;
use crate::config::SyncSettings;

/// How an extraction reads its integration, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) incremental: bool,
    pub(crate) why: String,
    /// The last full sync this one builds on (itself when full).
    pub(crate) full_sync_at: Instant,
    /// When the extraction this one builds on started (`sync_bases.extracted_at`, the run's
    /// clock); `None` when full. Power BI asks what changed since then (`workspaces/modified`).
    pub(crate) base_extracted_at: Option<Instant>,
    /// When this extraction started (the run's clock): written as `extracted_at`.
    pub(crate) now: Instant,
}

impl Decision {
    pub(crate) fn mode(&self) -> &'static str {
        if self.incremental {
            "incremental"
        } else {
            "full"
        }
    }
}

/// One `sync_bases` row as the last extraction left it.
struct BaseRow {
    full_sync_at: String,
    tool_version: String,
    settings_hash: String,
    schema_version: i64,
    complete: bool,
    extracted_at: Option<String>,
}

/// The tool version a base must have been written by.
pub(crate) const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Full or incremental for `integration`, from its `sync_bases` row in `db` (read on a
/// connection of its own: extract reads before its transaction, under the database's lock).
pub(crate) fn decide(
    db: &Path,
    integration: &str,
    settings_hash: &str,
    s: &SyncSettings,
) -> Result<Decision> {
    let full = |why: String| Decision {
        incremental: false,
        why,
        full_sync_at: s.now,
        base_extracted_at: None,
        now: s.now,
    };
    if s.force_full {
        return Ok(full("--full".into()));
    }
    if s.full_sync_every_days == 0 {
        return Ok(full("full_sync_every_days: 0".into()));
    }
    if !db.exists() {
        return Ok(full("no earlier extraction".into()));
    }
    let conn = crate::db::reader(db)?;
    let schema_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let row = conn
        .query_row(
            "SELECT full_sync_at, tool_version, settings_hash, schema_version, complete, extracted_at FROM sync_bases WHERE integration = ?1",
            [integration],
            |r| {
                Ok(BaseRow {
                    full_sync_at: r.get(0)?,
                    tool_version: r.get(1)?,
                    settings_hash: r.get(2)?,
                    schema_version: r.get(3)?,
                    complete: r.get(4)?,
                    extracted_at: r.get(5)?,
                })
            },
        )
        .optional()
        .with_context(|| format!("database {}: table sync_bases", db.display()))?;
    let Some(b) = row else {
        return Ok(full("no earlier extraction of this integration".into()));
    };
    if !b.complete {
        return Ok(full("the last extraction was incomplete".into()));
    }
    if b.tool_version != TOOL_VERSION {
        return Ok(full(format!(
            "autoexpose {} made the last extraction, this is {TOOL_VERSION}",
            b.tool_version
        )));
    }
    if b.settings_hash != settings_hash {
        return Ok(full("the integration's extraction settings changed".into()));
    }
    if b.schema_version != schema_version {
        return Ok(full(format!(
            "the database schema changed (migration {} → {schema_version})",
            b.schema_version
        )));
    }
    let Some(last) = Instant::parse(&b.full_sync_at) else {
        return Ok(full(format!(
            "sync_bases.full_sync_at is not a time: {:?}",
            b.full_sync_at
        )));
    };
    let days = (s.now.0 - last.0).div_euclid(86_400);
    if s.now < last || days >= i64::from(s.full_sync_every_days) {
        return Ok(full(format!(
            "the last full sync was at {} ({days} days before; full_sync_every_days: {})",
            last.rfc3339(),
            s.full_sync_every_days
        )));
    }
    Ok(Decision {
        incremental: true,
        why: format!(
            "the last full sync was at {} (full_sync_every_days: {})",
            last.rfc3339(),
            s.full_sync_every_days
        ),
        full_sync_at: last,
        base_extracted_at: b.extracted_at.as_deref().and_then(Instant::parse),
        now: s.now,
    })
}

/// What an extraction did with one asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Action {
    Fetched,
    Reused,
    Removed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Fetched => "fetched",
            Action::Reused => "reused",
            Action::Removed => "removed",
        }
    }
}

/// A `sync_state` row of one integration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct State {
    pub(crate) kind: &'static str,
    pub(crate) id: String,
    pub(crate) action: Action,
    pub(crate) reason: String,
}

/// Replaces `integration`'s `sync_bases` and `sync_state` rows (inside extract's transaction).
pub(crate) fn write(
    tx: &Transaction,
    integration: &str,
    decision: &Decision,
    settings_hash: &str,
    complete: bool,
    states: &[State],
) -> Result<()> {
    let schema_version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    tx.execute(
        "INSERT OR REPLACE INTO sync_bases (integration, mode, why, full_sync_at, tool_version, settings_hash, schema_version, complete, extracted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            integration,
            decision.mode(),
            decision.why,
            decision.full_sync_at.rfc3339(),
            TOOL_VERSION,
            settings_hash,
            schema_version,
            complete,
            decision.now.rfc3339()
        ],
    )?;
    // Replaced writing only the rows that differ from the last extraction's: a night changes
    // a few hundred of 20k. An asset stated twice keeps its last state, as INSERT OR REPLACE
    // did: `Replace` keeps the first of a repeated key, so the states go in from the last.
    let mut st = crate::bulk::Replace::new(
        tx,
        "sync_state",
        &["integration", "kind", "id", "action", "reason"],
        true,
        Some(integration),
    )?;
    for s in states.iter().rev() {
        st.row(&[
            integration.into(),
            s.kind.into(),
            (&s.id).into(),
            s.action.as_str().into(),
            (&s.reason).into(),
        ])?;
    }
    st.finish()?;
    Ok(())
}

/// Deletes what the next extraction of an integration no longer in the config would have
/// built on (every integration extracted writes its `bi_instances` row first).
pub(crate) fn forget_removed(tx: &Transaction) -> Result<()> {
    crate::integrations::delete_gone(tx, ["sync_bases", "sync_state"], "bi_instances")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(now: &str) -> SyncSettings {
        SyncSettings {
            full_sync_every_days: 7,
            force_full: false,
            now: Instant::parse(now).unwrap(),
        }
    }

    fn base(dir: &Path, full_sync_at: &str, complete: bool) -> std::path::PathBuf {
        let db = dir.join("sync.db");
        let mut conn = crate::db::open(&db).unwrap();
        let tx = conn.transaction().unwrap();
        let at = Instant::parse(full_sync_at).unwrap();
        let d = Decision {
            incremental: false,
            why: "first".into(),
            full_sync_at: at,
            base_extracted_at: None,
            now: at,
        };
        write(&tx, "prod", &d, "h1", complete, &[]).unwrap();
        tx.commit().unwrap();
        db
    }

    #[test]
    fn a_recent_complete_base_of_the_same_settings_is_built_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = base(dir.path(), "2026-12-01T02:00:00Z", true);
        let d = decide(&db, "prod", "h1", &settings("2026-12-07T01:59:59Z")).unwrap();
        assert!(d.incremental, "{d:?}");
        assert_eq!(
            d.full_sync_at,
            Instant::parse("2026-12-01T02:00:00Z").unwrap()
        );
        assert_eq!(d.base_extracted_at, Some(d.full_sync_at));
        let why = |s: &SyncSettings, hash: &str, integration: &str| {
            let d = decide(&db, integration, hash, s).unwrap();
            assert!(!d.incremental);
            d.why
        };
        let s = settings("2026-12-08T02:00:00Z");
        assert_eq!(why(&s, "h1", "prod"), "the last full sync was at 2026-12-01T02:00:00Z (7 days before; full_sync_every_days: 7)");
        let s = settings("2026-12-02T02:00:00Z");
        assert_eq!(
            why(&s, "h2", "prod"),
            "the integration's extraction settings changed"
        );
        assert_eq!(
            why(&s, "h1", "other"),
            "no earlier extraction of this integration"
        );
        assert_eq!(
            why(
                &SyncSettings {
                    force_full: true,
                    ..s.clone()
                },
                "h1",
                "prod"
            ),
            "--full"
        );
        assert_eq!(
            why(
                &SyncSettings {
                    full_sync_every_days: 0,
                    ..s.clone()
                },
                "h1",
                "prod"
            ),
            "full_sync_every_days: 0"
        );
        // A clock before the last full sync (a clock set back) is no base either.
        assert!(why(&settings("2026-11-30T02:00:00Z"), "h1", "prod")
            .starts_with("the last full sync was at"));
    }

    #[test]
    fn an_incomplete_or_foreign_base_is_not_built_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = base(dir.path(), "2026-12-01T02:00:00Z", false);
        let d = decide(&db, "prod", "h1", &settings("2026-12-02T02:00:00Z")).unwrap();
        assert_eq!(
            (d.incremental, d.why.as_str()),
            (false, "the last extraction was incomplete")
        );
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE sync_bases SET complete = 1, tool_version = '0.0.1'",
            [],
        )
        .unwrap();
        let d = decide(&db, "prod", "h1", &settings("2026-12-02T02:00:00Z")).unwrap();
        assert_eq!(
            d.why,
            format!("autoexpose 0.0.1 made the last extraction, this is {TOOL_VERSION}")
        );
        conn.execute(
            "UPDATE sync_bases SET tool_version = ?1, schema_version = 3",
            [TOOL_VERSION],
        )
        .unwrap();
        let d = decide(&db, "prod", "h1", &settings("2026-12-02T02:00:00Z")).unwrap();
        assert!(
            d.why
                .starts_with("the database schema changed (migration 3 → "),
            "{}",
            d.why
        );
        let d = decide(
            &dir.path().join("none.db"),
            "prod",
            "h1",
            &settings("2026-12-02T02:00:00Z"),
        )
        .unwrap();
        assert_eq!(d.why, "no earlier extraction");
    }

    #[test]
    fn sync_state_keeps_each_assets_last_state_and_a_night_replaces_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let db = base(dir.path(), "2026-12-01T02:00:00Z", true);
        let mut conn = crate::db::open(&db).unwrap();
        let at = Instant::parse("2026-12-02T02:00:00Z").unwrap();
        let d = Decision {
            incremental: true,
            why: "night".into(),
            full_sync_at: at,
            base_extracted_at: Some(at),
            now: at,
        };
        let st = |id: &str, action, reason: &str| State {
            kind: "workbook",
            id: id.into(),
            action,
            reason: reason.into(),
        };
        let night = |conn: &mut rusqlite::Connection, states: &[State]| {
            let tx = conn.transaction().unwrap();
            write(&tx, "prod", &d, "h1", true, states).unwrap();
            tx.commit().unwrap();
            let mut q = conn
                .prepare("SELECT id, action, reason FROM sync_state ORDER BY id")
                .unwrap();
            let rows: Vec<String> = q
                .query_map([], |r| {
                    Ok(format!(
                        "{} {} {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?
                    ))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            rows
        };
        let first = night(
            &mut conn,
            &[
                st("b", Action::Fetched, "new"),
                st("a", Action::Reused, "unchanged"),
                st("b", Action::Removed, "no longer listed"),
            ],
        );
        assert_eq!(first, ["a reused unchanged", "b removed no longer listed"]);
        // The next night's states replace the last ones: a gone, c new, b as it was.
        let next = night(
            &mut conn,
            &[
                st("c", Action::Fetched, "new"),
                st("b", Action::Removed, "no longer listed"),
            ],
        );
        assert_eq!(next, ["b removed no longer listed", "c fetched new"]);
    }
}
