//! The advisory lock that serializes writers of one directory: an exclusive `flock` on
//! `.llama_index_rs.lock` in that directory, held for a whole persist (all files of a store).
//!
//! `flock` locks belong to an open file description, so two threads of one process that each acquire
//! a `DirLock` are serialized as well as two processes. The lock is released when the guard drops or
//! the process dies (SIGKILL included), so a crashed writer never blocks the next one. Readers never
//! take it. The lock file stays in the directory: deleting a lock file races with its next user.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{StoreError, StoreResult};

/// Name of the lock file in a persist directory.
pub const LOCK_FILE_NAME: &str = ".llama_index_rs.lock";

/// Holds the write lock of one directory until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// The directory's lock file, created empty if absent (never truncated: another process may hold it).
fn open_lock_file(dir: &Path) -> StoreResult<(File, PathBuf)> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    Ok((file, path))
}

impl DirLock {
    /// Blocks until this process holds the write lock of `dir`.
    pub fn acquire(dir: &Path) -> StoreResult<DirLock> {
        let (file, path) = open_lock_file(dir)?;
        file.lock().map_err(|e| StoreError::io(&path, e))?;
        Ok(DirLock { _file: file })
    }

    /// Takes the lock only if nobody holds it (for tests and diagnostics).
    pub fn try_acquire(dir: &Path) -> StoreResult<Option<DirLock>> {
        let (file, path) = open_lock_file(dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DirLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
        }
    }
}
