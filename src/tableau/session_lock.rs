//! One session per PAT: Tableau keeps one session per personal access token, and a sign-in
//! with a PAT ends the session signed in earlier with it ("PATs cannot be used concurrently.
//! Signing in multiple times with the same PAT at the same time will terminate any prior
//! session and will result in an authentication error",
//! <https://tableau.github.io/tableau-mcp/docs/configuration/mcp-config/authentication/pat>,
//! pointing to Tableau's "Understand personal access tokens"). Two autoexposes with different
//! configs and databases but one PAT would end each other's sessions mid-run.
//!
//! So `connect` takes the PAT's session lock (`lock::acquire_session`, kind `pat`: files
//! `pat-<hash>.lock`) after reading the PAT and before any request, held to the process's end;
//! replays sign in nowhere and take none. Within one process, two integrations with one PAT
//! are refused by name; the config check in `config.rs` (`check_one_pat_per_integration`)
//! catches the common case, one env var for both, before anything runs.

use anyhow::Result;

use crate::lock::{acquire_session, Credential, Holder, Refusals};

/// The kind of the PAT locks: their files are `pat-<hash of server and PAT name>.lock`.
pub(crate) const KIND: &str = "pat";

/// Takes the lock of the PAT named `pat_name` on `server_url` for integration `integration`
/// (whose PAT name is read from env var `name_env`), held until `lock::SessionLocks` is
/// dropped. Taking it again for the same integration is a no-op.
pub(crate) fn acquire(
    server_url: &str,
    pat_name: &str,
    integration: &str,
    name_env: &str,
) -> Result<()> {
    let same_process = |other: &str, server: &str| {
        format!(
            "tableau {integration:?} and tableau {other:?} sign in to {server} with the same PAT (their env vars hold the same PAT name): Tableau keeps one session per PAT, and each sign-in would end the other's session. Give each integration its own PAT"
        )
    };
    let other_process = |h: &Holder| {
        format!(
            "tableau {integration:?}: another autoexpose (pid {}, started {}, integration {:?}) is signed in to {} with the same PAT (the name in env var {name_env}); Tableau keeps one session per PAT, so each sign-in would end the other's session. Wait for it to finish or give each config its own PAT; remove {} if that process is gone",
            h.pid,
            h.started,
            h.integration,
            h.server,
            h.lock_file.display()
        )
    };
    let credential = Credential {
        kind: KIND,
        server_url,
        name: pat_name,
        integration,
    };
    acquire_session(
        &credential,
        &Refusals {
            same_process: &same_process,
            other_process: &other_process,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{release_sessions, runtime_dir, session_lock_path};

    /// The PAT lock files are named as before the lock was made neutral (`pat-<hash>.lock`,
    /// the hash of the server and the PAT's name), so an older autoexpose and this one exclude
    /// each other; they name neither.
    #[test]
    fn pat_lock_files_name_neither_server_nor_pat() {
        let dir = std::path::Path::new("/run/x");
        let a = session_lock_path(dir, KIND, "https://Tableau.Example.com/", "ci-pat");
        let digest = crate::config::hex_sha256(b"https://tableau.example.com\nci-pat");
        assert_eq!(a, dir.join(format!("pat-{}.lock", &digest[..32])));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(!name.contains("ci") && !name.contains("tableau"), "{name}");
    }

    #[test]
    fn one_process_cannot_use_one_pat_for_two_integrations() {
        // A server of its own, so no other test's lock can match.
        let server = format!("https://pat-lock-unit-{}.example.com", std::process::id());
        acquire(&server, "shared", "first", "A_NAME").unwrap();
        acquire(&server, "shared", "first", "A_NAME").unwrap();
        let err = acquire(&server, "shared", "second", "B_NAME")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tableau \"second\" and tableau \"first\"") && err.contains("same PAT"),
            "{err}"
        );
        acquire(&server, "other", "second", "B_NAME").unwrap();
        let path = session_lock_path(&runtime_dir().unwrap(), KIND, &server, "shared");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("pid {}\n", std::process::id()))
                && text.contains("integration first\n"),
            "{text}"
        );
        assert!(!text.contains("shared"), "{text}");
        // Released (and removed) with the guards.
        let other = session_lock_path(&runtime_dir().unwrap(), KIND, &server, "other");
        release_sessions(&[&path, &other]);
        assert!(!path.exists() && !other.exists());
    }
}
