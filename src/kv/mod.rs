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

use crate::error::{StoreError, StoreResult};
use crate::json::{parse, to_vec, write_str, Cursor, JStr, Value};

pub use canonical::{is_normalized, normalized_len};
pub use ordered::OrderedMap;

/// One collection: key -> normalized JSON text.
pub type Collection = OrderedMap<Box<[u8]>>;

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
        self.collection_mut(collection).insert(key, json);
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
        out.push(b'{');
        for (i, (name, coll)) in self.collections.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            write_str(&mut out, name);
            out.extend_from_slice(b": ");
            write_collection(&mut out, coll);
        }
        out.push(b'}');
        out
    }

    /// Loads what `to_json` (or `json.dumps` of the same structure) wrote. See the module header.
    ///
    /// # Errors
    /// `StoreError::Json` for text `json.loads` rejects, `StoreError::Corrupt` when the top level or a
    /// collection is not an object; both name `source_name`.
    pub fn from_json(bytes: &[u8], source_name: &str) -> StoreResult<KvStore> {
        let mut cursor = Cursor::new(bytes, source_name);
        let not_object = |what: String, found: &str| StoreError::Corrupt {
            path: source_name.to_owned(),
            message: format!("{what} must be a JSON object, found {found}"),
        };
        if cursor.peek_byte() != Some(b'{') {
            let v = parse(bytes, source_name)?;
            return Err(not_object("the top level".into(), v.python_type_name()));
        }
        cursor.begin_object()?;
        let mut store = KvStore::new();
        while let Some(name) = cursor.next_key()? {
            if cursor.peek_byte() != Some(b'{') {
                let v = cursor.parse_value()?;
                return Err(not_object(format!("collection {name:?}"), v.python_type_name()));
            }
            cursor.begin_object()?;
            let mut coll = Collection::default();
            while let Some(key) = cursor.next_key()? {
                // Normalized values (all that this crate and `json.dumps` write) are validated and
                // accepted by one scan; only the others take the validating reader, then a rewrite.
                let (raw, normalized) = cursor.raw_value_with(normalized_len)?;
                let json: Box<[u8]> = if normalized {
                    raw.into()
                } else {
                    to_vec(&parse(raw, source_name)?).into_boxed_slice()
                };
                coll.insert(key, json);
            }
            // A duplicate collection name replaces the earlier one in place (json.loads semantics).
            store.collections.insert(name, coll);
        }
        cursor.finish()?;
        Ok(store)
    }
}

/// Appends `json.dumps(collection)`.
pub fn write_collection(out: &mut Vec<u8>, coll: &Collection) {
    out.push(b'{');
    for (i, (key, json)) in coll.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_str(out, key);
        out.extend_from_slice(b": ");
        out.extend_from_slice(json);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests;
