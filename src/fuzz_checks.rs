//! The checks behind the cargo-fuzz targets in `fuzz/` (one function per target). They live in the
//! library (behind the `fuzzing` feature, and in test builds) so that the fuzz targets and the stable
//! corpus replay test (`replay` below, part of `cargo test`) run exactly the same assertions.
//!
//! Every check takes arbitrary bytes, must never panic on input the loaders reject, and panics (an
//! assertion) only when an invariant is broken:
//! - `json_parse`: `parse` agrees with `Cursor::skip_value`; an accepted document writes back as ASCII,
//!   re-parses to a structurally equal value (floats bit-equal) and writes identically the second time;
//!   text `kv::is_normalized` accepts is exactly what the writer produces for it.
//! - `json_chunked`: a document walked step by step through `ChunkedReader` with tiny blocks gives the
//!   same result (value or error message) as the same walk over one block, and the same value as `parse`.
//! - `vector_json`: `from_json` and `from_reader` with tiny blocks agree; an accepted file round-trips
//!   through `to_json` / `from_json` byte-identically.
//! - `kv_json`: `KvStore::from_json` accepts exactly the objects of objects `parse` accepts, and
//!   `to_json` equals `json.dumps(json.loads(input))` (our writer over `parse`), idempotently.
//! - `binary_loader`: the binary vector file loader (input written to a temporary file) returns errors,
//!   never panics; a loaded store writes valid JSON that round-trips. With the first byte odd, the
//!   header and section checksums are recomputed first, so the fuzzer gets past them.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::json::{self, ChunkedReader, Cursor, Object, Value};
use crate::kv::{is_normalized, KvStore};
use crate::persist::binary::{Header, HEADER_LEN, SECTIONS};
use crate::vectors::{binary_format, json_format};
use crate::StoreResult;

/// Structural equality with floats compared bit for bit (so `-0.0 != 0.0` and `NaN == NaN`).
#[must_use]
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
        }
        _ => a == b,
    }
}

/// The block size for the tiny-block readers: 1..=16 bytes, taken from the first input byte.
fn split_block(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (usize::from(b % 16) + 1, rest),
        None => (1, data),
    }
}

/// A reader that hands out at most `n` bytes per call.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(out.len()).min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Target `json_parse`.
pub fn json_parse(data: &[u8]) {
    let parsed = json::parse(data, "fuzz");
    let mut cursor = Cursor::new(data, "fuzz");
    let skipped = cursor.skip_value().and_then(|()| cursor.finish());
    assert_eq!(
        parsed.is_ok(),
        skipped.is_ok(),
        "parse and skip_value disagree: {parsed:?} vs {skipped:?}"
    );
    let Ok(value) = parsed else { return };
    let written = json::to_vec(&value);
    assert!(written.is_ascii(), "the writer produced non-ASCII output");
    let again = json::parse(&written, "fuzz (written)").unwrap_or_else(|e| {
        panic!(
            "the writer's output does not parse: {e}: {:?}",
            String::from_utf8_lossy(&written)
        )
    });
    assert!(
        same(&value, &again),
        "round trip changed the value: {value:?} vs {again:?}"
    );
    assert_eq!(json::to_vec(&again), written, "writing is not idempotent");
    if is_normalized(data) {
        assert_eq!(
            written, data,
            "is_normalized accepted text the writer formats differently"
        );
    }
}

/// Walks a document through `ChunkedReader` one entry per step (the way the vector JSON loader does).
fn chunked_walk(doc: &[u8], block: usize, trickle: usize) -> StoreResult<Value> {
    let mut r = ChunkedReader::new(Trickle(doc, trickle), "fuzz").with_block_size(block);
    let first = r.step(|c| Ok(c.peek_byte()))?;
    let value = match first {
        Some(b'{') => {
            r.step(|c| c.begin_object())?;
            let mut obj = Object::new();
            while let Some((k, v)) = r.step(|c| {
                let Some(k) = c.next_key()? else { return Ok(None) };
                Ok(Some((k, c.parse_value()?)))
            })? {
                obj.insert(k, v);
            }
            Value::Object(obj)
        }
        Some(b'[') => {
            r.step(|c| c.begin_array())?;
            let mut items = Vec::new();
            while let Some(v) = r.step(|c| {
                if c.next_array_item()? {
                    c.parse_value().map(Some)
                } else {
                    Ok(None)
                }
            })? {
                items.push(v);
            }
            Value::Array(items)
        }
        _ => r.step(|c| c.parse_value())?,
    };
    r.step(|c| c.finish())?;
    Ok(value)
}

/// Target `json_chunked`.
pub fn json_chunked(data: &[u8]) {
    let (block, doc) = split_block(data);
    let whole = chunked_walk(doc, doc.len() + 1, usize::MAX);
    let tiny = chunked_walk(doc, block, block.div_ceil(2));
    match (&whole, &tiny) {
        (Ok(a), Ok(b)) => assert!(same(a, b), "block {block}: {a:?} vs {b:?}"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "block {block}"),
        _ => panic!("block {block}: whole buffer gives {whole:?}, tiny blocks {tiny:?}"),
    }
    let parsed = json::parse(doc, "fuzz");
    match (&parsed, &whole) {
        (Ok(a), Ok(b)) => assert!(same(a, b), "parse {a:?} vs chunked walk {b:?}"),
        (Err(_), Err(_)) => {}
        _ => panic!("parse gives {parsed:?}, the chunked walk {whole:?}"),
    }
}

/// Target `vector_json`.
pub fn vector_json(data: &[u8]) {
    let (block, doc) = split_block(data);
    let whole = json_format::from_json(doc, "fuzz");
    let tiny = json_format::from_reader_with_block_size(Trickle(doc, block.div_ceil(2)), "fuzz", block);
    let store = match (whole, tiny) {
        (Ok(a), Ok(b)) => {
            let ja = json_format::to_json(&a).expect("a JSON-loaded store holds parsed metadata");
            assert_eq!(
                String::from_utf8_lossy(&ja),
                String::from_utf8_lossy(&json_format::to_json(&b).expect("parsed metadata")),
                "block {block}"
            );
            a
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "block {block}");
            return;
        }
        (a, b) => panic!(
            "block {block}: whole buffer gives {:?}, tiny blocks {:?}",
            a.map(|s| s.len()),
            b.map(|s| s.len())
        ),
    };
    vector_round_trip(&store);
}

/// `to_json` output loads and writes back byte-identically.
fn vector_round_trip(store: &crate::vectors::VectorStore) {
    let written = json_format::to_json(store).expect("the caller checked the metadata");
    assert!(written.is_ascii(), "to_json produced non-ASCII output");
    let reloaded = json_format::from_json(&written, "fuzz (written)").unwrap_or_else(|e| {
        panic!(
            "to_json output does not load: {e}: {:?}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(
        String::from_utf8_lossy(&json_format::to_json(&reloaded).expect("parsed metadata")),
        String::from_utf8_lossy(&written),
        "vector JSON round trip is not byte-identical"
    );
}

/// Target `kv_json`.
pub fn kv_json(data: &[u8]) {
    let loaded = KvStore::from_json(data, "fuzz");
    let parsed = json::parse(data, "fuzz");
    let store = match (loaded, parsed) {
        (Ok(store), Ok(value)) => {
            let written = store.to_json();
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&json::to_vec(&value)),
                "KvStore::to_json differs from json.dumps(json.loads(input))"
            );
            store
        }
        (Ok(_), Err(e)) => panic!("KvStore::from_json accepted what parse rejects: {e}"),
        (Err(e), Ok(Value::Object(obj))) => {
            assert!(
                obj.iter().any(|(_, v)| !matches!(v, Value::Object(_))),
                "KvStore::from_json rejected an object of objects: {e}"
            );
            return;
        }
        (Err(_), _) => return,
    };
    let written = store.to_json();
    let reloaded = KvStore::from_json(&written, "fuzz (written)")
        .unwrap_or_else(|e| panic!("KvStore::to_json output does not load: {e}"));
    assert_eq!(reloaded.to_json(), written, "KV round trip is not byte-identical");
}

/// Recomputes the header and section checksums of a binary vector file in place, when the header
/// decodes apart from its checksum. Lets the fuzzer reach the section parsers.
pub fn fix_binary_checksums(file: &mut [u8]) {
    if file.len() < HEADER_LEN {
        return;
    }
    let header_crc = crc32fast::hash(&file[..240]);
    file[240..244].copy_from_slice(&header_crc.to_le_bytes());
    let Ok(header) = Header::decode(file, file.len() as u64, "fuzz") else {
        return;
    };
    for (i, id) in SECTIONS.iter().enumerate() {
        let s = header.section(*id);
        let mut h = crc32fast::Hasher::new();
        h.update(&header.dim.to_le_bytes());
        h.update(&header.rows.to_le_bytes());
        // In bounds: `decode` checked every section against the file length.
        h.update(&file[s.offset as usize..(s.offset + s.len) as usize]);
        let at = 80 + 32 * i + 24;
        file[at..at + 4].copy_from_slice(&h.finalize().to_le_bytes());
    }
    let header_crc = crc32fast::hash(&file[..240]);
    file[240..244].copy_from_slice(&header_crc.to_le_bytes());
}

/// A per-process scratch file for `binary_loader` (in /dev/shm when it exists).
fn scratch_path() -> PathBuf {
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_owned()
    } else {
        std::env::temp_dir()
    };
    let tid = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
    dir.join(format!("lirs-fuzz-{}-{tid}.bin", std::process::id()))
}

/// Target `binary_loader`.
pub fn binary_loader(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut file = rest.to_vec();
    if mode & 1 == 1 {
        fix_binary_checksums(&mut file);
    }
    let path = scratch_path();
    std::fs::write(&path, &file).expect("write the scratch file");
    let loaded = binary_format::load_binary(&path);
    let (problems, _notes) = binary_format::verify_binary(&path, None);
    match &loaded {
        Ok(store) => {
            // Metadata text is parsed on first use, not by the load: a bad one (behind a valid CRC)
            // is an error then, and verify reports it.
            let deferred = store.parse_all_metadata();
            let unexpected: Vec<&String> = problems
                .iter()
                .filter(|p| !p.contains("section vectors checksum mismatch"))
                .collect();
            match &deferred {
                Ok(()) => assert!(unexpected.is_empty(), "loads, but verify reports {problems:?}"),
                Err(e) => assert!(!unexpected.is_empty(), "metadata fails ({e}) but verify finds nothing"),
            }
            if deferred.is_ok() {
                vector_round_trip(store);
            } else {
                assert!(json_format::to_json(store).is_err());
            }
        }
        Err(e) => assert!(!problems.is_empty(), "load fails ({e}) but verify finds nothing"),
    }
    drop(loaded);
    let _ = std::fs::remove_file(&path);
}

#[cfg(test)]
mod replay {
    //! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) and the crash regressions
    //! (`fuzz/regressions/<target>/*`) through the checks, on stable, as part of `cargo test`.

    use std::path::PathBuf;

    fn replay(target: &str, check: fn(&[u8])) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut n = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let data = std::fs::read(&path).unwrap();
                let result = std::panic::catch_unwind(|| check(&data));
                assert!(result.is_ok(), "{target}: {} fails its check", path.display());
                n += 1;
            }
        }
        assert!(n > 0, "no corpus for fuzz target {target} under {}", root.display());
        eprintln!("fuzz corpus {target}: {n} inputs replayed");
    }

    #[test]
    fn json_parse_corpus() {
        replay("json_parse", super::json_parse);
    }

    #[test]
    fn json_chunked_corpus() {
        replay("json_chunked", super::json_chunked);
    }

    #[test]
    fn vector_json_corpus() {
        replay("vector_json", super::vector_json);
    }

    #[test]
    fn kv_json_corpus() {
        replay("kv_json", super::kv_json);
    }

    #[test]
    fn binary_loader_corpus() {
        replay("binary_loader", super::binary_loader);
    }
}
