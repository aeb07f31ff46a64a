//! `Value`: a JSON value exactly as Python's `json` module represents it after `json.loads`, so that
//! writing it back reproduces what `json.dumps` would write.
//!
//! - Integers keep arbitrary precision (`BigInt` holds the decimal digits of those beyond i64).
//! - Strings are `JStr`: any sequence of code points, lone surrogates included (`json.loads('"\\ud800"')`
//!   is a valid Python `str`).
//! - Objects keep insertion order and unique keys (a duplicate key replaces the value in place: Python
//!   dict semantics, so the first position is kept and the last value wins).

use std::fmt;

/// A Python `str`: a sequence of code points stored as generalized UTF-8 ("WTF-8"): valid UTF-8, except
/// that a lone surrogate is encoded as its own 3-byte sequence. Surrogate *pairs* never appear (they are
/// combined into one supplementary code point, as `json.loads` does). Byte order equals code point order,
/// so `Ord` matches Python's `str` comparison, and a byte substring test matches Python's `in`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct JStr(Box<[u8]>);

impl JStr {
    pub fn new(s: &str) -> Self {
        JStr(s.as_bytes().into())
    }

    /// Wraps generalized UTF-8 bytes. The caller guarantees the encoding (every producer in this crate
    /// builds them from code points, see `push_code_point`).
    pub fn from_wtf8_unchecked(bytes: Vec<u8>) -> Self {
        JStr(bytes.into_boxed_slice())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The string as `&str`, or `None` if it holds a lone surrogate.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Code points, lone surrogates included.
    pub fn code_points(&self) -> CodePoints<'_> {
        CodePoints { bytes: &self.0 }
    }

    /// Number of code points (Python's `len(s)`).
    pub fn char_len(&self) -> usize {
        self.code_points().count()
    }
}

impl From<&str> for JStr {
    fn from(s: &str) -> Self {
        JStr::new(s)
    }
}

impl From<String> for JStr {
    fn from(s: String) -> Self {
        JStr(s.into_bytes().into_boxed_slice())
    }
}

impl fmt::Debug for JStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => fmt::Debug::fmt(s, f),
            None => write!(f, "JStr({:?})", self.code_points().collect::<Vec<_>>()),
        }
    }
}

/// Appends one code point (0..=0x10FFFF, surrogates allowed) in generalized UTF-8.
pub fn push_code_point(out: &mut Vec<u8>, cp: u32) {
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3F) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
    }
}

/// Iterator over the code points of a `JStr`.
pub struct CodePoints<'a> {
    bytes: &'a [u8],
}

impl Iterator for CodePoints<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let b = self.bytes;
        let first = *b.first()?;
        let (cp, len) = if first < 0x80 {
            (u32::from(first), 1)
        } else if first < 0xE0 {
            ((u32::from(first & 0x1F) << 6) | u32::from(b[1] & 0x3F), 2)
        } else if first < 0xF0 {
            (
                (u32::from(first & 0x0F) << 12) | (u32::from(b[1] & 0x3F) << 6) | u32::from(b[2] & 0x3F),
                3,
            )
        } else {
            (
                (u32::from(first & 0x07) << 18)
                    | (u32::from(b[1] & 0x3F) << 12)
                    | (u32::from(b[2] & 0x3F) << 6)
                    | u32::from(b[3] & 0x3F),
                4,
            )
        };
        self.bytes = &b[len..];
        Some(cp)
    }
}

/// A JSON value as Python's `json.loads` produces it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer outside i64, as its decimal digits with an optional leading '-'.
    BigInt(Box<str>),
    /// Any float, NaN and infinities included (Python's json writes them as `NaN`, `Infinity`).
    Float(f64),
    Str(JStr),
    Array(Vec<Value>),
    Object(Object),
}

impl Value {
    /// Python's type name, as it appears in Python's own error messages.
    pub fn python_type_name(&self) -> &'static str {
        match self {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Array(_) => "list",
            Value::Object(_) => "dict",
        }
    }

    pub fn str(s: &str) -> Value {
        Value::Str(JStr::new(s))
    }
}

/// An insertion-ordered JSON object with unique keys. Lookups are linear: the objects this type holds
/// (node metadata) have a handful of keys; large keyed collections use the `kv` layer's index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object {
    entries: Vec<(JStr, Value)>,
}

impl Object {
    pub fn new() -> Self {
        Object::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Object {
            entries: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .map(|(_, v)| v)
    }

    pub fn get_jstr(&self, key: &JStr) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Python `d[key] = value`: replaces in place if the key exists, else appends.
    pub fn insert(&mut self, key: JStr, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Python `d.pop(key, None)`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.entries.iter().position(|(k, _)| k.as_bytes() == key.as_bytes())?;
        Some(self.entries.remove(pos).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&JStr, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Appends without checking for an existing key. Only for producers that know keys are unique.
    pub fn push_unique(&mut self, key: JStr, value: Value) {
        self.entries.push((key, value));
    }
}

impl FromIterator<(JStr, Value)> for Object {
    fn from_iter<I: IntoIterator<Item = (JStr, Value)>>(iter: I) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}
