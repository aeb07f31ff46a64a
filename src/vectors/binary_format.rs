//! The binary vector file of a `VectorStore` (container: `persist::binary`, layout: docs/FORMAT.md),
//! and the pair "JSON file + binary file beside it" that `RustVectorStore.persist` writes and the
//! `from_persist_*` loaders read.
//!
//! Round trip: the binary file holds exactly what the JSON file holds — live rows in `embedding_dict`
//! order, and the ref-doc and metadata dicts in their own orders including entries without an
//! embedding — so loading either gives the same store. Metadata values are stored as their JSON text
//! (the JSON writer's output, parsed back on first use), so the binary round trip is the JSON round trip.
//!
//! Loading maps the file and uses it in place: rows, and also ids, ref-doc ids and metadata text (the
//! table keeps offsets into the map). The cost is one sequential pass over the non-vector sections
//! (their CRCs on a second thread), not O(vectors) and no allocation per row beyond the row table.
//! Norms are stored, so nothing reads the rows at load. Left to first use, and to `verify`: parsing
//! metadata, and the uniqueness of ids (checked when the id index is first built). Both can only fail
//! for a crafted file: the sections' CRCs are checked at load. The vector payload's CRC is checked by
//! `verify`, not by a load (that would read every page).
//!
//! Which file a load uses: the binary file records the state (size, mtime, CRC) of the JSON file it
//! mirrors. If the JSON file exists, the binary file is used only when it mirrors that exact state
//! (size equal, and mtime plus ctime, or CRC equal); a JSON file rewritten by another tool is therefore never
//! shadowed. If there is no JSON file, the binary file is used alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::rows::{MappedRows, RowStorage};
use super::table::{LoadedFile, Meta, RowMeta, Text};
use super::{json_format, VectorStore};
use crate::error::{StoreError, StoreResult};
use crate::json;
use crate::persist::binary::{self, BinaryFile, BinaryWriter, JsonState, SectionId, VECTORS_ALIGN};
use crate::persist::{self, DirLock, FileOps, RealFs};

/// Extension of the binary file: `x__vector_store.json` -> `x__vector_store.rsvec` (never ends in
/// `vector_store.json`, which LlamaIndex's loader would parse as JSON).
pub const BINARY_EXTENSION: &str = "rsvec";

/// The binary file beside a JSON vector-store file.
pub fn binary_path_for(json_path: &Path) -> PathBuf {
    let name = json_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    json_path.with_file_name(format!("{stem}.{BINARY_EXTENSION}"))
}

/// What `persist_files` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistFormat {
    Json,
    Binary,
    Both,
}

impl PersistFormat {
    pub fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "json" => Ok(PersistFormat::Json),
            "binary" => Ok(PersistFormat::Binary),
            "both" => Ok(PersistFormat::Both),
            other => Err(StoreError::InvalidValue(format!(
                "persist_format must be \"both\", \"json\" or \"binary\", not {other:?}"
            ))),
        }
    }
}

fn f32_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: any f32 slice is a valid byte slice of 4x the length; the format is little-endian and
    // `MappedRows`/the loader refuse big-endian hosts, so native bytes are the file's bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// Writes `store` as a binary vector file (atomically, under the caller's directory lock).
pub fn write_binary(
    lock: &DirLock,
    ops: &dyn FileOps,
    store: &VectorStore,
    target: &Path,
    mirrors: Option<JsonState>,
) -> StoreResult<fs::Metadata> {
    if cfg!(target_endian = "big") {
        return Err(StoreError::InvalidValue(
            "the binary vector format is little-endian only".into(),
        ));
    }
    let rows = store.live;
    let dim = if rows > 0 { store.dim.unwrap_or(0) } else { 0 };
    let stride = binary::stride_for(dim as u64) as usize;
    let mut w = BinaryWriter::create(lock, ops, target, dim as u64, rows as u64)?;
    let no_tombstones = store.rows.len() == rows;

    w.begin(SectionId::Vectors, VECTORS_ALIGN)?;
    if let Some(storage) = store.storage.as_ref().filter(|_| rows > 0) {
        if let (true, Some(block)) = (no_tombstones, storage.owned_block()) {
            w.write(f32_bytes(block))?;
        } else {
            let (prefix, from) = match storage.mapped_block() {
                // Mapped rows that are all alive go out as one block, straight from the map.
                Some((block, mapped)) if store.rows[..mapped].iter().all(|m| m.alive) => (Some(block), mapped),
                _ => (None, 0),
            };
            if let Some(block) = prefix {
                w.write(f32_bytes(block))?;
            }
            let pad = vec![0u8; (stride - dim) * 4];
            for (r, m) in store.rows.iter().enumerate().skip(from) {
                if m.alive {
                    w.write(f32_bytes(storage.row(r as u32)))?;
                    w.write(&pad)?;
                }
            }
        }
    }
    w.end(rows as u64);

    w.begin(SectionId::Norms, 8)?;
    let norms: Vec<u8> = store
        .rows
        .iter()
        .filter(|m| m.alive)
        .flat_map(|m| m.norm.to_le_bytes())
        .collect();
    w.write(&norms)?;
    w.end(rows as u64);

    w.begin(SectionId::Ids, 8)?;
    for (r, _) in store.rows.iter().enumerate().filter(|(_, m)| m.alive) {
        w.write_bytes(store.row_id(r as u32).as_bytes())?;
    }
    w.end(rows as u64);

    // Position among live rows of each physical row (only needed when there are tombstones).
    let positions: Option<Vec<u32>> = (!no_tombstones).then(|| {
        let mut next = 0u32;
        store
            .rows
            .iter()
            .map(|m| {
                let p = next;
                next += u32::from(m.alive);
                p
            })
            .collect()
    });
    let key = |id: &str| -> Option<u32> {
        let phys = store.row_of(id)?;
        Some(positions.as_ref().map_or(phys, |p| p[phys as usize]))
    };

    w.begin(SectionId::RefDocs, 8)?;
    let mut n = 0u64;
    for (id, ref_doc_id) in store.ref_doc_entries() {
        write_key(&mut w, key(id), id)?;
        w.write_bytes(ref_doc_id.as_bytes())?;
        n += 1;
    }
    w.end(n);

    w.begin(SectionId::Metadata, 8)?;
    let mut n = 0u64;
    let mut text = Vec::new();
    for (id, value) in store.metadata_entries()? {
        write_key(&mut w, key(id), id)?;
        text.clear();
        json::write_value(&mut text, value);
        w.write_bytes(&text)?;
        n += 1;
    }
    w.end(n);
    w.finish(mirrors)
}

/// An entry's key: the position of its row, or `u32::MAX` and the id (an entry without embedding).
fn write_key(w: &mut BinaryWriter<'_>, row: Option<u32>, id: &str) -> StoreResult<()> {
    match row {
        Some(r) => w.write_u32(r),
        None => {
            w.write_u32(u32::MAX)?;
            w.write_bytes(id.as_bytes())
        }
    }
}

/// Loads a binary vector file: rows stay in the map, everything else is read and checked.
pub fn load_binary(path: &Path) -> StoreResult<VectorStore> {
    load_binary_file(&BinaryFile::open(path)?)
}

fn load_binary_file(file: &BinaryFile) -> StoreResult<VectorStore> {
    // The checksums of the non-vector sections (a sequential read of those sections) run beside the
    // pass over ids; a mismatch is reported in preference to whatever that pass found.
    let (crcs, store) = rayon::join(
        || {
            [
                SectionId::Norms,
                SectionId::Ids,
                SectionId::RefDocs,
                SectionId::Metadata,
            ]
            .into_iter()
            .try_for_each(|id| file.check_crc(id))
        },
        || read_sections(file),
    );
    crcs?;
    store
}

/// The store of a binary file whose header is valid (section checksums are the caller's business).
fn read_sections(file: &BinaryFile) -> StoreResult<VectorStore> {
    let h = &file.header;
    let rows = h.rows as usize;
    let dim = h.dim as usize;
    let section_at = |id: SectionId| h.section(id).offset;
    let text = |section: SectionId, at: usize, len: usize| Text::Mapped {
        at: section_at(section) + at as u64,
        // Entries are at most u32::MAX bytes long (their length field is a u32).
        len: len as u32,
    };

    // One sequential pass over ids and norms: the ids stay in the file (bounds and UTF-8 checked).
    let mut ids = file.reader(SectionId::Ids);
    let ids_ascii = file.section_bytes(SectionId::Ids).is_ascii();
    let mut metas = RowMeta::vec_with_capacity(rows)
        .ok_or_else(|| file.corrupt(format!("{rows} rows: not enough memory for the row table")))?;
    for norm in file.section_bytes(SectionId::Norms).chunks_exact(8) {
        let (at, len) = ids.text_at(ids_ascii)?;
        metas.push(RowMeta {
            id: text(SectionId::Ids, at, len),
            ref_doc: None,
            metadata: None,
            norm: f64::from_le_bytes(norm.try_into().expect("8 bytes")),
            alive: true,
        });
    }
    ids.finish()?;

    let storage = if rows == 0 {
        None
    } else {
        let offset = section_at(SectionId::Vectors) as usize;
        let mapped = MappedRows::new(file.map.clone(), offset, rows, dim)
            .ok_or_else(|| file.corrupt("the vectors section cannot be mapped in place".into()))?;
        Some(RowStorage::Mapped(mapped))
    };
    let loaded = LoadedFile {
        map: file.map.clone(),
        path: file.path.clone(),
    };
    let mut store = VectorStore::from_loaded_rows((rows > 0).then_some(dim), storage, metas, Some(Arc::new(loaded)));
    // The id index is built on first need, not here: a query never needs it. Repeated ids (only a
    // crafted file has them: the ids section's CRC is checked) are found by `verify` / `check_loaded`.

    // Entries keep their file order as their dict order: entry i gets sequence number i + 1 (entries
    // without an embedding go through the setters, which number them the same way).
    let mut seq = 0u64;
    let mut refs = file.reader(SectionId::RefDocs);
    let refs_ascii = file.section_bytes(SectionId::RefDocs).is_ascii();
    for _ in 0..h.section(SectionId::RefDocs).count {
        seq += 1;
        match refs.u32()? {
            u32::MAX => {
                let id = refs.str()?.to_owned();
                let ref_doc_id = refs.str()?.to_owned();
                store.next_seq = seq - 1;
                store.set_ref_doc_id(&id, Some(ref_doc_id));
            }
            k if (k as usize) < rows => {
                let (at, len) = refs.text_at(refs_ascii)?;
                let t = text(SectionId::RefDocs, at, len);
                match &mut store.rows[k as usize].ref_doc {
                    Some(e) => e.1 = t, // a repeated key replaces the value, keeps the position
                    e @ None => {
                        *e = Some((seq, t));
                        store.ref_rows += 1;
                    }
                }
            }
            k => return Err(refs.error(&format!("entry refers to row {k}, the file has {rows} rows"))),
        }
    }
    refs.finish()?;
    let mut meta = file.reader(SectionId::Metadata);
    for _ in 0..h.section(SectionId::Metadata).count {
        seq += 1;
        match meta.u32()? {
            u32::MAX => {
                let id = meta.str()?.to_owned();
                let value = json::parse(meta.bytes()?, &format!("{} (metadata of {id:?})", file.path))?;
                store.next_seq = seq - 1;
                store.set_metadata(&id, Some(value));
            }
            // The value stays JSON text in the file until something needs it (its CRC is checked).
            k if (k as usize) < rows => {
                let (at, b) = meta.bytes_at()?;
                let m = Meta::Mapped {
                    at: section_at(SectionId::Metadata) + at as u64,
                    len: b.len() as u32,
                    parsed: OnceLock::new(),
                };
                match &mut store.rows[k as usize].metadata {
                    Some(e) => e.1 = m,
                    e @ None => {
                        *e = Some((seq, m));
                        store.meta_rows += 1;
                    }
                }
            }
            k => return Err(meta.error(&format!("entry refers to row {k}, the file has {rows} rows"))),
        }
    }
    meta.finish()?;
    store.next_seq = store.next_seq.max(seq);
    Ok(store)
}

/// Writes the JSON file atomically, formatting while writing (`json_format::write_json`). With
/// `for_mirror`, returns the state the binary mirror records (its CRC is computed while writing:
/// ~11 ms of the writing thread for 170 MB, so only when a mirror will record it).
fn write_json_file(
    lock: &DirLock,
    ops: &dyn FileOps,
    store: &VectorStore,
    json_path: &Path,
    for_mirror: bool,
) -> StoreResult<Option<JsonState>> {
    let mut crc = for_mirror.then(crc32fast::Hasher::new);
    let meta = persist::write_atomically_locked(lock, ops, json_path, |file| {
        json_format::write_json(store, |piece| {
            if let Some(crc) = crc.as_mut() {
                crc.update(piece);
            }
            file.write(piece)
        })
    })?;
    Ok(crc.map(|crc| JsonState::with_crc(&meta, crc.finalize())))
}

pub fn persist_files(store: &VectorStore, json_path: &Path, format: PersistFormat) -> StoreResult<()> {
    persist_files_with(&RealFs, store, json_path, format)
}

/// Writes the files of one vector store under the directory lock: the JSON file at `json_path`
/// and/or the binary file beside it. "json" removes an old binary file (it would be stale); "binary"
/// leaves an existing JSON file alone but records its state, so this binary file supersedes it until
/// somebody rewrites it.
pub fn persist_files_with(
    ops: &dyn FileOps,
    store: &VectorStore,
    json_path: &Path,
    format: PersistFormat,
) -> StoreResult<()> {
    let lock = DirLock::acquire(persist::parent_dir(json_path))?;
    persist::remove_stale_temp_files(&lock, persist::parent_dir(json_path));
    let bin_path = binary_path_for(json_path);
    match format {
        PersistFormat::Json => {
            write_json_file(&lock, ops, store, json_path, false)?;
            persist::remove_file_locked(&lock, ops, &bin_path)
        }
        PersistFormat::Both => {
            let state = write_json_file(&lock, ops, store, json_path, true)?;
            write_binary(&lock, ops, store, &bin_path, state).map(|_| ())
        }
        PersistFormat::Binary => {
            let superseded = match fs::metadata(json_path) {
                Ok(meta) => Some(JsonState::of(&meta, &[persist::read_file(json_path)?])),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(StoreError::io(json_path, e)),
            };
            write_binary(&lock, ops, store, &bin_path, superseded).map(|_| ())
        }
    }
}

/// Which file a load used, and why the binary file was not used when it was not.
#[derive(Debug)]
pub struct Loaded {
    pub store: VectorStore,
    pub source: PathBuf,
    pub binary_skipped: Option<String>,
    /// The binary file was skipped because it is damaged (not merely superseded by a newer JSON file).
    pub binary_damaged: bool,
}

/// Does the binary file's record match the JSON file as it is now?
fn mirrors_current_json(
    file: &BinaryFile,
    json_path: &Path,
    json_meta: &fs::Metadata,
) -> StoreResult<Result<(), String>> {
    let Some(state) = file.header.mirrors else {
        return Ok(Err("it was written without this JSON file, which is newer".into()));
    };
    if state.len != json_meta.len() {
        return Ok(Err("the JSON file was rewritten after it (size differs)".into()));
    }
    if state.mtime_ns == binary::mtime_ns(json_meta) && state.ctime_ns == binary::ctime_ns(json_meta) {
        return Ok(Ok(()));
    }
    // Same size, other times (a copy, a touch, an in-place rewrite with its mtime set back): compare
    // contents.
    if crc32fast::hash(&persist::read_file(json_path)?) == state.crc {
        Ok(Ok(()))
    } else {
        Ok(Err("the JSON file was rewritten after it (content differs)".into()))
    }
}

/// Loads the vector store persisted at `json_path`: from the binary file beside it when that mirrors
/// the current JSON file (or there is no JSON file), otherwise from the JSON file. A damaged binary
/// file that mirrors an existing JSON file falls back to the JSON (reported in `binary_skipped`).
pub fn load_files(json_path: &Path) -> StoreResult<Loaded> {
    let bin_path = binary_path_for(json_path);
    let json_meta = match fs::metadata(json_path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(StoreError::io(json_path, e)),
    };
    let Some(json_meta) = json_meta else {
        return match load_binary(&bin_path) {
            Ok(store) => Ok(Loaded {
                store,
                source: bin_path,
                binary_skipped: None,
                binary_damaged: false,
            }),
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::io(json_path, source))
            }
            Err(e) => Err(e),
        };
    };
    let (skipped, damaged) = match BinaryFile::open(&bin_path) {
        Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => (None, false),
        Err(e) => (Some(format!("binary file not used: {e}")), true),
        Ok(file) => match mirrors_current_json(&file, json_path, &json_meta)? {
            Err(why) => (Some(format!("binary file {} not used: {why}", file.path)), false),
            Ok(()) => match load_binary_file(&file) {
                Ok(store) => {
                    return Ok(Loaded {
                        store,
                        source: bin_path,
                        binary_skipped: None,
                        binary_damaged: false,
                    })
                }
                Err(e) => (Some(format!("binary file not used: {e}")), true),
            },
        },
    };
    // Streamed in blocks: peak memory is the store plus one block, not the whole JSON file.
    let file = fs::File::open(json_path).map_err(|e| StoreError::io(json_path, e))?;
    let store = json_format::from_file(file, &json_path.display().to_string())?;
    Ok(Loaded {
        store,
        source: json_path.to_owned(),
        binary_skipped: skipped,
        binary_damaged: damaged,
    })
}

/// Full check of a binary file: header, every section's CRC (vectors included), the entries, and
/// whether it mirrors the JSON file beside it. Returns the problems found (empty: the file is sound)
/// and notes that are not problems (e.g. "superseded by a newer JSON file").
pub fn verify_binary(path: &Path, json_path: Option<&Path>) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let file = match BinaryFile::open(path) {
        Ok(f) => f,
        Err(e) => return (vec![e.to_string()], notes),
    };
    if let Err(e) = file.check_crc(SectionId::Vectors) {
        problems.push(e.to_string());
    }
    match load_binary_file(&file).and_then(|store| store.check_loaded().map(|()| store)) {
        Ok(store) => notes.push(format!(
            "{} rows of dimension {}",
            store.len(),
            store.dim().unwrap_or(0)
        )),
        Err(e) => problems.push(e.to_string()),
    }
    if let Some(json_path) = json_path {
        if let Ok(meta) = fs::metadata(json_path) {
            match mirrors_current_json(&file, json_path, &meta) {
                Ok(Ok(())) => notes.push(format!("mirrors {}", json_path.display())),
                Ok(Err(why)) => notes.push(format!("stale, loads will use the JSON file: {why}")),
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    (problems, notes)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::json::{JStr, Object, Value};
    use crate::vectors::test_ops::{apply, m_is, op_strategy};
    use crate::vectors::{NewRow, Query, QueryMode};

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lirs-bin-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn meta(n: i64) -> Value {
        let mut o = Object::new();
        o.insert(JStr::new("n"), Value::Int(n));
        o.insert(JStr::new("text"), Value::str("h\u{e9}llo \u{1f600}"));
        o.insert(JStr::new("f"), Value::Float(0.1));
        Value::Object(o)
    }

    fn sample(n: usize, dim: usize) -> VectorStore {
        let mut s = VectorStore::new();
        let rows = (0..n)
            .map(|i| NewRow {
                id: format!("id{i}"),
                ref_doc_id: Some(format!("doc{}", i % 3)),
                metadata: Some(meta(i as i64)),
            })
            .collect();
        let data: Vec<f32> = (0..n * dim).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        s.add(rows, &data, dim).unwrap();
        s
    }

    /// Everything observable: rows with vectors, both dicts in order.
    fn snapshot(s: &VectorStore) -> String {
        String::from_utf8(json_format::to_json(s).unwrap()).unwrap()
    }

    fn round_trip(s: &VectorStore, tag: &str) -> VectorStore {
        let dir = scratch(tag);
        let json_path = dir.join("default__vector_store.json");
        persist_files(s, &json_path, PersistFormat::Both).unwrap();
        let loaded = load_files(&json_path).unwrap();
        assert_eq!(
            loaded.source,
            binary_path_for(&json_path),
            "{:?}",
            loaded.binary_skipped
        );
        fs::remove_dir_all(dir).unwrap();
        loaded.store
    }

    #[test]
    fn binary_name_never_ends_in_vector_store_json() {
        assert_eq!(
            binary_path_for(Path::new("/d/default__vector_store.json")),
            Path::new("/d/default__vector_store.rsvec")
        );
        assert_eq!(
            binary_path_for(Path::new("vector_store.json")),
            Path::new("vector_store.rsvec")
        );
        assert_eq!(binary_path_for(Path::new("x")), Path::new("x.rsvec"));
    }

    #[test]
    fn round_trip_with_orphans_tombstones_and_odd_dims() {
        for dim in [1, 3, 16, 97] {
            let mut s = sample(10, dim);
            assert!(s.remove("id2")); // embedding gone, ref/metadata stay (orphans)
            s.set_ref_doc_id("ghost", Some("g".into()));
            s.set_metadata("ghost2", Some(Value::Null));
            s.set_metadata("id5", None);
            let loaded = round_trip(&s, &format!("rt{dim}"));
            assert!(loaded.memory_mapped());
            assert_eq!(snapshot(&loaded), snapshot(&s));
        }
        let empty = round_trip(&VectorStore::new(), "empty");
        assert_eq!(snapshot(&empty), snapshot(&VectorStore::new()));
    }

    #[test]
    fn mapped_store_stays_mutable_and_queries_like_an_owned_one() {
        let dim = 33;
        let s = sample(50, dim);
        let mut mapped = round_trip(&s, "mutable");
        let mut owned = json_format::from_json(json_format::to_json(&s).unwrap().as_slice(), "x").unwrap();
        let v: Vec<f32> = (0..dim).map(|i| i as f32).collect();
        for store in [&mut mapped, &mut owned] {
            // replace a mapped row, add tail rows, delete some
            store
                .add(
                    vec![NewRow {
                        id: "id7".into(),
                        ref_doc_id: Some("d".into()),
                        metadata: None,
                    }],
                    &v,
                    dim,
                )
                .unwrap();
            store
                .add(
                    vec![NewRow {
                        id: "new".into(),
                        ref_doc_id: None,
                        metadata: Some(meta(1)),
                    }],
                    &v,
                    dim,
                )
                .unwrap();
            store.delete_ref_doc("doc1");
            store.remove("id3");
        }
        assert!(mapped.memory_mapped());
        assert_eq!(snapshot(&mapped), snapshot(&owned));
        let q: Vec<f64> = (0..dim).map(|i| (i as f64).sin()).collect();
        let query = Query {
            embedding: &q,
            top_k: Some(10),
            node_ids: None,
            filters: None,
            mode: QueryMode::Default,
        };
        assert_eq!(mapped.query(&query).unwrap(), owned.query(&query).unwrap());
        // a persist of the mutated mapped store round-trips again (tombstones, patches and tail)
        let again = round_trip(&mapped, "mutable2");
        assert_eq!(snapshot(&again), snapshot(&owned));
        // deleting most rows compacts into owned storage
        mapped.delete_ref_doc("doc0");
        mapped.delete_ref_doc("doc2");
        owned.delete_ref_doc("doc0");
        owned.delete_ref_doc("doc2");
        assert_eq!(snapshot(&mapped), snapshot(&owned));
    }

    #[test]
    fn a_rewritten_json_is_never_shadowed_and_json_mode_removes_the_binary() {
        let dir = scratch("shadow");
        let json_path = dir.join("default__vector_store.json");
        let s = sample(5, 4);
        persist_files(&s, &json_path, PersistFormat::Both).unwrap();
        let other = sample(3, 4);
        fs::write(&json_path, json_format::to_json(&other).unwrap()).unwrap(); // another tool rewrites it
        let loaded = load_files(&json_path).unwrap();
        assert_eq!(loaded.source, json_path);
        assert!(loaded.binary_skipped.unwrap().contains("rewritten"));
        assert_eq!(snapshot(&loaded.store), snapshot(&other));
        persist_files(&s, &json_path, PersistFormat::Json).unwrap();
        assert!(!binary_path_for(&json_path).exists());
        // binary alone supersedes the JSON that was there, until the JSON changes
        persist_files(&other, &json_path, PersistFormat::Binary).unwrap();
        let loaded = load_files(&json_path).unwrap();
        assert_eq!(loaded.source, binary_path_for(&json_path));
        assert_eq!(snapshot(&loaded.store), snapshot(&other));
        fs::remove_file(&json_path).unwrap();
        assert_eq!(snapshot(&load_files(&json_path).unwrap().store), snapshot(&other));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_damaged_binary_file_falls_back_to_its_json_and_verify_names_the_section() {
        let dir = scratch("damaged");
        let json_path = dir.join("default__vector_store.json");
        let s = sample(20, 8);
        persist_files(&s, &json_path, PersistFormat::Both).unwrap();
        let bin = binary_path_for(&json_path);
        let mut bytes = fs::read(&bin).unwrap();
        let ids_at = BinaryFile::open(&bin).unwrap().header.section(SectionId::Ids).offset as usize;
        bytes[ids_at + 5] ^= 0x10;
        fs::write(&bin, &bytes).unwrap();
        let loaded = load_files(&json_path).unwrap();
        assert_eq!(loaded.source, json_path);
        assert!(loaded.binary_skipped.unwrap().contains("ids checksum"));
        assert_eq!(snapshot(&loaded.store), snapshot(&s));
        // a flip in the vector payload is found by verify (loads do not read every page)
        let mut bytes = fs::read(&bin).unwrap();
        bytes[ids_at + 5] ^= 0x10;
        bytes[4096 + 3] ^= 0x01;
        fs::write(&bin, &bytes).unwrap();
        let (problems, _) = verify_binary(&bin, Some(&json_path));
        assert!(problems.iter().any(|p| p.contains("vectors checksum")), "{problems:?}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn persisting_binary_fails_cleanly_at_every_write() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct FailNth(usize, AtomicUsize);
        impl FileOps for FailNth {
            fn write_all(&self, file: &mut fs::File, buf: &[u8]) -> io::Result<()> {
                if self.1.fetch_add(1, Ordering::SeqCst) == self.0 {
                    return Err(io::Error::from_raw_os_error(28));
                }
                RealFs.write_all(file, buf)
            }
            fn write_all_at(&self, file: &fs::File, buf: &[u8], offset: u64) -> io::Result<()> {
                if self.1.fetch_add(1, Ordering::SeqCst) == self.0 {
                    return Err(io::Error::from_raw_os_error(28));
                }
                RealFs.write_all_at(file, buf, offset)
            }
        }
        let dir = scratch("failnth");
        let json_path = dir.join("default__vector_store.json");
        let old = sample(4, 4);
        persist_files(&old, &json_path, PersistFormat::Both).unwrap();
        for nth in 0..3 {
            let ops = FailNth(nth, AtomicUsize::new(0));
            let err = persist_files_with(&ops, &sample(6, 4), &json_path, PersistFormat::Both).unwrap_err();
            assert!(err.to_string().contains("vector_store"), "{err}");
            let after: Vec<String> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(after.iter().all(|n| !n.ends_with(".tmp")), "{after:?}");
            // each file is the old or the new content; loading gives old or new, never a mixture
            let loaded = snapshot(&load_files(&json_path).unwrap().store);
            assert!(loaded == snapshot(&old) || loaded == snapshot(&sample(6, 4)));
            persist_files(&old, &json_path, PersistFormat::Both).unwrap();
        }
        fs::remove_dir_all(dir).unwrap();
    }

    // ---------- the mapped representation against the owned one ----------

    /// Everything a caller can observe, as text: both dicts and the rows (the JSON file), lookups by
    /// id, filtered and unfiltered queries (or their errors).
    fn observe(s: &VectorStore) -> String {
        let mut out = snapshot(s);
        for i in 0..16 {
            let id = format!("n{i}");
            out += &format!(
                "\n{id}: {:?} {} {:?} {:?}",
                s.get(&id),
                s.contains(&id),
                s.get_ref_doc_id(&id),
                s.get_metadata(&id).map(|m| m.cloned())
            );
        }
        let e = [0.3, -1.0, 2.0];
        for filters in [None, Some(m_is(1)), Some(m_is(2))] {
            let query = Query {
                embedding: &e,
                top_k: Some(5),
                node_ids: None,
                filters: filters.as_ref(),
                mode: QueryMode::Default,
            };
            out += &format!("\n{:?}", s.query(&query).map_err(|e| e.to_string()));
        }
        out
    }

    fn persisted(s: &VectorStore, dir: &Path) -> (Vec<u8>, Vec<u8>) {
        let json_path = dir.join("default__vector_store.json");
        persist_files(s, &json_path, PersistFormat::Both).unwrap();
        let mut bin = fs::read(binary_path_for(&json_path)).unwrap();
        // Bytes 56..80 and 240..256 record the JSON file's times (and the header CRC over them).
        bin[56..80].fill(0);
        bin[240..256].fill(0);
        (fs::read(&json_path).unwrap(), bin)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// A store loaded from a binary file (ids, ref-doc ids and metadata left in the map) behaves
        /// exactly like the same store held in owned memory, through any later operations, and
        /// persists to the same bytes in both formats.
        #[test]
        fn mapped_rows_behave_like_owned_rows(
            before in proptest::collection::vec(op_strategy(16, 4), 0..30),
            after in proptest::collection::vec(op_strategy(16, 4), 0..30),
        ) {
            let mut owned = VectorStore::new();
            for op in &before {
                let _ = apply(&mut owned, op);
            }
            let dir = scratch("diff");
            let json_path = dir.join("default__vector_store.json");
            persist_files(&owned, &json_path, PersistFormat::Binary).unwrap();
            let mut mapped = load_files(&json_path).unwrap().store;
            prop_assert_eq!(mapped.memory_mapped(), !owned.is_empty());
            let mut owned = json_format::from_json(&json_format::to_json(&owned).unwrap(), "owned").unwrap();
            prop_assert_eq!(observe(&mapped), observe(&owned));
            for op in &after {
                prop_assert_eq!(apply(&mut mapped, op), apply(&mut owned, op), "{:?}", op);
                prop_assert_eq!(observe(&mapped), observe(&owned), "after {:?}", op);
            }
            let (a, b) = (dir.join("a"), dir.join("b"));
            fs::create_dir_all(&a).unwrap();
            fs::create_dir_all(&b).unwrap();
            prop_assert!(persisted(&mapped, &a) == persisted(&owned, &b), "persisted bytes differ");
            fs::remove_dir_all(dir).unwrap();
        }
    }

    /// Writes `s` as a binary file, lets `damage` edit the bytes, recomputes every checksum (a crafted
    /// file, not a damaged one) and loads it.
    fn crafted(
        s: &VectorStore,
        tag: &str,
        damage: impl Fn(&mut Vec<u8>, &BinaryFile),
    ) -> (PathBuf, StoreResult<VectorStore>) {
        let dir = scratch(tag);
        let json_path = dir.join("v.json");
        persist_files(s, &json_path, PersistFormat::Binary).unwrap();
        let bin = binary_path_for(&json_path);
        let mut bytes = fs::read(&bin).unwrap();
        damage(&mut bytes, &BinaryFile::open(&bin).unwrap());
        crate::fuzz_checks::fix_binary_checksums(&mut bytes);
        fs::write(&bin, &bytes).unwrap();
        (bin.clone(), load_binary(&bin))
    }

    #[test]
    fn checks_left_to_first_use_are_errors_there_and_in_verify() {
        // Repeated id: the index keeps the first row; verify and check_loaded name the id.
        let s = sample(3, 4); // ids id0, id1, id2: same length
        let (bin, loaded) = crafted(&s, "dup", |b, f| {
            let at = f.header.section(SectionId::Ids).offset as usize;
            // second id (after a 4-byte length and "id0" and another length) becomes "id0"
            b[at + 4 + 3 + 4 + 2] = b'0';
        });
        let loaded = loaded.unwrap();
        assert_eq!(loaded.len(), 3);
        assert!(loaded
            .check_loaded()
            .unwrap_err()
            .to_string()
            .contains("\"id0\" appears twice"));
        let (problems, _) = verify_binary(&bin, None);
        assert!(problems.iter().any(|p| p.contains("appears twice")), "{problems:?}");
        assert_eq!(loaded.get("id0"), Some(loaded.row_embedding(0)));
        fs::remove_dir_all(bin.parent().unwrap()).unwrap();

        // Metadata text that is not JSON: get_metadata, filters, to_json and persists fail cleanly.
        let (bin, loaded) = crafted(&s, "badmeta", |b, f| {
            let at = f.header.section(SectionId::Metadata).offset as usize;
            b[at + 8] = b'?'; // first value's first byte ('{')
        });
        let loaded = loaded.unwrap();
        let err = loaded.get_metadata("id0").unwrap_err().to_string();
        assert!(err.contains("metadata of \"id0\""), "{err}");
        assert!(loaded.get_metadata("id1").unwrap().is_some());
        let e = [1.0; 4];
        let query = Query {
            embedding: &e,
            top_k: Some(2),
            node_ids: None,
            filters: Some(&m_is(1)),
            mode: QueryMode::Default,
        };
        assert!(loaded.query(&query).is_err());
        assert!(json_format::to_json(&loaded).is_err());
        let out = bin.with_file_name("again.json");
        assert!(persist_files(&loaded, &out, PersistFormat::Both).is_err());
        assert!(!out.exists() && !binary_path_for(&out).exists());
        let (problems, _) = verify_binary(&bin, None);
        assert!(problems.iter().any(|p| p.contains("metadata of")), "{problems:?}");
        fs::remove_dir_all(bin.parent().unwrap()).unwrap();
    }

    #[test]
    fn damaged_sections_are_load_errors_naming_the_section() {
        let s = sample(6, 5);
        let dir = scratch("sections");
        let json_path = dir.join("v.json");
        persist_files(&s, &json_path, PersistFormat::Binary).unwrap();
        let bin = binary_path_for(&json_path);
        let clean = fs::read(&bin).unwrap();
        let header = BinaryFile::open(&bin).unwrap().header;
        for id in [
            SectionId::Norms,
            SectionId::Ids,
            SectionId::RefDocs,
            SectionId::Metadata,
        ] {
            let mut bytes = clean.clone();
            bytes[header.section(id).offset as usize + 6] ^= 0x20;
            fs::write(&bin, &bytes).unwrap();
            let err = load_binary(&bin).unwrap_err().to_string();
            assert!(
                err.contains(&format!("section {} checksum mismatch", id.name())),
                "{err}"
            );
        }
        fs::remove_dir_all(dir).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Arbitrary bytes never panic the loader; the only outcomes are a store or a Corrupt/Json error.
        #[test]
        fn arbitrary_damage_is_an_error_not_a_panic(flips in proptest::collection::vec((0usize..5000, any::<u8>()), 1..8), cut in 0usize..6000) {
            let dir = scratch("prop");
            let json_path = dir.join("v.json");
            let mut s = sample(7, 5);
            s.set_ref_doc_id("orphan", Some("x".into()));
            persist_files(&s, &json_path, PersistFormat::Binary).unwrap();
            let bin = binary_path_for(&json_path);
            let mut bytes = fs::read(&bin).unwrap();
            for (at, x) in flips {
                if at < bytes.len() { bytes[at] ^= x; }
            }
            bytes.truncate(cut.min(bytes.len()));
            fs::write(&bin, &bytes).unwrap();
            match load_binary(&bin) {
                Ok(_) | Err(StoreError::Corrupt { .. } | StoreError::Json { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected error kind: {e:?}"),
            }
            fs::remove_dir_all(dir).unwrap();
        }
    }
}
