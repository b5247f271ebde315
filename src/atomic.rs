//! Atomic file writes: a temporary file in the same folder, synced, then renamed over the
//! target, so a reader (or dbt) sees the old file or the new one, never half of one.
//!
//! Large outputs are written from their pieces (`write_parts`), so they are never gathered
//! into one buffer, and are compared with the file already there first (`same_as`), so an
//! unchanged file keeps its inode and time and is not written again.
//!
//! A set of files that must change together (emit's) is written in two steps: `stage` writes
//! and syncs each temporary file, and the caller renames them all later (see `emit_pending`).
//! Temporary files are named `.<target name>.autoexpose-<pid>.tmp` (`temp_path`); `parse_temp`
//! recognises exactly that name and nothing else, so a cleanup never touches anyone's file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_parts(path, &[bytes])
}

const TEMP_MARK: &str = ".autoexpose-";
const TEMP_END: &str = ".tmp";

/// The folder a file lives in (`.` for a bare name).
pub(crate) fn folder(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Where this process writes `path`'s new content first: beside it, so the rename that puts
/// it in place stays within one file system.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    folder(path).join(format!(
        ".{name}{TEMP_MARK}{}{TEMP_END}",
        std::process::id()
    ))
}

/// For a file name made by `temp_path`: the target's name and the writer's pid. `None` for
/// any other name (no leading dot, no `.autoexpose-<digits>.tmp` ending, an empty target).
pub(crate) fn parse_temp(file_name: &str) -> Option<(&str, u32)> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(TEMP_END)?;
    let (target, pid) = rest.rsplit_once(TEMP_MARK)?;
    if target.is_empty()
        || pid.is_empty()
        || pid.len() > 10
        || !pid.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((target, pid.parse().ok()?))
}

/// Whether the file at `path` holds exactly the concatenation of `parts` (false when it
/// cannot be read). Reads it in blocks, so it never holds the whole file.
pub(crate) fn same_as(path: &Path, parts: &[&[u8]]) -> bool {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if file
        .metadata()
        .map(|m| m.len() != total as u64)
        .unwrap_or(true)
    {
        return false;
    }
    let mut block = vec![0u8; 1 << 18];
    let mut rest = parts.iter().flat_map(|p| p.chunks(1 << 18));
    let mut pending: &[u8] = &[];
    loop {
        let n = match file.read(&mut block) {
            Ok(0) => return pending.is_empty() && rest.next().is_none(),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let mut got = &block[..n];
        while !got.is_empty() {
            if pending.is_empty() {
                match rest.next() {
                    Some(p) => pending = p,
                    None => return false,
                }
                continue;
            }
            let k = got.len().min(pending.len());
            if got[..k] != pending[..k] {
                return false;
            }
            got = &got[k..];
            pending = &pending[k..];
        }
    }
}

/// Writes the concatenation of `parts`, atomically.
pub(crate) fn write_parts(path: &Path, parts: &[&[u8]]) -> Result<()> {
    let tmp = stage(path, parts)?;
    crate::fault::point("atomic.rename");
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write it", path.display()));
    }
    Ok(())
}

/// Writes the concatenation of `parts` to `path`'s temporary file (`temp_path`) and syncs it
/// to disk; returns the temporary file's path. The target is not touched. On any error the
/// temporary file is removed and the error names the target.
pub(crate) fn stage(path: &Path, parts: &[&[u8]]) -> Result<PathBuf> {
    let dir = folder(path);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        for part in parts {
            crate::fault::fail("atomic.write")?;
            f.write_all(part)?;
        }
        let f = f.into_inner().map_err(|e| e.into_error())?;
        crate::fault::fail("atomic.sync")?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write it", path.display()));
    }
    Ok(tmp)
}

/// Syncs a folder, so the names created, renamed or removed in it are on disk.
pub(crate) fn sync_folder(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("{}: cannot sync the folder", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_compares_across_piece_and_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let parts: Vec<&[u8]> = vec![b"[", &big[..100_000], b"", &big[100_000..], b"]"];
        assert!(!same_as(&path, &parts), "no file yet");
        write_parts(&path, &parts).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 700_002);
        assert!(same_as(&path, &parts));
        assert!(same_as(&path, &[&std::fs::read(&path).unwrap()]));
        let mut changed = big.clone();
        changed[450_000] ^= 1;
        assert!(
            !same_as(&path, &[b"[", &changed, b"]"]),
            "one byte differs past the first block"
        );
        assert!(!same_as(&path, &[b"[", &big, b"}"]), "last byte differs");
        assert!(!same_as(&path, &[b"[", &big]), "shorter");
    }

    #[test]
    fn temp_names_are_recognised_exactly() {
        let tmp = temp_path(Path::new("dir/a.yml"));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_temp(name), Some(("a.yml", std::process::id())));
        assert_eq!(tmp.parent(), Some(Path::new("dir")));
        assert_eq!(
            parse_temp(".exposures.json.autoexpose-999999.tmp"),
            Some(("exposures.json", 999_999))
        );
        for other in [
            "a.yml.autoexpose-1.tmp",
            ".a.yml.autoexpose-.tmp",
            ".a.yml.autoexpose-12x.tmp",
            ".a.yml.autoexpose-1.tmp.bak",
            ".autoexpose-1.tmp",
            ".a.yml.autoexpose-1.TMP",
            ".a.yml.autoexpose-99999999999.tmp",
            "a.yml",
        ] {
            assert_eq!(parse_temp(other), None, "{other}");
        }
    }

    #[test]
    fn stage_leaves_the_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yml");
        std::fs::write(&path, "old").unwrap();
        let tmp = stage(&path, &[b"new"]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(&tmp).unwrap(), "new");
        sync_folder(dir.path()).unwrap();
    }
}
