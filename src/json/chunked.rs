//! `ChunkedReader`: walks a large JSON document read from a `Read` in blocks, so that peak memory is
//! one block plus what the caller keeps, not the whole file.
//!
//! The caller parses in small steps (one key, one entry). A step runs on a `Cursor` over the bytes in
//! memory; if it fails before the end of the input, the failure may be the block boundary: the consumed
//! prefix is dropped, the next block appended and the step retried from where it started. So a step
//! must not change anything outside the cursor before it succeeds. A step that fails with the whole
//! rest of the input in memory is a real error, reported with its offset in the whole document.

use std::io::Read;

use super::read::{Cursor, CursorState};
use crate::error::{StoreError, StoreResult};

/// Default block size.
pub(crate) const BLOCK: usize = 8 << 20;

/// How far past the end of a token a step may have looked: a number scan backtracks over at most
/// two bytes (`1e+` reads as `1` when no digit follows), plus the byte that ended the scan.
const LOOKAHEAD: usize = 3;

pub struct ChunkedReader<R: Read> {
    reader: R,
    source_name: String,
    buf: Vec<u8>,
    /// Offset of `buf[0]` in the whole document.
    base: usize,
    state: CursorState,
    eof: bool,
    started: bool,
    block: usize,
}

impl<R: Read> ChunkedReader<R> {
    pub fn new(reader: R, source_name: impl Into<String>) -> Self {
        ChunkedReader {
            reader,
            source_name: source_name.into(),
            buf: Vec::new(),
            base: 0,
            state: CursorState::default(),
            eof: false,
            started: false,
            block: BLOCK,
        }
    }

    /// Sets the block size (tests use tiny blocks to put boundaries everywhere).
    #[must_use]
    pub fn with_block_size(mut self, block: usize) -> Self {
        self.block = block.max(1);
        self
    }

    /// Drops the consumed prefix and appends the next block (or everything left, if a step needs
    /// more than a block).
    fn refill(&mut self) -> StoreResult<()> {
        let consumed = self.state.pos();
        if consumed > 0 {
            self.buf.drain(..consumed);
            self.base += consumed;
            self.state.set_pos(0);
        }
        let want = self.block.max(self.buf.len());
        // `read_to_end` fills the spare capacity without zeroing it first (zeroing each block cost
        // as much as a tenth of a vector file load) and retries `Interrupted`. It returns early
        // only at the end of the input.
        self.buf.reserve_exact(want);
        let read = (&mut self.reader)
            .take(want as u64)
            .read_to_end(&mut self.buf)
            .map_err(|e| StoreError::io(&self.source_name, e))?;
        self.eof = read < want;
        Ok(())
    }

    /// Offset in the whole document of the first byte the next step reads.
    pub fn offset(&self) -> usize {
        self.base + self.state.pos()
    }

    /// Bytes `from..to` of the whole document, if they are in memory: those of the last successful
    /// step are, until the next step.
    pub fn bytes(&self, from: usize, to: usize) -> Option<&[u8]> {
        self.buf.get(from.checked_sub(self.base)?..to.checked_sub(self.base)?)
    }

    /// Runs one parsing step (see the module header); `step` must be free of side effects until it
    /// returns `Ok`.
    pub fn step<T>(&mut self, mut step: impl FnMut(&mut Cursor<'_>) -> StoreResult<T>) -> StoreResult<T> {
        if !self.started {
            self.started = true;
            // At least the three bytes of a BOM, so that tiny blocks do not hide it.
            while self.buf.len() < 3 && !self.eof {
                self.refill()?;
            }
            // A BOM only at the very start: let a fresh cursor skip it, then continue from its state.
            let cur = Cursor::new(&self.buf, &self.source_name);
            self.state = cur.state();
        }
        loop {
            let mut cur = Cursor::resume(&self.buf, &self.source_name, self.state.clone(), self.base);
            match step(&mut cur) {
                // A step that ended near the end of the bytes in memory may have stopped early because
                // of the block boundary: a number cut short (`12|345` reads as 12, `3.|5` and `1e+|5`
                // as 3 and 1 after backtracking over up to `LOOKAHEAD - 1` bytes) or `finish` seeing
                // only whitespace before more input. Retry it with more data unless the input ended.
                Ok(_) if cur.offset() - self.base + LOOKAHEAD > self.buf.len() && !self.eof => self.refill()?,
                Ok(value) => {
                    self.state = cur.state();
                    return Ok(value);
                }
                Err(err) if self.eof => return Err(err),
                Err(_) => self.refill()?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `n` bytes per call, to put block boundaries everywhere.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Walks `{"id": [numbers], ...}` one entry per step, reading `trickle` bytes per read call
    /// into blocks of `block` bytes.
    fn collect_in(doc: &[u8], trickle: usize, block: usize) -> StoreResult<Vec<(String, Vec<f64>)>> {
        let mut r = ChunkedReader::new(Trickle(doc, trickle), "doc").with_block_size(block);
        r.step(|c| c.begin_object())?;
        let mut out = Vec::new();
        while let Some(entry) = r.step(|c| {
            let Some(k) = c.next_key()? else { return Ok(None) };
            let mut row = Vec::new();
            c.begin_array()?;
            while c.next_array_item()? {
                row.push(c.parse_f64()?);
            }
            Ok(Some((k.as_str().unwrap_or("").to_owned(), row)))
        })? {
            out.push(entry);
        }
        r.step(|c| c.finish())?;
        Ok(out)
    }

    fn collect(doc: &[u8]) -> StoreResult<Vec<(String, Vec<f64>)>> {
        collect_in(doc, 3, 4)
    }

    #[test]
    fn entries_across_block_boundaries_parse_exactly_once() {
        let doc = b"\xEF\xBB\xBF{\"a\": [0.125, 1e-05, 3], \"b\": [-2.5], \"c\": []}";
        let got = collect(doc).unwrap();
        assert_eq!(
            got,
            vec![
                ("a".into(), vec![0.125, 1e-05, 3.0]),
                ("b".into(), vec![-2.5]),
                ("c".into(), vec![])
            ]
        );
    }

    #[test]
    fn every_block_size_gives_the_same_entries() {
        let doc = b"{\"id-1\": [0.5, -1.25e-07, 12], \"\\u00e9\": [1.0]}";
        let want = vec![
            ("id-1".into(), vec![0.5, -1.25e-07, 12.0]),
            ("\u{e9}".into(), vec![1.0]),
        ];
        for block in 1..doc.len() + 2 {
            let got = collect_in(doc, 2, block).unwrap();
            assert_eq!(got, want, "block {block}");
        }
    }

    /// Found by the `json_chunked` fuzz target: a step that ended at (or, for numbers, within two bytes
    /// of) a block boundary was accepted as it stood, so a number split by the boundary (`12|345`,
    /// `3.|5`) was read as two tokens, trailing garbage after whitespace reaching the boundary was missed by `finish`, and
    /// a BOM split by the first block was not skipped.
    #[test]
    fn steps_ending_at_a_block_boundary_see_the_rest_of_the_input() {
        let walk = |doc: &[u8], block: usize| -> StoreResult<Vec<f64>> {
            let mut r = ChunkedReader::new(Trickle(doc, block), "doc").with_block_size(block);
            r.step(|c| c.begin_array())?;
            let mut out = Vec::new();
            while let Some(x) = r.step(|c| {
                if c.next_array_item()? {
                    c.parse_f64().map(Some)
                } else {
                    Ok(None)
                }
            })? {
                out.push(x);
            }
            r.step(|c| c.finish())?;
            Ok(out)
        };
        for block in 1..12 {
            assert_eq!(
                walk(b"[12345, 678]", block).unwrap(),
                vec![12345.0, 678.0],
                "block {block}"
            );
            assert_eq!(walk(b"\xEF\xBB\xBF[1]", block).unwrap(), vec![1.0], "block {block}");
            assert!(walk(b"[1]          x", block).is_err(), "block {block}");
        }
        let doc = b"{\"embedding_dict\": {\"a\": [1.5]}, \"extra\": 1234567}";
        for block in 1..doc.len() + 1 {
            let store = crate::vectors::json_format::from_reader_with_block_size(Trickle(doc, block), "doc", block);
            assert_eq!(store.map(|s| s.len()).ok(), Some(1), "block {block}");
        }
    }

    #[test]
    fn real_errors_report_their_offset_in_the_whole_document() {
        let doc = b"{\"a\": [1.0, 2.0], \"b\": [1.0 2.0]}";
        let err = collect(doc).unwrap_err().to_string();
        assert!(err.contains("byte 28"), "{err}");
        assert!(collect(b"{\"a\": [1.0").is_err());
    }
}
