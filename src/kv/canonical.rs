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
    // A load calls this once per stored value (tens of thousands of times): the container stack and
    // key list are reused per thread instead of growing fresh vectors each call.
    thread_local! {
        static SCRATCH: std::cell::RefCell<(Vec<Option<usize>>, Vec<KeySpan>)> =
            const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let (stack, keys) = &mut *scratch;
            stack.clear();
            keys.clear();
            normalized_len_with(b, stack, keys)
        }
        Err(_) => normalized_len_with(b, &mut Vec::new(), &mut Vec::new()),
    })
}

/// An object key as the span `b[start..end]` of the text being checked.
type KeySpan = (usize, usize);

fn normalized_len_with(b: &[u8], stack: &mut Vec<Option<usize>>, keys: &mut Vec<KeySpan>) -> Option<usize> {
    // One entry per open container: `Some(start)` for an object whose keys (as spans of `b`) are
    // `keys[start..]`, `None` for an array. One shared key list: no allocation per object.
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
                    b'"' => i = string_end(b, i)?,
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
                let end = string_end(b, i)?;
                keys.push((i, end));
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
                    (b'}', Some(start)) if !has_duplicates(b, &mut keys[start..]) => keys.truncate(start),
                    (b']', None) => {}
                    _ => return None,
                }
                stack.pop();
                i += 1;
            }
        }
    }
}

/// End (exclusive) of the normalized string starting at `b[start] == '"'`, or `None` if the string
/// is not in `json.dumps` form.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        i += plain_ascii_run(b.get(i..)?);
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => i += 2,
                b'u' => {
                    let mut cp = 0u32;
                    for &d in b.get(i + 2..i + 6)? {
                        cp = (cp << 4)
                            | match d {
                                b'0'..=b'9' => u32::from(d - b'0'),
                                b'a'..=b'f' => u32::from(d - b'a' + 10),
                                _ => return None,
                            };
                    }
                    let escaped_by_dumps = (cp < 0x20 && !matches!(cp, 0x08 | 0x09 | 0x0A | 0x0C | 0x0D)) || cp >= 0x7F;
                    if !escaped_by_dumps {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            0x20..=0x7E => i += 1,
            _ => return None,
        }
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
fn has_duplicates(b: &[u8], keys: &mut [KeySpan]) -> bool {
    let text = |&(start, end): &KeySpan| &b[start..end];
    if keys.len() <= 8 {
        return keys
            .iter()
            .enumerate()
            .any(|(i, k)| keys[..i].iter().any(|j| text(j) == text(k)));
    }
    keys.sort_unstable_by(|x, y| text(x).cmp(text(y)));
    keys.windows(2).any(|w| text(&w[0]) == text(&w[1]))
}
