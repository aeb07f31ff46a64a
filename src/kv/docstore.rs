//! The hot paths of LlamaIndex's `KVDocumentStore` over a `KvStore`, with the same effects on the
//! stored bytes (values, key order, collections created by lookups) as its Python logic.
//!
//! Shapes the Python logic handles only by accident (a `ref_doc_info` that is not an object, node ids
//! that are not strings, ...) yield `StoreError::Unsupported` *before* anything but collection
//! creation happened; the caller then runs LlamaIndex's own Python logic, which raises what it raises.

use std::collections::HashSet;

use crate::error::{StoreError, StoreResult};
use crate::json::scan::quote_or_backslash;
use crate::json::{parse, to_vec, write_str, Cursor, JStr, Object, Value};

use super::{normalized_len, KvStore};

/// The three collections of one docstore namespace.
pub struct DocCollections {
    pub nodes: JStr,
    pub metadata: JStr,
    pub ref_doc_info: JStr,
}

/// One node to add, as `KVDocumentStore._get_kv_pairs_for_insert` sees it.
pub struct NewDoc {
    pub node_id: JStr,
    /// `doc_to_json(node)`, already normalized; `None` when `store_text` is false.
    pub data: Option<Box<[u8]>>,
    pub doc_hash: Value,
    /// `node.source_node.node_id` when the node has a source node.
    pub source_id: Option<JStr>,
    /// `node.metadata or {}`.
    pub metadata: Value,
}

fn unsupported(what: &str) -> StoreError {
    StoreError::Unsupported(what.to_owned())
}

/// Python truthiness of a JSON value.
#[must_use]
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::BigInt(_) => true,
        Value::Float(x) => *x != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `(node_ids, metadata)` of `KVDocumentStore.get_ref_doc_info(ref_doc_id)`, legacy keys included;
/// `None` when absent or falsy.
/// The third item names the stored list that LlamaIndex's `RefDocInfo.node_ids` aliases (its
/// `get` copies only one level deep), if any.
/// (node ids, the rest of the record, the aliased list's key): see the doc comment above.
type RefDocRecord = (Vec<JStr>, Value, Option<&'static str>);

fn ref_doc_info(store: &mut KvStore, coll: &JStr, ref_doc_id: &JStr) -> StoreResult<Option<RefDocRecord>> {
    let Some(raw) = store.get(coll, ref_doc_id) else {
        return Ok(None);
    };
    let value = parse(raw, "ref_doc_info")?;
    if !is_truthy(&value) {
        return Ok(None);
    }
    let Value::Object(obj) = value else {
        return Err(unsupported("ref_doc_info is not an object"));
    };
    let (list_key, metadata) = if obj.get("doc_ids").is_some() {
        let md = obj
            .get("extra_info")
            .ok_or_else(|| unsupported("legacy ref_doc_info without extra_info"))?;
        ("doc_ids", md.clone())
    } else {
        (
            "node_ids",
            obj.get("metadata").cloned().unwrap_or(Value::Object(Object::new())),
        )
    };
    let ids = obj.get(list_key);
    let aliased = ids.is_some().then_some(list_key);
    let ids = match ids {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(unsupported("node id that is not a string")),
            })
            .collect::<StoreResult<_>>()?,
        Some(_) => return Err(unsupported("node_ids is not a list")),
    };
    Ok(Some((ids, metadata, aliased)))
}

/// `KVDocumentStore.add_documents`: prepare every pair (reading the store as it was before the call),
/// merge the ref-doc pairs per ref doc id, then put nodes, metadata and ref-doc infos in that order.
///
/// # Errors
/// `InvalidValue` ("node_id ... already exists ...") when `allow_update` is false and a node exists;
/// `Unsupported` for stored shapes only LlamaIndex's Python logic handles (see the module header).
pub fn add_documents(
    store: &mut KvStore,
    colls: &DocCollections,
    docs: Vec<NewDoc>,
    allow_update: bool,
    store_text: bool,
) -> StoreResult<()> {
    if let [doc] = docs.as_slice() {
        if add_one_to_stored_ref_doc(store, colls, doc, allow_update, store_text)? {
            return Ok(());
        }
    }
    let mut node_pairs = Vec::new();
    let mut meta_pairs = Vec::with_capacity(docs.len());
    // ref doc id -> (node_ids, metadata) pairs, in first-appearance order
    type NodeIdsAndMetadata = (Vec<JStr>, Value);
    let mut ref_pairs: Vec<(JStr, Vec<NodeIdsAndMetadata>)> = Vec::new();
    // (ref doc id, stored list key, node id): appends LlamaIndex makes to the *stored* list.
    let mut aliased_appends: Vec<(JStr, &'static str, JStr)> = Vec::new();
    for doc in docs {
        if !allow_update && store.get(&colls.nodes, &doc.node_id).is_some() {
            apply_aliased_appends(store, &colls.ref_doc_info, aliased_appends);
            return Err(StoreError::InvalidValue(format!(
                "node_id {} already exists. Set allow_update to True to overwrite.",
                String::from_utf8_lossy(doc.node_id.as_bytes())
            )));
        }
        let info = match &doc.source_id {
            Some(src) => Some(ref_doc_info(store, &colls.ref_doc_info, src)?.unwrap_or((
                Vec::new(),
                Value::Object(Object::new()),
                None,
            ))),
            None => None,
        };
        if store_text {
            node_pairs.push((doc.node_id.clone(), doc.data));
        }
        let mut meta = Object::with_capacity(2);
        meta.push_unique(JStr::new("doc_hash"), doc.doc_hash);
        if let (Some((mut ids, mut metadata, aliased)), Some(ref_id)) = (info, doc.source_id.filter(|s| !s.is_empty()))
        {
            if !ids.contains(&doc.node_id) {
                ids.push(doc.node_id.clone());
                if let Some(list_key) = aliased {
                    aliased_appends.push((ref_id.clone(), list_key, doc.node_id.clone()));
                }
            }
            if !is_truthy(&metadata) {
                metadata = doc.metadata;
            }
            if !matches!(metadata, Value::Object(_)) {
                return Err(unsupported("ref_doc_info metadata is not a dict"));
            }
            meta.push_unique(JStr::new("ref_doc_id"), Value::Str(ref_id.clone()));
            match ref_pairs.iter_mut().find(|(k, _)| *k == ref_id) {
                Some((_, list)) => list.push((ids, metadata)),
                None => ref_pairs.push((ref_id, vec![(ids, metadata)])),
            }
        }
        meta_pairs.push((doc.node_id, Value::Object(meta)));
    }
    for (key, data) in node_pairs {
        if let Some(data) = data {
            store.put_normalized(&colls.nodes, key, data);
        }
    }
    for (key, meta) in meta_pairs {
        store.put_value(&colls.metadata, key, &meta);
    }
    for (key, pairs) in ref_pairs {
        let mut merged: Vec<JStr> = Vec::new();
        let mut seen: HashSet<JStr> = HashSet::new();
        let mut metadata = Object::new();
        for (ids, md) in pairs {
            // Python: `set(nodes) - set(merged)`, then every item of `nodes` in that set (repeats too).
            let new: Vec<JStr> = ids.into_iter().filter(|n| !seen.contains(n)).collect();
            seen.extend(new.iter().cloned());
            merged.extend(new);
            if let Value::Object(md) = md {
                for (k, v) in md.iter() {
                    metadata.insert(k.clone(), v.clone());
                }
            }
        }
        let mut value = Object::with_capacity(2);
        value.push_unique(
            JStr::new("node_ids"),
            Value::Array(merged.into_iter().map(Value::Str).collect()),
        );
        value.push_unique(JStr::new("metadata"), Value::Object(metadata));
        store.put_value(&colls.ref_doc_info, key, &Value::Object(value));
    }
    Ok(())
}

/// `add_documents` of one node whose ref doc is already stored in the usual shape
/// (`{"node_ids": [...], "metadata": {...}}`, what `RefDocInfo.to_dict()` gives): the node id is
/// appended to the stored text without parsing the list, so VectorStoreIndex's one-node-per-call
/// inserts cost O(list bytes) of copying instead of a parse and a rewrite of every id. Same effects
/// as the general path (collections touched in the same order). `Ok(false)`: not that case, nothing
/// done but collection creation the general path does too.
fn add_one_to_stored_ref_doc(
    store: &mut KvStore,
    colls: &DocCollections,
    doc: &NewDoc,
    allow_update: bool,
    store_text: bool,
) -> StoreResult<bool> {
    let Some(ref_id) = doc.source_id.as_ref().filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    if !allow_update && store.get(&colls.nodes, &doc.node_id).is_some() {
        return Ok(false); // the general path raises
    }
    let Some(info) = store
        .get(&colls.ref_doc_info, ref_id)
        .and_then(|raw| append_node_id(raw, &doc.node_id, &doc.metadata))
    else {
        return Ok(false);
    };
    if store_text {
        if let Some(data) = &doc.data {
            store.put_normalized(&colls.nodes, doc.node_id.clone(), data.clone());
        }
    }
    let mut meta = Object::with_capacity(2);
    meta.push_unique(JStr::new("doc_hash"), doc.doc_hash.clone());
    meta.push_unique(JStr::new("ref_doc_id"), Value::Str(ref_id.clone()));
    store.put_value(&colls.metadata, doc.node_id.clone(), &Value::Object(meta));
    store.put_normalized(&colls.ref_doc_info, ref_id.clone(), info.into_boxed_slice());
    Ok(true)
}

/// The stored ref-doc info `raw` with `node_id` appended to its `node_ids` (unless present) and its
/// metadata replaced by `doc_metadata` when falsy (`{}`), as LlamaIndex's `_get_kv_pairs_for_insert`
/// and `add_documents` write it back. `None` unless `raw` has exactly the usual shape.
fn append_node_id(raw: &[u8], node_id: &JStr, doc_metadata: &Value) -> Option<Vec<u8>> {
    let items = raw.strip_prefix(b"{\"node_ids\": [")?;
    let mut encoded = Vec::with_capacity(node_id.as_bytes().len() + 2);
    write_str(&mut encoded, node_id);
    let mut found = false;
    let mut i = 0;
    if items.first() == Some(&b']') {
        i = 1;
    } else {
        loop {
            if items.get(i) != Some(&b'"') {
                return None; // not a string: the general path decides
            }
            let end = normalized_string_end(items, i)?;
            found |= items[i..end] == encoded[..];
            i = end;
            if items.get(i..i + 2) == Some(b", ") {
                i += 2;
            } else if items.get(i) == Some(&b']') {
                i += 1;
                break;
            } else {
                return None;
            }
        }
    }
    let list = &items[..i - 1];
    let metadata = items.get(i..)?.strip_prefix(b", \"metadata\": ")?.strip_suffix(b"}")?;
    if metadata.first() != Some(&b'{') || normalized_len(metadata) != Some(metadata.len()) {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len() + encoded.len() + 2);
    out.extend_from_slice(b"{\"node_ids\": [");
    out.extend_from_slice(list);
    if !found {
        if !list.is_empty() {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(&encoded);
    }
    out.extend_from_slice(b"], \"metadata\": ");
    if metadata == b"{}" {
        if !matches!(doc_metadata, Value::Object(_)) {
            return None;
        }
        out.extend_from_slice(&to_vec(doc_metadata));
    } else {
        out.extend_from_slice(metadata);
    }
    out.push(b'}');
    Some(out)
}

/// End (exclusive) of the JSON string starting at `b[start] == '"'` in valid JSON text.
fn normalized_string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        i = quote_or_backslash(b, i);
        if *b.get(i)? == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// When `add_documents` fails half-way, LlamaIndex has already appended the nodes it prepared to the
/// stored `node_ids` lists (its `RefDocInfo` aliases them): reproduce those appends.
fn apply_aliased_appends(store: &mut KvStore, coll: &JStr, appends: Vec<(JStr, &'static str, JStr)>) {
    for (ref_id, list_key, node_id) in appends {
        let Some(raw) = store.get(coll, &ref_id) else { continue };
        let Ok(Value::Object(mut obj)) = parse(raw, "ref_doc_info") else {
            continue;
        };
        let Some(Value::Array(mut items)) = obj.get(list_key).cloned() else {
            continue;
        };
        if !items.iter().any(|v| matches!(v, Value::Str(s) if *s == node_id)) {
            items.push(Value::Str(node_id));
        }
        obj.insert(JStr::new(list_key), Value::Array(items)); // replaces in place: key order kept
        store.put_value(coll, ref_id, &Value::Object(obj));
    }
}

/// The value of `field` in the object stored under `key`, without parsing the rest of the object.
/// `None` when the key is absent, `Some(None)` when the field is.
///
/// # Errors
/// `Unsupported` when the stored value is not an object.
pub fn get_field(store: &mut KvStore, coll: &JStr, key: &JStr, field: &str) -> StoreResult<Option<Option<Value>>> {
    match store.get(coll, key) {
        None => Ok(None),
        Some(raw) => field_of(raw, field).map(Some),
    }
}

fn field_of(raw: &[u8], field: &str) -> StoreResult<Option<Value>> {
    let mut cursor = Cursor::new(raw, "stored value");
    if cursor.peek_byte() != Some(b'{') {
        return Err(unsupported("stored value is not an object"));
    }
    cursor.begin_object()?;
    while let Some(k) = cursor.next_key()? {
        if k.as_bytes() == field.as_bytes() {
            return cursor.parse_value().map(Some);
        }
        cursor.skip_value()?;
    }
    Ok(None)
}

/// A field value found by `for_each_truthy_field`.
pub enum Field<'a> {
    /// A string with nothing to unescape (the usual hex hash), borrowed from the stored text.
    Plain(&'a str),
    Parsed(Value),
}

/// Calls `f(key, value[field])` for every stored object whose `field` is truthy, in collection order.
/// A value that starts with `{"field": "` and a plain string is read without a parser.
///
/// # Errors
/// `Unsupported` when a stored value is not an object (before `f` saw anything), or what `f` returns.
pub fn for_each_truthy_field<E: From<StoreError>>(
    coll: &super::Collection,
    field: &str,
    mut f: impl FnMut(&JStr, Field<'_>) -> Result<(), E>,
) -> Result<(), E> {
    if coll.values().any(|raw| raw.first() != Some(&b'{')) {
        return Err(unsupported("stored value is not an object").into());
    }
    let prefix = format!("{{\"{field}\": \"");
    let first_key_plain = field
        .bytes()
        .all(|c| (0x20..=0x7E).contains(&c) && c != b'"' && c != b'\\');
    for (key, raw) in coll.iter() {
        if first_key_plain {
            if let Some(rest) = raw.strip_prefix(prefix.as_bytes()) {
                let end = quote_or_backslash(rest, 0);
                if rest.get(end) == Some(&b'"') {
                    // Stored text is normalized: a string without escapes is printable ASCII.
                    if end > 0 {
                        if let Ok(s) = std::str::from_utf8(&rest[..end]) {
                            f(key, Field::Plain(s))?;
                        }
                    }
                    continue;
                }
            }
        }
        if let Some(v) = field_of(raw, field)? {
            if is_truthy(&v) {
                f(key, Field::Parsed(v))?;
            }
        }
    }
    Ok(())
}
