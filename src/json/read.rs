//! A JSON reader that accepts exactly what `CPython` 3.11 `json.loads` accepts for UTF-8 bytes, and
//! produces the same values.
//!
//! Guarantees:
//! - Accepted: one value, optionally surrounded by whitespace (space, `\t`, `\n`, `\r`), after an
//!   optional UTF-8 BOM; the literals `NaN`, `Infinity`, `-Infinity`; numbers matching
//!   `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?` (integers stay integers of any size up to
//!   Python's 4300-digit `int` limit; floats are correctly rounded, overflow gives infinity);
//!   strings without raw control characters (U+0000..U+001F), with the escapes
//!   `\" \\ \/ \b \f \n \r \t \uXXXX`. An escaped surrogate pair combines into one code point, a
//!   lone surrogate is kept. Like `json.loads(bytes)` (which decodes with `surrogatepass`), a
//!   surrogate encoded in UTF-8 (`ED A0 80`) is accepted; other invalid UTF-8 inside a string is an error.
//! - Objects keep the first position of a key and its last value (Python `dict` semantics).
//! - Errors carry the byte offset and Python's message ("Expecting value", "Extra data", ...).
//! - Nothing panics on any input. Nesting is handled with an explicit stack (no recursion) and is
//!   limited to `MAX_DEPTH` open containers ("nesting too deep"), deeper than Python's default
//!   recursion limit allows, and shallow enough that recursive consumers (drop, the writer) are safe
//!   on a 2 MB thread stack.
//!
//! Not supported: UTF-16/UTF-32 input (which `json.loads` detects from NUL bytes). A raw UTF-8
//! encoded surrogate pair (`ED A0 BD ED B8 80`) becomes one code point (Python keeps two); both write
//! back identically.
//!
//! `Cursor` is a streaming reader for large documents: callers walk objects and arrays themselves and
//! parse the leaves they need (`parse_f64` on the hot path allocates nothing).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::number;
use super::value::{push_code_point, JStr, Object, Value};
use crate::error::{StoreError, StoreResult};

/// Maximum number of containers open at once.
pub const MAX_DEPTH: usize = 2048;

/// Python's `sys.int_info.default_max_str_digits`: `int()` refuses longer decimal strings.
const MAX_INT_DIGITS: usize = 4300;

/// Objects with at least this many keys track key hashes so duplicate detection stays O(1).
const HASHED_OBJECT_LEN: usize = 16;

/// Parses a whole document, like `json.loads(bytes)`.
///
/// # Errors
/// `StoreError::Json` with the byte offset and Python's message ("Expecting value", ...) for input `json.loads` rejects.
pub fn parse(bytes: &[u8], source_name: &str) -> StoreResult<Value> {
    let mut cursor = Cursor::new(bytes, source_name);
    let value = cursor.parse_value()?;
    cursor.finish()?;
    Ok(value)
}

/// A position in a JSON document, with methods that consume one token or value at a time.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    source_name: &'a str,
    /// Containers opened with `begin_object` / `begin_array` and not yet closed.
    open: Vec<Open>,
    /// Offset of `bytes[0]` in the whole document (non-zero when resumed on a later chunk).
    base: usize,
}

/// Where a `Cursor` stands (position and open containers), to resume it on another buffer that holds
/// the same document from a later point: see `ChunkedReader`.
#[derive(Clone, Default)]
pub struct CursorState {
    pos: usize,
    open: Vec<Open>,
}

impl CursorState {
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }
}

#[derive(Clone, Copy)]
struct Open {
    object: bool,
    first: bool,
}

enum Frame {
    Array(Vec<Value>),
    Object {
        obj: Object,
        key: JStr,
        hashes: Option<HashSet<u64>>,
    },
}

/// Bytes that end a run of plain string content: `"`, `\` and control characters.
static STRING_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

#[inline]
fn word_has_string_special(w: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    (control | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\')))) != 0
}

/// Index of the first `"`, `\` or control byte at or after `i`, or `bytes.len()`.
#[inline]
fn find_string_special(bytes: &[u8], mut i: usize) -> usize {
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        if word_has_string_special(u64::from_le_bytes(word)) {
            break;
        }
        i += 8;
    }
    while i < bytes.len() && !STRING_SPECIAL[bytes[i] as usize] {
        i += 1;
    }
    i
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    let mut v = 0u32;
    for &d in digits {
        v = (v << 4) | (d as char).to_digit(16)?;
    }
    Some(v)
}

/// The surrogate code point encoded (as `surrogatepass` would) at `bytes[at..at + 3]`, if any.
fn encoded_surrogate(bytes: &[u8], at: usize) -> Option<u32> {
    match *bytes.get(at..at + 3)? {
        [0xED, b1 @ 0xA0..=0xBF, b2 @ 0x80..=0xBF] => Some(0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F)),
        _ => None,
    }
}

/// Appends a code point to generalized UTF-8, combining a low surrogate with a high surrogate that
/// ends `buf` so that `buf` never holds a surrogate pair.
fn push_wtf8(buf: &mut Vec<u8>, cp: u32) {
    if (0xDC00..=0xDFFF).contains(&cp) {
        if let [.., 0xED, b1 @ 0xA0..=0xAF, b2] = buf[..] {
            let high = 0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
            buf.truncate(buf.len() - 3);
            push_code_point(buf, 0x1_0000 + ((high - 0xD800) << 10) + (cp - 0xDC00));
            return;
        }
    }
    push_code_point(buf, cp);
}

fn hash_key(key: &JStr) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

fn insert_key(obj: &mut Object, hashes: &mut Option<HashSet<u64>>, key: JStr, value: Value) {
    match hashes {
        Some(set) => {
            if set.insert(hash_key(&key)) {
                obj.push_unique(key, value);
            } else {
                obj.insert(key, value);
            }
        }
        None => {
            obj.insert(key, value);
            if obj.len() >= HASHED_OBJECT_LEN {
                *hashes = Some(obj.iter().map(|(k, _)| hash_key(k)).collect());
            }
        }
    }
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`, after a UTF-8 BOM if there is one. `source_name` (usually
    /// the file path) is used in error messages.
    pub fn new(bytes: &'a [u8], source_name: &'a str) -> Self {
        let pos = if bytes.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        Cursor {
            bytes,
            pos,
            source_name,
            open: Vec::new(),
            base: 0,
        }
    }

    /// A cursor in `state` over `bytes`, where `bytes[0]` is byte `base` of the whole document.
    pub fn resume(bytes: &'a [u8], source_name: &'a str, state: CursorState, base: usize) -> Self {
        Cursor {
            bytes,
            pos: state.pos,
            source_name,
            open: state.open,
            base,
        }
    }

    /// A cursor at `pos`, inside an object of which it has read one member or more (so the next
    /// `next_key` expects `,` or `}`): for reading the members of one object from a known member
    /// boundary (see `kv::KvStore::from_json`, which splits large collections across threads).
    /// `depth` is the number of containers open there, that one included (nesting limits count them).
    #[must_use]
    pub fn after_member(bytes: &'a [u8], source_name: &'a str, pos: usize, depth: usize) -> Self {
        let open = Open {
            object: true,
            first: false,
        };
        Cursor {
            bytes,
            pos,
            source_name,
            open: vec![open; depth.max(1)],
            base: 0,
        }
    }

    /// Number of containers opened with `begin_object` / `begin_array` and not yet closed.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.open.len()
    }

    /// Moves to `pos`, which must hold the `}` that closes the innermost open object after a member
    /// (another cursor read the members in between): the next `next_key` returns `None`.
    pub fn skip_to_object_end(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The position and open containers, for `resume`.
    #[must_use]
    pub fn state(&self) -> CursorState {
        CursorState {
            pos: self.pos,
            open: self.open.clone(),
        }
    }

    /// The offset (in the whole document) of the first `byte` at or after the cursor, if it is in
    /// memory. Does not move the cursor.
    pub fn find_byte(&self, byte: u8) -> Option<usize> {
        memchr::memchr(byte, &self.bytes[self.pos..]).map(|i| self.base + self.pos + i)
    }

    /// Moves the cursor to `offset` (in the whole document), past bytes the caller has read itself.
    /// Only for a caller that knows the input from here to `offset` is one complete value.
    pub fn skip_to(&mut self, offset: usize) {
        self.pos = (offset - self.base).min(self.bytes.len());
    }

    /// Goes back to `state`, taken from this cursor earlier (a caller that read ahead and stops).
    pub fn restore(&mut self, state: CursorState) {
        self.pos = state.pos;
        self.open = state.open;
    }

    /// Byte offset of the next unread byte.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> StoreError {
        StoreError::json(self.source_name, self.base + offset, message)
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips whitespace and returns the next byte without consuming it (`None` at the end).
    pub fn peek_byte(&mut self) -> Option<u8> {
        self.skip_ws();
        self.peek()
    }

    /// Skips whitespace and tells whether the next value is `null` (without consuming it).
    pub fn peek_null(&mut self) -> bool {
        self.skip_ws();
        self.bytes[self.pos..].starts_with(b"null")
    }

    /// Checks that only whitespace is left (Python: "Extra data" otherwise).
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn finish(&mut self) -> StoreResult<()> {
        self.skip_ws();
        if !self.open.is_empty() {
            return Err(self.error(self.pos, "finish() called inside an unclosed container"));
        }
        if self.pos != self.bytes.len() {
            return Err(self.error(self.pos, "Extra data"));
        }
        Ok(())
    }

    fn check_depth(&self, nested: usize) -> StoreResult<()> {
        if self.open.len() + nested >= MAX_DEPTH {
            return Err(self.error(self.pos, format!("nesting too deep (more than {MAX_DEPTH} levels)")));
        }
        Ok(())
    }

    /// Consumes `{`. Then call `next_key` until it returns `None`, reading each value in between.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn begin_object(&mut self) -> StoreResult<()> {
        self.skip_ws();
        if self.peek() != Some(b'{') {
            return Err(self.error(self.pos, "Expecting object"));
        }
        self.check_depth(0)?;
        self.pos += 1;
        self.open.push(Open {
            object: true,
            first: true,
        });
        Ok(())
    }

    /// Consumes `[`. Then call `next_array_item` until it returns `false`, reading each item.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn begin_array(&mut self) -> StoreResult<()> {
        self.skip_ws();
        if self.peek() != Some(b'[') {
            return Err(self.error(self.pos, "Expecting array"));
        }
        self.check_depth(0)?;
        self.pos += 1;
        self.open.push(Open {
            object: false,
            first: true,
        });
        Ok(())
    }

    /// The next key of the object opened by `begin_object` (consuming `,` before it and `:` after it),
    /// or `None` after consuming the closing `}`.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn next_key(&mut self) -> StoreResult<Option<JStr>> {
        match self.open.last() {
            Some(Open { object: true, first }) => {
                let first = *first;
                if !self.advance_in_container(first, b'}')? {
                    return Ok(None);
                }
                self.object_key::<true>().map(Some)
            }
            _ => Err(self.error(self.pos, "next_key() called outside an object")),
        }
    }

    /// Whether the array opened by `begin_array` has another item (consuming the `,` before it), or
    /// `false` after consuming the closing `]`.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn next_array_item(&mut self) -> StoreResult<bool> {
        match self.open.last() {
            Some(Open { object: false, first }) => {
                let first = *first;
                self.advance_in_container(first, b']')
            }
            _ => Err(self.error(self.pos, "next_array_item() called outside an array")),
        }
    }

    /// In an array opened by `begin_array`: parses the remaining items as `parse_f64` does, passing
    /// each to `push`, and consumes the closing `]`. Same results and errors as looping over
    /// `next_array_item` and `parse_f64`; the usual `, number` sequence takes a tight loop.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn parse_f64_items(&mut self, mut push: impl FnMut(f64)) -> StoreResult<()> {
        while self.next_array_item()? {
            push(self.parse_f64()?);
            let bytes = self.bytes;
            loop {
                let mut i = self.pos;
                if bytes.get(i) != Some(&b',') {
                    break;
                }
                i += 1;
                while bytes.get(i) == Some(&b' ') {
                    i += 1;
                }
                let Some((end, x)) = number::fast_f64(bytes, i) else {
                    break;
                };
                push(x);
                self.pos = end;
            }
        }
        Ok(())
    }

    /// Shared step of `next_key` / `next_array_item`: consumes the closing byte (returning false) or,
    /// unless this is the first member, the `,` delimiter.
    fn advance_in_container(&mut self, first: bool, close: u8) -> StoreResult<bool> {
        self.skip_ws();
        match self.peek() {
            Some(b) if b == close => {
                self.pos += 1;
                self.open.pop();
                return Ok(false);
            }
            _ if first => {}
            Some(b',') => {
                self.pos += 1;
                self.skip_ws();
            }
            _ => return Err(self.error(self.pos, "Expecting ',' delimiter")),
        }
        if let Some(top) = self.open.last_mut() {
            top.first = false;
        }
        Ok(true)
    }

    /// Parses the next value into a tree.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn parse_value(&mut self) -> StoreResult<Value> {
        self.walk::<true>()
    }

    /// Consumes the next value, validating it exactly like `parse_value` without building it.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn skip_value(&mut self) -> StoreResult<()> {
        self.walk::<false>().map(drop)
    }

    /// Consumes the next value and returns its text (validated, without surrounding whitespace).
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn raw_value(&mut self) -> StoreResult<&'a [u8]> {
        self.skip_ws();
        let start = self.pos;
        self.skip_value()?;
        Ok(&self.bytes[start..self.pos])
    }

    /// Consumes the next value and returns its text like `raw_value`, but first asks `prefix_len`
    /// for the length of a value at the current position: when it answers, the value is taken
    /// without the validating scan (so `prefix_len` must only answer for valid JSON). The flag says
    /// whether `prefix_len` answered.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn raw_value_with(&mut self, prefix_len: impl Fn(&[u8]) -> Option<usize>) -> StoreResult<(&'a [u8], bool)> {
        self.skip_ws();
        let start = self.pos;
        if let Some(len) = prefix_len(&self.bytes[start..]) {
            if let Some(raw) = self.bytes.get(start..start + len) {
                self.pos = start + len;
                return Ok((raw, true));
            }
        }
        self.skip_value()?;
        Ok((&self.bytes[start..self.pos], false))
    }

    /// Parses the next value, which must be a string.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn parse_string(&mut self) -> StoreResult<JStr> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.error(self.pos, "Expecting string"));
        }
        self.string::<true>()
    }

    /// Parses the next value, which must be a number (integers are converted, correctly rounded) or
    /// one of `NaN`, `Infinity`, `-Infinity`. Allocates nothing.
    ///
    /// # Errors
    /// `StoreError::Json` with the byte offset and Python's message if the input does not match.
    pub fn parse_f64(&mut self) -> StoreResult<f64> {
        self.skip_ws();
        let start = self.pos;
        let bytes = self.bytes;
        let rest = &bytes[start..];
        if let Some((end, x)) = number::fast_f64(bytes, start) {
            self.pos = end;
            return Ok(x);
        }
        if let Some((end, is_float)) = scan_number(self.bytes, start) {
            if !is_float {
                self.check_int_digits(start, end)?;
            }
            self.pos = end;
            return self.float_from_span(start, end);
        }
        for (token, x) in [
            (&b"NaN"[..], f64::NAN),
            (b"Infinity", f64::INFINITY),
            (b"-Infinity", f64::NEG_INFINITY),
        ] {
            if rest.starts_with(token) {
                self.pos += token.len();
                return Ok(x);
            }
        }
        Err(self.error(start, "Expecting number"))
    }

    fn float_from_span(&self, start: usize, end: usize) -> StoreResult<f64> {
        if let Some((fast_end, x)) = number::fast_f64(self.bytes, start) {
            debug_assert_eq!(fast_end, end);
            return Ok(x);
        }
        // `scan_number` accepted exactly the JSON number grammar: the span is ASCII, so the UTF-8
        // check `str::from_utf8` would repeat is skipped (this runs once per embedding value).
        let span = &self.bytes[start..end];
        debug_assert!(span.is_ascii());
        // SAFETY: ASCII bytes are valid UTF-8.
        let text = unsafe { std::str::from_utf8_unchecked(span) };
        text.parse::<f64>().map_err(|_| self.error(start, "Invalid number"))
    }

    fn check_int_digits(&self, start: usize, end: usize) -> StoreResult<()> {
        let digits = end - start - usize::from(self.bytes[start] == b'-');
        if digits > MAX_INT_DIGITS {
            return Err(self.error(
                start,
                format!("Exceeds the limit ({MAX_INT_DIGITS} digits) for integer string conversion: value has {digits} digits"),
            ));
        }
        Ok(())
    }

    /// At a `"` that must start an object key: the key, then the `:` delimiter.
    fn object_key<const BUILD: bool>(&mut self) -> StoreResult<JStr> {
        if self.peek() != Some(b'"') {
            return Err(self.error(self.pos, "Expecting property name enclosed in double quotes"));
        }
        let key = self.string::<BUILD>()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.error(self.pos, "Expecting ':' delimiter"));
        }
        self.pos += 1;
        Ok(key)
    }

    /// One value, nesting handled with an explicit stack. Without `BUILD` the value is validated and
    /// `Value::Null` returned.
    fn walk<const BUILD: bool>(&mut self) -> StoreResult<Value> {
        let mut frames: Vec<Frame> = Vec::new();
        'value: loop {
            self.skip_ws();
            let mut value = match self.peek() {
                Some(b'[') => {
                    self.check_depth(frames.len())?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        Value::Array(Vec::new())
                    } else {
                        frames.push(Frame::Array(Vec::new()));
                        continue 'value;
                    }
                }
                Some(b'{') => {
                    self.check_depth(frames.len())?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        Value::Object(Object::new())
                    } else {
                        let key = self.object_key::<BUILD>()?;
                        frames.push(Frame::Object {
                            obj: Object::new(),
                            key,
                            hashes: None,
                        });
                        continue 'value;
                    }
                }
                _ => self.scalar::<BUILD>()?,
            };
            // A value is complete: attach it to its container, closing containers as they end.
            loop {
                let Some(top) = frames.last_mut() else { return Ok(value) };
                self.skip_ws();
                let next = self.peek();
                let closed = match top {
                    Frame::Array(items) => {
                        if BUILD {
                            items.push(value);
                        }
                        match next {
                            Some(b',') => {
                                self.pos += 1;
                                continue 'value;
                            }
                            Some(b']') => true,
                            _ => false,
                        }
                    }
                    Frame::Object { obj, key, hashes } => {
                        if BUILD {
                            insert_key(obj, hashes, std::mem::take(key), value);
                        }
                        match next {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                *key = self.object_key::<BUILD>()?;
                                continue 'value;
                            }
                            Some(b'}') => true,
                            _ => false,
                        }
                    }
                };
                if !closed {
                    return Err(self.error(self.pos, "Expecting ',' delimiter"));
                }
                self.pos += 1;
                value = match frames.pop() {
                    Some(Frame::Array(items)) => Value::Array(items),
                    Some(Frame::Object { obj, .. }) => Value::Object(obj),
                    None => Value::Null,
                };
            }
        }
    }

    /// A string, number or literal at the current position (whitespace already skipped).
    fn scalar<const BUILD: bool>(&mut self) -> StoreResult<Value> {
        let start = self.pos;
        let bytes = self.bytes;
        let rest = &bytes[start..];
        let literal = |token: &[u8], v: Value| rest.starts_with(token).then_some((token.len(), v));
        let found = match rest.first() {
            Some(b'"') => {
                let s = self.string::<BUILD>()?;
                return Ok(if BUILD { Value::Str(s) } else { Value::Null });
            }
            Some(b'n') => literal(b"null", Value::Null),
            Some(b't') => literal(b"true", Value::Bool(true)),
            Some(b'f') => literal(b"false", Value::Bool(false)),
            Some(b'N') => literal(b"NaN", Value::Float(f64::NAN)),
            Some(b'I') => literal(b"Infinity", Value::Float(f64::INFINITY)),
            Some(b'-') if rest.starts_with(b"-Infinity") => Some((9, Value::Float(f64::NEG_INFINITY))),
            Some(b'-' | b'0'..=b'9') => return self.number::<BUILD>(),
            _ => None,
        };
        match found {
            Some((len, v)) => {
                self.pos += len;
                Ok(v)
            }
            None => Err(self.error(start, "Expecting value")),
        }
    }

    fn number<const BUILD: bool>(&mut self) -> StoreResult<Value> {
        let start = self.pos;
        let Some((end, is_float)) = scan_number(self.bytes, start) else {
            return Err(self.error(start, "Expecting value"));
        };
        let value = if is_float {
            if BUILD {
                Value::Float(self.float_from_span(start, end)?)
            } else {
                Value::Null
            }
        } else {
            self.check_int_digits(start, end)?;
            if BUILD {
                // The span is ASCII digits with an optional '-'.
                let text = std::str::from_utf8(&self.bytes[start..end]).unwrap_or_default();
                match text.parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::BigInt(text.into()),
                }
            } else {
                Value::Null
            }
        };
        self.pos = end;
        Ok(value)
    }

    /// A string starting at the current `"`. Without `BUILD` it is validated and an empty `JStr`
    /// returned.
    fn string<const BUILD: bool>(&mut self) -> StoreResult<JStr> {
        let bytes = self.bytes;
        let open = self.pos;
        let mut i = open + 1;
        // Content is `buf` followed by `bytes[copied..i]`; `buf` stays unused unless needed.
        let mut copied = i;
        let mut buf: Vec<u8> = Vec::new();
        let mut used_buf = false;
        loop {
            let special = find_string_special(bytes, i);
            // Validate the plain run: UTF-8, plus surrogates encoded as `surrogatepass` writes them.
            let mut r = i;
            while let Err(e) = std::str::from_utf8(&bytes[r..special]) {
                let bad = r + e.valid_up_to();
                let Some(cp) = encoded_surrogate(bytes, bad).filter(|_| bad + 3 <= special) else {
                    return Err(self.error(bad, "Invalid UTF-8 in string"));
                };
                if BUILD {
                    buf.extend_from_slice(&bytes[copied..bad]);
                    push_wtf8(&mut buf, cp);
                }
                used_buf = true;
                r = bad + 3;
                copied = r;
            }
            i = special;
            match bytes.get(i) {
                None => return Err(self.error(open, "Unterminated string starting at")),
                Some(b'"') => {
                    self.pos = i + 1;
                    if !BUILD {
                        return Ok(JStr::default());
                    }
                    if !used_buf {
                        return Ok(JStr::from_wtf8_unchecked(bytes[copied..i].to_vec()));
                    }
                    buf.extend_from_slice(&bytes[copied..i]);
                    return Ok(JStr::from_wtf8_unchecked(buf));
                }
                Some(b'\\') => {
                    if BUILD {
                        buf.extend_from_slice(&bytes[copied..i]);
                    }
                    used_buf = true;
                    let (cp, len) = self.escape(open, i)?;
                    if BUILD {
                        push_wtf8(&mut buf, cp);
                    }
                    i += len;
                    copied = i;
                }
                Some(_) => return Err(self.error(i, "Invalid control character at")),
            }
        }
    }

    /// The escape sequence at `bytes[at] == '\\'`: its code point and length in bytes.
    fn escape(&self, open: usize, at: usize) -> StoreResult<(u32, usize)> {
        let bytes = self.bytes;
        let Some(&letter) = bytes.get(at + 1) else {
            return Err(self.error(open, "Unterminated string starting at"));
        };
        let cp = match letter {
            b'"' => 0x22,
            b'\\' => 0x5C,
            b'/' => 0x2F,
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => 0x0A,
            b'r' => 0x0D,
            b't' => 0x09,
            b'u' => {
                let invalid = || self.error(at + 1, "Invalid \\uXXXX escape");
                let unit = hex4(bytes, at + 2).ok_or_else(invalid)?;
                if (0xD800..=0xDBFF).contains(&unit) && bytes.get(at + 6..at + 8) == Some(b"\\u") {
                    let low = hex4(bytes, at + 8).ok_or_else(|| self.error(at + 7, "Invalid \\uXXXX escape"))?;
                    if (0xDC00..=0xDFFF).contains(&low) {
                        return Ok((0x1_0000 + ((unit - 0xD800) << 10) + (low - 0xDC00), 12));
                    }
                }
                return Ok((unit, 6));
            }
            other => {
                let shown = if other.is_ascii() {
                    format!("{:?}", other as char)
                } else {
                    format!("byte 0x{other:02x}")
                };
                return Err(self.error(at, format!("Invalid \\escape: {shown}")));
            }
        };
        Ok((cp, 2))
    }
}

/// Matches the JSON number grammar at `start`: the end of the match and whether it is a float
/// (has a fraction or exponent). `None` if no number starts there.
pub(super) fn scan_number(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = start;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            i += 1;
            while digit(i) {
                i += 1;
            }
        }
        _ => return None,
    }
    let mut is_float = false;
    if b.get(i) == Some(&b'.') && digit(i + 1) {
        i += 2;
        while digit(i) {
            i += 1;
        }
        is_float = true;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        let mut k = i + 1;
        if let Some(b'+' | b'-') = b.get(k) {
            k += 1;
        }
        if digit(k) {
            while digit(k) {
                k += 1;
            }
            i = k;
            is_float = true;
        }
    }
    Some((i, is_float))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::write::to_vec;

    fn p(s: &[u8]) -> Value {
        parse(s, "t").unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(s)))
    }

    fn err(s: &[u8]) -> (u64, String) {
        match parse(s, "t") {
            Err(StoreError::Json { offset, message, .. }) => (offset, message),
            other => panic!("{:?}: expected an error, got {other:?}", String::from_utf8_lossy(s)),
        }
    }

    fn roundtrip(s: &str) -> String {
        String::from_utf8(to_vec(&p(s.as_bytes()))).unwrap()
    }

    #[test]
    fn scalars() {
        assert_eq!(p(b"null"), Value::Null);
        assert_eq!(p(b" true "), Value::Bool(true));
        assert_eq!(p(b"\t\r\nfalse\n"), Value::Bool(false));
        assert_eq!(p(b"0"), Value::Int(0));
        assert_eq!(p(b"-0"), Value::Int(0));
        assert_eq!(p(b"-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(p(b"9223372036854775807"), Value::Int(i64::MAX));
        assert_eq!(p(b"9223372036854775808"), Value::BigInt("9223372036854775808".into()));
        assert_eq!(p(b"-9223372036854775809"), Value::BigInt("-9223372036854775809".into()));
        assert_eq!(p(b"1.5"), Value::Float(1.5));
        assert_eq!(p(b"1E2"), Value::Float(100.0));
        assert_eq!(p(b"1e-2"), Value::Float(0.01));
        assert_eq!(p(b"1e+400"), Value::Float(f64::INFINITY));
        assert_eq!(p(b"-1e400"), Value::Float(f64::NEG_INFINITY));
        assert!(matches!(p(b"-0.0"), Value::Float(x) if x == 0.0 && x.is_sign_negative()));
        assert!(matches!(p(b"NaN"), Value::Float(x) if x.is_nan()));
        assert_eq!(p(b"Infinity"), Value::Float(f64::INFINITY));
        assert_eq!(p(b"-Infinity"), Value::Float(f64::NEG_INFINITY));
        assert_eq!(p(b"\xEF\xBB\xBF[]"), Value::Array(vec![]));
        let long = "7".repeat(4300);
        assert_eq!(p(long.as_bytes()), Value::BigInt(long.as_str().into()));
        assert!(err(format!("-{long}7").as_bytes())
            .1
            .starts_with("Exceeds the limit (4300 digits)"));
        let long_float = format!("{long}7.0");
        assert!(matches!(p(long_float.as_bytes()), Value::Float(x) if x.is_infinite()));
    }

    #[test]
    fn strings() {
        assert_eq!(p(br#""abc""#), Value::str("abc"));
        assert_eq!(
            p("\"caf\u{e9} \u{1F600}\"".as_bytes()),
            Value::str("caf\u{e9} \u{1F600}")
        );
        assert_eq!(p(br#""\"\\\/\b\f\n\r\t""#), Value::str("\"\\/\u{8}\u{c}\n\r\t"));
        assert_eq!(p(br#""\u00E9\u00e9\ud83d\ude00""#), Value::str("\u{e9}\u{e9}\u{1F600}"));
        assert_eq!(p(b"\"\x7f\""), Value::str("\u{7f}"));
        // Lone surrogates are kept; a high surrogate followed by a non-low escape stays lone.
        for (input, cps) in [
            (&br#""\ud800""#[..], vec![0xD800]),
            (br#""\udc00x""#, vec![0xDC00, 0x78]),
            (br#""\ud800\u0041""#, vec![0xD800, 0x41]),
            (br#""\ud800\ud800\udc00""#, vec![0xD800, 0x10000]),
            (b"\"\xED\xA0\x80\"", vec![0xD800]),
            (b"\"\xED\xA0\xBD\xED\xB8\x80\"", vec![0x1F600]),
            (b"\"\xED\xA0\xBD\\ude00\"", vec![0x1F600]),
        ] {
            match p(input) {
                Value::Str(s) => assert_eq!(s.code_points().collect::<Vec<_>>(), cps, "{input:?}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(roundtrip(r#""\ud800""#), r#""\ud800""#);
        assert_eq!(err(b"\"abc"), (0, "Unterminated string starting at".into()));
        assert_eq!(err(b"[\"abc\\"), (1, "Unterminated string starting at".into()));
        assert_eq!(err(b"\"a\nb\""), (2, "Invalid control character at".into()));
        assert_eq!(err(b"\"a\x00\""), (2, "Invalid control character at".into()));
        assert_eq!(err(br#""\u12""#), (2, "Invalid \\uXXXX escape".into()));
        assert_eq!(err(br#""\u12g4""#).1, "Invalid \\uXXXX escape");
        assert_eq!(err(br#""\ud800\u12""#), (8, "Invalid \\uXXXX escape".into()));
        assert_eq!(err(br#""\x""#).1, "Invalid \\escape: 'x'");
        assert_eq!(err(b"\"\xff\"").1, "Invalid UTF-8 in string");
        assert_eq!(err(b"\"\xC3\"").1, "Invalid UTF-8 in string");
        assert_eq!(err(b"\"\xF0\x9F\x98\"").1, "Invalid UTF-8 in string");
    }

    #[test]
    fn containers() {
        assert_eq!(roundtrip("[1,2 , [ ] ,{ },\"x\"]"), r#"[1, 2, [], {}, "x"]"#);
        assert_eq!(roundtrip(r#"{"a":1,"b":2,"a":3}"#), r#"{"a": 3, "b": 2}"#);
        // Duplicate detection in large objects (hashed path) keeps Python dict semantics.
        let mut doc = String::from("{");
        for i in 0..100 {
            doc.push_str(&format!("\"k{}\": {i}, ", i % 40));
        }
        doc.push_str("\"k0\": \"last\"}");
        let mut want = String::from("{");
        for i in 0..40 {
            let v = if i == 0 {
                "\"last\"".to_string()
            } else {
                (i + 80 - if i >= 20 { 40 } else { 0 }).to_string()
            };
            want.push_str(&format!("\"k{i}\": {v}"));
            if i < 39 {
                want.push_str(", ");
            }
        }
        want.push('}');
        assert_eq!(roundtrip(&doc), want);
    }

    #[test]
    fn python_error_messages() {
        for (input, offset, message) in [
            (&b""[..], 0, "Expecting value"),
            (b"   ", 3, "Expecting value"),
            (b"[", 1, "Expecting value"),
            (b"[1,]", 3, "Expecting value"),
            (b"[1 2]", 3, "Expecting ',' delimiter"),
            (b"[1", 2, "Expecting ',' delimiter"),
            (b"{", 1, "Expecting property name enclosed in double quotes"),
            (b"{\"a\":1,}", 7, "Expecting property name enclosed in double quotes"),
            (b"{1:2}", 1, "Expecting property name enclosed in double quotes"),
            (b"{\"a\" 1}", 5, "Expecting ':' delimiter"),
            (b"{\"a\":}", 5, "Expecting value"),
            (b"{\"a\":1 \"b\":2}", 7, "Expecting ',' delimiter"),
            (b"1 2", 2, "Extra data"),
            (b"01", 1, "Extra data"),
            (b"1.", 1, "Extra data"),
            (b"1.e5", 1, "Extra data"),
            (b"1e", 1, "Extra data"),
            (b"-", 0, "Expecting value"),
            (b"-a", 0, "Expecting value"),
            (b"+1", 0, "Expecting value"),
            (b".5", 0, "Expecting value"),
            (b"nul", 0, "Expecting value"),
            (b"nan", 0, "Expecting value"),
            (b"-NaN", 0, "Expecting value"),
            (b"[1]x", 3, "Extra data"),
            (b"\xEF\xBB", 0, "Expecting value"),
            (b"\x0c1", 0, "Expecting value"),
            (b"'a'", 0, "Expecting value"),
        ] {
            assert_eq!(
                err(input),
                (offset, message.to_string()),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    fn nested(depth: usize) -> Vec<u8> {
        let mut doc = vec![b'['; depth];
        doc.extend(std::iter::repeat_n(b']', depth));
        doc
    }

    #[test]
    fn deep_nesting_on_a_small_stack() {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                for depth in [1000, MAX_DEPTH] {
                    let doc = nested(depth);
                    let v = parse(&doc, "t").unwrap();
                    assert_eq!(to_vec(&v), doc);
                    let mut c = Cursor::new(&doc, "t");
                    c.skip_value().unwrap();
                    c.finish().unwrap();
                    let mut obj = b"{\"a\":".repeat(depth);
                    obj.push(b'1');
                    obj.extend(std::iter::repeat_n(b'}', depth));
                    drop(parse(&obj, "t").unwrap());
                }
                let (offset, message) = err(&nested(MAX_DEPTH + 1));
                assert_eq!(offset as usize, MAX_DEPTH);
                assert!(message.starts_with("nesting too deep"));
                assert!(Cursor::new(&nested(MAX_DEPTH + 1), "t").skip_value().is_err());
                // Unclosed deep input is an error, not a crash.
                assert!(parse(&vec![b'['; 100_000], "t").is_err());
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn cursor_walks_a_vector_store_file() {
        let doc = b"\xEF\xBB\xBF{\"embedding_dict\": {\"a\": [0.1, -2, NaN, Infinity, -Infinity, 1e-05], \"b\": []},
            \"text_id_to_ref_doc_id\": {\"a\": \"doc\"}, \"metadata_dict\": null, \"extra\": [{\"x\": [1, {}]}, \"s\"]} ";
        let mut c = Cursor::new(doc, "vs.json");
        c.begin_object().unwrap();
        let mut seen = Vec::new();
        while let Some(key) = c.next_key().unwrap() {
            match key.as_str().unwrap() {
                "embedding_dict" => {
                    c.begin_object().unwrap();
                    while let Some(id) = c.next_key().unwrap() {
                        let mut row = Vec::new();
                        c.begin_array().unwrap();
                        while c.next_array_item().unwrap() {
                            row.push(c.parse_f64().unwrap());
                        }
                        seen.push((id, row));
                    }
                }
                "metadata_dict" => {
                    assert!(c.peek_null());
                    assert_eq!(c.parse_value().unwrap(), Value::Null);
                }
                "extra" => assert_eq!(c.raw_value().unwrap(), b"[{\"x\": [1, {}]}, \"s\"]"),
                _ => c.skip_value().unwrap(),
            }
        }
        c.finish().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, JStr::new("a"));
        let a = &seen[0].1;
        assert_eq!(a.len(), 6);
        assert_eq!(
            (a[0], a[1], a[3], a[4], a[5]),
            (0.1, -2.0, f64::INFINITY, f64::NEG_INFINITY, 1e-5)
        );
        assert!(a[2].is_nan());
        assert!(seen[1].1.is_empty());
    }

    #[test]
    fn cursor_errors() {
        let mut c = Cursor::new(b"[1 2]", "t");
        c.begin_array().unwrap();
        assert!(c.next_array_item().unwrap());
        assert_eq!(c.parse_f64().unwrap(), 1.0);
        assert!(c.next_array_item().is_err());

        let mut c = Cursor::new(b"[1,]", "t");
        c.begin_array().unwrap();
        assert!(c.next_array_item().unwrap());
        c.skip_value().unwrap();
        assert!(c.next_array_item().unwrap());
        assert!(c.parse_f64().is_err());

        let mut c = Cursor::new(b"{\"a\" 1}", "t");
        c.begin_object().unwrap();
        assert!(c.next_key().is_err());

        let mut c = Cursor::new(b"[\"x\", true]", "t");
        assert!(c.begin_object().is_err());
        assert!(c.next_key().is_err());
        assert!(c.next_array_item().is_err());
        c.begin_array().unwrap();
        assert!(c.next_array_item().unwrap());
        assert!(c.parse_f64().is_err());
        assert_eq!(c.parse_string().unwrap(), JStr::new("x"));
        assert!(c.next_array_item().unwrap());
        assert!(c.parse_string().is_err());
        assert!(c.finish().is_err());
        c.skip_value().unwrap();
        assert!(!c.next_array_item().unwrap());
        c.finish().unwrap();

        let mut c = Cursor::new(b"{} x", "t");
        c.begin_object().unwrap();
        assert_eq!(c.next_key().unwrap(), None);
        assert_eq!(
            c.finish().unwrap_err().to_string(),
            "t: invalid JSON at byte 3: Extra data"
        );
    }
}
