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

/// How strictly Python objects are accepted as JSON values.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// What `json.dumps` accepts: any dict/list/tuple/str/int/float/bool/None (subclasses included),
    /// dict keys converted as json.dumps converts them.
    JsonCompatible,
    /// Only exact builtin types with str keys and finite floats: objects that pydantic's
    /// `model_dump(mode="json")` would return unchanged. Anything else yields `Ok(None)`.
    PlainOnly,
}

/// Converts a Python object to a `Value`. With `Accept::PlainOnly`, returns `Ok(None)` when the object
/// is not plain (the caller then takes LlamaIndex's own, slower path).
pub fn py_to_value(obj: &Bound<'_, PyAny>, accept: Accept) -> PyResult<Option<Value>> {
    convert_value(obj, accept, 0)
}

const MAX_DEPTH: usize = 1000;

fn convert_value(obj: &Bound<'_, PyAny>, accept: Accept, depth: usize) -> PyResult<Option<Value>> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(
            "metadata is nested too deeply (more than 1000 levels)",
        ));
    }
    let plain = accept == Accept::PlainOnly;
    if obj.is_none() {
        return Ok(Some(Value::Null));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        if plain && !obj.is_exact_instance_of::<PyString>() {
            return Ok(None);
        }
        return Ok(Some(Value::Str(py_to_jstr(s)?)));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Some(Value::Bool(b.is_true())));
    }
    if obj.is_instance_of::<PyInt>() {
        if plain && !obj.is_exact_instance_of::<PyInt>() {
            return Ok(None);
        }
        return Ok(Some(match obj.extract::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(obj.call_method0("__index__")?.str()?.to_str()?.into()),
        }));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let x = f.value();
        if plain && (!obj.is_exact_instance_of::<PyFloat>() || !x.is_finite()) {
            return Ok(None);
        }
        return Ok(Some(Value::Float(x)));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        if plain && !obj.is_exact_instance_of::<PyList>() {
            return Ok(None);
        }
        let mut items = Vec::with_capacity(list.len());
        for item in list.iter() {
            match convert_value(&item, accept, depth + 1)? {
                Some(v) => items.push(v),
                None => return Ok(None),
            }
        }
        return Ok(Some(Value::Array(items)));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        if plain && !obj.is_exact_instance_of::<PyDict>() {
            return Ok(None);
        }
        return convert_dict(dict, accept, depth).map(|o| o.map(Value::Object));
    }
    if !plain {
        if let Ok(tuple) = obj.cast::<PyTuple>() {
            let mut items = Vec::with_capacity(tuple.len());
            for item in tuple.iter() {
                items.extend(convert_value(&item, accept, depth + 1)?);
            }
            return Ok(Some(Value::Array(items)));
        }
        return Err(PyTypeError::new_err(format!(
            "Object of type {} is not JSON serializable",
            obj.get_type().name()?
        )));
    }
    Ok(None)
}

fn convert_dict(dict: &Bound<'_, PyDict>, accept: Accept, depth: usize) -> PyResult<Option<Object>> {
    let mut out = Object::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = match k.cast::<PyString>() {
            Ok(s) if accept == Accept::JsonCompatible || k.is_exact_instance_of::<PyString>() => py_to_jstr(s)?,
            _ if accept == Accept::PlainOnly => return Ok(None),
            _ => json_key_of(&k)?,
        };
        match convert_value(&v, accept, depth + 1)? {
            // Python dict keys are unique and keep their order: no duplicate check needed.
            Some(value) => out.push_unique(key, value),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
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
