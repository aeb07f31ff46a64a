//! `is_normalized`: whether valid JSON text is already exactly what `json.dumps(json.loads(text))`
//! writes, so that a loader can keep it verbatim instead of parsing and re-writing it.
//!
//! The check is conservative: `true` guarantees the text is normalized; `false` only means "re-write
//! it" (the slow path gives the right bytes either way). It requires: no whitespace except the single
//! space in `", "` and `": "`; strings of printable ASCII with only the escapes `json.dumps` uses
//! (lowercase `\uXXXX` for exactly the code points it escapes that way); integers other than `-0`;
//! floats whose text equals Python's `repr` of their value; no duplicate keys in an object.

use crate::json::write_f64;

enum State {
    Value,
    Key,
    After,
}

/// See the module header. `text` must be one valid JSON value (as `Cursor::raw_value` returns).
#[must_use]
pub fn is_normalized(text: &[u8]) -> bool {
    check(text).is_some()
}

fn check(b: &[u8]) -> Option<()> {
    // One entry per open container: `Some(keys)` for an object, `None` for an array.
    let mut stack: Vec<Option<Vec<&[u8]>>> = Vec::new();
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
                            stack.push(Some(Vec::new()));
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
                            stack.push(None);
                        }
                        continue;
                    }
                    b'"' => i = string_end(b, i)?,
                    b't' | b'n' => i += 4,
                    b'f' => i += 5,
                    b'N' => i += 3,
                    b'I' => i += 8,
                    b'-' if b.get(i + 1) == Some(&b'I') => i += 9,
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
                if let Some(Some(keys)) = stack.last_mut() {
                    keys.push(&b[i..end]);
                }
                if b.get(end..end + 2)? != b": " {
                    return None;
                }
                i = end + 2;
                state = State::Value;
            }
            State::After => {
                let Some(top) = stack.last() else {
                    return (i == b.len()).then_some(());
                };
                if b.get(i..i + 2) == Some(b", ") {
                    i += 2;
                    state = if top.is_some() { State::Key } else { State::Value };
                    continue;
                }
                match (b.get(i)?, top) {
                    (b'}', Some(keys)) if !has_duplicates(keys) => {}
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
        (text != b"-0").then_some(end)
    }
}

fn has_duplicates(keys: &[&[u8]]) -> bool {
    if keys.len() <= 8 {
        return keys.iter().enumerate().any(|(i, k)| keys[..i].contains(k));
    }
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}
