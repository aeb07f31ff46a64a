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

use std::collections::HashMap;

use super::kernels::norm_f32;
use super::rows::RowStorage;
use crate::error::{StoreError, StoreResult};
use crate::json::Value;

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
    pub metadata: Option<&'a Value>,
}

#[derive(Clone, Debug)]
pub(super) struct RowMeta {
    pub(super) id: String,
    pub(super) ref_doc: Option<(u64, String)>,
    pub(super) metadata: Option<(u64, Value)>,
    pub(super) norm: f64,
    pub(super) alive: bool,
}

/// The pure-Rust core of `RustVectorStore`.
#[derive(Clone, Debug, Default)]
pub struct VectorStore {
    pub(super) dim: Option<usize>,
    pub(super) storage: Option<RowStorage>,
    pub(super) rows: Vec<RowMeta>,
    pub(super) index: HashMap<String, u32>,
    pub(super) live: usize,
    /// Live rows that have a metadata entry (for `metadata_len` without a scan).
    meta_rows: usize,
    ref_rows: usize,
    orphan_refs: HashMap<String, (u64, String)>,
    orphan_meta: HashMap<String, (u64, Value)>,
    next_seq: u64,
    /// Metadata columns for filtered queries; every mutation of rows or metadata invalidates them.
    pub(super) columns: super::columns::ColumnCache,
}

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidValue(msg)
}

impl VectorStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store of `rows` (live, in order, ids unique: checked by the caller) over existing row storage,
    /// with no ref-doc or metadata entries yet: the binary loader's constructor.
    pub(super) fn from_loaded_rows(
        dim: Option<usize>,
        storage: Option<RowStorage>,
        rows: Vec<RowMeta>,
        index: HashMap<String, u32>,
    ) -> Self {
        VectorStore {
            dim,
            storage,
            live: rows.len(),
            rows,
            index,
            ..Self::default()
        }
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
        self.insert(rows, embeddings, dim, false)
    }

    /// Like `add`, but accepts NaN / infinite components: a file SimpleVectorStore persisted may hold
    /// them (`NaN`, `Infinity` tokens) and must load. Such rows score 0.0 where numpy would give NaN.
    pub fn load_rows(&mut self, rows: Vec<NewRow>, embeddings: &[f32], dim: usize) -> StoreResult<()> {
        self.insert(rows, embeddings, dim, true)
    }

    fn insert(&mut self, rows: Vec<NewRow>, embeddings: &[f32], dim: usize, allow_non_finite: bool) -> StoreResult<()> {
        self.columns.invalidate();
        if rows.is_empty() && embeddings.is_empty() {
            return Ok(());
        }
        if dim == 0 {
            let id = rows.first().map_or("", |r| r.id.as_str());
            return Err(invalid(format!(
                "embedding of node {id:?} is empty: a vector needs at least one dimension"
            )));
        }
        if embeddings.len() != rows.len() * dim {
            return Err(invalid(format!(
                "{} embedding values for {} nodes of dimension {dim}: expected {}",
                embeddings.len(),
                rows.len(),
                rows.len() * dim
            )));
        }
        if let (Some(d), false) = (self.dim, self.is_empty()) {
            if d != dim {
                return Err(invalid(format!(
                    "embedding of node {:?} has dimension {dim}, but this store holds vectors of dimension {d}",
                    rows[0].id
                )));
            }
        }
        for (row, v) in rows
            .iter()
            .zip(embeddings.chunks_exact(dim))
            .filter(|_| !allow_non_finite)
        {
            if let Some(pos) = v.iter().position(|x| !x.is_finite()) {
                return Err(invalid(format!(
                    "embedding of node {:?} has a non-finite component ({} at index {pos})",
                    row.id, v[pos]
                )));
            }
        }

        if self.dim != Some(dim) {
            // Empty store (possibly with tombstones): start a fresh block with the new dimension.
            self.storage = None;
            self.rows.clear();
            self.index.clear();
            self.dim = Some(dim);
        }
        let storage = self.storage.get_or_insert_with(|| RowStorage::new(dim));
        storage.reserve(rows.len());

        for (new, v) in rows.into_iter().zip(embeddings.chunks_exact(dim)) {
            let norm = norm_f32(v);
            if let Some(&r) = self.index.get(&new.id) {
                self.storage.as_mut().expect("storage exists").overwrite(r, v);
                let seq_ref = self.rows[r as usize].ref_doc.as_ref().map(|e| e.0);
                let seq_meta = self.rows[r as usize].metadata.as_ref().map(|e| e.0);
                let ref_doc = new.ref_doc_id.map(|s| (seq_ref.unwrap_or_else(|| self.seq()), s));
                let metadata = new.metadata.map(|m| (seq_meta.unwrap_or_else(|| self.seq()), m));
                let meta = &mut self.rows[r as usize];
                self.ref_rows = self.ref_rows + usize::from(ref_doc.is_some()) - usize::from(meta.ref_doc.is_some());
                self.meta_rows =
                    self.meta_rows + usize::from(metadata.is_some()) - usize::from(meta.metadata.is_some());
                meta.ref_doc = ref_doc;
                meta.metadata = metadata;
                meta.norm = norm;
            } else {
                let seq_ref = self.orphan_refs.remove(&new.id).map(|e| e.0);
                let seq_meta = self.orphan_meta.remove(&new.id).map(|e| e.0);
                let ref_doc = new.ref_doc_id.map(|s| (seq_ref.unwrap_or_else(|| self.seq()), s));
                let metadata = new.metadata.map(|m| (seq_meta.unwrap_or_else(|| self.seq()), m));
                self.ref_rows += usize::from(ref_doc.is_some());
                self.meta_rows += usize::from(metadata.is_some());
                let r = self.storage.as_mut().expect("storage exists").push(v);
                self.index.insert(new.id.clone(), r);
                self.rows.push(RowMeta {
                    id: new.id,
                    ref_doc,
                    metadata,
                    norm,
                    alive: true,
                });
                self.live += 1;
            }
        }
        Ok(())
    }

    /// The stored vector of a live row.
    pub fn get(&self, id: &str) -> Option<&[f32]> {
        let r = *self.index.get(id)?;
        Some(self.row_embedding(r))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Kills row `r`; with `keep_entries` its ref / metadata entries become orphans (same positions).
    fn kill(&mut self, r: u32, keep_entries: bool) {
        self.columns.invalidate();
        let meta = &mut self.rows[r as usize];
        debug_assert!(meta.alive);
        meta.alive = false;
        self.live -= 1;
        let ref_doc = meta.ref_doc.take();
        let metadata = meta.metadata.take();
        let id = meta.id.clone();
        self.index.remove(&id);
        self.ref_rows -= usize::from(ref_doc.is_some());
        self.meta_rows -= usize::from(metadata.is_some());
        if keep_entries {
            if let Some(e) = ref_doc {
                self.orphan_refs.insert(id.clone(), e);
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
            self.index.clear();
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
        self.index.clear();
        for (i, m) in self.rows.iter().enumerate() {
            self.index.insert(m.id.clone(), i as u32);
        }
    }

    /// `SimpleVectorStore.delete(ref_doc_id)`: every row (and orphan ref entry) whose ref-doc id equals
    /// it goes, with its ref-doc and metadata entries.
    pub fn delete_ref_doc(&mut self, ref_doc_id: &str) {
        let doomed: Vec<u32> = (0..self.rows.len() as u32)
            .filter(|&r| {
                let m = &self.rows[r as usize];
                m.alive && m.ref_doc.as_ref().is_some_and(|e| e.1 == ref_doc_id)
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
                if !ids.contains(&m.id) {
                    continue;
                }
            }
            if let Some(f) = filters {
                let Some((_, md)) = &m.metadata else {
                    return Err(StoreError::KeyNotFound(m.id.clone()));
                };
                if !f.matches(md)? {
                    continue;
                }
            }
            out.push(r as u32);
        }
        Ok(out)
    }

    /// `del embedding_dict[id]`: removes one row, keeping its ref-doc / metadata entries (as orphans).
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(&r) = self.index.get(id) else { return false };
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
                id: &m.id,
                embedding: self.row_embedding(r as u32),
                ref_doc_id: m.ref_doc.as_ref().map(|e| e.1.as_str()),
                metadata: m.metadata.as_ref().map(|e| &e.1),
            })
    }

    /// `text_id_to_ref_doc_id.items()` in dict order.
    pub fn ref_doc_entries(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut v: Vec<(u64, &str, &str)> = self
            .rows
            .iter()
            .filter(|m| m.alive)
            .filter_map(|m| m.ref_doc.as_ref().map(|e| (e.0, m.id.as_str(), e.1.as_str())))
            .chain(self.orphan_refs.iter().map(|(k, e)| (e.0, k.as_str(), e.1.as_str())))
            .collect();
        v.sort_by_key(|e| e.0);
        v.into_iter().map(|e| (e.1, e.2))
    }

    /// `metadata_dict.items()` in dict order.
    pub fn metadata_entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        let mut v: Vec<(u64, &str, &Value)> = self
            .rows
            .iter()
            .filter(|m| m.alive)
            .filter_map(|m| m.metadata.as_ref().map(|e| (e.0, m.id.as_str(), &e.1)))
            .chain(self.orphan_meta.iter().map(|(k, e)| (e.0, k.as_str(), &e.1)))
            .collect();
        v.sort_by_key(|e| e.0);
        v.into_iter().map(|e| (e.1, e.2))
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
        match self.index.get(id) {
            Some(&r) => self.rows[r as usize].ref_doc.as_ref().map(|e| e.1.as_str()),
            None => self.orphan_refs.get(id).map(|e| e.1.as_str()),
        }
    }

    pub fn get_metadata(&self, id: &str) -> Option<&Value> {
        match self.index.get(id) {
            Some(&r) => self.rows[r as usize].metadata.as_ref().map(|e| &e.1),
            None => self.orphan_meta.get(id).map(|e| &e.1),
        }
    }

    /// `text_id_to_ref_doc_id[id] = v` (`Some`) or `del text_id_to_ref_doc_id[id]` (`None`), whether or
    /// not `id` has an embedding.
    pub fn set_ref_doc_id(&mut self, id: &str, v: Option<String>) {
        let old_seq = self.get_ref_seq(id);
        let entry = v.map(|s| (old_seq.unwrap_or_else(|| self.seq()), s));
        match self.index.get(id) {
            Some(&r) => {
                let m = &mut self.rows[r as usize];
                self.ref_rows = self.ref_rows + usize::from(entry.is_some()) - usize::from(m.ref_doc.is_some());
                m.ref_doc = entry;
            }
            None => match entry {
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
        let entry = v.map(|val| (old_seq.unwrap_or_else(|| self.seq()), val));
        match self.index.get(id) {
            Some(&r) => {
                let m = &mut self.rows[r as usize];
                self.meta_rows = self.meta_rows + usize::from(entry.is_some()) - usize::from(m.metadata.is_some());
                m.metadata = entry;
            }
            None => match entry {
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
        match self.index.get(id) {
            Some(&r) => self.rows[r as usize].ref_doc.as_ref().map(|e| e.0),
            None => self.orphan_refs.get(id).map(|e| e.0),
        }
    }

    fn get_meta_seq(&self, id: &str) -> Option<u64> {
        match self.index.get(id) {
            Some(&r) => self.rows[r as usize].metadata.as_ref().map(|e| e.0),
            None => self.orphan_meta.get(id).map(|e| e.0),
        }
    }

    /// The id of a physical row (as returned by `candidates`; valid until the next mutation).
    pub fn row_id(&self, row: u32) -> &str {
        &self.rows[row as usize].id
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
}
