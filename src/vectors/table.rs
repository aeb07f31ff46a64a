//! The row table: SimpleVectorStore's three dicts (`embedding_dict`, `text_id_to_ref_doc_id`,
//! `metadata_dict`) kept as one table of rows plus "orphan" entries.
//!
//! Order contract (Python dict semantics, per dict):
//! - Rows are in `embedding_dict` order: adding an existing id replaces its vector in place (same
//!   position); deleting and re-adding puts it at the end. Deletes are tombstones; when tombstones
//!   exceed half of the rows, a stable compaction rewrites the storage and the id -> row map.
//! - Each ref-doc / metadata entry carries the sequence number of its insertion into *its* dict, so
//!   `ref_doc_entries` / `metadata_entries` iterate exactly as the Python dicts would, including entries
//!   without an embedding (orphans: loaded files, or user code writing into `.data`). Replacing an
//!   existing entry keeps its sequence number (its position), deleting it forgets it.
//! - Embeddings are validated on the way in: one dimension per store (fixed by the first add while the
//!   store is empty), finite components only.
//!
//! Loaded rows stay in the binary file: an id or ref-doc id is a `Text` (an owned string, or a slice
//! of the mapped file that the loader checked for bounds and UTF-8), a metadata value is a `Meta`
//! (a parsed `Value`, or the JSON text in the file, parsed on first use and cached). The id -> row
//! index is built on first need (a `get`, an add, a delete by id), not by the load: a query never
//! needs it. So a load costs a sequential pass over the ids, not a string and a hash insert per row.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use hashbrown::HashTable;
use memmap2::Mmap;
use rayon::prelude::*;

use super::kernels::norm_f32;
use super::rows::{OwnedRows, RowStorage};
use crate::error::{StoreError, StoreResult};
use crate::json::{self, Value};

/// One row to add: the vector comes separately (row-major block).
#[derive(Clone, Debug, PartialEq)]
pub struct NewRow {
    pub id: String,
    pub ref_doc_id: Option<String>,
    pub metadata: Option<Value>,
}

/// A borrowed view of one live row.
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    pub id: &'a str,
    pub embedding: &'a [f32],
    pub ref_doc_id: Option<&'a str>,
}

/// A string of the table: owned, or `len` bytes at `at` in the loaded file (`VectorStore::file`),
/// which the loader checked for bounds and UTF-8.
#[derive(Clone, Debug)]
pub(super) enum Text {
    Owned(Box<str>),
    Mapped { at: u64, len: u32 },
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::Owned(s.into_boxed_str())
    }
}

/// A metadata value: parsed, or JSON text in the loaded file (checked for bounds, not yet parsed)
/// with the value once some caller needed it.
#[derive(Clone, Debug)]
pub(super) enum Meta {
    Parsed(Value),
    /// The cache is boxed to keep the row table small (a load writes one entry per row).
    Mapped {
        at: u64,
        len: u32,
        parsed: OnceLock<Box<Value>>,
    },
}

/// The binary file rows were loaded from: strings and metadata text of loaded rows point into it.
#[derive(Debug)]
pub(super) struct LoadedFile {
    pub(super) map: Arc<Mmap>,
    pub(super) path: String,
}

#[derive(Clone, Debug)]
pub(super) struct RowMeta {
    pub(super) id: Text,
    pub(super) ref_doc: Option<(u64, Text)>,
    pub(super) metadata: Option<(u64, Meta)>,
    pub(super) norm: f64,
    pub(super) alive: bool,
}

#[cfg(test)]
#[test]
fn row_table_entries_stay_small() {
    // A binary load writes one per row: 1M rows of 136 bytes cost ~30 ms of page faults and zeroing.
    assert!(
        std::mem::size_of::<RowMeta>() <= 120,
        "{}",
        std::mem::size_of::<RowMeta>()
    );
}

impl RowMeta {
    /// An empty vector for `n` rows (`None` if that much memory cannot be had: a damaged row count
    /// must be an error, not an abort). A large one asks for transparent huge pages: filling a
    /// million rows touches ~110 MB of fresh memory, and 4 KiB page faults were half the cost of a
    /// binary load.
    pub(super) fn vec_with_capacity(n: usize) -> Option<Vec<RowMeta>> {
        let mut v: Vec<RowMeta> = Vec::new();
        v.try_reserve_exact(n).ok()?;
        crate::hugepages::advise(&v);
        Some(v)
    }
}

/// id -> physical row of the live rows. The table holds row numbers only; the ids are the rows' own
/// (hashed with foldhash's fixed-seed hasher, as the KV key index: the ids come from the user's own
/// files and calls, so hash flooding by an adversary is not a concern here, and SipHash would cost
/// more than the rest of a load).
#[derive(Clone, Debug, Default)]
pub(super) struct IdIndex {
    table: HashTable<u32>,
}

fn hash_id(id: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(id)
}

/// The bytes of `t` (`file` is the store's loaded file, present whenever a `Text::Mapped` exists). The
/// index hashes and compares these: no UTF-8 check per probe.
#[inline]
fn id_bytes<'a>(file: Option<&'a LoadedFile>, t: &'a Text) -> &'a [u8] {
    match t {
        Text::Owned(s) => s.as_bytes(),
        Text::Mapped { at, len } => file
            .and_then(|f| f.map.get(*at as usize..*at as usize + *len as usize))
            .unwrap_or_default(),
    }
}

/// The text of `t`. The loader checked bounds and UTF-8 of mapped strings; the map is read-only and
/// never written in place, so the fallback ("") is reached only if another program rewrites the file
/// under the mapping.
#[inline]
fn resolve<'a>(file: Option<&'a LoadedFile>, t: &'a Text) -> &'a str {
    match t {
        Text::Owned(s) => s,
        Text::Mapped { .. } => std::str::from_utf8(id_bytes(file, t)).unwrap_or(""),
    }
}

/// The pure-Rust core of `RustVectorStore`.
#[derive(Clone, Debug, Default)]
pub struct VectorStore {
    pub(super) dim: Option<usize>,
    pub(super) storage: Option<RowStorage>,
    pub(super) rows: Vec<RowMeta>,
    /// Built on first need (`index` / `index_mut`), not by a binary load.
    index: OnceLock<IdIndex>,
    pub(super) file: Option<Arc<LoadedFile>>,
    pub(super) live: usize,
    /// Live rows that have a metadata entry (for `metadata_len` without a scan).
    pub(super) meta_rows: usize,
    pub(super) ref_rows: usize,
    orphan_refs: HashMap<String, (u64, String)>,
    orphan_meta: HashMap<String, (u64, Meta)>,
    pub(super) next_seq: u64,
    /// Metadata columns for filtered queries; every mutation of rows or metadata invalidates them.
    pub(super) columns: super::columns::ColumnCache,
}

/// The vectors of one `insert`: a row-major slice of `dim`-float rows, or rows already laid out as
/// row storage.
enum Batch<'a> {
    Flat(&'a [f32], usize),
    Block(OwnedRows),
}

impl Batch<'_> {
    fn dim(&self) -> usize {
        match self {
            Batch::Flat(_, dim) => *dim,
            Batch::Block(b) => b.dim(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Batch::Flat(v, dim) => v.len() / (*dim).max(1),
            Batch::Block(b) => b.len(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Batch::Flat(v, _) => v.is_empty(),
            Batch::Block(b) => b.is_empty(),
        }
    }

    #[inline]
    fn row(&self, i: usize) -> &[f32] {
        match self {
            Batch::Flat(v, dim) => &v[i * dim..(i + 1) * dim],
            Batch::Block(b) => b.row(i as u32),
        }
    }

    /// Every row's norm; on the pool for a large batch (a pass over all of its floats).
    fn norms(&self) -> Vec<f64> {
        let n = self.len();
        if n * self.dim() < 1 << 20 {
            (0..n).map(|i| norm_f32(self.row(i))).collect()
        } else {
            (0..n)
                .into_par_iter()
                .with_min_len(64)
                .map(|i| norm_f32(self.row(i)))
                .collect()
        }
    }
}

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidValue(msg)
}

/// Removes `id`'s orphan entry and returns its sequence number. An empty map (the usual case) is
/// not asked: a std map hashes the key before looking.
fn take_orphan<V>(orphans: &mut HashMap<String, (u64, V)>, id: &str) -> Option<u64> {
    if orphans.is_empty() {
        return None;
    }
    orphans.remove(id).map(|e| e.0)
}

impl IdIndex {
    /// The index of the live rows, and the first row whose id repeats an earlier row's (left out).
    fn build(rows: &[RowMeta], file: Option<&LoadedFile>) -> (IdIndex, Option<u32>) {
        let mut table = HashTable::with_capacity(rows.len());
        let mut duplicate = None;
        let id_of = |o: u32| id_bytes(file, &rows[o as usize].id);
        for (r, m) in rows.iter().enumerate().filter(|(_, m)| m.alive) {
            let id = id_bytes(file, &m.id);
            match table.entry(hash_id(id), |&o| id_of(o) == id, |&o| hash_id(id_of(o))) {
                hashbrown::hash_table::Entry::Occupied(_) => {
                    duplicate = duplicate.or(Some(r as u32));
                }
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(r as u32);
                }
            }
        }
        (IdIndex { table }, duplicate)
    }

    fn get(&self, rows: &[RowMeta], file: Option<&LoadedFile>, id: &str) -> Option<u32> {
        let id = id.as_bytes();
        self.table
            .find(hash_id(id), |&r| id_bytes(file, &rows[r as usize].id) == id)
            .copied()
    }

    /// Room for `additional` more ids without growing (growing hashes every indexed id again).
    fn reserve(&mut self, rows: &[RowMeta], file: Option<&LoadedFile>, additional: usize) {
        self.table
            .reserve(additional, |&o| hash_id(id_bytes(file, &rows[o as usize].id)));
    }

    /// Adds row `r` (whose id is not in the index).
    fn insert(&mut self, rows: &[RowMeta], file: Option<&LoadedFile>, r: u32) {
        let h = hash_id(id_bytes(file, &rows[r as usize].id));
        self.table
            .insert_unique(h, r, |&o| hash_id(id_bytes(file, &rows[o as usize].id)));
    }

    fn remove(&mut self, rows: &[RowMeta], file: Option<&LoadedFile>, id: &str) {
        let id = id.as_bytes();
        if let Ok(e) = self
            .table
            .find_entry(hash_id(id), |&r| id_bytes(file, &rows[r as usize].id) == id)
        {
            e.remove();
        }
    }
}

impl VectorStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store of `rows` (live, in order) over existing row storage, strings in `file`: the binary
    /// loader's constructor. Ids should be unique: `check_loaded` finds out.
    pub(super) fn from_loaded_rows(
        dim: Option<usize>,
        storage: Option<RowStorage>,
        rows: Vec<RowMeta>,
        file: Option<Arc<LoadedFile>>,
    ) -> Self {
        VectorStore {
            dim,
            storage,
            live: rows.len(),
            rows,
            file,
            ..Self::default()
        }
    }

    /// The checks a binary load leaves to first use: ids are unique (the index keeps the first row of
    /// a repeated id) and every metadata text of the file parses. `verify` runs them.
    pub fn check_loaded(&self) -> StoreResult<()> {
        if let (Some(file), (_, Some(r))) = (self.file.as_deref(), IdIndex::build(&self.rows, self.file.as_deref())) {
            return Err(StoreError::Corrupt {
                path: file.path.clone(),
                message: format!("section ids: node id {:?} appears twice", self.row_id(r)),
            });
        }
        self.parse_all_metadata()
    }

    fn index(&self) -> &IdIndex {
        // Ids are unique (loads check it, adds keep it); were a repeat to slip through, the first row
        // with the id would win.
        self.index
            .get_or_init(|| IdIndex::build(&self.rows, self.file.as_deref()).0)
    }

    fn lookup(&self, id: &str) -> Option<u32> {
        self.index().get(&self.rows, self.file.as_deref(), id)
    }

    /// The index and the rows it refers to, for changes.
    fn index_mut(&mut self) -> (&mut IdIndex, &[RowMeta], Option<&LoadedFile>) {
        self.index();
        let index = self.index.get_mut().expect("initialised just above");
        (index, &self.rows, self.file.as_deref())
    }

    #[inline]
    fn text<'a>(&'a self, t: &'a Text) -> &'a str {
        resolve(self.file.as_deref(), t)
    }

    /// A metadata value, parsed from the file on first use (`Json` error if the file's text is bad).
    pub(super) fn meta_value<'a>(&'a self, id: &str, m: &'a Meta) -> StoreResult<&'a Value> {
        match m {
            Meta::Parsed(v) => Ok(v),
            Meta::Mapped { at, len, parsed } => {
                if let Some(v) = parsed.get() {
                    return Ok(&**v);
                }
                let file = self.file.as_deref();
                let bytes = file
                    .and_then(|f| f.map.get(*at as usize..*at as usize + *len as usize))
                    .unwrap_or_default();
                let path = file.map_or("", |f| f.path.as_str());
                let value = json::parse(bytes, &format!("{path} (metadata of {id:?})"))?;
                Ok(&**parsed.get_or_init(|| Box::new(value)))
            }
        }
    }

    /// Parses every metadata value of the file that is not parsed yet (the first error, if any).
    pub fn parse_all_metadata(&self) -> StoreResult<()> {
        for m in self.rows.iter().filter(|m| m.alive) {
            if let Some((_, md)) = &m.metadata {
                self.meta_value(self.text(&m.id), md)?;
            }
        }
        for (k, e) in &self.orphan_meta {
            self.meta_value(k, &e.1)?;
        }
        Ok(())
    }

    /// True when rows are used in place from a memory-mapped binary file.
    pub fn memory_mapped(&self) -> bool {
        self.storage.as_ref().is_some_and(RowStorage::is_mapped)
    }

    /// The dimension of the stored vectors (`None` until the first add, and after `clear`).
    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    /// Number of live rows (`len(embedding_dict)`).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Adds or replaces rows (`embedding_dict[id] = ...` etc. for each row, in order).
    ///
    /// `embeddings` is row-major, `rows.len() x dim`. All input is validated before anything changes:
    /// dim 0, a length mismatch, a dimension other than the store's (while it has rows), or a NaN /
    /// infinite component is an `InvalidValue` naming the node.
    pub fn add(&mut self, rows: Vec<NewRow>, embeddings: &[f32], dim: usize) -> StoreResult<()> {
        self.insert(rows, Batch::Flat(embeddings, dim), false)
    }

    /// `add` with the vectors already laid out as row storage (`OwnedRows::filled`). A store with no
    /// rows (the first add) takes the block over as its storage instead of copying it.
    pub fn add_block(&mut self, rows: Vec<NewRow>, block: OwnedRows) -> StoreResult<()> {
        self.insert(rows, Batch::Block(block), false)
    }

    /// Like `add`, but accepts NaN / infinite components: a file SimpleVectorStore persisted may hold
    /// them (`NaN`, `Infinity` tokens) and must load. Such rows score 0.0 where numpy would give NaN.
    pub fn load_rows(&mut self, rows: Vec<NewRow>, embeddings: &[f32], dim: usize) -> StoreResult<()> {
        self.insert(rows, Batch::Flat(embeddings, dim), true)
    }

    /// `load_rows` for a block (see `add_block`).
    pub fn load_block(&mut self, rows: Vec<NewRow>, block: OwnedRows) -> StoreResult<()> {
        self.insert(rows, Batch::Block(block), true)
    }

    fn insert(&mut self, rows: Vec<NewRow>, batch: Batch<'_>, allow_non_finite: bool) -> StoreResult<()> {
        self.columns.invalidate();
        let dim = batch.dim();
        if rows.is_empty() && batch.is_empty() {
            return Ok(());
        }
        if dim == 0 {
            let id = rows.first().map_or("", |r| r.id.as_str());
            return Err(invalid(format!(
                "embedding of node {id:?} is empty: a vector needs at least one dimension"
            )));
        }
        if let Batch::Flat(embeddings, _) = batch {
            if embeddings.len() != rows.len() * dim {
                return Err(invalid(format!(
                    "{} embedding values for {} nodes of dimension {dim}: expected {}",
                    embeddings.len(),
                    rows.len(),
                    rows.len() * dim
                )));
            }
        } else if batch.len() != rows.len() {
            return Err(invalid(format!("{} embeddings for {} nodes", batch.len(), rows.len())));
        }
        if let (Some(d), false) = (self.dim, self.is_empty()) {
            if d != dim {
                return Err(invalid(format!(
                    "embedding of node {:?} has dimension {dim}, but this store holds vectors of dimension {d}",
                    rows[0].id
                )));
            }
        }
        // A norm is finite exactly when every component is (squares of f32 values cannot overflow
        // an f64 sum), so the norms double as the finiteness check.
        let norms = batch.norms();
        if let Some(i) = norms.iter().position(|n| !n.is_finite()).filter(|_| !allow_non_finite) {
            let v = batch.row(i);
            let pos = v.iter().position(|x| !x.is_finite()).unwrap_or(0);
            return Err(invalid(format!(
                "embedding of node {:?} has a non-finite component ({} at index {pos})",
                rows[i].id, v[pos]
            )));
        }

        if self.dim != Some(dim) {
            // Empty store (possibly with tombstones): start a fresh block with the new dimension.
            self.storage = None;
            self.rows.clear();
            self.index = OnceLock::from(IdIndex::default());
            self.dim = Some(dim);
        }
        // `copy_from`: None when the block was adopted as storage. Then physical row i is batch row
        // i, so every batch row gets a row entry (one whose id repeats an earlier row's becomes a
        // tombstone after its vector is copied over that row).
        let copy_from = match batch {
            Batch::Block(block) if self.rows.is_empty() => {
                self.storage = Some(RowStorage::Owned(block));
                None
            }
            other => Some(other),
        };
        let storage = self.storage.get_or_insert_with(|| RowStorage::new(dim));
        if copy_from.is_some() {
            storage.reserve(rows.len());
        }
        self.rows.reserve(rows.len());
        let (index, table_rows, file) = self.index_mut();
        index.reserve(table_rows, file, rows.len());

        for (i, (new, norm)) in rows.into_iter().zip(norms).enumerate() {
            let existing = self.lookup(&new.id);
            // An entry keeps the position (sequence number) of the one it replaces: the row's own
            // when it is re-added, an orphan's when the id had only a ref-doc / metadata entry.
            let (seq_ref, seq_meta) = match existing {
                Some(r) => {
                    let row = &self.rows[r as usize];
                    (row.ref_doc.as_ref().map(|e| e.0), row.metadata.as_ref().map(|e| e.0))
                }
                None => (
                    take_orphan(&mut self.orphan_refs, &new.id),
                    take_orphan(&mut self.orphan_meta, &new.id),
                ),
            };
            let ref_doc = new
                .ref_doc_id
                .map(|s| (seq_ref.unwrap_or_else(|| self.seq()), Text::from(s)));
            let metadata = new
                .metadata
                .map(|m| (seq_meta.unwrap_or_else(|| self.seq()), Meta::Parsed(m)));
            let storage = self.storage.as_mut().expect("storage exists");
            if let Some(r) = existing {
                match &copy_from {
                    Some(batch) => storage.overwrite(r, batch.row(i)),
                    None => {
                        // A repeated id within an adopted batch (rare): its row is copied over the
                        // earlier one, through a temporary because both live in the same storage.
                        let v = storage.row(i as u32).to_vec();
                        storage.overwrite(r, &v);
                        self.rows.push(RowMeta {
                            id: Text::from(new.id),
                            ref_doc: None,
                            metadata: None,
                            norm,
                            alive: false,
                        });
                    }
                }
                let meta = &mut self.rows[r as usize];
                self.ref_rows = self.ref_rows + usize::from(ref_doc.is_some()) - usize::from(meta.ref_doc.is_some());
                self.meta_rows =
                    self.meta_rows + usize::from(metadata.is_some()) - usize::from(meta.metadata.is_some());
                meta.ref_doc = ref_doc;
                meta.metadata = metadata;
                meta.norm = norm;
            } else {
                self.ref_rows += usize::from(ref_doc.is_some());
                self.meta_rows += usize::from(metadata.is_some());
                let r = match &copy_from {
                    Some(batch) => storage.push(batch.row(i)),
                    None => i as u32,
                };
                debug_assert_eq!(r as usize, self.rows.len());
                self.rows.push(RowMeta {
                    id: Text::from(new.id),
                    ref_doc,
                    metadata,
                    norm,
                    alive: true,
                });
                let (index, rows, file) = self.index_mut();
                index.insert(rows, file, r);
                self.live += 1;
            }
        }
        Ok(())
    }

    /// The stored vector of a live row.
    pub fn get(&self, id: &str) -> Option<&[f32]> {
        let r = self.lookup(id)?;
        Some(self.row_embedding(r))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.lookup(id).is_some()
    }

    /// Kills row `r`; with `keep_entries` its ref / metadata entries become orphans (same positions).
    fn kill(&mut self, r: u32, keep_entries: bool) {
        self.columns.invalidate();
        let id = self.row_id(r).to_owned();
        let (index, rows, file) = self.index_mut();
        index.remove(rows, file, &id);
        let meta = &mut self.rows[r as usize];
        debug_assert!(meta.alive);
        meta.alive = false;
        self.live -= 1;
        let ref_doc = meta.ref_doc.take();
        let metadata = meta.metadata.take();
        self.ref_rows -= usize::from(ref_doc.is_some());
        self.meta_rows -= usize::from(metadata.is_some());
        if keep_entries {
            if let Some((seq, t)) = ref_doc {
                let text = self.text(&t).to_owned();
                self.orphan_refs.insert(id.clone(), (seq, text));
            }
            if let Some(e) = metadata {
                self.orphan_meta.insert(id, e);
            }
        }
    }

    /// Stable compaction once tombstones outnumber live rows.
    fn maybe_compact(&mut self) {
        self.columns.invalidate();
        let dead = self.rows.len() - self.live;
        if dead == 0 || dead * 2 <= self.rows.len() {
            return;
        }
        if self.live == 0 {
            self.rows.clear();
            self.index = OnceLock::from(IdIndex::default());
            if let Some(d) = self.dim {
                self.storage = Some(RowStorage::new(d));
            }
            return;
        }
        let keep: Vec<bool> = self.rows.iter().map(|m| m.alive).collect();
        if let Some(s) = self.storage.as_mut() {
            s.retain(&keep);
        }
        self.rows.retain(|m| m.alive);
        // Rebuilt on next need (row numbers changed).
        self.index = OnceLock::new();
    }

    /// `SimpleVectorStore.delete(ref_doc_id)`: every row (and orphan ref entry) whose ref-doc id equals
    /// it goes, with its ref-doc and metadata entries.
    pub fn delete_ref_doc(&mut self, ref_doc_id: &str) {
        let doomed: Vec<u32> = (0..self.rows.len() as u32)
            .filter(|&r| {
                let m = &self.rows[r as usize];
                m.alive && m.ref_doc.as_ref().is_some_and(|e| self.text(&e.1) == ref_doc_id)
            })
            .collect();
        for r in doomed {
            self.kill(r, false);
        }
        let orphans: Vec<String> = self
            .orphan_refs
            .iter()
            .filter(|(_, e)| e.1 == ref_doc_id)
            .map(|(k, _)| k.clone())
            .collect();
        for id in orphans {
            self.orphan_refs.remove(&id);
            self.orphan_meta.remove(&id);
        }
        self.maybe_compact();
    }

    /// `SimpleVectorStore.delete_nodes`: deletes rows whose id is in `node_ids` (if given) and whose
    /// metadata matches `filters`. Filter errors are raised before anything is deleted.
    pub fn delete_nodes(
        &mut self,
        node_ids: Option<&std::collections::HashSet<String>>,
        filters: Option<&super::Filters>,
    ) -> StoreResult<()> {
        let doomed = self.matching_rows(node_ids, filters)?;
        for r in doomed {
            self.kill(r, false);
        }
        self.maybe_compact();
        Ok(())
    }

    /// Rows (in order) whose id is in `node_ids` (if given) and whose metadata matches `filters`.
    /// A non-empty filter list on a row without a metadata entry is `KeyNotFound(id)`.
    pub(super) fn matching_rows(
        &self,
        node_ids: Option<&std::collections::HashSet<String>>,
        filters: Option<&super::Filters>,
    ) -> StoreResult<Vec<u32>> {
        let filters = filters.filter(|f| !f.is_empty());
        let mut out = Vec::with_capacity(if node_ids.is_none() && filters.is_none() {
            self.live
        } else {
            0
        });
        for (r, m) in self.rows.iter().enumerate() {
            if !m.alive {
                continue;
            }
            if let Some(ids) = node_ids {
                if !ids.contains(self.text(&m.id)) {
                    continue;
                }
            }
            if let Some(f) = filters {
                let Some((_, md)) = &m.metadata else {
                    return Err(StoreError::KeyNotFound(self.text(&m.id).to_owned()));
                };
                if !f.matches(self.meta_value(self.text(&m.id), md)?)? {
                    continue;
                }
            }
            out.push(r as u32);
        }
        Ok(out)
    }

    /// `del embedding_dict[id]`: removes one row, keeping its ref-doc / metadata entries (as orphans).
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(r) = self.lookup(id) else { return false };
        self.kill(r, true);
        self.maybe_compact();
        true
    }

    /// Forgets everything, the dimension included.
    pub fn clear(&mut self) {
        *self = VectorStore::default();
    }

    /// Live rows in `embedding_dict` order.
    pub fn rows(&self) -> impl Iterator<Item = RowRef<'_>> {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, m)| m.alive)
            .map(|(r, m)| RowRef {
                id: self.text(&m.id),
                embedding: self.row_embedding(r as u32),
                ref_doc_id: m.ref_doc.as_ref().map(|e| self.text(&e.1)),
            })
    }

    /// `text_id_to_ref_doc_id.items()` in dict order.
    pub fn ref_doc_entries(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut v: Vec<(u64, &str, &str)> = self
            .rows
            .iter()
            .filter(|m| m.alive)
            .filter_map(|m| m.ref_doc.as_ref().map(|e| (e.0, self.text(&m.id), self.text(&e.1))))
            .chain(self.orphan_refs.iter().map(|(k, e)| (e.0, k.as_str(), e.1.as_str())))
            .collect();
        sort_by_seq(&mut v);
        v.into_iter().map(|e| (e.1, e.2))
    }

    /// The metadata entries (id, value as stored) in dict order.
    fn metadata_order(&self) -> Vec<(u64, &str, &Meta)> {
        let mut v: Vec<(u64, &str, &Meta)> = Vec::with_capacity(self.metadata_len());
        v.extend(
            self.rows
                .iter()
                .filter(|m| m.alive)
                .filter_map(|m| m.metadata.as_ref().map(|e| (e.0, self.text(&m.id), &e.1))),
        );
        v.extend(self.orphan_meta.iter().map(|(k, e)| (e.0, k.as_str(), &e.1)));
        sort_by_seq(&mut v);
        v
    }

    /// `metadata_dict.keys()` in dict order (nothing is parsed).
    pub fn metadata_keys(&self) -> impl Iterator<Item = &str> {
        self.metadata_order().into_iter().map(|e| e.1)
    }

    /// `metadata_dict.items()` in dict order; values stored as text in a loaded file are parsed here
    /// (a `Json` error if one does not parse).
    pub fn metadata_entries(&self) -> StoreResult<impl Iterator<Item = (&str, &Value)>> {
        let entries = self
            .metadata_order()
            .into_iter()
            .map(|(_, id, m)| Ok((id, self.meta_value(id, m)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(entries.into_iter())
    }

    /// `len(metadata_dict)`.
    pub fn metadata_len(&self) -> usize {
        self.meta_rows + self.orphan_meta.len()
    }

    /// `len(text_id_to_ref_doc_id)`.
    pub fn ref_doc_len(&self) -> usize {
        self.ref_rows + self.orphan_refs.len()
    }

    pub fn get_ref_doc_id(&self, id: &str) -> Option<&str> {
        match self.lookup(id) {
            Some(r) => self.rows[r as usize].ref_doc.as_ref().map(|e| self.text(&e.1)),
            None => self.orphan_refs.get(id).map(|e| e.1.as_str()),
        }
    }

    /// `metadata_dict.get(id)` (a `Json` error if the value is text of a loaded file that does not parse).
    pub fn get_metadata(&self, id: &str) -> StoreResult<Option<&Value>> {
        match self.lookup(id) {
            Some(r) => {
                let m = &self.rows[r as usize];
                m.metadata.as_ref().map(|e| self.meta_value(id, &e.1)).transpose()
            }
            None => self.orphan_meta.get(id).map(|e| self.meta_value(id, &e.1)).transpose(),
        }
    }

    /// `text_id_to_ref_doc_id[id] = v` (`Some`) or `del text_id_to_ref_doc_id[id]` (`None`), whether or
    /// not `id` has an embedding.
    pub fn set_ref_doc_id(&mut self, id: &str, v: Option<String>) {
        let old_seq = self.get_ref_seq(id);
        match self.lookup(id) {
            Some(r) => {
                let entry = v.map(|s| (old_seq.unwrap_or_else(|| self.seq()), Text::from(s)));
                let m = &mut self.rows[r as usize];
                self.ref_rows = self.ref_rows + usize::from(entry.is_some()) - usize::from(m.ref_doc.is_some());
                m.ref_doc = entry;
            }
            None => match v.map(|s| (old_seq.unwrap_or_else(|| self.seq()), s)) {
                Some(e) => {
                    self.orphan_refs.insert(id.to_owned(), e);
                }
                None => {
                    self.orphan_refs.remove(id);
                }
            },
        }
    }

    /// `metadata_dict[id] = v` (`Some`) or `del metadata_dict[id]` (`None`).
    pub fn set_metadata(&mut self, id: &str, v: Option<Value>) {
        self.columns.invalidate();
        let old_seq = self.get_meta_seq(id);
        match self.lookup(id) {
            Some(r) => {
                let entry = v.map(|val| (old_seq.unwrap_or_else(|| self.seq()), Meta::Parsed(val)));
                let m = &mut self.rows[r as usize];
                self.meta_rows = self.meta_rows + usize::from(entry.is_some()) - usize::from(m.metadata.is_some());
                m.metadata = entry;
            }
            None => match v.map(|val| (old_seq.unwrap_or_else(|| self.seq()), Meta::Parsed(val))) {
                Some(e) => {
                    self.orphan_meta.insert(id.to_owned(), e);
                }
                None => {
                    self.orphan_meta.remove(id);
                }
            },
        }
    }

    fn get_ref_seq(&self, id: &str) -> Option<u64> {
        match self.lookup(id) {
            Some(r) => self.rows[r as usize].ref_doc.as_ref().map(|e| e.0),
            None => self.orphan_refs.get(id).map(|e| e.0),
        }
    }

    fn get_meta_seq(&self, id: &str) -> Option<u64> {
        match self.lookup(id) {
            Some(r) => self.rows[r as usize].metadata.as_ref().map(|e| e.0),
            None => self.orphan_meta.get(id).map(|e| e.0),
        }
    }

    /// The id of a physical row (as returned by `candidates`; valid until the next mutation).
    pub fn row_id(&self, row: u32) -> &str {
        self.text(&self.rows[row as usize].id)
    }

    /// The vector of a physical row (as returned by `candidates`; valid until the next mutation).
    pub fn row_embedding(&self, row: u32) -> &[f32] {
        self.storage
            .as_ref()
            .expect("a row exists, so its storage does")
            .row(row)
    }

    pub(super) fn row_norm(&self, row: u32) -> f64 {
        self.rows[row as usize].norm
    }

    /// The physical row of a live id (for writers that map ids to positions).
    pub(super) fn row_of(&self, id: &str) -> Option<u32> {
        self.lookup(id)
    }
}

/// Sorts dict entries by their insertion sequence number (usually sorted already: a loaded file's
/// entries are in row order).
fn sort_by_seq<A, B>(v: &mut [(u64, A, B)]) {
    if !v.is_sorted_by_key(|e| e.0) {
        v.sort_by_key(|e| e.0);
    }
}
