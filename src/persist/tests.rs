use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

pub(crate) fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lirs-persist-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Files in `dir` other than the lock file.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK_FILE_NAME)
        .collect();
    v.sort();
    v
}

#[test]
fn replaces_content_and_leaves_no_temp_files() {
    let dir = scratch_dir("replace");
    let target = dir.join("docstore.json");
    write_atomically(&target, b"old").unwrap();
    write_atomically(&target, b"new content").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"new content");
    assert_eq!(listing(&dir), ["docstore.json"]);
    assert!(dir.join(LOCK_FILE_NAME).exists());
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
    let name = t.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(temp_file_pid(&name), Some(std::process::id()));
    assert_eq!(temp_file_pid("docstore.json"), None);
    assert_eq!(temp_file_pid(".x.12.tmp"), None);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Write,
    Fsync,
    Rename,
    SyncDir,
}

/// Fails the `nth` (0-based) call of `op` with `error`, counting every call.
struct Faulty {
    op: Op,
    nth: usize,
    error: fn() -> io::Error,
    seen: AtomicUsize,
    fsyncs: AtomicUsize,
}

impl Faulty {
    fn new(op: Op, nth: usize, error: fn() -> io::Error) -> Self {
        Faulty {
            op,
            nth,
            error,
            seen: AtomicUsize::new(0),
            fsyncs: AtomicUsize::new(0),
        }
    }

    fn check(&self, op: Op) -> io::Result<()> {
        if op == self.op && self.seen.fetch_add(1, Ordering::SeqCst) == self.nth {
            return Err((self.error)());
        }
        Ok(())
    }
}

impl FileOps for Faulty {
    fn create_new(&self, path: &Path) -> io::Result<File> {
        self.check(Op::Create)?;
        RealFs.create_new(path)
    }
    fn write_all(&self, file: &mut File, buf: &[u8]) -> io::Result<()> {
        self.check(Op::Write)?;
        RealFs.write_all(file, buf)
    }
    fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check(Op::Write)?;
        RealFs.write_all_at(file, buf, offset)
    }
    fn sync_file(&self, file: &File) -> io::Result<()> {
        self.fsyncs.fetch_add(1, Ordering::SeqCst);
        self.check(Op::Fsync)?;
        RealFs.sync_file(file)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Op::Rename)?;
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Op::SyncDir)?;
        RealFs.sync_dir(dir)
    }
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}
fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

#[test]
fn every_failing_step_keeps_the_old_file_removes_the_temp_and_names_the_target() {
    for (op, error) in [
        (Op::Create, eio as fn() -> io::Error),
        (Op::Write, enospc),
        (Op::Fsync, eio),
        (Op::Rename, eio),
    ] {
        let dir = scratch_dir(&format!("fault-{op:?}"));
        let target = dir.join("docstore.json");
        write_atomically(&target, b"old content").unwrap();
        let faulty = Faulty::new(op, 0, error);
        let lock = DirLock::acquire(&dir).unwrap();
        let err = write_atomically_locked(&lock, &faulty, &target, |f| f.write(b"new content")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("docstore.json"), "{op:?}: {msg}");
        let StoreError::Io { source, .. } = &err else {
            panic!("{op:?}: not an Io error: {err:?}")
        };
        assert_eq!(source.raw_os_error(), error().raw_os_error(), "{op:?}");
        assert_eq!(fs::read(&target).unwrap(), b"old content", "{op:?}");
        assert_eq!(listing(&dir), ["docstore.json"], "{op:?}: temporary file left behind");
        // An fsync error is reported, never retried.
        assert!(faulty.fsyncs.load(Ordering::SeqCst) <= 1, "{op:?}");
        fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_failing_directory_fsync_is_reported_after_the_rename() {
    let dir = scratch_dir("fault-syncdir");
    let target = dir.join("index_store.json");
    let faulty = Faulty::new(Op::SyncDir, 0, eio);
    let lock = DirLock::acquire(&dir).unwrap();
    let err = write_atomically_locked(&lock, &faulty, &target, |f| f.write(b"new")).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }));
    assert_eq!(listing(&dir), ["index_store.json"]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_lock_excludes_a_second_holder_until_dropped() {
    let dir = scratch_dir("lock");
    let held = DirLock::acquire(&dir).unwrap();
    assert!(DirLock::try_acquire(&dir).unwrap().is_none());
    drop(held);
    assert!(DirLock::try_acquire(&dir).unwrap().is_some());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn threads_writing_one_directory_are_serialized() {
    let dir = scratch_dir("threads");
    let target = dir.join("kv.json");
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let target = &target;
            s.spawn(move || {
                for _ in 0..20 {
                    write_atomically(target, &[b'a' + t; 4096]).unwrap();
                }
            });
        }
    });
    let content = fs::read(&target).unwrap();
    assert_eq!(content.len(), 4096);
    assert!(content.iter().all(|&b| b == content[0]));
    assert_eq!(listing(&dir), ["kv.json"]);
    fs::remove_dir_all(dir).unwrap();
}

mod binary_container {
    use super::super::binary::*;

    fn header() -> Header {
        let mut h = Header {
            dim: 3,
            rows: 2,
            stride: 16,
            mirrors: None,
            sections: Default::default(),
        };
        h.sections[SectionId::Vectors as usize] = Section {
            offset: 4096,
            len: 128,
            count: 2,
            crc: 0,
        };
        h.sections[SectionId::Norms as usize] = Section {
            offset: 4224,
            len: 16,
            count: 2,
            crc: 0,
        };
        h.sections[SectionId::Ids as usize] = Section {
            offset: 4240,
            len: 10,
            count: 2,
            crc: 0,
        };
        h.sections[SectionId::RefDocs as usize] = Section {
            offset: 4256,
            len: 0,
            count: 0,
            crc: 0,
        };
        h.sections[SectionId::Metadata as usize] = Section {
            offset: 4256,
            len: 0,
            count: 0,
            crc: 0,
        };
        h
    }

    #[test]
    fn header_round_trips_and_rejects_each_damage() {
        let h = Header {
            mirrors: Some(JsonState {
                len: 5,
                mtime_ns: -3,
                crc: 7,
                ctime_ns: 11,
            }),
            ..header()
        };
        let b = h.encode();
        assert_eq!(Header::decode(&b, 4256, "f").unwrap(), h);
        let cases: Vec<(Box<dyn Fn(&mut [u8; HEADER_LEN])>, &str)> = vec![
            (Box::new(|b| b[0] = b'X'), "bad magic"),
            (Box::new(|b| b[8] = 2), "version 2"),
            (
                Box::new(|b| b[12..16].copy_from_slice(&BYTE_ORDER_MARK.to_be_bytes())),
                "byte order",
            ),
            (Box::new(|b| b[30] ^= 1), "header checksum"),
        ];
        for (damage, want) in cases {
            let mut d = b;
            damage(&mut d);
            let err = Header::decode(&d, 4256, "f").unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
        let err = Header::decode(&b, 4200, "f").unwrap_err().to_string();
        assert!(err.contains("outside the file"), "{err}");
        let err = Header::decode(&b[..100], 100, "f").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn counts_larger_than_their_section_are_rejected_before_allocating() {
        let mut h = header();
        h.sections[SectionId::RefDocs as usize].count = u64::MAX / 2;
        let err = Header::decode(&h.encode(), 4256, "f").unwrap_err().to_string();
        assert!(err.contains("claims"), "{err}");
        let mut h = header();
        h.rows = 1 << 40;
        let err = Header::decode(&h.encode(), 4256, "f").unwrap_err().to_string();
        assert!(err.contains("limit"), "{err}");
        let mut h = header();
        h.dim = 17;
        let err = Header::decode(&h.encode(), 4256, "f").unwrap_err().to_string();
        assert!(err.contains("stride"), "{err}");
    }
}

#[test]
fn temp_files_of_dead_writers_are_removed_by_the_next_persist() {
    let dir = scratch_dir("stale");
    let dead = dir.join(".docstore.json.999999999.0.tmp"); // pid beyond pid_max: not alive
    let mine = dir.join(format!(".docstore.json.{}.77.tmp", std::process::id()));
    fs::write(&dead, b"partial").unwrap();
    fs::write(&mine, b"in use").unwrap();
    write_atomically(&dir.join("docstore.json"), b"{}").unwrap();
    assert!(!dead.exists());
    assert!(mine.exists());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn read_file_reads_large_files_in_two_halves_byte_for_byte() {
    let dir = scratch_dir("read");
    for len in [
        0,
        1,
        PARALLEL_READ_MIN - 1,
        PARALLEL_READ_MIN,
        PARALLEL_READ_MIN * 2 + 7,
    ] {
        let path = dir.join(format!("f{len}"));
        let content: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4099) as u8).collect();
        fs::write(&path, &content).unwrap();
        assert!(read_file(&path).unwrap() == content, "{len} bytes");
    }
    let err = read_file(&dir.join("missing")).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    fs::remove_dir_all(dir).unwrap();
}

/// Records which files' cached pages a write asked to drop (by their content).
#[derive(Default)]
struct DropRecorder(std::sync::Mutex<Vec<Vec<u8>>>);

impl FileOps for DropRecorder {
    fn drop_cached_pages(&self, file: &File) {
        use std::io::Read;
        let mut content = Vec::new();
        (&*file).read_to_end(&mut content).unwrap();
        self.0.lock().unwrap().push(content);
        RealFs.drop_cached_pages(file);
    }
}

#[test]
fn only_the_replaced_file_has_its_cached_pages_dropped() {
    let dir = scratch_dir("drop-cache");
    let target = dir.join("vector_store.json");
    let ops = DropRecorder::default();
    let lock = DirLock::acquire(&dir).unwrap();
    // A new file replaces nothing.
    write_atomically_locked(&lock, &ops, &target, |f| f.write(b"first")).unwrap();
    assert!(ops.0.lock().unwrap().is_empty());
    // A replacement drops the old file's pages, before anything is written; the old content is
    // still there until the rename, and the new content is complete after it.
    write_atomically_locked(&lock, &ops, &target, |f| {
        assert_eq!(fs::read(&target).unwrap(), b"first");
        f.write(b"second")
    })
    .unwrap();
    assert_eq!(*ops.0.lock().unwrap(), [b"first".to_vec()]);
    assert_eq!(fs::read(&target).unwrap(), b"second");
    // A failed replacement keeps the old file, whose pages may have been dropped (a hint only).
    let err = write_atomically_locked(&lock, &ops, &target, |_| Err(StoreError::Unsupported("no".into()))).unwrap_err();
    assert!(err.to_string().contains("no"));
    assert_eq!(fs::read(&target).unwrap(), b"second");
    assert_eq!(listing(&dir), ["vector_store.json"]);
    drop(lock);
    fs::remove_dir_all(dir).unwrap();
}
