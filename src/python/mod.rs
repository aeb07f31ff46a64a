//! The only PyO3 code: thin facades over the core, one error mapping, conversions.

mod convert;
mod errors;
mod filters;
mod floats;
mod kv_store;
mod persist;
mod vector_store;

use pyo3::prelude::*;

/// True when `obj` is made only of exact dict (str keys) / list / str / int / float (finite) / bool /
/// None: then pydantic's `model_dump(mode="json")` returns it unchanged and no dump is needed.
#[pyfunction]
fn is_plain_json(obj: &Bound<'_, PyAny>) -> bool {
    convert::is_plain(obj)
}

/// The SIMD kernel chosen for this CPU.
#[pyfunction]
fn simd_backend() -> &'static str {
    crate::vectors::kernels::backend_name()
}

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<vector_store::PyVectorStore>()?;
    m.add_class::<kv_store::PyKvStore>()?;
    m.add_function(wrap_pyfunction!(is_plain_json, m)?)?;
    m.add_function(wrap_pyfunction!(simd_backend, m)?)?;
    persist::register(m)?;
    Ok(())
}
