//! Conversions between Python objects and core values. The only place that knows both worlds.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::json::scan::{copy_until_quote_or_backslash, quote_or_backslash};
use crate::json::{JStr, Object, Value};

/// A Python `str` as a `JStr`, lone surrogates included (`surrogatepass` UTF-8 is exactly WTF-8).
pub fn py_to_jstr(s: &Bound<'_, PyString>) -> PyResult<JStr> {
    if let Ok(utf8) = s.to_str() {
        return Ok(JStr::new(utf8));
    }
    let bytes = unsafe {
        Bound::from_owned_ptr_or_err(
            s.py(),
            ffi::PyUnicode_AsEncodedString(s.as_ptr(), c"utf-8".as_ptr(), c"surrogatepass".as_ptr()),
        )?
    };
    let bytes = bytes.cast_into::<pyo3::types::PyBytes>()?;
    Ok(JStr::from_wtf8_unchecked(bytes.as_bytes().to_vec()))
}

pub fn jstr_to_py<'py>(py: Python<'py>, s: &JStr) -> PyResult<Bound<'py, PyAny>> {
    if let Some(utf8) = s.as_str() {
        return Ok(PyString::new(py, utf8).into_any());
    }
    let b = s.as_bytes();
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeUTF8(b.as_ptr().cast(), b.len() as ffi::Py_ssize_t, c"surrogatepass".as_ptr()),
        )
    }
}

/// True when `obj` is made only of exact dict (str keys) / list / str / int / float (finite) / bool /
/// None: objects that pydantic's `model_dump(mode="json")` returns unchanged. Walks without building
/// anything (the caller converts afterwards, or takes LlamaIndex's own path when this is false).
pub fn is_plain(obj: &Bound<'_, PyAny>) -> bool {
    plain_at(obj, 0)
}

fn plain_at(obj: &Bound<'_, PyAny>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    if obj.is_none()
        || obj.is_exact_instance_of::<PyString>()
        || obj.is_exact_instance_of::<PyBool>()
        || obj.is_exact_instance_of::<PyInt>()
    {
        return true;
    }
    if obj.is_exact_instance_of::<PyFloat>() {
        return obj.cast::<PyFloat>().is_ok_and(|f| f.value().is_finite());
    }
    if obj.is_exact_instance_of::<PyList>() {
        return obj
            .cast::<PyList>()
            .is_ok_and(|l| l.iter().all(|item| plain_at(&item, depth + 1)));
    }
    if obj.is_exact_instance_of::<PyDict>() {
        return obj.cast::<PyDict>().is_ok_and(|d| {
            d.iter()
                .all(|(k, v)| k.is_exact_instance_of::<PyString>() && plain_at(&v, depth + 1))
        });
    }
    false
}

/// Converts what `json.dumps` accepts (any dict/list/tuple/str/int/float/bool/None, subclasses
/// included; dict keys converted as json.dumps converts them) to a `Value`.
pub fn py_to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    convert_value(obj, 0)
}

const MAX_DEPTH: usize = 1000;

fn convert_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(
            "metadata is nested too deeply (more than 1000 levels)",
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(py_to_jstr(s)?));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(obj.call_method0("__index__")?.str()?.to_str()?.into()),
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        let items = list
            .iter()
            .map(|item| convert_value(&item, depth + 1))
            .collect::<PyResult<_>>()?;
        return Ok(Value::Array(items));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut out = Object::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => py_to_jstr(s)?,
                Err(_) => json_key_of(&k)?,
            };
            // Python dict keys are unique and keep their order: no duplicate check needed.
            out.push_unique(key, convert_value(&v, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let items = tuple
            .iter()
            .map(|item| convert_value(&item, depth + 1))
            .collect::<PyResult<_>>()?;
        return Ok(Value::Array(items));
    }
    Err(PyTypeError::new_err(format!(
        "Object of type {} is not JSON serializable",
        obj.get_type().name()?
    )))
}

/// `json.dumps` converts non-str keys: True -> "true", None -> "null", numbers by repr.
fn json_key_of(k: &Bound<'_, PyAny>) -> PyResult<JStr> {
    if k.is_none() {
        return Ok(JStr::new("null"));
    }
    if let Ok(b) = k.cast::<PyBool>() {
        return Ok(JStr::new(if b.is_true() { "true" } else { "false" }));
    }
    if k.is_instance_of::<PyInt>() {
        return Ok(JStr::from(k.call_method0("__index__")?.str()?.to_str()?.to_owned()));
    }
    if let Ok(f) = k.cast::<PyFloat>() {
        let mut buf = Vec::new();
        crate::json::write_f64(&mut buf, f.value());
        return Ok(JStr::from_wtf8_unchecked(buf));
    }
    Err(PyTypeError::new_err(format!(
        "keys must be str, int, float, bool or None, not {}",
        k.get_type().name()?
    )))
}

/// Builds the Python object `json.loads` would return for this value.
pub fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::BigInt(digits) => py.get_type::<PyInt>().call1((&**digits,))?,
        Value::Float(x) => PyFloat::new(py, *x).into_any(),
        Value::Str(s) => jstr_to_py(py, s)?,
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(obj) => {
            let dict = PyDict::new(py);
            for (k, item) in obj.iter() {
                dict.set_item(jstr_to_py(py, k)?, value_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// The Python object `json.loads` makes of stored (normalized, see `kv::is_normalized`) JSON text,
/// built straight from the text: no intermediate tree, escapes decoded into one reused buffer, object
/// keys taken from a small cache (created and hashed once, like orjson's key cache). `Ok(None)` for
/// anything it does not handle (lone surrogates, integers beyond 64 bits, deep nesting, text that is
/// not normalized): the caller then parses.
pub fn normalized_to_py<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Option<Bound<'py, PyAny>>> {
    // `try_lock`: a conversion re-entered from a finalizer (or another thread) runs without the cache.
    let mut cache = STR_CACHES.try_lock();
    let mut reader = NormalizedReader {
        b: raw,
        i: 0,
        py,
        scratch: Vec::with_capacity(raw.len()),
        caches: cache.as_deref_mut(),
    };
    match reader.value(0)? {
        Some(v) if reader.i == raw.len() => Ok(Some(v)),
        _ => Ok(None),
    }
}

/// `(doc["__type__"], doc["__data__"])` of stored text of the shape LlamaIndex's `doc_to_json` gives
/// (`{"__data__": {...}, "__type__": "..."}`), built without the outer dict. `Ok(None)` for any other
/// text (the caller then converts the whole value).
pub fn normalized_node_parts<'py>(
    py: Python<'py>,
    raw: &[u8],
) -> PyResult<Option<(Bound<'py, PyString>, Bound<'py, PyAny>)>> {
    const HEAD: &[u8] = b"{\"__data__\": ";
    if !raw.starts_with(HEAD) || raw.get(HEAD.len()) != Some(&b'{') {
        return Ok(None);
    }
    let mut cache = STR_CACHES.try_lock();
    let mut reader = NormalizedReader {
        b: raw,
        i: HEAD.len(),
        py,
        scratch: Vec::with_capacity(raw.len()),
        caches: cache.as_deref_mut(),
    };
    let Some(data) = reader.value(1)? else { return Ok(None) };
    if !reader.eat(b", \"__type__\": ") {
        return Ok(None);
    }
    let Some(doc_type) = reader.string(false)? else {
        return Ok(None);
    };
    if !reader.eat(b"}") || reader.i != raw.len() {
        return Ok(None);
    }
    Ok(Some((doc_type, data)))
}

/// Recently seen short strings: object keys (interned, like the field names pydantic and Python
/// code look them up with, so those lookups match by identity) and values (templates, separators,
/// class names repeat in every node).
struct StrCaches {
    keys: StrCache,
    values: StrCache,
}

static STR_CACHES: parking_lot::Mutex<StrCaches> = parking_lot::Mutex::new(StrCaches {
    keys: StrCache { slots: Vec::new() },
    values: StrCache { slots: Vec::new() },
});

/// Strings by their JSON text (at most `MAX_LEN` bytes), direct-mapped by a hash of the text.
struct StrCache {
    slots: Vec<Option<CachedStr>>,
}

/// A cached string and the JSON text it was made from.
type CachedStr = (Box<[u8]>, Py<PyString>);

impl StrCache {
    const SLOTS: usize = 1024;
    const MAX_LEN: usize = 48;

    /// The cached string for the JSON text `raw`, or `make()` (then cached).
    fn get_or_make<'py>(
        &mut self,
        py: Python<'py>,
        raw: &[u8],
        make: impl FnOnce() -> PyResult<Bound<'py, PyString>>,
    ) -> PyResult<Bound<'py, PyString>> {
        if raw.len() > Self::MAX_LEN {
            return make();
        }
        if self.slots.is_empty() {
            self.slots.resize_with(Self::SLOTS, || None);
        }
        // Two-way: a text may sit in its slot or the neighbour, so two texts that hash alike (keys
        // of one object, met alternately) do not evict each other.
        let slot = slot_of(raw);
        for candidate in [slot, slot ^ 1] {
            if let Some((bytes, s)) = &self.slots[candidate] {
                if **bytes == *raw {
                    return Ok(s.bind(py).clone());
                }
            }
        }
        let s = make()?;
        // The newest text takes the slot, the one it displaces moves to the neighbour.
        let displaced = self.slots[slot].replace((raw.into(), s.clone().unbind()));
        self.slots[slot ^ 1] = displaced;
        Ok(s)
    }
}

/// `new_ascii_str`, interned (which also computes and stores its hash).
fn new_interned_str<'py>(py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyString>> {
    let mut ptr = new_ascii_str(py, text)?.into_ptr();
    // SAFETY: `ptr` is an owned reference to an exact str; InternInPlace replaces it with the
    // interned string (an owned reference either way).
    unsafe {
        ffi::PyUnicode_InternInPlace(&raw mut ptr);
        Ok(Bound::from_owned_ptr(py, ptr).cast_into_unchecked::<PyString>())
    }
}

/// A hash of the first and last 8 bytes and the length: enough to spread object keys.
fn slot_of(text: &[u8]) -> usize {
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let n = text.len();
    let (head, tail) = if n >= 8 {
        (word(&text[..8]), word(&text[n - 8..]))
    } else {
        (word(text), 0)
    };
    let h = (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 40) as usize % StrCache::SLOTS
}

/// A `str` from bytes the caller knows to be UTF-8 (normalized JSON strings are ASCII); invalid
/// bytes give Python's `UnicodeDecodeError`, never undefined behaviour.
fn new_ascii_str<'py>(py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyString>> {
    let len = ffi::Py_ssize_t::try_from(text.len()).map_err(|_| PyValueError::new_err("string too long"))?;
    // SAFETY: pointer and length describe `text`; the result is a new reference or NULL with an error.
    let obj = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_FromStringAndSize(text.as_ptr().cast(), len))? };
    // SAFETY: PyUnicode_FromStringAndSize returns a str.
    Ok(unsafe { obj.cast_into_unchecked() })
}

struct NormalizedReader<'a, 'py, 'c> {
    b: &'a [u8],
    i: usize,
    py: Python<'py>,
    /// Decoded text of the current string with escapes (reused across strings).
    scratch: Vec<u8>,
    caches: Option<&'c mut StrCaches>,
}

impl<'py> NormalizedReader<'_, 'py, '_> {
    const MAX_DEPTH: usize = 200;

    fn eat(&mut self, s: &[u8]) -> bool {
        if self.b.get(self.i..self.i + s.len()) == Some(s) {
            self.i += s.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = self.py;
        let Some(&c) = self.b.get(self.i) else { return Ok(None) };
        Ok(Some(match c {
            b'"' => match self.string(false)? {
                Some(s) => s.into_any(),
                None => return Ok(None),
            },
            b'{' if depth < Self::MAX_DEPTH => {
                self.i += 1;
                let dict = PyDict::new(py);
                if self.eat(b"}") {
                    return Ok(Some(dict.into_any()));
                }
                loop {
                    let Some(key) = self.string(true)? else { return Ok(None) };
                    if !self.eat(b": ") {
                        return Ok(None);
                    }
                    let Some(v) = self.value(depth + 1)? else {
                        return Ok(None);
                    };
                    dict.set_item(key, v)?;
                    if self.eat(b", ") {
                        continue;
                    }
                    if self.eat(b"}") {
                        break;
                    }
                    return Ok(None);
                }
                dict.into_any()
            }
            b'[' if depth < Self::MAX_DEPTH => {
                self.i += 1;
                let mut items = Vec::new();
                if !self.eat(b"]") {
                    loop {
                        let Some(v) = self.value(depth + 1)? else {
                            return Ok(None);
                        };
                        items.push(v);
                        if self.eat(b", ") {
                            continue;
                        }
                        if self.eat(b"]") {
                            break;
                        }
                        return Ok(None);
                    }
                }
                PyList::new(py, items)?.into_any()
            }
            b't' if self.eat(b"true") => PyBool::new(py, true).to_owned().into_any(),
            b'f' if self.eat(b"false") => PyBool::new(py, false).to_owned().into_any(),
            b'n' if self.eat(b"null") => py.None().into_bound(py),
            b'N' if self.eat(b"NaN") => PyFloat::new(py, f64::NAN).into_any(),
            b'I' if self.eat(b"Infinity") => PyFloat::new(py, f64::INFINITY).into_any(),
            b'-' if self.eat(b"-Infinity") => PyFloat::new(py, f64::NEG_INFINITY).into_any(),
            b'-' | b'0'..=b'9' => match self.number()? {
                Some(n) => n,
                None => return Ok(None),
            },
            _ => return Ok(None),
        }))
    }

    fn number(&mut self) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = self.py;
        let start = self.i;
        let mut is_float = false;
        while let Some(&d) = self.b.get(self.i) {
            match d {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => is_float = true,
                _ => break,
            }
            self.i += 1;
        }
        let Ok(text) = std::str::from_utf8(&self.b[start..self.i]) else {
            return Ok(None);
        };
        Ok(if is_float {
            text.parse::<f64>().ok().map(|x| PyFloat::new(py, x).into_any())
        } else {
            match text.parse::<i64>() {
                Ok(n) => Some(n.into_pyobject(py)?.into_any()),
                Err(_) => None,
            }
        })
    }

    /// A string at the cursor. Without escapes it is made from the text itself (keys through the
    /// cache); escapes are decoded into `scratch` first. A lone surrogate gives `None`.
    fn string(&mut self, is_key: bool) -> PyResult<Option<Bound<'py, PyString>>> {
        if self.b.get(self.i) != Some(&b'"') {
            return Ok(None);
        }
        let start = self.i + 1;
        let end = quote_or_backslash(self.b, start);
        if end >= self.b.len() {
            return Ok(None);
        }
        if self.b[end] == b'"' {
            self.i = end + 1;
            let (py, text) = (self.py, &self.b[start..end]);
            return match self.caches.as_deref_mut() {
                Some(c) if is_key => c.keys.get_or_make(py, text, || new_interned_str(py, text)),
                Some(c) => c.values.get_or_make(py, text, || new_ascii_str(py, text)),
                None => new_ascii_str(py, text),
            }
            .map(Some);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.b[start..end]);
        let mut i = end;
        loop {
            i = copy_until_quote_or_backslash(self.b, i, &mut self.scratch);
            if i >= self.b.len() {
                return Ok(None);
            }
            if self.b[i] == b'"' {
                self.i = i + 1;
                let (py, raw, decoded) = (self.py, &self.b[start..i], &self.scratch);
                return match self.caches.as_deref_mut() {
                    Some(c) if !is_key => c.values.get_or_make(py, raw, || new_ascii_str(py, decoded)),
                    _ => new_ascii_str(py, decoded),
                }
                .map(Some);
            }
            let Some(&esc) = self.b.get(i + 1) else { return Ok(None) };
            i += 2;
            let byte = match esc {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 0x08,
                b'f' => 0x0C,
                b'u' => {
                    let Some(hi) = self.b.get(i..i + 4).and_then(hex4) else {
                        return Ok(None);
                    };
                    i += 4;
                    let cp = if (0xD800..0xDC00).contains(&hi) && self.b.get(i..i + 2) == Some(b"\\u") {
                        let Some(lo) = self.b.get(i + 2..i + 6).and_then(hex4) else {
                            return Ok(None);
                        };
                        if !(0xDC00..0xE000).contains(&lo) {
                            return Ok(None);
                        }
                        i += 6;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    } else {
                        hi
                    };
                    // A lone surrogate is not a char: the slow path keeps it.
                    let Some(ch) = char::from_u32(cp) else { return Ok(None) };
                    let mut utf8 = [0u8; 4];
                    self.scratch.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                    continue;
                }
                _ => return Ok(None),
            };
            self.scratch.push(byte);
        }
    }
}

fn hex4(d: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(d).ok()?;
    u32::from_str_radix(s, 16)
        .ok()
        .filter(|_| d.len() == 4 && d.iter().all(u8::is_ascii_hexdigit))
}
