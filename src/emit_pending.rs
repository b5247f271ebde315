//! The exposures set changes once: emit's files and its rows in `exposures`/`emitted_files`
//! go from wholly old to wholly new, whenever the process is killed and whatever disk fills.
//!
//! How (`Staged`, then `Committed::apply`):
//! 1. Every new or changed file (YAML and exposures.json) is written to its temporary name
//!    beside its target (`atomic::temp_path`) and synced; the files to delete are only noted.
//!    Nothing the user sees has changed yet.
//! 2. The folders holding temporary files are synced, and the renames and deletions to make go
//!    into `emit_pending` (sql/0007) inside emit's transaction, which then commits: the new rows
//!    and the list of file changes become true at the same instant.
//! 3. The renames and deletions are made, the folders synced, and `emit_pending` is cleared in a
//!    transaction of its own.
//!
//! A failure before the commit (a full disk, any error) removes the temporary files and rolls
//! the transaction back: files and tables wholly old. A kill before the commit leaves only
//! temporary files that no record names; the next autoexpose removes them (`recover`): wholly
//! old. A kill after the commit leaves rows in `emit_pending`; the next autoexpose finishes
//! them (`recover`): wholly new.
//!
//! Why finishing (roll forward) is correct, and rolling back would not be: once the commit is
//! done the tables say new, so the files must become new to agree with them. Everything needed
//! for that is on disk: each temporary file was fully written and synced, and its folder
//! synced, before the commit, so a row of `emit_pending` never names a temporary file that could
//! be missing or half written. Each change is idempotent: a rename whose temporary file is gone
//! was already made (the temporary name is this emit's alone: no other process writes it, and
//! no later emit runs before the record is cleared), and a deletion of a file already gone is
//! done. So finishing the list from the start, any number of times, however often it is itself
//! interrupted, ends with exactly the new set. Rolling back instead would need the old files,
//! which a rename made before the kill has already replaced.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{params, Connection};

use crate::atomic;
use crate::config::Config;
use crate::log;
use crate::tags::{self, PendingAction};

/// One file change of an emit.
#[derive(Debug, Clone)]
enum Change {
    /// Put the synced temporary file `tmp` in place of `target`.
    Rename { tmp: PathBuf, target: PathBuf },
    /// Delete the generated file `target`.
    Delete { target: PathBuf },
}

impl Change {
    fn target(&self) -> &Path {
        match self {
            Change::Rename { target, .. } | Change::Delete { target } => target,
        }
    }
}

/// The file changes of one emit before its commit: temporary files written and synced,
/// deletions noted. Dropped before the commit (any error on the way), it removes its
/// temporary files, so the folder is left as it was.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    changes: Vec<Change>,
}

impl Staged {
    /// Writes `parts` to `target`'s temporary file and syncs it; the target is untouched.
    pub(crate) fn write(&mut self, target: &Path, parts: &[&[u8]]) -> Result<()> {
        let target = absolute(target)?;
        let tmp = atomic::stage(&target, parts)?;
        self.changes.push(Change::Rename { tmp, target });
        Ok(())
    }

    /// Notes that the generated file `target` goes.
    pub(crate) fn delete(&mut self, target: &Path) -> Result<()> {
        self.changes.push(Change::Delete {
            target: absolute(target)?,
        });
        Ok(())
    }

    /// Syncs the folders of the temporary files and records every change in `emit_pending`,
    /// inside `tx`: the caller commits `tx` next, then calls `Committed::apply`.
    pub(crate) fn record(self, tx: &rusqlite::Transaction) -> Result<Committed> {
        for dir in folders(&self.changes) {
            atomic::sync_folder(&dir)?;
        }
        crate::fault::point("emit.staged");
        let mut ins = tx.prepare_cached(
            "INSERT INTO emit_pending (seq, action, tmp, target) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (seq, c) in self.changes.iter().enumerate() {
            let (action, tmp) = match c {
                Change::Rename { tmp, .. } => (PendingAction::Rename, Some(text(tmp)?)),
                Change::Delete { .. } => (PendingAction::Delete, None),
            };
            ins.execute(params![seq as i64, action, tmp, text(c.target())?])?;
        }
        Ok(Committed { staged: self })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for c in &self.changes {
            if let Change::Rename { tmp, .. } = c {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}

/// The changes recorded in emit's (not yet committed) transaction. Dropped before `apply`
/// (the commit failed), it removes the temporary files, as `Staged` does.
#[derive(Debug)]
pub(crate) struct Committed {
    staged: Staged,
}

impl Committed {
    /// After the commit: makes the changes, syncs their folders and clears `emit_pending`.
    /// An error here leaves the record for the next autoexpose to finish (see the module).
    pub(crate) fn apply(mut self, conn: &Connection) -> Result<()> {
        // Taken, so that dropping `self` no longer removes the temporary files.
        let changes = std::mem::take(&mut self.staged.changes);
        crate::fault::point("emit.committed");
        let unfinished = |e: anyhow::Error| {
            e.context("emit committed the new exposures set but could not put every file in place; the next autoexpose on this database finishes it")
        };
        for c in &changes {
            crate::fault::point("emit.apply");
            make(c).map_err(unfinished)?;
        }
        for dir in folders(&changes) {
            atomic::sync_folder(&dir).map_err(unfinished)?;
        }
        crate::fault::point("emit.applied");
        conn.execute("DELETE FROM emit_pending", [])
            .context("emit: cannot clear emit_pending")
            .map_err(unfinished)?;
        Ok(())
    }
}

/// What one change did.
#[derive(Debug, PartialEq, Eq)]
enum Made {
    Renamed,
    /// The temporary file was gone and the target there: renamed before.
    AlreadyRenamed,
    Deleted,
    AlreadyDeleted,
    /// Neither the temporary file nor the target exists: nothing can be done (said).
    Lost,
    /// The file to delete no longer starts with our header (someone replaced it): left alone.
    NotOurs,
}

/// Makes one change, idempotently (see the module for why that is enough).
fn make(c: &Change) -> Result<Made> {
    match c {
        Change::Rename { tmp, target } => match std::fs::rename(tmp, target) {
            Ok(()) => Ok(Made::Renamed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(if target.exists() {
                Made::AlreadyRenamed
            } else {
                Made::Lost
            }),
            Err(e) => Err(e).with_context(|| {
                format!(
                    "{}: cannot put {} in its place",
                    target.display(),
                    tmp.display()
                )
            }),
        },
        Change::Delete { target } => {
            if !starts_with_header(target) {
                return Ok(if target.exists() {
                    Made::NotOurs
                } else {
                    Made::AlreadyDeleted
                });
            }
            match std::fs::remove_file(target) {
                Ok(()) => Ok(Made::Deleted),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Made::AlreadyDeleted),
                Err(e) => Err(e).with_context(|| format!("{}: cannot delete it", target.display())),
            }
        }
    }
}

fn starts_with_header(path: &Path) -> bool {
    use std::io::Read;
    // A header is two short lines; 1 KiB holds it whatever the tool's name.
    let mut buf = Vec::with_capacity(1024);
    std::fs::File::open(path)
        .and_then(|f| f.take(1024).read_to_end(&mut buf))
        .is_ok()
        && crate::emit::has_header(&String::from_utf8_lossy(&buf))
}

/// The folders the changes touch, each once.
fn folders(changes: &[Change]) -> BTreeSet<PathBuf> {
    changes
        .iter()
        .map(|c| atomic::folder(c.target()).to_path_buf())
        .collect()
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("{}: cannot make the path absolute", path.display()))
}

fn text(path: &Path) -> Result<String> {
    path.to_str().map(str::to_string).with_context(|| {
        format!(
            "{}: the path is not valid UTF-8, which emit_pending cannot record",
            path.display()
        )
    })
}

/// Run first by every command that opens the database (holding its lock, so no other
/// autoexpose on it is alive): finishes the file changes an interrupted emit committed (roll
/// forward, see the module), then removes the temporary files a dead autoexpose left in the
/// exposures folder and exposures.json's folder that no record names (roll back: written before
/// a commit that never came). Logs what it did.
pub(crate) fn recover(conn: &Connection, config: &Config) -> Result<()> {
    let db = config.database.display();
    let changes: Vec<Change> = {
        let mut st = conn.prepare("SELECT action, tmp, target FROM emit_pending ORDER BY seq")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, PendingAction>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (action, tmp, target) =
                row.map_err(tags::in_table(&config.database, "emit_pending"))?;
            let target = PathBuf::from(target);
            out.push(match (action, tmp) {
                (PendingAction::Rename, Some(tmp)) => {
                    let tmp = PathBuf::from(tmp);
                    // Only a temporary file of ours, beside its target and named after it.
                    let named = tmp.file_name().and_then(|n| n.to_str()).and_then(atomic::parse_temp).map(|(t, _)| t.to_string());
                    let beside = tmp.parent() == target.parent();
                    if !beside || named.as_deref() != target.file_name().and_then(|n| n.to_str()) {
                        anyhow::bail!(
                            "database {db}: emit_pending names {} for {}, which is not an autoexpose temporary file beside it; not touching either (remove the row by hand if this database was edited)",
                            tmp.display(),
                            target.display()
                        );
                    }
                    Change::Rename { tmp, target }
                }
                (PendingAction::Delete, _) => Change::Delete { target },
                (PendingAction::Rename, None) => anyhow::bail!(
                    "database {db}: emit_pending has a rename of {} without its temporary file; not touching it (remove the row by hand if this database was edited)",
                    target.display()
                ),
            });
        }
        out
    };
    if !changes.is_empty() {
        let mut said = Vec::new();
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for c in &changes {
            crate::fault::point("emit.recover");
            let made = make(c)?;
            let what = match made {
                Made::Renamed => "renamed into place",
                Made::AlreadyRenamed => "already in place",
                Made::Deleted => "deleted",
                Made::AlreadyDeleted => "already deleted",
                Made::Lost => {
                    said.push(format!(
                        "{}: its new content is missing (neither it nor its temporary file exists)",
                        c.target().display()
                    ));
                    "missing"
                }
                Made::NotOurs => {
                    said.push(format!(
                        "{}: left alone, it no longer starts with autoexpose's header",
                        c.target().display()
                    ));
                    "left alone"
                }
            };
            *counts.entry(what).or_default() += 1;
            log::debug(&format!("emit_pending: {}: {what}", c.target().display()));
        }
        for dir in folders(&changes) {
            atomic::sync_folder(&dir)?;
        }
        crate::fault::point("emit.recovered");
        conn.execute("DELETE FROM emit_pending", [])
            .with_context(|| format!("database {db}: cannot clear emit_pending"))?;
        let counts: Vec<String> = counts
            .iter()
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        log::warn(&format!(
            "database {db}: an earlier autoexpose was stopped after its emit committed and before every file was in place; finished it: {}",
            counts.join(", ")
        ));
        for s in said {
            log::warn(&s);
        }
    }
    let exposures_dir = config.project_dir.join(&config.exposures_dir);
    let json_dir = atomic::folder(&crate::emit::exposures_json_path(config)).to_path_buf();
    let mut dirs = vec![exposures_dir];
    if !dirs.contains(&json_dir) {
        dirs.push(json_dir);
    }
    for dir in dirs {
        remove_strays(&dir)?;
    }
    Ok(())
}

/// Removes the temporary files in `dir` (not below it) of an autoexpose that is not running:
/// names made by `atomic::temp_path` only, whose pid is this process's (an earlier process had
/// the same pid) or no live process's. A live process's file is left alone: another
/// autoexpose, on another database, may be writing into the same folder.
fn remove_strays(dir: &Path) -> Result<()> {
    // No folder (or a file in its place, which emit reports): nothing of ours can be there.
    if !dir.is_dir() {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list it", dir.display()))?;
    let mut removed = false;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list it", dir.display()))?;
        let name = entry.file_name();
        let Some((target, pid)) = name.to_str().and_then(atomic::parse_temp) else {
            continue;
        };
        // A regular file only (never follow a link, never a folder).
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        if pid != std::process::id() && alive(pid) {
            log::debug(&format!(
                "{}: left alone, its autoexpose (pid {pid}) is running",
                path.display()
            ));
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{}: cannot remove this leftover temporary file",
                        path.display()
                    )
                })
            }
        }
        removed = true;
        log::warn(&format!(
            "Removed {}: an unfinished new version of {target} left by an autoexpose (pid {pid}) stopped before its emit committed; {target} was not changed",
            path.display()
        ));
    }
    if removed {
        atomic::sync_folder(dir)?;
    }
    Ok(())
}

/// Whether a process with this pid exists (one we may not signal exists too).
fn alive(pid: u32) -> bool {
    // 0 and values beyond pid_t would name a process group or nothing: not a process.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.yml");
        let tmp = atomic::stage(&target, &[b"new"]).unwrap();
        let rename = Change::Rename {
            tmp,
            target: target.clone(),
        };
        assert_eq!(make(&rename).unwrap(), Made::Renamed);
        assert_eq!(make(&rename).unwrap(), Made::AlreadyRenamed);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");

        let gone = dir.path().join("b.yml");
        std::fs::write(&gone, crate::emit::header("Some Tool")).unwrap();
        let delete = Change::Delete {
            target: gone.clone(),
        };
        assert_eq!(make(&delete).unwrap(), Made::Deleted);
        assert_eq!(make(&delete).unwrap(), Made::AlreadyDeleted);
        std::fs::write(&gone, "# hand-written\n").unwrap();
        assert_eq!(make(&delete).unwrap(), Made::NotOurs);
        assert!(gone.exists());
    }

    #[test]
    fn dead_pids_are_not_alive() {
        assert!(alive(std::process::id()));
        assert!(!alive(0));
        assert!(!alive(u32::MAX));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }
}
