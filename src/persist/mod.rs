//! Persistence primitives: atomic file replacement under a per-directory lock, the binary container
//! format of the vector files, and integrity checks.
//!
//! `write_atomically` guarantees that after a crash at any point the target holds either its old
//! content or the complete new content: the bytes go to a uniquely named temporary file in the
//! target's directory, which is fsynced, renamed over the target, and the directory fsynced. On any
//! error the temporary file is removed, the old target is untouched, and the error names the target.
//! An fsync error is never retried (after a failed fsync the page cache state is unknown).
//!
//! Writers of one directory are serialized by an advisory lock (`flock` on `.llama_index_rs.lock` in
//! that directory, see `DirLock`), so two processes persisting the same directory never interleave
//! their files. Readers never take the lock: every file they can see is complete.
//!
//! All file operations of a write go through the small `FileOps` trait so tests can make the Nth
//! write, fsync or rename fail (`RealFs` is the only production implementation).

pub mod binary;
mod lock;
pub mod verify;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use lock::{DirLock, LOCK_FILE_NAME};

use crate::error::{StoreError, StoreResult};

/// The file operations a persist performs, so tests can inject failures. Every method is one system
/// call's worth of work on a real file.
pub trait FileOps: Sync {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).open(path)
    }
    fn write_all(&self, file: &mut File, buf: &[u8]) -> io::Result<()> {
        file.write_all(buf)
    }
    fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        write_all_at(file, buf, offset)
    }
    fn sync_file(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }
    /// Asks the kernel to start writing `file[offset..offset + len]` to the device without waiting, so
    /// the final fsync overlaps with the rest of the write instead of following it. A hint only.
    fn start_writeback(&self, file: &File, offset: u64, len: u64) {
        start_writeback(file, offset, len);
    }
    /// Asks the kernel to drop the cached pages of `file`, which is about to be replaced. A hint only.
    fn drop_cached_pages(&self, file: &File) {
        drop_cached_pages(file);
    }
}

/// The real file system.
pub struct RealFs;

impl FileOps for RealFs {}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(not(unix))]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    let here = f.stream_position()?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(buf)?;
    f.seek(SeekFrom::Start(here)).map(|_| ())
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on an open descriptor; failure only means no early writeback.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(target_os = "linux")]
fn drop_cached_pages(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on an open descriptor; failure only means the pages stay cached.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

#[cfg(not(target_os = "linux"))]
fn drop_cached_pages(_file: &File) {}

/// Write size between writeback hints: large enough that each write is cheap to issue, small enough
/// that the device starts early.
const WRITEBACK_CHUNK: usize = 4 << 20;

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The directory a target lives in (`.` for a bare file name).
pub fn parent_dir(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The temporary file used while replacing `target`: hidden, in the same directory (so the rename is
/// atomic), unique per process and call, and never ending in `vector_store.json`.
/// Layout: `.{name}.{pid}.{counter}.tmp` (`verify` and `remove_stale_temp_files` rely on it).
fn temp_path_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}.{}.{unique}.tmp", std::process::id()))
}

/// A file being written next to its target. `commit` makes it the target; dropping it uncommitted
/// removes it. Errors name the target (the file the user asked for) and carry the OS error.
pub struct AtomicFile<'a> {
    ops: &'a dyn FileOps,
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
    /// Bytes written with `write` so far (where the next one lands).
    written: u64,
    /// Where the written bytes whose device writeback has not been started yet begin.
    writeback_from: u64,
    /// The file being replaced, open from `create` until it is closed after the rename (see
    /// `commit`).
    replaced: Option<File>,
}

impl<'a> AtomicFile<'a> {
    /// Starts replacing `target`. The caller holds the directory's `DirLock` (the borrow proves it).
    ///
    /// The cached pages of the file being replaced are dropped first: nobody needs them after the
    /// rename, and memory just freed is the cheapest the kernel can hand to the new file's pages. On
    /// a VM whose host reclaims the guest's free memory (virtio-balloon free page reporting), writing
    /// into memory the host has taken back ran at ~270 MB/s instead of ~4 GB/s: a 170 MB vector
    /// store persist took a median 300-370 ms without this and 170-190 ms with it. (Pages another
    /// writer left dirty, e.g. SimpleVectorStore's unsynced file, are written back, not dropped.)
    pub fn create(_lock: &DirLock, ops: &'a dyn FileOps, target: &Path) -> StoreResult<Self> {
        let replaced = if cfg!(unix) { File::open(target).ok() } else { None };
        if let Some(old) = &replaced {
            ops.drop_cached_pages(old);
        }
        let temp = temp_path_for(target);
        let file = ops.create_new(&temp).map_err(|e| StoreError::io(target, e))?;
        Ok(AtomicFile {
            ops,
            file: Some(file),
            temp,
            target: target.to_owned(),
            written: 0,
            writeback_from: 0,
            replaced,
        })
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file is open until commit")
    }

    /// Appends `buf`. The device writeback of each further `WRITEBACK_CHUNK` written (in one call or
    /// several) is started as soon as it is complete.
    pub fn write(&mut self, buf: &[u8]) -> StoreResult<()> {
        let ops = self.ops;
        for chunk in buf.chunks(WRITEBACK_CHUNK) {
            let res = ops.write_all(self.file(), chunk);
            res.map_err(|e| StoreError::io(&self.target, e))?;
            self.written += chunk.len() as u64;
            if self.written - self.writeback_from >= WRITEBACK_CHUNK as u64 {
                let (offset, len) = (self.writeback_from, self.written - self.writeback_from);
                ops.start_writeback(self.file(), offset, len);
                self.writeback_from = self.written;
            }
        }
        Ok(())
    }

    pub fn write_at(&mut self, buf: &[u8], offset: u64) -> StoreResult<()> {
        let ops = self.ops;
        let res = ops.write_all_at(self.file(), buf, offset);
        res.map_err(|e| StoreError::io(&self.target, e))
    }

    /// fsync, rename over the target, fsync the directory. Returns the metadata of the new file as it
    /// stands after the rename (which updates its ctime), taken under the directory lock.
    ///
    /// The replaced file is held open (since `create`) across the rename and closed on a background
    /// thread: the last close is what frees its blocks (milliseconds for a large file), and nobody
    /// needs to wait for that.
    pub fn commit(mut self) -> StoreResult<fs::Metadata> {
        let file = self.file.take().expect("file is open until commit");
        self.ops.sync_file(&file).map_err(|e| StoreError::io(&self.target, e))?;
        drop(file);
        let replaced = self.replaced.take();
        self.ops
            .rename(&self.temp, &self.target)
            .map_err(|e| StoreError::io(&self.target, e))?;
        self.temp = PathBuf::new(); // renamed: nothing left to clean up
        let dir = parent_dir(&self.target);
        let synced = self.ops.sync_dir(dir).map_err(|e| StoreError::io(dir, e));
        if let Some(replaced) = replaced {
            crate::release::drop_in_background(replaced);
        }
        synced?;
        fs::metadata(&self.target).map_err(|e| StoreError::io(&self.target, e))
    }
}

impl Drop for AtomicFile<'_> {
    fn drop(&mut self) {
        self.file = None;
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Replaces `target` with `bytes` atomically and durably (see the module header), holding the lock
/// of the target's directory while doing so.
pub fn write_atomically(target: &Path, bytes: &[u8]) -> StoreResult<()> {
    write_atomically_with(target, |file| file.write(bytes))
}

/// `write_atomically` for content that `write` streams into the file.
pub fn write_atomically_with(
    target: &Path,
    write: impl FnOnce(&mut AtomicFile<'_>) -> StoreResult<()>,
) -> StoreResult<()> {
    let lock = DirLock::acquire(parent_dir(target))?;
    remove_stale_temp_files(&lock, parent_dir(target));
    write_atomically_locked(&lock, &RealFs, target, write).map(|_| ())
}

/// Removes temporary files that writers killed mid-persist left in `dir` (their process is gone;
/// under the lock no live writer of ours can be using them). Best effort: errors are ignored, and
/// on systems without `/proc` nothing is removed.
pub fn remove_stale_temp_files(_lock: &DirLock, dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = temp_file_pid(&name.to_string_lossy()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// `write_atomically_with` for a caller that already holds the directory lock (several files in one
/// critical section) or that injects `ops`. Returns the new file's metadata (see `commit`).
pub fn write_atomically_locked(
    lock: &DirLock,
    ops: &dyn FileOps,
    target: &Path,
    write: impl FnOnce(&mut AtomicFile<'_>) -> StoreResult<()>,
) -> StoreResult<fs::Metadata> {
    let mut file = AtomicFile::create(lock, ops, target)?;
    write(&mut file)?;
    file.commit()
}

/// Removes `target` if it exists and fsyncs its directory (a file another persist made obsolete).
pub fn remove_file_locked(_lock: &DirLock, ops: &dyn FileOps, target: &Path) -> StoreResult<()> {
    match fs::remove_file(target) {
        Ok(()) => {
            let dir = parent_dir(target);
            ops.sync_dir(dir).map_err(|e| StoreError::io(dir, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(target, e)),
    }
}

/// Reads a whole file, naming it in the error. A large file is read by two threads, one half each:
/// copying an 18 MB docstore out of the page cache was a quarter of its load.
pub fn read_file(path: &Path) -> StoreResult<Vec<u8>> {
    read_whole(path).map_err(|e| StoreError::io(path, e))
}

/// From this size on, `read_file` reads the two halves of a file at once.
const PARALLEL_READ_MIN: usize = 4 << 20;

fn read_whole(path: &Path) -> io::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        let mut file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if len >= PARALLEL_READ_MIN && len < isize::MAX as usize {
            let mut buf = Vec::with_capacity(len);
            let start = SendPtr(buf.as_mut_ptr());
            let mid = len / 2;
            let (first, second) = std::thread::scope(|scope| {
                let second = scope.spawn(|| read_range(&file, start, mid, len));
                (read_range(&file, start, 0, mid), second.join())
            });
            match (first, second) {
                (Ok(true), Ok(Ok(true))) => {
                    // SAFETY: both reads filled their whole range, so `buf[..len]` is initialised.
                    unsafe { buf.set_len(len) };
                    // Like `fs::read`: whatever the file gained since its size was taken.
                    io::Seek::seek(&mut file, io::SeekFrom::Start(len as u64))?;
                    io::Read::read_to_end(&mut file, &mut buf)?;
                    return Ok(buf);
                }
                (Err(e), _) | (_, Ok(Err(e))) => return Err(e),
                (_, Err(panic)) => std::panic::resume_unwind(panic),
                _ => {} // the file shrank while being read: read it again, in one piece
            }
        }
    }
    fs::read(path)
}

/// The start of a buffer that two reader threads fill, each its own range.
#[cfg(unix)]
#[derive(Clone, Copy)]
struct SendPtr(*mut u8);

// SAFETY: the threads of `read_whole` write disjoint ranges of the buffer, which outlives them.
#[cfg(unix)]
unsafe impl Send for SendPtr {}
#[cfg(unix)]
unsafe impl Sync for SendPtr {}

/// Reads the file's bytes `from..to` into `buf.0[from..to]`; `Ok(false)` if the file ends first.
#[cfg(unix)]
fn read_range(file: &File, buf: SendPtr, from: usize, to: usize) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut at = from;
    while at < to {
        let Ok(offset) = libc::off_t::try_from(at) else {
            return Ok(false);
        };
        // SAFETY: `buf.0[at..to]` lies inside the buffer's allocation (capacity >= `to`), and no other
        // thread touches this range; pread writes at most `to - at` bytes there.
        let n = unsafe { libc::pread(file.as_raw_fd(), buf.0.add(at).cast(), to - at, offset) };
        match n {
            0 => return Ok(false),
            n if n > 0 => at += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(true)
}

/// Parses the pid out of a temporary file name made by `temp_path_for` (`.{name}.{pid}.{n}.tmp`).
pub(crate) fn temp_file_pid(file_name: &str) -> Option<u32> {
    let stem = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = stem.rsplitn(3, '.');
    let _counter: u64 = parts.next()?.parse().ok()?;
    let pid: u32 = parts.next()?.parse().ok()?;
    parts.next().filter(|name| !name.is_empty())?;
    Some(pid)
}

#[cfg(test)]
mod tests;
