//! `_native.VectorStore`: the PyO3 facade over `vectors::VectorStore`. Extract, detach, convert.

use std::collections::HashSet;
use std::path::PathBuf;

use numpy::{PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use parking_lot::RwLock;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::convert::{is_plain, py_to_value, value_to_py};
use super::filters::convert_filters;
use super::floats::{extend_from_float_list, rows_from_float_lists};
use crate::json::{JStr, Value};
use crate::vectors::binary_format::{self, PersistFormat};
use crate::vectors::{json_format, Filters, Hit, NewRow, OwnedRows, Query, QueryMode, VectorStore};

/// Below this many f32 multiply-adds a query (or floats an add) runs without releasing the GIL:
/// detaching costs more than the work.
const DETACH_WORK_THRESHOLD: usize = 1 << 16;

#[pyclass(frozen, name = "VectorStore", module = "llama_index_rs._native")]
pub struct PyVectorStore {
    inner: RwLock<VectorStore>,
}

/// From this many floats on, copying a numpy array into rows runs on the pool.
const PARALLEL_COPY_FLOATS: usize = 1 << 21;

/// Embeddings as row storage. Accepts a 2-D numpy array (any float dtype) or a sequence of float
/// sequences; a row whose length differs from the first is reported with its node id.
fn extract_embeddings(py: Python<'_>, obj: &Bound<'_, PyAny>, ids: &[String]) -> PyResult<OwnedRows> {
    if let Ok(arr) = obj.cast::<PyArray2<f32>>() {
        let ro: PyReadonlyArray2<f32> = arr.readonly();
        let [n, dim] = [ro.shape()[0], ro.shape()[1]];
        // Copied with the GIL held (by the pool when large, this thread waiting): no Python code can
        // write to the array meanwhile, as in `rows_from_float_lists`.
        let parallel = n * dim >= PARALLEL_COPY_FLOATS;
        let rows = match ro.as_slice() {
            Ok(s) => OwnedRows::filled(n, dim, parallel, |i, out| {
                out.copy_from_slice(&s[i * dim..(i + 1) * dim]);
                true
            }),
            Err(_) => {
                let a = ro.as_array();
                OwnedRows::filled(n, dim, parallel, |i, out| {
                    out.iter_mut().zip(a.row(i)).for_each(|(o, &x)| *o = x);
                    true
                })
            }
        };
        return rows.ok_or_else(|| PyValueError::new_err("embeddings do not fit in memory"));
    }
    if obj.hasattr("__array_interface__")? {
        let np = py.import("numpy")?;
        let arr = np.call_method1("ascontiguousarray", (obj, np.getattr("float32")?))?;
        let ndim: usize = arr.getattr("ndim")?.extract()?;
        if ndim != 2 {
            return Err(PyValueError::new_err(format!(
                "embeddings must be a 2-D array, got {ndim} dimension(s)"
            )));
        }
        return extract_embeddings(py, &arr, ids);
    }
    let rows: Vec<Bound<'_, PyAny>> = obj.try_iter()?.collect::<PyResult<_>>()?;
    embeddings_from_rows(py, &rows, ids)
}

/// `extract_embeddings` for a sequence of rows, already collected.
fn embeddings_from_rows(py: Python<'_>, rows: &[Bound<'_, PyAny>], ids: &[String]) -> PyResult<OwnedRows> {
    let first_len = rows.first().map(|r| r.len()).transpose()?.unwrap_or(0);
    if let Some(block) = rows_from_float_lists(py, rows, first_len) {
        return Ok(block);
    }
    // The general path: any sequence of numbers, with errors naming the node.
    let mut data = Vec::new();
    let mut dim = None;
    for (i, row) in rows.iter().enumerate() {
        let id = ids.get(i).map_or("?", String::as_str);
        let start = data.len();
        if !extend_from_float_list(&mut data, row, |x| x as f32) {
            data.truncate(start);
            let values: Vec<f64> = row
                .extract()
                .map_err(|_| PyValueError::new_err(format!("embedding of node {id:?} is not a sequence of numbers")))?;
            data.extend(values.iter().map(|&x| x as f32));
        }
        let len = data.len() - start;
        match dim {
            None => dim = Some(len),
            Some(d) if d != len => {
                return Err(PyValueError::new_err(format!(
                    "embedding of node {id:?} has dimension {len}, but the other embeddings have dimension {d}"
                )))
            }
            Some(_) => {}
        }
    }
    let dim = dim.unwrap_or(0);
    OwnedRows::filled(rows.len(), dim, false, |i, out| {
        out.copy_from_slice(&data[i * dim..(i + 1) * dim]);
        true
    })
    .ok_or_else(|| PyValueError::new_err("embeddings do not fit in memory"))
}

fn extract_query_embedding(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let mut values = Vec::new();
    if extend_from_float_list(&mut values, obj, |x| x) {
        return Ok(values);
    }
    obj.extract::<Vec<f64>>()
        .map_err(|_| PyValueError::new_err("query_embedding must be a sequence of numbers"))
}

fn hits_to_py(hits: Vec<Hit>) -> (Vec<String>, Vec<f64>) {
    hits.into_iter().map(|h| (h.id, h.similarity)).unzip()
}

fn parse_mode(mode: &str, mmr_threshold: Option<f64>) -> PyResult<QueryMode> {
    match mode {
        "default" => Ok(QueryMode::Default),
        "mmr" => Ok(QueryMode::Mmr {
            threshold: mmr_threshold,
        }),
        other => Err(PyValueError::new_err(format!("Invalid query mode: {other}"))),
    }
}

impl PyVectorStore {
    /// Inserts a block of rows built by `add` / `add_nodes`, detached from the GIL when it is large.
    fn add_block(&self, py: Python<'_>, rows: Vec<NewRow>, block: OwnedRows) -> PyResult<()> {
        if block.len() * block.dim() < DETACH_WORK_THRESHOLD {
            self.inner.write().add_block(rows, block)?;
        } else {
            py.detach(|| self.inner.write().add_block(rows, block))?;
        }
        Ok(())
    }

    fn from_core(store: VectorStore) -> Self {
        PyVectorStore {
            inner: RwLock::new(store),
        }
    }
}

#[pymethods]
impl PyVectorStore {
    #[new]
    fn new() -> Self {
        Self::from_core(VectorStore::new())
    }

    fn __len__(&self) -> usize {
        self.inner.read().len()
    }

    #[getter]
    fn dim(&self) -> Option<usize> {
        self.inner.read().dim()
    }

    /// Adds rows (`add_embeddings`): `metadata[i]` is stored as the row's metadata record as given.
    #[pyo3(signature = (ids, embeddings, ref_doc_ids, metadata))]
    fn add(
        &self,
        py: Python<'_>,
        ids: Vec<String>,
        embeddings: &Bound<'_, PyAny>,
        ref_doc_ids: Vec<Option<String>>,
        metadata: Vec<Option<Bound<'_, PyAny>>>,
    ) -> PyResult<()> {
        let n = ids.len();
        if ref_doc_ids.len() != n || metadata.len() != n {
            return Err(PyValueError::new_err(
                "ids, ref_doc_ids and metadata must have one entry per node",
            ));
        }
        let block = extract_embeddings(py, embeddings, &ids)?;
        let mut rows = Vec::with_capacity(n);
        for ((id, ref_doc_id), md) in ids.into_iter().zip(ref_doc_ids).zip(metadata) {
            rows.push(NewRow {
                id,
                ref_doc_id,
                metadata: md.map(|obj| py_to_value(&obj)).transpose()?,
            });
        }
        if n > 0 && block.len() != n && block.dim() != 0 {
            return Err(PyValueError::new_err(format!(
                "expected {n} embeddings, got {}",
                block.len()
            )));
        }
        self.add_block(py, rows, block)
    }

    /// `SimpleVectorStore.add(nodes)`: reads each node as it does, in its order (`node_id`,
    /// `get_embedding()`, `ref_doc_id or "None"`, `metadata`), and returns the ids. The record of
    /// plain metadata (`is_plain`) is built here; other metadata is `exotic_record(node)`
    /// (LlamaIndex's own serialization). The embeddings are read after the loop, by the pool when
    /// there are many.
    fn add_nodes<'py>(
        &self,
        py: Python<'py>,
        nodes: &Bound<'py, PyAny>,
        exotic_record: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let (mut ids, mut embeddings, mut entries) = (Vec::new(), Vec::new(), Vec::new());
        for node in nodes.try_iter()? {
            let node = node?;
            let id = node.getattr(intern!(py, "node_id"))?;
            ids.push(id.extract::<String>()?);
            out.append(&id)?;
            embeddings.push(node.call_method0(intern!(py, "get_embedding"))?);
            let r = node.getattr(intern!(py, "ref_doc_id"))?;
            let ref_doc_id = if r.is_truthy()? {
                r.extract::<String>()?
            } else {
                "None".to_owned()
            };
            let md = node.getattr(intern!(py, "metadata"))?;
            let record = if is_plain(&md) {
                let node_type: String = node.call_method0(intern!(py, "class_name"))?.extract()?;
                node_record(py_to_value(&md)?, &node_type, &ref_doc_id)
            } else {
                py_to_value(&exotic_record.call1((&node,))?)?
            };
            entries.push((ref_doc_id, record));
        }
        let block = embeddings_from_rows(py, &embeddings, &ids)?;
        let rows = ids
            .into_iter()
            .zip(entries)
            .map(|(id, (ref_doc_id, record))| NewRow {
                id,
                ref_doc_id: Some(ref_doc_id),
                metadata: Some(record),
            })
            .collect();
        self.add_block(py, rows, block)?;
        Ok(out)
    }

    fn get<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyList>> {
        let guard = self.inner.read();
        let row = guard
            .get(id)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(id.to_owned()))?;
        PyList::new(py, row.iter().map(|&x| f64::from(x)))
    }

    fn contains(&self, id: &str) -> bool {
        self.inner.read().contains(id)
    }

    fn delete_ref_doc(&self, py: Python<'_>, ref_doc_id: &str) {
        py.detach(|| self.inner.write().delete_ref_doc(ref_doc_id));
    }

    #[pyo3(signature = (node_ids=None, filters=None))]
    fn delete_nodes(
        &self,
        py: Python<'_>,
        node_ids: Option<Vec<String>>,
        filters: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let filters = filters.map(convert_filters).transpose()?;
        let node_ids: Option<HashSet<String>> = node_ids.map(|v| v.into_iter().collect());
        py.detach(|| self.inner.write().delete_nodes(node_ids.as_ref(), filters.as_ref()))?;
        Ok(())
    }

    fn clear(&self) {
        self.inner.write().clear();
    }

    /// One query. Returns `(ids, similarities)`; a negative `top_k` returns nothing, as LlamaIndex's
    /// bounded heap does, after the same validation.
    #[pyo3(signature = (embedding, top_k, node_ids=None, filters=None, mode="default", mmr_threshold=None))]
    #[allow(clippy::too_many_arguments)] // one argument per VectorStoreQuery field it uses
    fn query(
        &self,
        py: Python<'_>,
        embedding: &Bound<'_, PyAny>,
        top_k: Option<i64>,
        node_ids: Option<Vec<String>>,
        filters: Option<&Bound<'_, PyAny>>,
        mode: &str,
        mmr_threshold: Option<f64>,
    ) -> PyResult<(Vec<String>, Vec<f64>)> {
        let embedding = extract_query_embedding(embedding)?;
        let filters: Option<Filters> = filters.map(convert_filters).transpose()?;
        let node_ids: Option<HashSet<String>> = node_ids.map(|v| v.into_iter().collect());
        let mode = parse_mode(mode, mmr_threshold)?;
        let negative = top_k.is_some_and(|k| k < 0);
        let query = Query {
            embedding: &embedding,
            top_k: top_k.map(|k| usize::try_from(k).unwrap_or(0)),
            node_ids: node_ids.as_ref(),
            filters: filters.as_ref(),
            mode,
        };
        let run = || -> PyResult<(Vec<String>, Vec<f64>)> {
            let guard = self.inner.read();
            if negative {
                guard.candidates(query.node_ids, query.filters)?;
                return Ok((Vec::new(), Vec::new()));
            }
            Ok(hits_to_py(guard.query(&query)?))
        };
        let work = self.inner.read().len() * embedding.len();
        if work < DETACH_WORK_THRESHOLD {
            run()
        } else {
            py.detach(run)
        }
    }

    /// Several queries at once (rows of a 2-D array); each row of the store is read once per block.
    #[pyo3(signature = (embeddings, top_k, filters=None))]
    fn query_batch(
        &self,
        py: Python<'_>,
        embeddings: &Bound<'_, PyAny>,
        top_k: Option<i64>,
        filters: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<(Vec<String>, Vec<f64>)>> {
        let np = py.import("numpy")?;
        let arr = np.call_method1("ascontiguousarray", (embeddings, np.getattr("float64")?))?;
        let arr = arr
            .cast::<PyArray2<f64>>()
            .map_err(|_| PyValueError::new_err("embeddings must be a 2-D array"))?;
        let ro = arr.readonly();
        let (m, dim) = (ro.shape()[0], ro.shape()[1]);
        let queries = ro
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?
            .to_vec();
        let filters: Option<Filters> = filters.map(convert_filters).transpose()?;
        if top_k.is_some_and(|k| k < 0) {
            return Ok(vec![(Vec::new(), Vec::new()); m]);
        }
        let top_k = top_k.map(|k| usize::try_from(k).unwrap_or(0));
        let results = py.detach(|| self.inner.read().query_batch(&queries, dim, top_k, filters.as_ref()))?;
        Ok(results.into_iter().map(hits_to_py).collect())
    }

    /// Ids and an (n, dim) float32 matrix of the rows passing `node_ids` and `filters`, in store order:
    /// the input of LlamaIndex's learner query modes.
    #[pyo3(signature = (node_ids=None, filters=None))]
    fn candidate_matrix<'py>(
        &self,
        py: Python<'py>,
        node_ids: Option<Vec<String>>,
        filters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Vec<String>, Bound<'py, PyArray2<f32>>)> {
        let filters: Option<Filters> = filters.map(convert_filters).transpose()?;
        let node_ids: Option<HashSet<String>> = node_ids.map(|v| v.into_iter().collect());
        let guard = self.inner.read();
        let rows = guard.candidates(node_ids.as_ref(), filters.as_ref())?;
        let dim = guard.dim().unwrap_or(0);
        let mut data = Vec::with_capacity(rows.len() * dim);
        let mut ids = Vec::with_capacity(rows.len());
        for &r in &rows {
            ids.push(guard.row_id(r).to_owned());
            data.extend_from_slice(guard.row_embedding(r));
        }
        let arr = numpy::PyArray1::from_vec(py, data).reshape([rows.len(), dim])?;
        Ok((ids, arr))
    }

    // ---- the live view behind `RustVectorStore.data` ----

    fn embedding_ids(&self) -> Vec<String> {
        self.inner.read().rows().map(|r| r.id.to_owned()).collect()
    }

    fn set_embedding(&self, py: Python<'_>, id: String, embedding: &Bound<'_, PyAny>) -> PyResult<()> {
        let values: Vec<f64> = embedding
            .extract()
            .map_err(|_| PyValueError::new_err(format!("embedding of node {id:?} must be a sequence of numbers")))?;
        let data: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        py.detach(|| {
            let mut guard = self.inner.write();
            let row = NewRow {
                ref_doc_id: guard.get_ref_doc_id(&id).map(str::to_owned),
                metadata: guard.get_metadata(&id)?.cloned(),
                id,
            };
            guard.add(vec![row], &data, data.len())
        })?;
        Ok(())
    }

    fn remove_embedding(&self, id: &str) -> PyResult<()> {
        if self.inner.write().remove(id) {
            Ok(())
        } else {
            Err(pyo3::exceptions::PyKeyError::new_err(id.to_owned()))
        }
    }

    fn ref_doc_items(&self) -> Vec<(String, String)> {
        self.inner
            .read()
            .ref_doc_entries()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn ref_doc_len(&self) -> usize {
        self.inner.read().ref_doc_len()
    }

    fn get_ref_doc_id(&self, id: &str) -> Option<String> {
        self.inner.read().get_ref_doc_id(id).map(str::to_owned)
    }

    #[pyo3(signature = (id, ref_doc_id))]
    fn set_ref_doc_id(&self, id: &str, ref_doc_id: Option<String>) {
        self.inner.write().set_ref_doc_id(id, ref_doc_id);
    }

    fn metadata_ids(&self) -> Vec<String> {
        self.inner.read().metadata_keys().map(str::to_owned).collect()
    }

    fn metadata_len(&self) -> usize {
        self.inner.read().metadata_len()
    }

    fn get_metadata<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let guard = self.inner.read();
        guard.get_metadata(id)?.map(|v| value_to_py(py, v)).transpose()
    }

    #[pyo3(signature = (id, metadata))]
    fn set_metadata(&self, id: &str, metadata: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let value = metadata.map(py_to_value).transpose()?;
        self.inner.write().set_metadata(id, value);
        Ok(())
    }

    // ---- persistence ----

    /// The JSON SimpleVectorStore's `persist` writes, as bytes.
    fn to_json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py.detach(|| json_format::to_json(&self.inner.read()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Writes the JSON file and/or the binary file beside it under the directory lock;
    /// `format` is "both", "json" or "binary".
    fn persist_files(&self, py: Python<'_>, json_path: PathBuf, format: &str) -> PyResult<()> {
        let format = PersistFormat::parse(format)?;
        py.detach(|| binary_format::persist_files(&self.inner.read(), &json_path, format))?;
        Ok(())
    }

    /// Benchmark baseline only (not used by the package): the same streamed JSON written the way
    /// SimpleVectorStore writes it, truncating `path` in place without a temporary file, fsync or
    /// lock, so `benches/persistence.py` can price the crash-safety protocol on the real persist.
    fn _write_json_unsafely(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| -> crate::StoreResult<()> {
            let mut file = std::fs::File::create(&path).map_err(|e| crate::StoreError::io(&path, e))?;
            json_format::write_json(&self.inner.read(), |piece| {
                std::io::Write::write_all(&mut file, piece).map_err(|e| crate::StoreError::io(&path, e))
            })
        })?;
        Ok(())
    }

    /// Loads from the binary file beside `json_path` when it mirrors the JSON file, else from the JSON.
    /// Returns `(store, path loaded, why the binary file was not used, whether it was damaged)`.
    #[staticmethod]
    fn load_files(py: Python<'_>, json_path: PathBuf) -> PyResult<(Self, PathBuf, Option<String>, bool)> {
        let loaded = py.detach(|| binary_format::load_files(&json_path))?;
        Ok((
            Self::from_core(loaded.store),
            loaded.source,
            loaded.binary_skipped,
            loaded.binary_damaged,
        ))
    }

    #[staticmethod]
    fn binary_path_for(json_path: PathBuf) -> PathBuf {
        binary_format::binary_path_for(&json_path)
    }

    #[getter]
    fn memory_mapped(&self) -> bool {
        self.inner.read().memory_mapped()
    }

    #[staticmethod]
    fn from_json(py: Python<'_>, data: &[u8], source_name: &str) -> PyResult<Self> {
        let store = py.detach(|| json_format::from_json(data, source_name))?;
        Ok(Self::from_core(store))
    }

    #[staticmethod]
    fn load_json(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let store = py.detach(|| {
            let file = std::fs::File::open(&path).map_err(|e| crate::StoreError::io(&path, e))?;
            json_format::from_file(file, &path.display().to_string())
        })?;
        Ok(Self::from_core(store))
    }

    /// `SimpleVectorStoreData.to_dict()`: plain Python dicts (a full copy).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let guard = self.inner.read();
        let embeddings = PyDict::new(py);
        for row in guard.rows() {
            embeddings.set_item(row.id, PyList::new(py, row.embedding.iter().map(|&x| f64::from(x)))?)?;
        }
        let refs = PyDict::new(py);
        for (k, v) in guard.ref_doc_entries() {
            refs.set_item(k, v)?;
        }
        let metadata = PyDict::new(py);
        for (k, v) in guard.metadata_entries()? {
            metadata.set_item(k, value_to_py(py, v)?)?;
        }
        let out = PyDict::new(py);
        out.set_item("embedding_dict", embeddings)?;
        out.set_item("text_id_to_ref_doc_id", refs)?;
        out.set_item("metadata_dict", metadata)?;
        Ok(out)
    }

    /// Loads the three dicts of `SimpleVectorStoreData` (any may be missing).
    #[staticmethod]
    #[pyo3(signature = (embedding_dict, text_id_to_ref_doc_id, metadata_dict))]
    fn from_dicts(
        py: Python<'_>,
        embedding_dict: Option<&Bound<'_, PyDict>>,
        text_id_to_ref_doc_id: Option<&Bound<'_, PyDict>>,
        metadata_dict: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut store = VectorStore::new();
        if let Some(embeddings) = embedding_dict {
            let mut ids = Vec::with_capacity(embeddings.len());
            let vectors = PyList::empty(py);
            for (k, v) in embeddings.iter() {
                ids.push(k.cast::<PyString>()?.to_str()?.to_owned());
                vectors.append(v)?;
            }
            let block = extract_embeddings(py, vectors.as_any(), &ids)?;
            let rows = ids
                .into_iter()
                .map(|id| NewRow {
                    id,
                    ref_doc_id: None,
                    metadata: None,
                })
                .collect();
            store.load_block(rows, block)?;
        }
        if let Some(refs) = text_id_to_ref_doc_id {
            for (k, v) in refs.iter() {
                store.set_ref_doc_id(k.cast::<PyString>()?.to_str()?, Some(v.str()?.to_str()?.to_owned()));
            }
        }
        if let Some(md) = metadata_dict {
            for (k, v) in md.iter() {
                let value = py_to_value(&v)?;
                store.set_metadata(k.cast::<PyString>()?.to_str()?, Some(value));
            }
        }
        Ok(Self::from_core(store))
    }

    fn copy(&self) -> Self {
        Self::from_core(self.inner.read().clone())
    }
}

/// The record SimpleVectorStore.add stores for plain metadata: `node_to_metadata_dict(remove_text=True)`
/// minus `_node_content`, built without dumping the node: the user's keys, then `_node_type`,
/// `document_id`, `doc_id`, `ref_doc_id` (assignment semantics: an existing key keeps its place).
fn node_record(value: Value, node_type: &str, ref_doc_id: &str) -> Value {
    let mut obj = match value {
        Value::Object(o) => o,
        _ => Default::default(),
    };
    obj.remove("_node_content");
    obj.insert(JStr::new("_node_type"), Value::str(node_type));
    for key in ["document_id", "doc_id", "ref_doc_id"] {
        obj.insert(JStr::new(key), Value::str(ref_doc_id));
    }
    Value::Object(obj)
}
