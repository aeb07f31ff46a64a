//! SimpleVectorStore's JSON file: `{"embedding_dict": {id: [floats]}, "text_id_to_ref_doc_id": {id: str},
//! "metadata_dict": {id: {...}}}`, written exactly as `json.dump(data.to_dict(), f)` writes it.
//!
//! Writing: embedding values are f32 and are written as Python writes `float(value)`, so the file is
//! byte-identical to SimpleVectorStore's whenever its embeddings were f32 values. Rows are formatted in
//! parallel chunks. Reading: one streaming pass; embedding arrays go straight into the f32 block, no
//! tree of the whole file is built. Like `SimpleVectorStoreData.from_dict`, unknown top-level keys are
//! ignored, a null ref-doc id becomes the string "None", and a null section is empty. Files are read
//! in blocks (`ChunkedReader`), so peak memory is the store plus one block.

use rayon::prelude::*;

use super::{NewRow, RowRef, VectorStore};
use crate::error::{StoreError, StoreResult};
use std::io::Read;

use crate::json::{self, ChunkedReader, JStr, Value};

/// Rows per parallel formatting task.
const ROWS_PER_TASK: usize = 256;

/// The JSON file in memory (an error only if metadata text of a loaded binary file does not parse).
pub fn to_json(store: &VectorStore) -> StoreResult<Vec<u8>> {
    let mut out = Vec::new();
    write_json(store, |piece| {
        out.extend_from_slice(piece);
        Ok(())
    })?;
    Ok(out)
}

/// About this many bytes of JSON are formatted per group while the previous group is being written.
const GROUP_BYTES: usize = 16 << 20;

/// Streams the file to `sink`, in order. Rows are formatted in parallel one group at a time, and
/// each group is formatted while `sink` consumes the previous one, so formatting and writing overlap
/// and no file-sized buffer is built.
pub fn write_json(store: &VectorStore, mut sink: impl FnMut(&[u8]) -> StoreResult<()> + Send) -> StoreResult<()> {
    // Metadata still held as text of a loaded file is parsed (checked) before anything is written.
    store.parse_all_metadata()?;
    let rows: Vec<RowRef<'_>> = store.rows().collect();
    let dim = store.dim().unwrap_or(0);
    let rows_per_group = (GROUP_BYTES / (dim * 22 + 64)).max(ROWS_PER_TASK);
    sink(b"{\"embedding_dict\": {")?;
    // Two sets of piece buffers take turns (one being written, one being filled) and keep their
    // capacity: fresh 16 MB buffers per group cost a page fault per 4 KB written.
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    for (g, group) in rows.chunks(rows_per_group).enumerate() {
        spare.resize_with(group.len().div_ceil(ROWS_PER_TASK), Vec::new);
        let (written, ()) = rayon::join(
            || pending.iter().try_for_each(|piece| sink(piece)),
            || format_rows(group, g == 0, dim, &mut spare),
        );
        written?;
        std::mem::swap(&mut pending, &mut spare);
    }
    pending.iter().try_for_each(|piece| sink(piece))?;
    let mut out = Vec::with_capacity(1024);
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
    for (i, (id, metadata)) in store.metadata_entries()?.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        json::write_str_utf8(&mut out, id);
        out.extend_from_slice(b": ");
        json::write_value(&mut out, metadata);
    }
    out.extend_from_slice(b"}}");
    sink(&out)
}

/// `"id": [values]` entries of `rows`, formatted in parallel into `pieces` (one per
/// `ROWS_PER_TASK` rows, cleared first); every entry but the file's first is preceded by `", "`.
fn format_rows(rows: &[RowRef<'_>], first_group: bool, dim: usize, pieces: &mut [Vec<u8>]) {
    rows.par_chunks(ROWS_PER_TASK)
        .zip(pieces.par_iter_mut())
        .enumerate()
        .for_each(|(task, (chunk, out))| {
            out.clear();
            out.reserve(chunk.len() * (dim * 22 + 64) + 2);
            for (i, row) in chunk.iter().enumerate() {
                if !(first_group && task == 0 && i == 0) {
                    out.extend_from_slice(b", ");
                }
                json::write_str_utf8(out, row.id);
                out.extend_from_slice(b": [");
                json::write_f32_list_items(out, row.embedding);
                out.push(b']');
            }
        });
}

fn id_string(key: JStr, source_name: &str, offset: usize) -> StoreResult<String> {
    match key.as_str() {
        Some(s) => Ok(s.to_owned()),
        None => Err(StoreError::json(
            source_name,
            offset,
            "node ids with lone surrogates are not supported",
        )),
    }
}

enum Section {
    Embeddings,
    RefDocIds,
    Metadata,
    Skipped,
}

/// Parses SimpleVectorStore's JSON from memory.
pub fn from_json(bytes: &[u8], source_name: &str) -> StoreResult<VectorStore> {
    // Blocks no larger than the document: a small file is not copied into a zeroed 8 MB buffer.
    let block = bytes.len().saturating_add(1).min(json::CHUNK_BLOCK);
    from_reader_with_block_size(bytes, source_name, block)
}

/// Parses SimpleVectorStore's JSON from a reader in blocks: peak memory is the store plus one block.
pub fn from_reader<R: Read>(reader: R, source_name: &str) -> StoreResult<VectorStore> {
    load(ChunkedReader::new(reader, source_name), source_name)
}

/// `from_reader` with blocks of `block` bytes (the fuzz checks use tiny blocks to put block
/// boundaries everywhere).
#[doc(hidden)]
pub fn from_reader_with_block_size<R: Read>(reader: R, source_name: &str, block: usize) -> StoreResult<VectorStore> {
    load(
        ChunkedReader::new(reader, source_name).with_block_size(block),
        source_name,
    )
}

fn load<R: Read>(mut r: ChunkedReader<R>, source_name: &str) -> StoreResult<VectorStore> {
    let name = source_name;
    let shape = |offset: usize, what: String| StoreError::json(name, offset, what);
    r.step(|c| {
        if c.peek_byte() != Some(b'{') {
            return Err(shape(
                c.offset(),
                "expected a JSON object with an \"embedding_dict\" key".into(),
            ));
        }
        c.begin_object()
    })?;
    let mut rows: Vec<NewRow> = Vec::new();
    let mut data: Vec<f32> = Vec::new();
    let mut dim: Option<usize> = None;
    let mut refs: Vec<(String, String)> = Vec::new();
    let mut metadata: Vec<(String, Value)> = Vec::new();
    // One step per section header: its key, then `{` (entries follow) or a null / unknown value skipped.
    while let Some(section) = r.step(|c| {
        let Some(key) = c.next_key()? else { return Ok(None) };
        let section = match key.as_bytes() {
            b"embedding_dict" => Section::Embeddings,
            b"text_id_to_ref_doc_id" => Section::RefDocIds,
            b"metadata_dict" => Section::Metadata,
            _ => Section::Skipped,
        };
        if matches!(section, Section::Skipped) || c.peek_null() {
            c.skip_value()?;
            return Ok(Some(Section::Skipped));
        }
        if c.peek_byte() != Some(b'{') {
            let key = key.as_str().unwrap_or("?").to_owned();
            return Err(shape(c.offset(), format!("\"{key}\" must be an object")));
        }
        c.begin_object()?;
        Ok(Some(section))
    })? {
        match section {
            Section::Embeddings => {
                rows.clear();
                data.clear();
                let mut row: Vec<f32> = Vec::new();
                while let Some(id) = r.step(|c| {
                    let Some(key) = c.next_key()? else { return Ok(None) };
                    let offset = c.offset();
                    let id = id_string(key, name, offset)?;
                    if c.peek_byte() != Some(b'[') {
                        return Err(shape(
                            offset,
                            format!("the embedding of {id:?} must be a list of numbers"),
                        ));
                    }
                    row.clear();
                    c.begin_array()?;
                    c.parse_f64_items(|x| row.push(x as f32))?;
                    match dim {
                        _ if row.is_empty() => Err(shape(offset, format!("the embedding of {id:?} is empty"))),
                        Some(d) if d != row.len() => Err(shape(
                            offset,
                            format!(
                                "the embedding of {id:?} has dimension {}, the ones before it {d}",
                                row.len()
                            ),
                        )),
                        _ => Ok(Some(id)),
                    }
                })? {
                    dim = Some(row.len());
                    data.extend_from_slice(&row);
                    rows.push(NewRow {
                        id,
                        ref_doc_id: None,
                        metadata: None,
                    });
                }
            }
            Section::RefDocIds => {
                refs.clear();
                while let Some(entry) = r.step(|c| {
                    let Some(key) = c.next_key()? else { return Ok(None) };
                    let offset = c.offset();
                    let id = id_string(key, name, offset)?;
                    let ref_doc_id = match c.parse_value()? {
                        Value::Null => "None".to_owned(),
                        Value::Str(s) => id_string(s, name, offset)?,
                        _ => return Err(shape(offset, format!("the ref_doc_id of {id:?} must be a string"))),
                    };
                    Ok(Some((id, ref_doc_id)))
                })? {
                    refs.push(entry);
                }
            }
            Section::Metadata => {
                metadata.clear();
                while let Some(entry) = r.step(|c| {
                    let Some(key) = c.next_key()? else { return Ok(None) };
                    let id = id_string(key, name, c.offset())?;
                    Ok(Some((id, c.parse_value()?)))
                })? {
                    metadata.push(entry);
                }
            }
            Section::Skipped => {}
        }
    }
    r.step(|c| c.finish())?;
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
