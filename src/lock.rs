//! One autoexpose per SQLite file: an OS advisory lock on `<db>.lock`, held for the process's
//! life.
//!
//! Why a lock at all: SQLite serialises single transactions, not whole runs. Two `run`s on one
//! file both succeeded, each stage's tables coming from whichever wrote last (workbooks from one
//! run, matches and YAML from the other), and `refresh` read tables changed under it.
//!
//! Why `flock(2)` on a file beside the database, and not `BEGIN IMMEDIATE` held for the run:
//! stages open several connections (parallel readers, one writer) and commit stage by stage,
//! and a run makes long HTTP calls between commits; an open write transaction across all that
//! would block even readers of the `runs` log and lose the per-stage all-or-nothing commits.
//! And why not a plain `create_new` lock file: a killed process leaves it behind, and deciding
//! whether its pid is still ours is guesswork (pids are reused). The kernel drops a `flock` when
//! its holder dies, however it dies, so a lock file left by a dead process is simply locked again
//! by the next one: stale locks are taken over without any pid check.
//!
//! The file holds the holder's pid and start time, only so the refusal can say who holds it.
//! On exit (normal or error) the guard removes the file before the lock is released. Because a
//! waiter could have opened the old file just before it was removed, a process that gets the
//! lock checks that the path still names the file it locked, and starts over if not.
//!
//! Not covered: two machines sharing the database over a network file system whose `flock` is
//! not shared between hosts (Linux NFS emulates it with POSIX locks, which are).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The lock; dropping it removes the lock file and releases the lock.
#[derive(Debug)]
pub(crate) struct DbLock {
    path: PathBuf,
    // Held, never read: the lock lives as long as this descriptor is open.
    _file: File,
}

/// `<db>.lock`: beside the database, named after it, so each database file has its own.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".lock");
    db.with_file_name(name)
}

/// Takes the lock of database `db` at once, or fails naming the process that holds it.
pub(crate) fn acquire(db: &Path) -> Result<DbLock> {
    if let Some(dir) = db.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("database {}: cannot create its folder", db.display()))?;
        }
    }
    let path = lock_path(db);
    // A few rounds at most: each retry means another process removed the file we locked.
    for _ in 0..16 {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("lock file {}: cannot open it", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(err).with_context(|| format!("lock file {}: cannot lock it", path.display()));
            }
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let field = |key: &str| {
                text.lines().find_map(|l| l.strip_prefix(key)).map(str::trim).filter(|v| !v.is_empty()).unwrap_or("unknown").to_string()
            };
            bail!(
                "another autoexpose (pid {}, started {}) is using {}; wait for it to finish, or remove {} if that process is gone",
                field("pid "),
                field("started "),
                db.display(),
                path.display()
            );
        }
        // The holder before us may have removed the file between our open and our flock.
        let same = match std::fs::metadata(&path) {
            Ok(on_disk) => {
                let ours = file.metadata().with_context(|| format!("lock file {}", path.display()))?;
                on_disk.dev() == ours.dev() && on_disk.ino() == ours.ino()
            }
            Err(_) => false,
        };
        if !same {
            continue;
        }
        let holder = format!("pid {}\nstarted {}\n", std::process::id(), crate::db::now_rfc3339());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .with_context(|| format!("lock file {}: cannot write it", path.display()))?;
        return Ok(DbLock { path, _file: file });
    }
    bail!("lock file {}: it keeps being replaced by other processes; try again", path.display())
}

impl Drop for DbLock {
    fn drop(&mut self) {
        // Remove first, unlock second (closing `_file` after this body): a process that opened
        // the old file in between sees it is gone and starts over.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_is_beside_the_database() {
        assert_eq!(lock_path(Path::new("/x/y/autoexpose.db")), PathBuf::from("/x/y/autoexpose.db.lock"));
        assert_eq!(lock_path(Path::new("a.db")), PathBuf::from("a.db.lock"));
    }

    #[test]
    fn a_second_lock_is_refused_and_the_file_goes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/a.db");
        let first = acquire(&db).unwrap();
        let text = std::fs::read_to_string(lock_path(&db)).unwrap();
        assert!(text.starts_with(&format!("pid {}\nstarted ", std::process::id())), "{text}");
        // flock locks belong to the open file description, so a second open in this process
        // conflicts just as another process would.
        let err = acquire(&db).unwrap_err().to_string();
        assert!(err.contains(&format!("another autoexpose (pid {}, started ", std::process::id())), "{err}");
        assert!(err.contains(&format!("is using {}", db.display())), "{err}");
        drop(first);
        assert!(!lock_path(&db).exists());
        let again = acquire(&db).unwrap();
        drop(again);
        assert!(!lock_path(&db).exists());
    }
}
