//! The key/value layer under the docstore and the index store: insertion-ordered collections of
//! insertion-ordered keys, each value kept as raw JSON text.
//!
//! Guarantees:
//! - Order is Python `dict` order at both levels: replacing a key keeps its position, deleting and
//!   re-adding moves it to the end. Deletes are O(1) (tombstones, compacted when they outnumber the
//!   live entries).
//! - Every stored value is *normalized*: its bytes are exactly what `json.dumps` writes for the Python
//!   value `json.loads` would make of it. So `to_json` is byte-identical to `json.dumps(collections)`,
//!   and a value that is never touched is written back verbatim.
//! - `from_json` is one validating scan accepting what `json.loads` accepts (BOM, `NaN`, lone
//!   surrogates, duplicate keys: first position, last value). Values already in normalized form are
//!   copied as they are; others are parsed and re-written. The top level and each collection must be
//!   JSON objects (a `ValueError`-mapped error naming the file otherwise).

mod canonical;
pub mod docstore;
mod ordered;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{StoreError, StoreResult};
use crate::json::{parse, to_vec, write_str, Cursor, JStr, Value};

pub use canonical::{is_normalized, normalized_len};
pub use ordered::OrderedMap;

/// One collection: key -> normalized JSON text.
pub type Collection = OrderedMap<RawJson>;

/// A stored value's (normalized) JSON text: its own allocation, or a slice of the bytes it was
/// loaded from, shared by every value loaded from them. Loading thus copies no value; the loaded
/// bytes stay in memory as long as one of their values does.
#[derive(Clone, Debug)]
pub enum RawJson {
    Owned(Box<[u8]>),
    Loaded {
        source: Arc<Vec<u8>>,
        start: usize,
        end: usize,
    },
}

impl std::ops::Deref for RawJson {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            RawJson::Owned(bytes) => bytes,
            RawJson::Loaded { source, start, end } => &source[*start..*end],
        }
    }
}

impl From<Box<[u8]>> for RawJson {
    fn from(bytes: Box<[u8]>) -> Self {
        RawJson::Owned(bytes)
    }
}

/// A member value as `read_member` finds it: where it lies in the loaded bytes, or rewritten.
enum MemberValue {
    Span(usize, usize),
    Rewritten(Box<[u8]>),
}

impl MemberValue {
    fn into_raw(self, source: &Arc<Vec<u8>>) -> RawJson {
        match self {
            MemberValue::Span(start, end) => RawJson::Loaded {
                source: Arc::clone(source),
                start,
                end,
            },
            MemberValue::Rewritten(bytes) => RawJson::Owned(bytes),
        }
    }
}

/// Insertion-ordered collections of insertion-ordered raw JSON values (see the module header).
#[derive(Clone, Default, Debug)]
pub struct KvStore {
    collections: OrderedMap<Collection>,
}

impl KvStore {
    #[must_use]
    pub fn new() -> Self {
        KvStore::default()
    }

    /// Number of values, over all collections.
    #[must_use]
    pub fn value_count(&self) -> usize {
        self.collections.values().map(Collection::len).sum()
    }

    /// Number of collections (empty ones included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.collections.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.collections.is_empty()
    }

    /// The collection, created empty (at the end) if absent: what `SimpleKVStore` does on every access.
    pub fn collection_mut(&mut self, name: &JStr) -> &mut Collection {
        if !self.collections.contains_key(name) {
            self.collections.insert(name.clone(), Collection::default());
        }
        // The key was just ensured: this lookup cannot miss.
        self.collections.get_mut(name).unwrap_or_else(|| unreachable!())
    }

    /// The collection without creating it.
    #[must_use]
    pub fn collection(&self, name: &JStr) -> Option<&Collection> {
        self.collections.get(name)
    }

    pub fn collection_names(&self) -> impl Iterator<Item = &JStr> {
        self.collections.iter().map(|(k, _)| k)
    }

    pub fn collections(&self) -> impl Iterator<Item = (&JStr, &Collection)> {
        self.collections.iter()
    }

    /// Stores `value` (normalizing it) under `key`.
    pub fn put_value(&mut self, collection: &JStr, key: JStr, value: &Value) {
        self.put_normalized(collection, key, to_vec(value).into_boxed_slice());
    }

    /// Stores already-normalized JSON text. The caller guarantees normalization (`to_vec` output, or
    /// text checked with `is_normalized`).
    pub fn put_normalized(&mut self, collection: &JStr, key: JStr, json: Box<[u8]>) {
        self.collection_mut(collection).insert(key, json.into());
    }

    /// The value's JSON text, creating the collection if absent (like `SimpleKVStore.get`).
    pub fn get(&mut self, collection: &JStr, key: &JStr) -> Option<&[u8]> {
        self.collection_mut(collection).get(key).map(|v| &**v)
    }

    /// Removes `key`; true if it was present. Creates the collection if absent.
    pub fn delete(&mut self, collection: &JStr, key: &JStr) -> bool {
        self.collection_mut(collection).remove(key).is_some()
    }

    /// `json.dumps(collections)`, byte for byte.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let size: usize = self
            .collections
            .iter()
            .map(|(k, c)| {
                k.as_bytes().len() + 8 + c.iter().map(|(k, v)| k.as_bytes().len() + v.len() + 6).sum::<usize>()
            })
            .sum();
        let mut out = Vec::with_capacity(size + 2);
        let done: Result<(), std::convert::Infallible> = self.write_json(&mut out, |_| Ok(()));
        done.unwrap_or_else(|never| match never {});
        out
    }

    /// Appends `json.dumps(collections)` to `out`, calling `drain(out)` after each member: a
    /// writer that empties `out` there streams the file through one small buffer.
    ///
    /// # Errors
    /// The first error of `drain`.
    pub fn write_json<E>(
        &self,
        out: &mut Vec<u8>,
        mut drain: impl FnMut(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        out.push(b'{');
        for (i, (name, coll)) in self.collections.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            write_str(out, name);
            out.extend_from_slice(b": ");
            write_collection_with(out, coll, &mut drain)?;
        }
        out.push(b'}');
        drain(out)
    }

    /// Writes `json.dumps(collections)` to `file`, in pieces of about `PERSIST_PIECE` bytes.
    ///
    /// # Errors
    /// The file's write errors.
    pub fn write_to(&self, file: &mut crate::persist::AtomicFile<'_>) -> StoreResult<()> {
        let mut buf = Vec::with_capacity(PERSIST_PIECE + (64 << 10));
        self.write_json(&mut buf, |buf| {
            if buf.len() >= PERSIST_PIECE {
                file.write(buf)?;
                buf.clear();
            }
            Ok(())
        })?;
        file.write(&buf)
    }

    /// Loads what `to_json` (or `json.dumps` of the same structure) wrote. See the module header.
    ///
    /// # Errors
    /// `StoreError::Json` for text `json.loads` rejects, `StoreError::Corrupt` when the top level or a
    /// collection is not an object; both name `source_name`.
    pub fn from_json(bytes: &[u8], source_name: &str) -> StoreResult<KvStore> {
        KvStore::from_json_vec(bytes.to_vec(), source_name)
    }

    /// `from_json` taking the bytes, which the loaded values then share (see `RawJson`).
    ///
    /// # Errors
    /// As `from_json`.
    pub fn from_json_vec(bytes: Vec<u8>, source_name: &str) -> StoreResult<KvStore> {
        let source = Arc::new(bytes);
        let bytes = source.as_slice();
        let mut cursor = Cursor::new(bytes, source_name);
        if cursor.peek_byte() != Some(b'{') {
            let v = parse(bytes, source_name)?;
            return Err(not_object(source_name, "the top level".into(), v.python_type_name()));
        }
        cursor.begin_object()?;
        let mut store = KvStore::new();
        for (name, coll) in read_collections(&mut cursor, &source, source_name, None)? {
            // A duplicate collection name replaces the earlier one in place (json.loads semantics).
            store.collections.insert(name, coll);
        }
        Ok(store)
    }
}

/// Collections with their names, in file order.
type NamedCollections = Vec<(JStr, Collection)>;

fn not_object(source_name: &str, what: String, found: &str) -> StoreError {
    StoreError::Corrupt {
        path: source_name.to_owned(),
        message: format!("{what} must be a JSON object, found {found}"),
    }
}

/// The collections of the top-level object from the cursor on, through its `}` and the end of the
/// input, in file order.
///
/// `stop` is `None` on the loading thread: a large collection is then read by two threads
/// (`read_collection`), and the helper also reads every collection after it. On the helper it is
/// the flag that tells it its work will be discarded: it then returns early, with partial results.
fn read_collections(
    cursor: &mut Cursor<'_>,
    source: &Arc<Vec<u8>>,
    source_name: &str,
    stop: Option<&AtomicBool>,
) -> StoreResult<NamedCollections> {
    let mut out = Vec::new();
    while let Some(name) = cursor.next_key()? {
        if cursor.peek_byte() != Some(b'{') {
            let v = cursor.parse_value()?;
            return Err(not_object(
                source_name,
                format!("collection {name:?}"),
                v.python_type_name(),
            ));
        }
        cursor.begin_object()?;
        let (coll, later) = read_collection(cursor, source, source_name, stop)?;
        out.push((name, coll));
        if let Some(later) = later {
            out.extend(later); // the helper read on through the end of the input
            return Ok(out);
        }
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return Ok(out);
        }
    }
    cursor.finish()?;
    Ok(out)
}

/// A persist streams the file through a buffer of about this size: a file-sized buffer is fresh
/// memory on every persist, and faulting in 18 MB of it was ~8 ms of a 10k-node docstore persist
/// (more than formatting it).
const PERSIST_PIECE: usize = 1 << 20;

/// Below this many bytes left in the file, a collection is read on one thread.
const PARALLEL_MIN_BYTES: usize = 2 << 20;

/// The members of the collection whose `{` the cursor just consumed, through its `}`; with them,
/// when a helper thread read on to the end of the input, the collections after this one.
///
/// On the loading thread (`stop` is `None`) a large collection is read by two threads: this one from
/// the start, a helper from a member boundary guessed half-way through the rest of the file
/// (`split_candidate`), which then reads the later collections too, so that both threads get about
/// half of the rest. The guess is only used if this thread, reading on, lands exactly on it between
/// two members: then the helper read exactly what this thread would have read from there, errors
/// included (it reports the first one after the split, and this thread found none before it). A
/// wrong guess is discarded.
fn read_collection(
    cursor: &mut Cursor<'_>,
    source: &Arc<Vec<u8>>,
    source_name: &str,
    stop: Option<&AtomicBool>,
) -> StoreResult<(Collection, Option<NamedCollections>)> {
    let bytes = source.as_slice();
    let mut coll = Collection::default();
    // The first member is read here: its value's head is what the guess looks for.
    let Some(first) = read_member(cursor, source_name)? else {
        return Ok((coll, None));
    };
    let split = match &first.1 {
        MemberValue::Span(start, end) if stop.is_none() && bytes.len() - cursor.offset() >= PARALLEL_MIN_BYTES => {
            split_candidate(bytes, cursor.offset(), &bytes[*start..*end])
        }
        _ => None,
    };
    coll.insert(first.0, first.1.into_raw(source));
    let Some(split) = split else {
        while let Some((key, json)) = read_member(cursor, source_name)? {
            coll.insert(key, json.into_raw(source));
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                break; // a helper whose work is discarded
            }
        }
        return Ok((coll, None));
    };
    let depth = cursor.depth();
    let abandoned = AtomicBool::new(false);
    let hasher = coll.key_hasher();
    std::thread::scope(|scope| {
        let helper = scope.spawn(|| {
            let mut tail = Cursor::after_member(bytes, source_name, split, depth);
            // Hashed here, so the merge into `coll` (which this thread waits for) does not hash. The
            // shared count of `source` is only touched by the loading thread: an increment per
            // member from both threads made the count's cache line bounce between cores.
            let mut members = Vec::new();
            while let Some((key, json)) = read_member(&mut tail, source_name)? {
                members.push((hasher.hash(&key), key, json));
                if abandoned.load(Ordering::Relaxed) {
                    return Ok((members, Vec::new())); // a wrong guess: nobody will look at this
                }
            }
            let later = read_collections(&mut tail, source, source_name, Some(&abandoned))?;
            Ok::<_, StoreError>((members, later))
        });
        loop {
            if cursor.offset() == split {
                // Reading on from here is what the helper did: take its members and the collections
                // after this one (or its error).
                let joined = helper.join().map_err(|_| StoreError::Corrupt {
                    path: source_name.to_owned(),
                    message: "the reader thread panicked".into(),
                })?;
                let (members, later) = joined?;
                coll.reserve(members.len());
                for (hash, key, json) in members {
                    coll.insert_hashed(hash, key, json.into_raw(source));
                }
                return Ok((coll, Some(later)));
            }
            let member = read_member(cursor, source_name).inspect_err(|_| abandoned.store(true, Ordering::Relaxed))?;
            match member {
                Some((key, json)) => {
                    coll.insert(key, json.into_raw(source));
                }
                None => {
                    // The guess was not a member boundary of this collection.
                    abandoned.store(true, Ordering::Relaxed);
                    return Ok((coll, None));
                }
            }
        }
    })
}

/// The next `"key": value` of the object the cursor is in, the value normalized; `None` after `}`.
fn read_member(cursor: &mut Cursor<'_>, source_name: &str) -> StoreResult<Option<(JStr, MemberValue)>> {
    let Some(key) = cursor.next_key()? else {
        return Ok(None);
    };
    // Normalized values (all that this crate and `json.dumps` write) are validated and accepted by
    // one scan and kept where they are; only the others take the validating reader, then a rewrite.
    let (raw, normalized) = cursor.raw_value_with(normalized_len)?;
    let end = cursor.offset();
    let value = if normalized {
        MemberValue::Span(end - raw.len(), end)
    } else {
        MemberValue::Rewritten(to_vec(&parse(raw, source_name)?).into_boxed_slice())
    };
    Ok(Some((key, value)))
}

/// A position a little over half-way through `bytes[from..]` that looks like the `,` before a member
/// of the collection being read: `, "key": ` followed by the same head as `first_value` (its text up
/// to the end of its first key, e.g. `{"__data__": `). Only a guess (see `read_collection`).
///
/// Past half-way because the helper's bytes cost more: they include the later collections, whose
/// members are small (a docstore's `metadata` after its `data`), and the loading thread merges the
/// helper's members after it. At 9/16, both threads of a 10k-node docstore load finish together.
fn split_candidate(bytes: &[u8], from: usize, first_value: &[u8]) -> Option<usize> {
    let head_len = match first_value {
        [b'{', b'"', ..] => canonical::string_end_plain(first_value, 1)? + 2,
        _ => return None,
    };
    let head = first_value.get(..head_len).filter(|h| h.ends_with(b": "))?;
    let mut needle = b"\": ".to_vec();
    needle.extend_from_slice(head);
    let finder = memchr::memmem::Finder::new(&needle);
    let mut at = from + (bytes.len() - from) / 16 * 9;
    // Members are usually far smaller than this: no match this close means no split.
    let window_end = bytes.len().min(at + (1 << 20));
    for _ in 0..64 {
        let key_end = at + finder.find(bytes.get(at..window_end)?)?; // the key's closing quote
                                                                     // The key's opening quote follows `, ` and the key is a plain string ending at `key_end`.
        if let Some(open) = memchr::memmem::rfind(&bytes[at..key_end], b", \"").map(|i| at + i + 2) {
            if canonical::string_end_plain(bytes, open) == Some(key_end + 1) {
                return Some(open - 2);
            }
        }
        at = key_end + 1;
    }
    None
}

/// Appends `json.dumps(collection)`.
pub fn write_collection(out: &mut Vec<u8>, coll: &Collection) {
    let done: Result<(), std::convert::Infallible> = write_collection_with(out, coll, &mut |_| Ok(()));
    done.unwrap_or_else(|never| match never {});
}

/// `write_collection`, calling `drain(out)` after each member (see `KvStore::write_json`).
fn write_collection_with<E>(
    out: &mut Vec<u8>,
    coll: &Collection,
    drain: &mut impl FnMut(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    out.push(b'{');
    for (i, (key, json)) in coll.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_str(out, key);
        out.extend_from_slice(b": ");
        out.extend_from_slice(json);
        drain(out)?;
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests;
