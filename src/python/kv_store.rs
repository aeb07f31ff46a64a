//! `_native.KvStore`: the PyO3 facade over `kv::KvStore` (and the docstore hot paths on top of it).

use std::path::PathBuf;

use parking_lot::RwLock;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::convert::{jstr_to_py, normalized_node_parts, normalized_to_py, py_to_jstr, py_to_value, value_to_py};
use crate::json::{parse, to_vec, JStr, Value};
use crate::kv::docstore::{self, DocCollections, NewDoc};
use crate::kv::{write_collection, KvStore};

#[pyclass(frozen, name = "KvStore", module = "llama_index_rs._native")]
pub struct PyKvStore {
    inner: RwLock<KvStore>,
}

/// From this many values on, a dropped store is freed on a background thread.
const DROP_IN_BACKGROUND_VALUES: usize = 4096;

impl Drop for PyKvStore {
    fn drop(&mut self) {
        let store = std::mem::take(self.inner.get_mut());
        if store.value_count() >= DROP_IN_BACKGROUND_VALUES {
            crate::release::drop_in_background(store);
        }
    }
}

fn key_of(obj: &Bound<'_, PyAny>) -> PyResult<JStr> {
    match obj.cast::<PyString>() {
        Ok(s) => py_to_jstr(s),
        Err(_) => Err(PyTypeError::new_err(format!(
            "keys must be str, not {}",
            obj.get_type().name()?
        ))),
    }
}

fn json_of(obj: &Bound<'_, PyAny>) -> PyResult<Box<[u8]>> {
    Ok(to_vec(&py_to_value(obj)?).into_boxed_slice())
}

/// The Python object `json.loads` makes of a stored (always valid, normalized) value.
fn raw_to_py<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match normalized_to_py(py, raw)? {
        Some(obj) => Ok(obj),
        None => value_to_py(py, &parse(raw, "stored value")?),
    }
}

fn from_value(v: Value, source_name: &str) -> PyResult<KvStore> {
    // Same shape checks as loading a file: one code path for both.
    Ok(KvStore::from_json_vec(to_vec(&v), source_name)?)
}

impl PyKvStore {
    fn wrap(store: KvStore) -> Self {
        PyKvStore {
            inner: RwLock::new(store),
        }
    }
}

#[pymethods]
impl PyKvStore {
    #[new]
    fn new() -> Self {
        Self::wrap(KvStore::new())
    }

    fn copy(&self) -> Self {
        Self::wrap(self.inner.read().clone())
    }

    fn put(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>, collection: &Bound<'_, PyAny>) -> PyResult<()> {
        let (key, json, coll) = (key_of(key)?, json_of(value)?, key_of(collection)?);
        self.inner.write().put_normalized(&coll, key, json);
        Ok(())
    }

    /// Converts every pair first, so a value that is not JSON-serializable stores nothing.
    fn put_all(&self, pairs: &Bound<'_, PyAny>, collection: &Bound<'_, PyAny>) -> PyResult<()> {
        let coll = key_of(collection)?;
        let mut items = Vec::new();
        for pair in pairs.try_iter()? {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
            items.push((key_of(&k)?, json_of(&v)?));
        }
        let mut guard = self.inner.write();
        for (k, json) in items {
            guard.put_normalized(&coll, k, json);
        }
        Ok(())
    }

    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        collection: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (key, coll) = (key_of(key)?, key_of(collection)?);
        let mut guard = self.inner.write();
        guard.get(&coll, &key).map(|raw| raw_to_py(py, raw)).transpose()
    }

    /// `get` of a stored node: `(type, data)` for the value `doc_to_json` makes
    /// (`{"__data__": data, "__type__": type}`) without building the outer dict, `(None, value)` for
    /// any other value, `None` when absent.
    #[allow(clippy::type_complexity)] // (type or None, value)
    fn get_node_parts<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        collection: &Bound<'py, PyAny>,
    ) -> PyResult<Option<(Option<Bound<'py, PyString>>, Bound<'py, PyAny>)>> {
        let (key, coll) = (key_of(key)?, key_of(collection)?);
        let mut guard = self.inner.write();
        let Some(raw) = guard.get(&coll, &key) else {
            return Ok(None);
        };
        Ok(Some(match normalized_node_parts(py, raw)? {
            Some((doc_type, data)) => (Some(doc_type), data),
            None => (None, raw_to_py(py, raw)?),
        }))
    }

    /// Whether `key` is stored (creating the collection, like a `get`), without parsing the value.
    fn contains(&self, key: &Bound<'_, PyAny>, collection: &Bound<'_, PyAny>) -> PyResult<bool> {
        let (key, coll) = (key_of(key)?, key_of(collection)?);
        Ok(self.inner.write().get(&coll, &key).is_some())
    }

    fn get_all<'py>(&self, py: Python<'py>, collection: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let coll = key_of(collection)?;
        let mut guard = self.inner.write();
        let out = PyDict::new(py);
        for (k, raw) in guard.collection_mut(&coll).iter() {
            out.set_item(jstr_to_py(py, k)?, raw_to_py(py, raw)?)?;
        }
        Ok(out)
    }

    fn delete(&self, key: &Bound<'_, PyAny>, collection: &Bound<'_, PyAny>) -> PyResult<bool> {
        let (key, coll) = (key_of(key)?, key_of(collection)?);
        Ok(self.inner.write().delete(&coll, &key))
    }

    fn collection_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names = self
            .inner
            .read()
            .collection_names()
            .map(|n| jstr_to_py(py, n))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, names)
    }

    /// `json.dumps(collection)` as a str, creating the collection if absent.
    fn collection_json(&self, py: Python<'_>, collection: &Bound<'_, PyAny>) -> PyResult<String> {
        let coll = key_of(collection)?;
        let bytes = py.detach(|| {
            let mut out = Vec::new();
            write_collection(&mut out, self.inner.write().collection_mut(&coll));
            out
        });
        // The writer's output is pure ASCII.
        Ok(String::from_utf8(bytes).unwrap_or_default())
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let guard = self.inner.read();
        let out = PyDict::new(py);
        for (name, coll) in guard.collections() {
            let d = PyDict::new(py);
            for (k, raw) in coll.iter() {
                d.set_item(jstr_to_py(py, k)?, raw_to_py(py, raw)?)?;
            }
            out.set_item(jstr_to_py(py, name)?, d)?;
        }
        Ok(out)
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let value = py_to_value(data)?;
        Ok(Self::wrap(from_value(value, "<dict>")?))
    }

    fn to_json<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| self.inner.read().to_json());
        PyBytes::new(py, &bytes)
    }

    /// Writes `to_json()` atomically to a local path (temporary file, fsync, rename, directory fsync).
    fn persist(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| crate::persist::write_atomically_with(&path, |file| self.inner.read().write_to(file)))?;
        Ok(())
    }

    #[staticmethod]
    fn from_json(py: Python<'_>, data: &[u8], source_name: &str) -> PyResult<Self> {
        Ok(Self::wrap(py.detach(|| KvStore::from_json(data, source_name))?))
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let store = py.detach(|| {
            let bytes = crate::persist::read_file(&path)?;
            KvStore::from_json_vec(bytes, &path.display().to_string())
        })?;
        Ok(Self::wrap(store))
    }

    // ---- docstore hot paths (see kv::docstore) ----

    /// `(present, value[field])`: present is false when the key is absent; the value is None when
    /// the field is. NotImplementedError when the stored value is not an object.
    fn get_field<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        collection: &Bound<'py, PyAny>,
        field: &str,
    ) -> PyResult<(bool, Option<Bound<'py, PyAny>>)> {
        let (key, coll) = (key_of(key)?, key_of(collection)?);
        let found = docstore::get_field(&mut self.inner.write(), &coll, &key, field)?;
        Ok(match found {
            None => (false, None),
            Some(v) => (true, v.map(|v| value_to_py(py, &v)).transpose()?),
        })
    }

    /// `{value[field]: key}` over every stored object whose field is truthy
    /// (`KVDocumentStore.get_all_document_hashes`). NotImplementedError when a value is not an object.
    fn flipped_truthy_fields<'py>(
        &self,
        py: Python<'py>,
        collection: &Bound<'py, PyAny>,
        field: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let coll = key_of(collection)?;
        let mut guard = self.inner.write();
        let out = PyDict::new(py);
        docstore::for_each_truthy_field(guard.collection_mut(&coll), field, |key, value| {
            let value = match value {
                docstore::Field::Plain(s) => PyString::new(py, s).into_any(),
                docstore::Field::Parsed(v) => value_to_py(py, &v)?,
            };
            out.set_item(value, jstr_to_py(py, key)?)
        })?;
        Ok(out)
    }

    /// `KVDocumentStore.add_documents`. `docs`: `(node_id, doc_to_json(node) or None, node.hash,
    /// source node id or None, node.metadata)` tuples.
    #[allow(clippy::type_complexity)] // the tuple mirrors the Python call's 5-tuples
    fn add_documents(
        &self,
        collections: (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>),
        docs: &Bound<'_, PyList>,
        allow_update: bool,
        store_text: bool,
    ) -> PyResult<()> {
        let colls = DocCollections {
            nodes: key_of(&collections.0)?,
            metadata: key_of(&collections.1)?,
            ref_doc_info: key_of(&collections.2)?,
        };
        let mut new_docs = Vec::with_capacity(docs.len());
        for doc in docs.iter() {
            let doc = doc.cast_into::<PyTuple>()?;
            let (node_id, data, hash, source, metadata): (
                Bound<'_, PyAny>,
                Bound<'_, PyAny>,
                Bound<'_, PyAny>,
                Bound<'_, PyAny>,
                Bound<'_, PyAny>,
            ) = doc.extract()?;
            new_docs.push(NewDoc {
                node_id: key_of(&node_id)?,
                data: if data.is_none() { None } else { Some(json_of(&data)?) },
                doc_hash: py_to_value(&hash)?,
                source_id: if source.is_none() { None } else { Some(key_of(&source)?) },
                metadata: py_to_value(&metadata)?,
            });
        }
        docstore::add_documents(&mut self.inner.write(), &colls, new_docs, allow_update, store_text)?;
        Ok(())
    }
}
