//! Atomic file writes: a temporary file in the same folder, synced, then renamed over the
//! target, so a reader (or dbt) sees the old file or the new one, never half of one.
//!
//! Large outputs are written from their pieces (`write_parts`), so they are never gathered
//! into one buffer, and are compared with the file already there first (`same_as`), so an
//! unchanged file keeps its inode and time and is not written again.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_parts(path, &[bytes])
}

/// Whether the file at `path` holds exactly the concatenation of `parts` (false when it
/// cannot be read). Reads it in blocks, so it never holds the whole file.
pub(crate) fn same_as(path: &Path, parts: &[&[u8]]) -> bool {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    if file.metadata().map(|m| m.len() != total as u64).unwrap_or(true) {
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
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the folder", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.autoexpose-{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        for part in parts {
            crate::fault::fail("atomic.write")?;
            f.write_all(part)?;
        }
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        crate::fault::point("atomic.rename");
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write it", path.display()));
    }
    Ok(())
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
        assert!(!same_as(&path, &[b"[", &changed, b"]"]), "one byte differs past the first block");
        assert!(!same_as(&path, &[b"[", &big, b"}"]), "last byte differs");
        assert!(!same_as(&path, &[b"[", &big]), "shorter");
    }
}
