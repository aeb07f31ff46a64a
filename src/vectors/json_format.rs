//! SimpleVectorStore's JSON file: `{"embedding_dict": {id: [floats]}, "text_id_to_ref_doc_id": {id: str},
//! "metadata_dict": {id: {...}}}`, written exactly as `json.dump(data.to_dict(), f)` writes it.
//!
//! Writing: embedding values are f32 and are written as Python writes `float(value)`, so the file is
//! byte-identical to SimpleVectorStore's whenever its embeddings were f32 values. Rows are formatted in
//! parallel chunks. Reading: one streaming pass, no tree of the whole file is built; the embedding
//! arrays complete in memory are parsed in batches on the pool, straight into the row storage, and
//! any entry the batch path cannot take (the first, one cut by the end of a block, a bad one) is read
//! by the one-entry path, whose errors are the reference. Like `SimpleVectorStoreData.from_dict`,
//! unknown top-level keys are ignored, a null ref-doc id becomes the string "None", and a null
//! section is empty. Files are read in blocks (`ChunkedReader`), so peak memory is the store plus
//! one block.

use rayon::prelude::*;

use super::{NewRow, OwnedRows, RowRef, VectorStore};
use crate::error::{StoreError, StoreResult};
use std::io::Read;

use crate::json::{self, ChunkedReader, Cursor, JStr, Value};

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

/// How many rows to make room for when the first entry of `embedding_dict` (`entry_len` bytes at
/// `entry_start`, `dim` values) has been read from a document of `size` bytes: as many as the rest
/// can hold at that length, but rows of at most twice `size` in bytes (a tiny first entry before a
/// large metadata section must not reserve gigabytes). 1 when the size is unknown.
fn expected_rows(size: Option<usize>, entry_start: usize, entry_len: usize, dim: usize) -> usize {
    let Some(size) = size else { return 1 };
    let row_bytes = dim.div_ceil(16) * 64;
    let fits = size.saturating_sub(entry_start) / entry_len.max(1);
    fits.min(size.saturating_mul(2) / row_bytes.max(1)).max(1)
}

/// An entry of `embedding_dict` whose array is complete in memory: `[` at byte `open` and the first
/// `]` after it at `close` (offsets in the whole document). An array of numbers holds no other `]`;
/// any other array fails to parse before its first `]`, with the error the one-entry path gives.
struct Scanned {
    id: String,
    /// Where the one-entry path reports this entry's errors (right after its key).
    offset: usize,
    open: usize,
    close: usize,
}

/// Bytes of arrays from which a batch is parsed on the pool.
const PARALLEL_BATCH_BYTES: usize = 64 << 10;

/// Entries per fast-path step: enough to keep both cores busy, few enough to stay in the cache.
const SCAN_BATCH: usize = 256;

/// One fast-path step: the next entries of `embedding_dict` (up to `SCAN_BATCH`) whose arrays are
/// complete in memory, into `batch` (cleared first; the step may be retried). Stops before an entry
/// that is not a plain `"id": [...]` complete in memory, leaving it to the one-entry path. Returns
/// whether it consumed the section's closing `}`.
fn scan_entries(c: &mut Cursor<'_>, name: &str, batch: &mut Vec<Scanned>) -> StoreResult<bool> {
    batch.clear();
    while batch.len() < SCAN_BATCH {
        let before = c.state();
        let ended = match c.next_key() {
            Ok(None) => return Ok(true),
            Ok(Some(key)) => {
                let offset = c.offset();
                let found = match (id_string(key, name, offset), c.peek_byte()) {
                    (Ok(id), Some(b'[')) => {
                        let open = c.offset();
                        c.find_byte(b']').map(|close| Scanned {
                            id,
                            offset,
                            open,
                            close,
                        })
                    }
                    _ => None,
                };
                match found {
                    Some(entry) => {
                        c.skip_to(entry.close + 1);
                        batch.push(entry);
                        false
                    }
                    None => true,
                }
            }
            Err(_) => true,
        };
        if ended {
            c.restore(before);
            break;
        }
    }
    Ok(false)
}

/// Parses the arrays of `batch` (see `scan_entries`) into new rows of `block`, on the pool when
/// there are several. Any error is the one the one-entry path reports for the first bad entry.
fn parse_batch<R: Read>(r: &ChunkedReader<R>, name: &str, batch: &[Scanned], block: &mut OwnedRows) -> StoreResult<()> {
    let arrays: Vec<&[u8]> = batch
        .iter()
        .map(|e| {
            r.bytes(e.open, e.close + 1)
                .expect("scanned bytes stay in memory until the next step")
        })
        .collect();
    let dim = block.dim();
    // The pool only for batches worth waking it for (a small file is parsed on the calling thread).
    let parallel = arrays.iter().map(|a| a.len()).sum::<usize>() >= PARALLEL_BATCH_BYTES;
    let parsed = block.extend_filled(batch.len(), parallel, |i, out| {
        let mut n = 0;
        parse_array(arrays[i], name, batch[i].open, |x| {
            if let Some(slot) = out.get_mut(n) {
                *slot = x as f32;
            }
            n += 1;
        })
        .is_ok()
            && n == dim
    });
    if parsed {
        return Ok(());
    }
    for (e, bytes) in batch.iter().zip(arrays) {
        let mut n = 0;
        parse_array(bytes, name, e.open, |_| n += 1)?;
        check_dim(name, e.offset, &e.id, n, Some(dim))?;
    }
    unreachable!("a batch that failed to parse has an entry that fails to parse")
}

/// Parses `bytes` (`[` ... `]`, starting at `base` in the whole document) as the one-entry path
/// parses an embedding array, passing each number to `push`.
fn parse_array(bytes: &[u8], name: &str, base: usize, push: impl FnMut(f64)) -> StoreResult<()> {
    let mut c = Cursor::resume(bytes, name, json::CursorState::default(), base);
    c.begin_array()?;
    c.parse_f64_items(push)?;
    if c.offset() != base + bytes.len() {
        return Err(StoreError::json(
            name,
            c.offset(),
            "embedding array parsed short of its end",
        ));
    }
    Ok(())
}

/// The one-entry path's checks of an embedding's length against the rows before it.
fn check_dim(name: &str, offset: usize, id: &str, len: usize, dim: Option<usize>) -> StoreResult<()> {
    match dim {
        _ if len == 0 => Err(StoreError::json(
            name,
            offset,
            format!("the embedding of {id:?} is empty"),
        )),
        Some(d) if d != len => Err(StoreError::json(
            name,
            offset,
            format!("the embedding of {id:?} has dimension {len}, the ones before it {d}"),
        )),
        _ => Ok(()),
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
    let reader = ChunkedReader::new(bytes, source_name).with_block_size(block);
    load(reader, source_name, Some(bytes.len()))
}

/// Parses SimpleVectorStore's JSON from a reader in blocks: peak memory is the store plus one block.
pub fn from_reader<R: Read>(reader: R, source_name: &str) -> StoreResult<VectorStore> {
    load(ChunkedReader::new(reader, source_name), source_name, None)
}

/// `from_reader` for a file, whose size tells how many rows to make room for.
pub fn from_file(file: std::fs::File, source_name: &str) -> StoreResult<VectorStore> {
    let size = file.metadata().ok().and_then(|m| usize::try_from(m.len()).ok());
    load(ChunkedReader::new(file, source_name), source_name, size)
}

/// `from_reader` with blocks of `block` bytes (the fuzz checks use tiny blocks to put block
/// boundaries everywhere).
#[doc(hidden)]
pub fn from_reader_with_block_size<R: Read>(reader: R, source_name: &str, block: usize) -> StoreResult<VectorStore> {
    load(
        ChunkedReader::new(reader, source_name).with_block_size(block),
        source_name,
        None,
    )
}

/// `size`: the document's length, if known. The row storage then makes room for as many rows as the
/// document can hold at the first entry's length at once, instead of doubling: with 64-byte
/// alignment every doubling is a new block and a copy, and the freed blocks stayed in the process
/// (a 20k x 768 load left 78 MB resident for 62 MB of data).
fn load<R: Read>(mut r: ChunkedReader<R>, source_name: &str, size: Option<usize>) -> StoreResult<VectorStore> {
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
    let mut block: Option<OwnedRows> = None;
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
                block = None;
                let mut row: Vec<f32> = Vec::new();
                let mut batch: Vec<Scanned> = Vec::new();
                loop {
                    // Fast path, once the dimension is known: the entries whose arrays are complete
                    // in memory, their numbers parsed on the pool straight into the row storage.
                    if let Some(rows_block) = block.as_mut() {
                        let ended = r.step(|c| scan_entries(c, name, &mut batch))?;
                        let batch_was_empty = batch.is_empty();
                        parse_batch(&r, name, &batch, rows_block)?;
                        rows.extend(batch.drain(..).map(|e| NewRow {
                            id: e.id,
                            ref_doc_id: None,
                            metadata: None,
                        }));
                        if ended {
                            break;
                        }
                        if !batch_was_empty {
                            continue;
                        }
                    }
                    // One entry at a time: the first (it sets the dimension), one not yet complete in
                    // memory, the end of the section, or input the fast path left for its error.
                    let entry_start = r.offset();
                    let Some(id) = r.step(|c| {
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
                        check_dim(name, offset, &id, row.len(), block.as_ref().map(OwnedRows::dim))?;
                        Ok(Some(id))
                    })?
                    else {
                        break;
                    };
                    let entry_len = r.offset().saturating_sub(entry_start);
                    let rows_block = block.get_or_insert_with(|| {
                        let mut first = OwnedRows::new(row.len());
                        first.reserve(expected_rows(size, entry_start, entry_len, row.len()));
                        first
                    });
                    rows_block.push(&row);
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
    if let Some(block) = block {
        store.load_block(rows, block)?;
    }
    for (id, ref_doc_id) in refs {
        store.set_ref_doc_id(&id, Some(ref_doc_id));
    }
    for (id, value) in metadata {
        store.set_metadata(&id, Some(value));
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SimpleVectorStore file of `n` rows of `dim` values (large enough for several fast-path
    /// batches parsed on the pool), with `corrupt(i, entry)` applied to the text of entry i.
    fn doc(n: usize, dim: usize, corrupt: impl Fn(usize, String) -> String) -> Vec<u8> {
        let entries: Vec<String> = (0..n)
            .map(|i| {
                let values: Vec<String> = (0..dim).map(|j| format!("{}", (i * dim + j) as f32 / 7.0)).collect();
                corrupt(i, format!("\"id-{i}\": [{}]", values.join(", ")))
            })
            .collect();
        format!(
            "{{\"embedding_dict\": {{{}}}, \"text_id_to_ref_doc_id\": {{\"id-3\": \"doc\"}}, \"metadata_dict\": {{}}}}",
            entries.join(", ")
        )
        .into_bytes()
    }

    /// Loads `bytes` whole (fast path for all but the first entry) and in tiny blocks (nearly every
    /// entry on the one-entry path): same store or same error.
    fn load_both_ways(bytes: &[u8]) -> Result<Vec<u8>, String> {
        let whole = from_json(bytes, "f.json");
        let tiny = from_reader_with_block_size(bytes, "f.json", 7);
        match (whole, tiny) {
            (Ok(a), Ok(b)) => {
                let (a, b) = (to_json(&a).unwrap(), to_json(&b).unwrap());
                assert!(a == b, "the two loads differ");
                Ok(a)
            }
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string());
                Err(a.to_string())
            }
            (a, b) => panic!("whole: {:?}, tiny blocks: {:?}", a.map(|_| ()), b.map(|_| ())),
        }
    }

    #[test]
    fn batched_parallel_parse_equals_one_entry_at_a_time() {
        let (n, dim) = (700, 48);
        let good = doc(n, dim, |_, e| e);
        assert!(good.len() > 4 * PARALLEL_BATCH_BYTES && n > 2 * SCAN_BATCH);
        let written = load_both_ways(&good).unwrap();
        assert_eq!(
            load_both_ways(&written),
            Ok(written.clone()),
            "a written file reloads the same"
        );
        // (corruption, part of the message it must give)
        let cases: [(&dyn Fn(String) -> String, &str); 12] = [
            (&|e| e.replacen(", ", ", \"x\", ", 1), ""),
            (&|e| e.replacen(", ", ", 1e, ", 1), "Expecting"),
            (&|e| e.replacen(", ", ", [1], ", 1), ""),
            (&|e| e.replacen(", ", ", \"a]b\", ", 1), ""),
            (&|e| e.replace(']', ", ]"), ""),
            (&|e| e.replacen(", ", ", 1, ", 1), "has dimension"),
            (&|e| e.replacen(", ", "] , [", 1), ""),
            (&|e| format!("{}[]", &e[..e.find('[').unwrap()]), "is empty"),
            (
                &|e| format!("{}{{}}", &e[..e.find('[').unwrap()]),
                "must be a list of numbers",
            ),
            (&|e| e.replacen("\"id-", "\"\\ud800id-", 1), "lone surrogates"),
            (
                // Two values replaced by NaN and -Infinity (SimpleVectorStore files may hold them).
                &|e| {
                    let open = e.find('[').unwrap();
                    let second = open + e[open..].find(", ").unwrap();
                    let third = second + 2 + e[second + 2..].find(", ").unwrap();
                    format!("{}[NaN, -Infinity{}", &e[..open], &e[third..])
                },
                "",
            ),
            (&|e| e.replacen(", ", " , ", 3).replacen('[', "[ ", 1), ""),
        ];
        for (k, (corrupt, expected)) in cases.iter().enumerate() {
            // The first entry (one-entry path), the second (first of a batch), inside, at batch
            // ends, the last.
            for at in [0, 1, 2, 100, SCAN_BATCH, SCAN_BATCH + 1, 2 * SCAN_BATCH - 1, n - 1] {
                let bytes = doc(n, dim, |i, e| if i == at { corrupt(e) } else { e });
                match load_both_ways(&bytes) {
                    Err(msg) => assert!(msg.contains(expected), "case {k} at {at}: {msg}"),
                    Ok(_) => assert!(expected.is_empty(), "case {k} at {at}: loaded"),
                }
            }
        }
        // Errors in two entries of one batch: the first one's is reported.
        let bytes = doc(n, dim, |i, e| match i {
            300 => e.replacen(", ", ", \"x\", ", 1),
            301 => format!("{}[]", &e[..e.find('[').unwrap()]),
            _ => e,
        });
        let msg = load_both_ways(&bytes).unwrap_err();
        assert!(msg.contains("Expecting number"), "{msg}");
        let bytes = doc(n, dim, |i, e| match i {
            300 => e.replacen(", ", ", 1, ", 1),
            301 => e.replacen(", ", ", \"x\", ", 1),
            _ => e,
        });
        assert!(load_both_ways(&bytes).unwrap_err().contains("id-300"));
    }
}
