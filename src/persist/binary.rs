//! The binary vector file container (see docs/FORMAT.md): a 256-byte header, then five sections —
//! vectors (little-endian f32 rows, 64-byte aligned, usable in place from a memory map), norms, ids,
//! ref-doc entries, metadata entries. This module knows the layout, the checksums and the bounds; what
//! goes into the sections for a vector store is `vectors::binary_format`'s business.
//!
//! Guarantees of `BinaryFile::open`: the header's magic, version, byte order, element type and CRC
//! are right, every section lies inside the file, the vector and norm sections have exactly the size
//! that dimension and row count imply, and entry counts cannot claim more entries than their section
//! could hold. Nothing is allocated from a count before that check. `SectionReader` reports any read
//! past its section's end as `Corrupt`, so a parser built on it cannot panic on a damaged file.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use memmap2::Mmap;

use super::{AtomicFile, DirLock, FileOps};
use crate::error::{StoreError, StoreResult};

pub const MAGIC: [u8; 8] = *b"LIRSVEC\0";
pub const VERSION: u32 = 1;
/// Written as a little-endian u32; a reader that sees it swapped is looking at a big-endian file.
pub const BYTE_ORDER_MARK: u32 = 0x0102_0304;
/// Element type 1: IEEE-754 binary32.
pub const ELEMENT_F32: u32 = 1;
pub const HEADER_LEN: usize = 256;
/// Bytes of the header covered by its CRC (the CRC itself sits right after).
const HEADER_CRC_AT: usize = 240;
/// The vectors section starts on a page boundary (rows on 64-byte boundaries follow from the stride).
pub const VECTORS_ALIGN: u64 = 4096;
/// Floats per 64 bytes: rows are padded to a multiple of this.
pub const ROW_LANES: u64 = 16;
/// The smallest encoded ref-doc / metadata entry (a u32 key and a u32 length): bounds entry counts.
pub const MIN_ENTRY_LEN: u64 = 8;
const FLAG_MIRRORS_JSON: u64 = 1;

/// The sections, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionId {
    Vectors = 0,
    Norms = 1,
    Ids = 2,
    RefDocs = 3,
    Metadata = 4,
}

pub const SECTIONS: [SectionId; 5] = [
    SectionId::Vectors,
    SectionId::Norms,
    SectionId::Ids,
    SectionId::RefDocs,
    SectionId::Metadata,
];

impl SectionId {
    pub fn name(self) -> &'static str {
        match self {
            SectionId::Vectors => "vectors",
            SectionId::Norms => "norms",
            SectionId::Ids => "ids",
            SectionId::RefDocs => "ref_doc_ids",
            SectionId::Metadata => "metadata",
        }
    }
}

/// Where a section is, how many entries it holds and its CRC-32 (IEEE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub offset: u64,
    pub len: u64,
    pub count: u64,
    pub crc: u32,
}

/// The state of the JSON file a binary file mirrors: it is used instead of that JSON only while the
/// JSON still has this size and either this modification *and* change time, or this CRC. The change
/// time (ctime) catches an in-place rewrite whose mtime was set back with `utime`, which cannot set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonState {
    pub len: u64,
    pub mtime_ns: i64,
    pub crc: u32,
    /// Not covered by the header CRC: a damaged value only sends the check to the CRC comparison.
    pub ctime_ns: i64,
}

impl JsonState {
    /// The state of a JSON file whose content is `chunks`, concatenated.
    pub fn of<B: AsRef<[u8]>>(meta: &std::fs::Metadata, chunks: &[B]) -> JsonState {
        let mut crc = crc32fast::Hasher::new();
        for chunk in chunks {
            crc.update(chunk.as_ref());
        }
        JsonState::with_crc(meta, crc.finalize())
    }

    /// The state of a JSON file whose content's CRC32 is `crc`.
    pub fn with_crc(meta: &std::fs::Metadata, crc: u32) -> JsonState {
        JsonState {
            len: meta.len(),
            mtime_ns: mtime_ns(meta),
            crc,
            ctime_ns: ctime_ns(meta),
        }
    }
}

/// The inode change time in ns (0 where the platform has none, which only disables the fast check).
pub fn ctime_ns(meta: &std::fs::Metadata) -> i64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    match meta.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
        },
        Err(_) => 0,
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub dim: u64,
    pub rows: u64,
    pub stride: u64,
    pub mirrors: Option<JsonState>,
    pub sections: [Section; 5],
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Saturating: a damaged header may hold any dimension, and its error message prints this.
pub fn stride_for(dim: u64) -> u64 {
    dim.div_ceil(ROW_LANES).saturating_mul(ROW_LANES)
}

impl Header {
    pub fn section(&self, id: SectionId) -> &Section {
        &self.sections[id as usize]
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&BYTE_ORDER_MARK.to_le_bytes());
        h[16..20].copy_from_slice(&ELEMENT_F32.to_le_bytes());
        h[20..24].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h[24..32].copy_from_slice(&self.dim.to_le_bytes());
        h[32..40].copy_from_slice(&self.rows.to_le_bytes());
        h[40..48].copy_from_slice(&self.stride.to_le_bytes());
        let mirror = self.mirrors.unwrap_or_default();
        let flags = if self.mirrors.is_some() { FLAG_MIRRORS_JSON } else { 0 };
        h[48..56].copy_from_slice(&flags.to_le_bytes());
        h[56..64].copy_from_slice(&mirror.len.to_le_bytes());
        h[64..72].copy_from_slice(&mirror.mtime_ns.to_le_bytes());
        h[72..76].copy_from_slice(&mirror.crc.to_le_bytes());
        for (i, s) in self.sections.iter().enumerate() {
            let at = 80 + 32 * i;
            h[at..at + 8].copy_from_slice(&s.offset.to_le_bytes());
            h[at + 8..at + 16].copy_from_slice(&s.len.to_le_bytes());
            h[at + 16..at + 24].copy_from_slice(&s.count.to_le_bytes());
            h[at + 24..at + 28].copy_from_slice(&s.crc.to_le_bytes());
        }
        let crc = crc32fast::hash(&h[..HEADER_CRC_AT]);
        h[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        h[244..252].copy_from_slice(&mirror.ctime_ns.to_le_bytes());
        h
    }

    /// Decodes and validates a header against the size of its file (see the module header).
    pub fn decode(b: &[u8], file_len: u64, path: &str) -> StoreResult<Header> {
        let corrupt = |message: String| StoreError::Corrupt {
            path: path.to_owned(),
            message,
        };
        if b.len() < HEADER_LEN {
            return Err(corrupt(format!(
                "truncated binary vector file: {} bytes, the header alone needs {HEADER_LEN}",
                b.len()
            )));
        }
        if b[0..8] != MAGIC {
            return Err(corrupt(
                "not a llama-index-rs binary vector file (bad magic bytes)".into(),
            ));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(corrupt(format!(
                "binary vector format version {version} is not supported (this build reads version {VERSION})"
            )));
        }
        let bom = u32_at(b, 12);
        if bom != BYTE_ORDER_MARK {
            return Err(corrupt(format!(
                "byte order mark is {bom:#010x}, expected {BYTE_ORDER_MARK:#010x} (little-endian file)"
            )));
        }
        let crc = u32_at(b, HEADER_CRC_AT);
        if crc != crc32fast::hash(&b[..HEADER_CRC_AT]) {
            return Err(corrupt("header checksum mismatch: the header is damaged".into()));
        }
        let element = u32_at(b, 16);
        if element != ELEMENT_F32 {
            return Err(corrupt(format!("element type {element} is not supported (1 = f32)")));
        }
        let header_len = u32_at(b, 20);
        if header_len as usize != HEADER_LEN {
            return Err(corrupt(format!("header length {header_len}, expected {HEADER_LEN}")));
        }
        let dim = u64_at(b, 24);
        let rows = u64_at(b, 32);
        let stride = u64_at(b, 40);
        let flags = u64_at(b, 48);
        if flags & !FLAG_MIRRORS_JSON != 0 {
            return Err(corrupt(format!("unknown flags {flags:#x}")));
        }
        let mirrors = (flags & FLAG_MIRRORS_JSON != 0).then(|| JsonState {
            len: u64_at(b, 56),
            mtime_ns: u64_at(b, 64) as i64,
            crc: u32_at(b, 72),
            ctime_ns: u64_at(b, 244) as i64,
        });
        if rows > u64::from(u32::MAX) {
            return Err(corrupt(format!(
                "{rows} rows: more than this format's limit of {}",
                u32::MAX
            )));
        }
        if rows > 0 && dim == 0 {
            return Err(corrupt(format!("{rows} rows of dimension 0")));
        }
        if dim > u64::from(u32::MAX) || stride != stride_for(dim) {
            return Err(corrupt(format!(
                "dimension {dim} with row stride {stride}: expected stride {}",
                stride_for(dim)
            )));
        }
        let mut sections = [Section::default(); 5];
        for (i, id) in SECTIONS.iter().enumerate() {
            let at = 80 + 32 * i;
            let s = Section {
                offset: u64_at(b, at),
                len: u64_at(b, at + 8),
                count: u64_at(b, at + 16),
                crc: u32_at(b, at + 24),
            };
            let name = id.name();
            let end = s.offset.checked_add(s.len);
            if s.offset < HEADER_LEN as u64 || end.is_none_or(|e| e > file_len) {
                return Err(corrupt(format!(
                    "section {name} (offset {}, length {}) lies outside the file ({file_len} bytes): truncated or damaged",
                    s.offset, s.len
                )));
            }
            sections[i] = s;
        }
        let vectors = sections[SectionId::Vectors as usize];
        let want = rows.checked_mul(stride).and_then(|n| n.checked_mul(4));
        if want != Some(vectors.len) || vectors.count != rows {
            return Err(corrupt(format!(
                "vectors section holds {} bytes for {} rows; {rows} rows of dimension {dim} need {}",
                vectors.len,
                vectors.count,
                want.map_or_else(|| "more than 2^64".to_owned(), |w| w.to_string())
            )));
        }
        if vectors.offset % 64 != 0 {
            return Err(corrupt(format!(
                "vectors section offset {} is not 64-byte aligned",
                vectors.offset
            )));
        }
        let norms = sections[SectionId::Norms as usize];
        if norms.len != rows * 8 || norms.count != rows {
            return Err(corrupt(format!(
                "norms section holds {} bytes, {rows} rows need {}",
                norms.len,
                rows * 8
            )));
        }
        let ids = sections[SectionId::Ids as usize];
        if ids.count != rows || ids.len < rows * 4 {
            return Err(corrupt(format!(
                "ids section claims {} ids in {} bytes for {rows} rows",
                ids.count, ids.len
            )));
        }
        for id in [SectionId::RefDocs, SectionId::Metadata] {
            let s = sections[id as usize];
            if s.count.checked_mul(MIN_ENTRY_LEN).is_none_or(|n| n > s.len) {
                return Err(corrupt(format!(
                    "section {} claims {} entries but holds only {} bytes",
                    id.name(),
                    s.count,
                    s.len
                )));
            }
        }
        Ok(Header {
            dim,
            rows,
            stride,
            mirrors,
            sections,
        })
    }
}

/// Section CRCs cover `dim` and `rows` (little-endian u64s) before the section's bytes, so a header
/// whose dimension or row count was changed (and its own CRC recomputed) still fails the section checks.
fn section_hasher(h: &Header) -> crc32fast::Hasher {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&h.dim.to_le_bytes());
    hasher.update(&h.rows.to_le_bytes());
    hasher
}

/// A binary vector file mapped read-only, header validated.
#[derive(Clone, Debug)]
pub struct BinaryFile {
    pub map: Arc<Mmap>,
    pub header: Header,
    pub path: String,
}

impl BinaryFile {
    pub fn open(path: &Path) -> StoreResult<BinaryFile> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
        if len < HEADER_LEN as u64 {
            return Err(StoreError::Corrupt {
                path: name,
                message: format!("truncated binary vector file: {len} bytes, the header alone needs {HEADER_LEN}"),
            });
        }
        // SAFETY: the mapping is read-only and private to this process. Persists never write a file in
        // place (they rename a new file over it, which leaves this mapping intact); another program
        // truncating the file while it is mapped would fault, as with any memory-mapped file.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| StoreError::io(path, e))?;
        let header = Header::decode(&map, map.len() as u64, &name)?;
        Ok(BinaryFile {
            map: Arc::new(map),
            header,
            path: name,
        })
    }

    pub fn section_bytes(&self, id: SectionId) -> &[u8] {
        let s = self.header.section(id);
        // In bounds: `Header::decode` checked every section against the file length.
        &self.map[s.offset as usize..(s.offset + s.len) as usize]
    }

    pub fn check_crc(&self, id: SectionId) -> StoreResult<()> {
        let mut h = section_hasher(&self.header);
        h.update(self.section_bytes(id));
        let got = h.finalize();
        let want = self.header.section(id).crc;
        if got == want {
            Ok(())
        } else {
            Err(self.corrupt(format!(
                "section {} checksum mismatch (stored {want:#010x}, computed {got:#010x})",
                id.name()
            )))
        }
    }

    pub fn reader(&self, id: SectionId) -> SectionReader<'_> {
        SectionReader {
            bytes: self.section_bytes(id),
            pos: 0,
            section: id.name(),
            path: &self.path,
        }
    }

    pub fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }
}

/// Bounds-checked sequential reads of one section.
pub struct SectionReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    section: &'static str,
    path: &'a str,
}

impl<'a> SectionReader<'a> {
    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt {
            path: self.path.to_owned(),
            message: format!(
                "section {} at byte {} of {}: {what}",
                self.section,
                self.pos,
                self.bytes.len()
            ),
        }
    }

    #[inline]
    pub fn u32(&mut self) -> StoreResult<u32> {
        let b = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.corrupt("ends inside an entry"))?;
        self.pos += 4;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn f64(&mut self) -> StoreResult<f64> {
        let b = self
            .bytes
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| self.corrupt("ends inside an entry"))?;
        self.pos += 8;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A u32 length followed by that many bytes.
    #[inline]
    pub fn bytes(&mut self) -> StoreResult<&'a [u8]> {
        // Fast path (the entry is whole): one bounds check; the rest, with its messages, is cold.
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        if let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_le_bytes(*len) as usize;
            if let Some(b) = tail.get(..len) {
                self.pos += 4 + len;
                return Ok(b);
            }
        }
        self.bytes_or_error()
    }

    #[cold]
    fn bytes_or_error(&mut self) -> StoreResult<&'a [u8]> {
        let len = self.u32()? as usize;
        let b = self
            .bytes
            .get(self.pos..self.pos.saturating_add(len))
            .ok_or_else(|| self.corrupt(&format!("a {len}-byte string runs past the end")))?;
        self.pos += len;
        Ok(b)
    }

    /// A string's offset and length in the section, checked like `str` (for callers that keep the
    /// offset rather than the `&str`). `section_is_ascii`: the caller found the whole section ASCII
    /// (`<[u8]>::is_ascii`, one fast pass; true whenever all strings are ASCII and shorter than 128
    /// bytes, as ids usually are), so every string in it is valid UTF-8 without a check of its own.
    #[inline]
    pub fn text_at(&mut self, section_is_ascii: bool) -> StoreResult<(usize, usize)> {
        let (at, b) = self.bytes_at()?;
        // Short ASCII strings: a branch-free OR of the bytes is several times cheaper than `from_utf8`.
        if section_is_ascii || b.iter().fold(0u8, |acc, &x| acc | x) < 0x80 || std::str::from_utf8(b).is_ok() {
            Ok((at, b.len()))
        } else {
            Err(self.corrupt("a string is not valid UTF-8"))
        }
    }

    /// Like `bytes`, with the bytes' offset in the section.
    #[inline]
    pub fn bytes_at(&mut self) -> StoreResult<(usize, &'a [u8])> {
        let b = self.bytes()?;
        Ok((self.pos - b.len(), b))
    }

    /// The read position in the section.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn str(&mut self) -> StoreResult<&'a str> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.corrupt("a string is not valid UTF-8"))
    }

    pub fn finish(&self) -> StoreResult<()> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.corrupt("unexpected bytes after the last entry"))
        }
    }

    pub fn error(&self, what: &str) -> StoreError {
        self.corrupt(what)
    }
}

/// Writes a binary vector file section by section into an `AtomicFile`, checksumming on the way;
/// the header goes in last (at offset 0), then the file is committed.
pub struct BinaryWriter<'a> {
    file: AtomicFile<'a>,
    buf: Vec<u8>,
    pos: u64,
    header: Header,
    current: Option<(SectionId, u64, crc32fast::Hasher)>,
}

const WRITE_BUFFER: usize = 8 << 20;

impl<'a> BinaryWriter<'a> {
    pub fn create(lock: &DirLock, ops: &'a dyn FileOps, target: &Path, dim: u64, rows: u64) -> StoreResult<Self> {
        let file = AtomicFile::create(lock, ops, target)?;
        let header = Header {
            dim,
            rows,
            stride: stride_for(dim),
            mirrors: None,
            sections: Default::default(),
        };
        let mut w = BinaryWriter {
            file,
            buf: Vec::with_capacity(WRITE_BUFFER),
            pos: 0,
            header,
            current: None,
        };
        w.raw(&[0u8; HEADER_LEN])?;
        Ok(w)
    }

    fn raw(&mut self, b: &[u8]) -> StoreResult<()> {
        if self.buf.len() + b.len() > WRITE_BUFFER {
            self.flush()?;
        }
        if b.len() >= WRITE_BUFFER {
            self.file.write(b)?;
        } else {
            self.buf.extend_from_slice(b);
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> StoreResult<()> {
        if !self.buf.is_empty() {
            self.file.write(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Pads with zeros to `align` and opens a section.
    pub fn begin(&mut self, id: SectionId, align: u64) -> StoreResult<()> {
        let pad = self.pos.next_multiple_of(align) - self.pos;
        self.raw(&vec![0u8; pad as usize])?;
        self.current = Some((id, self.pos, section_hasher(&self.header)));
        Ok(())
    }

    pub fn write(&mut self, b: &[u8]) -> StoreResult<()> {
        if let Some((_, _, h)) = self.current.as_mut() {
            h.update(b);
        }
        self.raw(b)
    }

    pub fn write_u32(&mut self, v: u32) -> StoreResult<()> {
        self.write(&v.to_le_bytes())
    }

    pub fn write_bytes(&mut self, b: &[u8]) -> StoreResult<()> {
        let len = u32::try_from(b.len()).map_err(|_| StoreError::InvalidValue("a string longer than 4 GiB".into()))?;
        self.write_u32(len)?;
        self.write(b)
    }

    pub fn end(&mut self, count: u64) {
        let (id, offset, h) = self.current.take().expect("a section is open");
        self.header.sections[id as usize] = Section {
            offset,
            len: self.pos - offset,
            count,
            crc: h.finalize(),
        };
    }

    pub fn finish(mut self, mirrors: Option<JsonState>) -> StoreResult<std::fs::Metadata> {
        self.flush()?;
        self.header.mirrors = mirrors;
        let h = self.header.encode();
        self.file.write_at(&h, 0)?;
        self.file.commit()
    }
}
