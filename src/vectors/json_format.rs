//! SimpleVectorStore's JSON file: `{"embedding_dict": {id: [floats]}, "text_id_to_ref_doc_id": {id: str},
//! "metadata_dict": {id: {...}}}`, written exactly as `json.dump(data.to_dict(), f)` writes it.
//!
//! Writing: embedding values are f32 and are written as Python writes `float(value)`, so the file is
//! byte-identical to SimpleVectorStore's whenever its embeddings were f32 values. Rows are formatted in
//! parallel chunks. Reading: one streaming pass; embedding arrays go straight into the f32 block, no
//! tree of the whole file is built. Like `SimpleVectorStoreData.from_dict`, unknown top-level keys are
//! ignored, a null ref-doc id becomes the string "None", and a null section is empty.

use rayon::prelude::*;

use super::{NewRow, RowRef, VectorStore};
use crate::error::{StoreError, StoreResult};
use crate::json::{self, Cursor, JStr, Value};

/// Rows per parallel formatting task.
const ROWS_PER_TASK: usize = 256;

pub fn to_json(store: &VectorStore) -> Vec<u8> {
    let rows: Vec<RowRef<'_>> = store.rows().collect();
    let dim = store.dim().unwrap_or(0);
    let chunks: Vec<Vec<u8>> = rows
        .par_chunks(ROWS_PER_TASK)
        .map(|chunk| {
            let mut out = Vec::with_capacity(chunk.len() * (dim * 22 + 64));
            for (i, row) in chunk.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                json::write_str_utf8(&mut out, row.id);
                out.extend_from_slice(b": [");
                for (j, &x) in row.embedding.iter().enumerate() {
                    if j > 0 {
                        out.extend_from_slice(b", ");
                    }
                    json::write_f32_as_python_float(&mut out, x);
                }
                out.push(b']');
            }
            out
        })
        .collect();
    let total: usize = chunks.iter().map(Vec::len).sum::<usize>() + 2 * chunks.len();
    let mut out = Vec::with_capacity(total + 1024);
    out.extend_from_slice(b"{\"embedding_dict\": {");
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(b"}, \"text_id_to_ref_doc_id\": {");
    for (i, (id, ref_doc_id)) in store.ref_doc_entries().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        json::write_str_utf8(&mut out, id);
        out.extend_from_slice(b": ");
        json::write_str_utf8(&mut out, ref_doc_id);
    }
    out.extend_from_slice(b"}, \"metadata_dict\": {");
    for (i, (id, metadata)) in store.metadata_entries().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        json::write_str_utf8(&mut out, id);
        out.extend_from_slice(b": ");
        json::write_value(&mut out, metadata);
    }
    out.extend_from_slice(b"}}");
    out
}

fn id_string(key: JStr, source_name: &str, offset: usize) -> StoreResult<String> {
    match key.as_str() {
        Some(s) => Ok(s.to_owned()),
        None => Err(StoreError::json(source_name, offset, "node ids with lone surrogates are not supported")),
    }
}

pub fn from_json(bytes: &[u8], source_name: &str) -> StoreResult<VectorStore> {
    let mut cur = Cursor::new(bytes, source_name);
    let shape_error = |offset: usize, what: &str| StoreError::json(source_name, offset, what.to_owned());
    if !(cur.peek_byte() == Some(b'{')) {
        return Err(shape_error(cur.offset(), "expected a JSON object with an \"embedding_dict\" key"));
    }
    cur.begin_object()?;
    let mut rows: Vec<NewRow> = Vec::new();
    let mut data: Vec<f32> = Vec::new();
    let mut dim: Option<usize> = None;
    let mut refs: Vec<(String, String)> = Vec::new();
    let mut metadata: Vec<(String, Value)> = Vec::new();
    while let Some(section) = cur.next_key()? {
        let section_offset = cur.offset();
        match section.as_bytes() {
            b"embedding_dict" if !cur.peek_null() => {
                if !(cur.peek_byte() == Some(b'{')) {
                    return Err(shape_error(section_offset, "\"embedding_dict\" must be an object"));
                }
                rows.clear();
                data.clear();
                cur.begin_object()?;
                while let Some(key) = cur.next_key()? {
                    let offset = cur.offset();
                    let id = id_string(key, source_name, offset)?;
                    if !(cur.peek_byte() == Some(b'[')) {
                        return Err(shape_error(offset, &format!("the embedding of {id:?} must be a list of numbers")));
                    }
                    cur.begin_array()?;
                    let start = data.len();
                    while cur.next_array_item()? {
                        data.push(cur.parse_f64()? as f32);
                    }
                    let len = data.len() - start;
                    match dim {
                        _ if len == 0 => return Err(shape_error(offset, &format!("the embedding of {id:?} is empty"))),
                        None => dim = Some(len),
                        Some(d) if d != len => {
                            return Err(shape_error(
                                offset,
                                &format!("the embedding of {id:?} has dimension {len}, the ones before it {d}"),
                            ))
                        }
                        Some(_) => {}
                    }
                    rows.push(NewRow { id, ref_doc_id: None, metadata: None });
                }
            }
            b"text_id_to_ref_doc_id" if !cur.peek_null() => {
                if !(cur.peek_byte() == Some(b'{')) {
                    return Err(shape_error(section_offset, "\"text_id_to_ref_doc_id\" must be an object"));
                }
                refs.clear();
                cur.begin_object()?;
                while let Some(key) = cur.next_key()? {
                    let offset = cur.offset();
                    let id = id_string(key, source_name, offset)?;
                    let ref_doc_id = match cur.parse_value()? {
                        Value::Null => "None".to_owned(),
                        Value::Str(s) => id_string(s, source_name, offset)?,
                        _ => return Err(shape_error(offset, &format!("the ref_doc_id of {id:?} must be a string"))),
                    };
                    refs.push((id, ref_doc_id));
                }
            }
            b"metadata_dict" if !cur.peek_null() => {
                if !(cur.peek_byte() == Some(b'{')) {
                    return Err(shape_error(section_offset, "\"metadata_dict\" must be an object"));
                }
                metadata.clear();
                cur.begin_object()?;
                while let Some(key) = cur.next_key()? {
                    let offset = cur.offset();
                    let id = id_string(key, source_name, offset)?;
                    metadata.push((id, cur.parse_value()?));
                }
            }
            _ => cur.skip_value()?,
        }
    }
    cur.finish()?;
    let mut store = VectorStore::new();
    if !rows.is_empty() {
        store.load_rows(rows, &data, dim.unwrap_or(0))?;
    }
    for (id, ref_doc_id) in refs {
        store.set_ref_doc_id(&id, Some(ref_doc_id));
    }
    for (id, value) in metadata {
        store.set_metadata(&id, Some(value));
    }
    Ok(store)
}
