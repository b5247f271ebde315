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
//!
//! **One session per credential, too.** Some servers keep one session per credential: a
//! sign-in with it ends the session signed in earlier with it, so two autoexposes with
//! different configs and databases but one credential would end each other's sessions mid-run.
//! An integration whose server has that rule takes a second kind of lock, `acquire_session`,
//! from reading the credential (before any request) to the process's end: a file in a per-user
//! folder (`runtime_dir`), named after the credential's kind and a hash of the server URL and
//! the credential's name, holding the pid, start time, integration and server, never the secret
//! nor the name. The same flock rules apply (a dead holder's lock is taken over). Within one
//! process, two integrations with one credential are refused by name. What the rule is, and the
//! words of both refusals, are the integration's: it passes them in (`Refusals`). Replays sign
//! in nowhere and take no session lock.

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
    let mut name = db
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(".lock");
    db.with_file_name(name)
}

/// Takes the lock of database `db` at once, or fails naming the process that holds it.
pub(crate) fn acquire(db: &Path) -> Result<DbLock> {
    if let Some(dir) = db.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("database {}: cannot create its folder", db.display()))?;
        }
    }
    let path = lock_path(db);
    let holder = format!(
        "pid {}\nstarted {}\n",
        std::process::id(),
        crate::db::now_rfc3339()
    );
    take(&path, &holder, &|field: &dyn Fn(&str) -> String| {
        anyhow::anyhow!(
            "another autoexpose (pid {}, started {}) is using {}; wait for it to finish, or remove {} if that process is gone",
            field("pid "),
            field("started "),
            db.display(),
            path.display()
        )
    })
}

/// The refusal when a lock is held: made from the holder's lines, read by their prefix
/// (`field("pid ")`).
type Busy<'a> = &'a dyn Fn(&dyn Fn(&str) -> String) -> anyhow::Error;

/// Locks `path` (creating it) at once and writes `holder` into it, or fails with `busy`.
fn take(path: &Path, holder: &str, busy: Busy) -> Result<DbLock> {
    // A few rounds at most: each retry means another process removed the file we locked.
    for _ in 0..16 {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("lock file {}: cannot open it", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(err)
                    .with_context(|| format!("lock file {}: cannot lock it", path.display()));
            }
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let field = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .unwrap_or("unknown")
                    .to_string()
            };
            return Err(busy(&field));
        }
        // The holder before us may have removed the file between our open and our flock.
        let same = match std::fs::metadata(path) {
            Ok(on_disk) => {
                let ours = file
                    .metadata()
                    .with_context(|| format!("lock file {}", path.display()))?;
                on_disk.dev() == ours.dev() && on_disk.ino() == ours.ino()
            }
            Err(_) => false,
        };
        if !same {
            continue;
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .with_context(|| format!("lock file {}: cannot write it", path.display()))?;
        return Ok(DbLock {
            path: path.to_path_buf(),
            _file: file,
        });
    }
    bail!(
        "lock file {}: it keeps being replaced by other processes; try again",
        path.display()
    )
}

impl Drop for DbLock {
    fn drop(&mut self) {
        // Remove first, unlock second (closing `_file` after this body): a process that opened
        // the old file in between sees it is gone and starts over.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The folder of the session lock files: `AUTOEXPOSE_RUNTIME_DIR` when set (tests set it so
/// they do not share locks with each other), else `$XDG_RUNTIME_DIR/autoexpose`, else
/// `<temp dir>/autoexpose-<uid>`; created private (0700), and refused unless it is a folder
/// owned by this user (a shared temp folder could hold someone else's).
pub(crate) fn runtime_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let set = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = match (
        set("AUTOEXPOSE_RUNTIME_DIR"),
        set("XDG_RUNTIME_DIR").filter(|d| d.is_absolute()),
    ) {
        (Some(d), _) => d,
        (None, Some(x)) => x.join("autoexpose"),
        (None, None) => std::env::temp_dir().join(format!("autoexpose-{uid}")),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| {
            format!(
                "lock folder {}: cannot create it (set AUTOEXPOSE_RUNTIME_DIR to another folder)",
                dir.display()
            )
        })?;
    let meta = std::fs::symlink_metadata(&dir)
        .with_context(|| format!("lock folder {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid {
        bail!("lock folder {}: not a folder owned by this user; set AUTOEXPOSE_RUNTIME_DIR to one that is", dir.display());
    }
    Ok(dir)
}

/// `scheme://host[:port]/path` as compared for "the same server": lowercase scheme and host,
/// no trailing slash.
fn server_key(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
            let path = if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            };
            format!(
                "{}://{}{path}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase()
            )
        }
        None => url.to_string(),
    }
}

/// One credential that a server allows one session at a time.
pub(crate) struct Credential<'a> {
    /// What kind of credential it is, the start of its lock file's name (`pat`): locks of
    /// different kinds never meet. Letters, digits and `-` only.
    pub(crate) kind: &'static str,
    pub(crate) server_url: &'a str,
    /// Its name (never its secret): hashed into the lock file's name, never written.
    pub(crate) name: &'a str,
    /// The integration that signs in with it.
    pub(crate) integration: &'a str,
}

/// Who holds a session lock that another process took, as its file says.
pub(crate) struct Holder<'a> {
    pub(crate) pid: String,
    pub(crate) started: String,
    pub(crate) integration: String,
    /// The server, as compared (`server_key`).
    pub(crate) server: &'a str,
    pub(crate) lock_file: &'a Path,
}

/// The refusals of `acquire_session`, in the integration's words.
pub(crate) struct Refusals<'a> {
    /// Another integration of this process (named first) holds the credential on the server
    /// (second, as compared).
    pub(crate) same_process: &'a dyn Fn(&str, &str) -> String,
    /// Another process holds it.
    pub(crate) other_process: &'a dyn Fn(&Holder) -> String,
}

/// The lock file of the credential of `kind` named `name` on `server_url`: a hash, so the file
/// names neither server nor credential.
pub(crate) fn session_lock_path(dir: &Path, kind: &str, server_url: &str, name: &str) -> PathBuf {
    let digest =
        crate::config::hex_sha256(format!("{}\n{name}", server_key(server_url)).as_bytes());
    dir.join(format!("{kind}-{}.lock", &digest[..32]))
}

/// The session locks this process holds: (lock file, integration, lock).
static SESSION_LOCKS: std::sync::Mutex<Vec<(PathBuf, String, DbLock)>> =
    std::sync::Mutex::new(Vec::new());

/// Takes the lock of `credential` for its integration, held until `SessionLocks` is dropped.
/// Taking it again for the same integration (refresh after run) is a no-op; for another
/// integration of this process it is refused (`refusals.same_process`), and so it is while
/// another process holds it (`refusals.other_process`).
pub(crate) fn acquire_session(credential: &Credential, refusals: &Refusals) -> Result<()> {
    let Credential {
        kind,
        server_url,
        name,
        integration,
    } = *credential;
    debug_assert!(
        !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{kind:?}"
    );
    let dir = runtime_dir()?;
    let path = session_lock_path(&dir, kind, server_url, name);
    let server = server_key(server_url);
    let mut held = SESSION_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, other, _)) = held.iter().find(|(p, _, _)| *p == path) {
        if other == integration {
            return Ok(());
        }
        bail!("{}", (refusals.same_process)(other, &server));
    }
    let holder = format!(
        "pid {}\nstarted {}\nintegration {integration}\nserver {server}\n",
        std::process::id(),
        crate::db::now_rfc3339()
    );
    let lock = take(&path, &holder, &|field: &dyn Fn(&str) -> String| {
        let holder = Holder {
            pid: field("pid "),
            started: field("started "),
            integration: field("integration "),
            server: &server,
            lock_file: &path,
        };
        anyhow::anyhow!("{}", (refusals.other_process)(&holder))
    })?;
    held.push((path, integration.to_string(), lock));
    Ok(())
}

/// Releases every session lock of this process when dropped (at the end of `pipeline::run`).
pub(crate) struct SessionLocks;

impl Drop for SessionLocks {
    fn drop(&mut self) {
        SESSION_LOCKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Releases the session locks held on `paths` (and removes their files), leaving the others:
/// for tests, which share one process.
#[cfg(test)]
pub(crate) fn release_sessions(paths: &[&Path]) {
    SESSION_LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(p, _, _)| !paths.contains(&p.as_path()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_is_beside_the_database() {
        assert_eq!(
            lock_path(Path::new("/x/y/autoexpose.db")),
            PathBuf::from("/x/y/autoexpose.db.lock")
        );
        assert_eq!(lock_path(Path::new("a.db")), PathBuf::from("a.db.lock"));
    }

    #[test]
    fn a_second_lock_is_refused_and_the_file_goes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/a.db");
        let first = acquire(&db).unwrap();
        let text = std::fs::read_to_string(lock_path(&db)).unwrap();
        assert!(
            text.starts_with(&format!("pid {}\nstarted ", std::process::id())),
            "{text}"
        );
        // flock locks belong to the open file description, so a second open in this process
        // conflicts just as another process would.
        let err = acquire(&db).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "another autoexpose (pid {}, started ",
                std::process::id()
            )),
            "{err}"
        );
        assert!(err.contains(&format!("is using {}", db.display())), "{err}");
        drop(first);
        assert!(!lock_path(&db).exists());
        let again = acquire(&db).unwrap();
        drop(again);
        assert!(!lock_path(&db).exists());
    }

    #[test]
    fn session_lock_files_name_neither_server_nor_credential() {
        let dir = Path::new("/run/x");
        let a = session_lock_path(dir, "key", "https://BI.Example.com/", "ci-key");
        assert_eq!(
            a,
            session_lock_path(dir, "key", "https://bi.example.com", "ci-key")
        );
        assert_ne!(
            a,
            session_lock_path(dir, "key", "https://bi.example.com", "ci-key2")
        );
        assert_ne!(
            a,
            session_lock_path(dir, "key", "https://other.example.com", "ci-key")
        );
        assert_ne!(
            a,
            session_lock_path(dir, "other-kind", "https://bi.example.com", "ci-key")
        );
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("key-")
                && name.ends_with(".lock")
                && !name.contains("ci")
                && !name.contains("example"),
            "{name}"
        );
    }

    /// The refusals of these tests: each names what it was given, so the test sees it all.
    fn refusals() -> Refusals<'static> {
        Refusals {
            same_process: &|other, server| format!("same process: {other} on {server}"),
            other_process: &|h| {
                format!(
                    "other process: pid {} started {} integration {} on {} ({})",
                    h.pid,
                    h.started,
                    h.integration,
                    h.server,
                    h.lock_file.display()
                )
            },
        }
    }

    #[test]
    fn one_process_cannot_use_one_credential_for_two_integrations() {
        // A server of its own, so no other test's lock can match.
        let server = format!(
            "https://session-lock-unit-{}.example.com",
            std::process::id()
        );
        let cred = |name, integration| Credential {
            kind: "key",
            server_url: &server,
            name,
            integration,
        };
        acquire_session(&cred("shared", "first"), &refusals()).unwrap();
        acquire_session(&cred("shared", "first"), &refusals()).unwrap();
        let err = acquire_session(&cred("shared", "second"), &refusals())
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("same process: first on {server}"));
        acquire_session(&cred("other", "second"), &refusals()).unwrap();
        let path = session_lock_path(&runtime_dir().unwrap(), "key", &server, "shared");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("pid {}\n", std::process::id()))
                && text.contains("integration first\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("server {server}\n")) && !text.contains("shared"),
            "{text}"
        );
        // Released (and removed) with the guards.
        let other = session_lock_path(&runtime_dir().unwrap(), "key", &server, "other");
        release_sessions(&[&path, &other]);
        assert!(!path.exists() && !other.exists());
    }

    /// A lock another process holds (here: another open file description of this one, which
    /// flock treats alike) is refused with the holder's lines, in the caller's words.
    #[test]
    fn a_credential_another_process_holds_is_refused_naming_it() {
        let server = format!(
            "https://session-lock-busy-{}.example.com",
            std::process::id()
        );
        let path = session_lock_path(&runtime_dir().unwrap(), "key", &server, "busy");
        let busy = |_: &dyn Fn(&str) -> String| anyhow::anyhow!("unexpected");
        let other = take(
            &path,
            "pid 4242\nstarted 2026-01-01T00:00:00Z\nintegration elsewhere\n",
            &busy,
        )
        .unwrap();
        let cred = Credential {
            kind: "key",
            server_url: &server,
            name: "busy",
            integration: "here",
        };
        let err = acquire_session(&cred, &refusals()).unwrap_err().to_string();
        assert_eq!(err, format!("other process: pid 4242 started 2026-01-01T00:00:00Z integration elsewhere on {server} ({})", path.display()));
        drop(other);
        acquire_session(&cred, &refusals()).unwrap();
        release_sessions(&[&path]);
        assert!(!path.exists());
    }
}
