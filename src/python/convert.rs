//! Conversions between Python objects and core values. The only place that knows both worlds.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

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
/// built straight from the text. `Ok(None)` for anything it does not handle (lone surrogates,
/// integers beyond 64 bits, deep nesting, text that is not normalized): the caller then parses.
pub fn normalized_to_py<'py>(py: Python<'py>, raw: &[u8]) -> PyResult<Option<Bound<'py, PyAny>>> {
    let mut reader = NormalizedReader { b: raw, i: 0, py };
    match reader.value(0)? {
        Some(v) if reader.i == raw.len() => Ok(Some(v)),
        _ => Ok(None),
    }
}

struct NormalizedReader<'a, 'py> {
    b: &'a [u8],
    i: usize,
    py: Python<'py>,
}

impl<'py> NormalizedReader<'_, 'py> {
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
            b'"' => match self.string() {
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
                    let Some(key) = self.string() else { return Ok(None) };
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
            b'-' | b'0'..=b'9' => {
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
                if is_float {
                    match text.parse::<f64>() {
                        Ok(x) => PyFloat::new(py, x).into_any(),
                        Err(_) => return Ok(None),
                    }
                } else {
                    match text.parse::<i64>() {
                        Ok(n) => n.into_pyobject(py)?.into_any(),
                        Err(_) => return Ok(None),
                    }
                }
            }
            _ => return Ok(None),
        }))
    }

    /// A string at the cursor: ASCII without escapes is copied as is; escapes are decoded (a lone
    /// surrogate gives `None`).
    fn string(&mut self) -> Option<Bound<'py, PyString>> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let end = start + memchr::memchr2(b'"', b'\\', self.b.get(start..)?)?;
        if self.b[end] == b'"' {
            self.i = end + 1;
            return Some(PyString::new(self.py, std::str::from_utf8(&self.b[start..end]).ok()?));
        }
        let mut out = String::from(std::str::from_utf8(&self.b[start..end]).ok()?);
        let mut i = end;
        loop {
            let run = memchr::memchr2(b'"', b'\\', self.b.get(i..)?)?;
            out.push_str(std::str::from_utf8(&self.b[i..i + run]).ok()?);
            i += run;
            if self.b[i] == b'"' {
                self.i = i + 1;
                return Some(PyString::new(self.py, &out));
            }
            let esc = *self.b.get(i + 1)?;
            i += 2;
            let ch = match esc {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'u' => {
                    let hi = hex4(self.b.get(i..i + 4)?)?;
                    i += 4;
                    let cp = if (0xD800..0xDC00).contains(&hi) && self.b.get(i..i + 2) == Some(b"\\u") {
                        let lo = hex4(self.b.get(i + 2..i + 6)?)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return None;
                        }
                        i += 6;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    } else {
                        hi
                    };
                    char::from_u32(cp)? // a lone surrogate is not a char: the slow path keeps it
                }
                _ => return None,
            };
            out.push(ch);
        }
    }
}

fn hex4(d: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(d).ok()?;
    u32::from_str_radix(s, 16)
        .ok()
        .filter(|_| d.len() == 4 && d.iter().all(u8::is_ascii_hexdigit))
}
