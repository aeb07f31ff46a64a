//! Persistence primitives: atomic file replacement.
//!
//! `write_atomically` guarantees that after a crash at any point the target holds either its old
//! content or the complete new content: the bytes go to a uniquely named temporary file in the
//! target's directory, which is fsynced, renamed over the target, and the directory fsynced. On any
//! error the temporary file is removed, the old target is untouched, and the error names the path.
//! An fsync error is never retried (after a failed fsync the page cache state is unknown).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{StoreError, StoreResult};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary file used while replacing `target`: hidden, in the same directory (so the rename is
/// atomic), unique per process and call, and never ending in `vector_store.json`.
fn temp_path_for(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}.{}.{unique}.tmp", std::process::id()))
}

/// Replaces `target` with `bytes` atomically and durably (see the module header).
pub fn write_atomically(target: &Path, bytes: &[u8]) -> StoreResult<()> {
    let temp = temp_path_for(target);
    let result = write_and_sync(&temp, bytes).and_then(|()| {
        fs::rename(&temp, target).map_err(|e| StoreError::io(target, e))?;
        sync_parent_dir(target)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_and_sync(temp: &Path, bytes: &[u8]) -> StoreResult<()> {
    let mut file: File =
        OpenOptions::new().write(true).create_new(true).open(temp).map_err(|e| StoreError::io(temp, e))?;
    file.write_all(bytes).map_err(|e| StoreError::io(temp, e))?;
    file.sync_all().map_err(|e| StoreError::io(temp, e))
}

fn sync_parent_dir(target: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))?;
    }
    Ok(())
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> StoreResult<Vec<u8>> {
    fs::read(path).map_err(|e| StoreError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lirs-persist-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = scratch_dir("replace");
        let target = dir.join("docstore.json");
        write_atomically(&target, b"old").unwrap();
        write_atomically(&target, b"new content").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new content");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn failure_keeps_old_file_and_names_path() {
        let dir = scratch_dir("fail");
        let target = dir.join("missing-subdir").join("x.json");
        let err = write_atomically(&target, b"data").unwrap_err();
        assert!(err.to_string().contains("missing-subdir"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn temp_name_never_looks_like_a_vector_store() {
        let t = temp_path_for(Path::new("/a/default__vector_store.json"));
        assert!(!t.to_string_lossy().ends_with("vector_store.json"));
        assert_eq!(t.parent(), Some(Path::new("/a")));
    }
}
