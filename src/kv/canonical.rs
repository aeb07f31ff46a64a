//! `is_normalized` / `normalized_len`: whether JSON text is already exactly what
//! `json.dumps(json.loads(text))` writes, so that a loader can keep it verbatim instead of parsing and
//! re-writing it.
//!
//! The check is conservative: `true` guarantees the text is normalized; `false` only means "re-write
//! it" (the slow path gives the right bytes either way). It requires: no whitespace except the single
//! space in `", "` and `": "`; strings of printable ASCII with only the escapes `json.dumps` uses
//! (lowercase `\uXXXX` for exactly the code points it escapes that way); integers matching
//! `-?(0|[1-9][0-9]*)` other than `-0`; floats whose text equals Python's `repr` of their value; the
//! literals spelled out exactly; no duplicate keys in an object; at most `MAX_NESTING` levels.
//!
//! It is also a validator: text it accepts is valid JSON that `json.loads` accepts (normalized text
//! is a subset of JSON). So a loader can run it *instead of* a validating scan and fall back to the
//! validating reader only where it fails: one pass over the file for normalized input.

use crate::json::scan::plain_ascii_run;
use crate::json::write_f64;

enum State {
    Value,
    Key,
    After,
}

/// Deeper values are left to the validating reader (which enforces its own depth limit).
const MAX_NESTING: usize = 512;

/// See the module header: whether `text` is exactly one normalized JSON value.
#[must_use]
pub fn is_normalized(text: &[u8]) -> bool {
    normalized_len(text) == Some(text.len())
}

/// The length of the normalized JSON value at the start of `b`, or `None` if `b` does not start with
/// one (see the module header). What follows the value is not looked at.
#[must_use]
pub fn normalized_len(b: &[u8]) -> Option<usize> {
    // A load calls this once per stored value (tens of thousands of times): the scratch space is
    // reused per thread instead of growing fresh vectors each call.
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new(Scratch::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => normalized_len_dispatched(b, &mut scratch),
        Err(_) => normalized_len_dispatched(b, &mut Scratch::new()),
    })
}

/// `normalized_len_with` compiled for AVX2 where the CPU has it (std caches the CPU check): string
/// scans then take 32 bytes per instruction instead of 16, ~8% fewer instructions in a docstore load.
fn normalized_len_dispatched(b: &[u8], scratch: &mut Scratch) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2.
        return unsafe { normalized_len_avx2(b, scratch) };
    }
    normalized_len_with::<Baseline>(b, scratch)
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn normalized_len_avx2(b: &[u8], scratch: &mut Scratch) -> Option<usize> {
    normalized_len_with::<Avx2>(b, scratch)
}

/// What `normalized_len_with` keeps between and during calls.
struct Scratch {
    /// One entry per open container: `Some(start)` for an object whose keys are `keys[start..]`,
    /// `None` for an array. One shared key list: no allocation per object.
    stack: Vec<Option<usize>>,
    keys: Vec<KeySpan>,
    shapes: Shapes,
}

impl Scratch {
    const fn new() -> Self {
        Scratch {
            stack: Vec::new(),
            keys: Vec::new(),
            shapes: Shapes {
                seen: Vec::new(),
                next: 0,
            },
        }
    }
}

/// The key fingerprints, in order, of a few objects whose fingerprints were pairwise distinct. An
/// object with the same sequence has pairwise distinct fingerprints too, hence no repeated key:
/// checked with one comparison per key. Files repeat a handful of object shapes (a node's fields,
/// its relationships, their metadata) tens of thousands of times.
struct Shapes {
    seen: Vec<Vec<u64>>,
    next: usize,
}

impl Shapes {
    const KEPT: usize = 8;

    fn known(&self, keys: &[KeySpan]) -> bool {
        self.seen
            .iter()
            .any(|fps| fps.len() == keys.len() && fps.iter().zip(keys).all(|(&fp, k)| fp == k.fp))
    }

    fn remember(&mut self, keys: &[KeySpan]) {
        let fps = keys.iter().map(|k| k.fp);
        if self.seen.len() < Self::KEPT {
            self.seen.push(fps.collect());
        } else {
            let slot = &mut self.seen[self.next];
            slot.clear();
            slot.extend(fps);
            self.next = (self.next + 1) % Self::KEPT;
        }
    }
}

/// An object key: the span `b[start..end]` of the text being checked (quotes included), and a
/// fingerprint of that text (`fingerprint`), so that the duplicate check compares integers and
/// looks at the text only when two fingerprints are equal.
#[derive(Clone, Copy)]
struct KeySpan {
    fp: u64,
    start: usize,
    end: usize,
}

impl KeySpan {
    fn new(b: &[u8], start: usize, end: usize) -> Self {
        KeySpan {
            fp: fingerprint(&b[start..end]),
            start,
            end,
        }
    }
}

/// A function of a key's text (equal texts, equal fingerprints) that tells apart the keys of real
/// objects: their length, first and last 8 bytes.
fn fingerprint(key: &[u8]) -> u64 {
    let n = key.len();
    let (head, tail) = match (key.first_chunk::<8>(), key.last_chunk::<8>()) {
        (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
        _ => {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(key);
            (u64::from_le_bytes(w), 0)
        }
    };
    head ^ tail.rotate_left(29) ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline(always)] // into each instruction-set wrapper of `normalized_len_dispatched`
fn normalized_len_with<S: StringStops>(b: &[u8], scratch: &mut Scratch) -> Option<usize> {
    let Scratch { stack, keys, shapes } = scratch;
    stack.clear();
    keys.clear();
    let mut i = 0usize;
    let mut state = State::Value;
    loop {
        match state {
            State::Value => {
                match *b.get(i)? {
                    b'{' => {
                        i += 1;
                        if *b.get(i)? == b'}' {
                            i += 1;
                            state = State::After;
                        } else {
                            if stack.len() >= MAX_NESTING {
                                return None;
                            }
                            stack.push(Some(keys.len()));
                            state = State::Key;
                        }
                        continue;
                    }
                    b'[' => {
                        i += 1;
                        if *b.get(i)? == b']' {
                            i += 1;
                            state = State::After;
                        } else {
                            if stack.len() >= MAX_NESTING {
                                return None;
                            }
                            stack.push(None);
                        }
                        continue;
                    }
                    b'"' => i = string_end_with::<S>(b, i)?,
                    b't' => i = literal(b, i, b"true")?,
                    b'n' => i = literal(b, i, b"null")?,
                    b'f' => i = literal(b, i, b"false")?,
                    b'N' => i = literal(b, i, b"NaN")?,
                    b'I' => i = literal(b, i, b"Infinity")?,
                    b'-' if b.get(i + 1) == Some(&b'I') => i = literal(b, i, b"-Infinity")?,
                    b'-' | b'0'..=b'9' => i = number_end(b, i)?,
                    _ => return None,
                }
                state = State::After;
            }
            State::Key => {
                if *b.get(i)? != b'"' {
                    return None;
                }
                let end = string_end_with::<S>(b, i)?;
                keys.push(KeySpan::new(b, i, end));
                if b.get(end..end + 2)? != b": " {
                    return None;
                }
                i = end + 2;
                state = State::Value;
            }
            State::After => {
                let Some(&top) = stack.last() else {
                    return Some(i);
                };
                if b.get(i..i + 2) == Some(b", ") {
                    i += 2;
                    state = if top.is_some() { State::Key } else { State::Value };
                    continue;
                }
                match (b.get(i)?, top) {
                    (b'}', Some(start)) if !has_duplicates(b, &mut keys[start..], shapes) => keys.truncate(start),
                    (b']', None) => {}
                    _ => return None,
                }
                stack.pop();
                i += 1;
            }
        }
    }
}

/// `string_end_with` for every instruction set this CPU has (tests compare them with the run scan).
#[cfg(test)]
pub(super) fn string_end_variants(b: &[u8], start: usize) -> Vec<Option<usize>> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return vec![string_end_with::<Baseline>(b, start), string_end_with::<Avx2>(b, start)];
    }
    vec![string_end_with::<Baseline>(b, start)]
}

/// End (exclusive) of the normalized string starting at `b[start] == '"'`, or `None` if the string
/// is not in `json.dumps` form.
///
/// Node texts are most of a docstore file, with an escape (`\n`, `\u2019`, ...) every few dozen
/// bytes: so the scan takes 32 bytes at a time and steps over the escapes inside a block without
/// loading it again. The last bytes of the input go byte-run by byte-run (`string_end_from`).
#[inline(always)]
fn string_end_with<S: StringStops>(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    'blocks: while i + 32 <= b.len() {
        let base = i;
        // SAFETY: reads b[base..base + 32], inside `b`; `S` is an instruction set the CPU has (the
        // contract of `normalized_len_avx2`, or the baseline).
        let mut stops = unsafe { S::stops_32(b.as_ptr().add(base)) };
        while stops != 0 {
            let at = base + stops.trailing_zeros() as usize;
            match b[at] {
                b'"' => return Some(at + 1),
                b'\\' => {
                    i = escape_end(b, at)?;
                    if i >= base + 32 {
                        continue 'blocks;
                    }
                    stops &= u32::MAX << (i - base); // the escaped bytes are not stops
                }
                _ => return None,
            }
        }
        i = base + 32;
    }
    string_end_from(b, i)
}

/// `string_end_with` for a string whose contents continue at `b[i]`, one plain run at a time.
pub(super) fn string_end_from(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += plain_ascii_run(b.get(i..)?);
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i = escape_end(b, i)?,
            _ => return None,
        }
    }
}

/// Finds, 32 bytes at a time, the bytes that end a plain run inside a string: a bit per byte that
/// is not printable ASCII or is `"` or `\\` (see `plain_ascii_run`).
trait StringStops {
    /// # Safety
    /// `p[..32]` must be readable, and the CPU must support the implementation's instructions.
    unsafe fn stops_32(p: *const u8) -> u32;
}

/// What every CPU of the target has: SSE2 on x86-64, plain bytes elsewhere.
struct Baseline;

/// AVX2, chosen at run time (`normalized_len_dispatched`).
#[cfg(target_arch = "x86_64")]
struct Avx2;

impl StringStops for Baseline {
    #[inline(always)]
    unsafe fn stops_32(p: *const u8) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_movemask_epi8};
            // SAFETY: SSE2 is part of the x86-64 baseline; both loads are inside `p[..32]`.
            unsafe {
                let half =
                    |q: *const u8| _mm_movemask_epi8(sse2_stops(_mm_loadu_si128(q.cast::<__m128i>()))) as u32 & 0xFFFF;
                half(p) | half(p.add(16)) << 16
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            // SAFETY: `p[..32]` is readable (the contract).
            let bytes = unsafe { std::slice::from_raw_parts(p, 32) };
            bytes.iter().enumerate().fold(0, |m, (j, &c)| {
                m | u32::from(!(0x20..=0x7E).contains(&c) || c == b'"' || c == b'\\') << j
            })
        }
    }
}

/// The stop bytes of 16 bytes as a byte mask (SSE2).
///
/// Printable ASCII 0x20..=0x7E, shifted by 0x60, is -128..=-34 as i8, and every other byte lands
/// above -34: one add and one signed compare find controls, DEL and non-ASCII.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sse2_stops(v: std::arch::x86_64::__m128i) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::{_mm_add_epi8, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_or_si128, _mm_set1_epi8};
    // SAFETY: SSE2 is part of the x86-64 baseline.
    unsafe {
        let unprintable = _mm_cmpgt_epi8(_mm_add_epi8(v, _mm_set1_epi8(0x60)), _mm_set1_epi8(-34));
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        _mm_or_si128(unprintable, _mm_or_si128(quote, backslash))
    }
}

#[cfg(target_arch = "x86_64")]
impl StringStops for Avx2 {
    #[inline(always)]
    unsafe fn stops_32(p: *const u8) -> u32 {
        use std::arch::x86_64::{
            __m256i, _mm256_add_epi8, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
            _mm256_or_si256, _mm256_set1_epi8,
        };
        // SAFETY: the CPU has AVX2 and `p[..32]` is readable (the contract). Same test as `sse2_stops`.
        unsafe {
            let v = _mm256_loadu_si256(p.cast::<__m256i>());
            let unprintable = _mm256_cmpgt_epi8(_mm256_add_epi8(v, _mm256_set1_epi8(0x60)), _mm256_set1_epi8(-34));
            let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
            let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
            _mm256_movemask_epi8(_mm256_or_si256(unprintable, _mm256_or_si256(quote, backslash))) as u32
        }
    }
}

/// End (exclusive) of the escape at `b[at] == '\\'` if `json.dumps` writes it (a short escape, or a
/// lowercase `\uXXXX` for a code point it escapes that way).
#[inline]
fn escape_end(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at + 1)? {
        b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => Some(at + 2),
        b'u' => {
            let mut cp = 0u32;
            for &d in b.get(at + 2..at + 6)? {
                cp = (cp << 4)
                    | match d {
                        b'0'..=b'9' => u32::from(d - b'0'),
                        b'a'..=b'f' => u32::from(d - b'a' + 10),
                        _ => return None,
                    };
            }
            let escaped_by_dumps = (cp < 0x20 && !matches!(cp, 0x08 | 0x09 | 0x0A | 0x0C | 0x0D)) || cp >= 0x7F;
            escaped_by_dumps.then_some(at + 6)
        }
        _ => None,
    }
}

/// End (exclusive) of the string starting at `b[start] == '"'` if it is normalized and has no escapes.
pub(super) fn string_end_plain(b: &[u8], start: usize) -> Option<usize> {
    if b.get(start) != Some(&b'"') {
        return None;
    }
    let end = start + 1 + plain_ascii_run(b.get(start + 1..)?);
    (b.get(end) == Some(&b'"')).then_some(end + 1)
}

fn literal(b: &[u8], start: usize, word: &[u8]) -> Option<usize> {
    (b.get(start..start + word.len())? == word).then_some(start + word.len())
}

fn number_end(b: &[u8], start: usize) -> Option<usize> {
    let mut end = start;
    let mut is_float = false;
    while let Some(&c) = b.get(end) {
        match c {
            b'0'..=b'9' | b'-' | b'+' => {}
            b'.' | b'e' | b'E' => is_float = true,
            _ => break,
        }
        end += 1;
    }
    let text = &b[start..end];
    if is_float {
        let x: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
        let mut buf = Vec::with_capacity(24);
        write_f64(&mut buf, x);
        (buf == text).then_some(end)
    } else {
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let valid = match digits {
            [b'0'] => text.len() == 1, // "0" yes, "-0" no (json.dumps writes 0)
            [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        valid.then_some(end)
    }
}

/// Whether `keys` has a repeat. May reorder `keys` (the caller drops them next).
fn has_duplicates(b: &[u8], keys: &mut [KeySpan], shapes: &mut Shapes) -> bool {
    if keys.len() < 2 || shapes.known(keys) {
        return false;
    }
    let same_text = |x: &KeySpan, y: &KeySpan| b[x.start..x.end] == b[y.start..y.end];
    // Equal texts have equal fingerprints: only keys with equal fingerprints need their texts compared.
    let mut distinct = true;
    if keys.len() <= 16 {
        for (i, k) in keys.iter().enumerate() {
            for j in keys[..i].iter().filter(|j| j.fp == k.fp) {
                if same_text(j, k) {
                    return true;
                }
                distinct = false;
            }
        }
        if distinct {
            shapes.remember(keys);
        }
        return false;
    }
    keys.sort_unstable_by_key(|k| k.fp);
    keys.chunk_by(|x, y| x.fp == y.fp).any(|run| {
        run.iter()
            .enumerate()
            .any(|(i, k)| run[..i].iter().any(|j| same_text(j, k)))
    })
}
