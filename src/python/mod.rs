//! The only PyO3 code: thin facades over the core, one error mapping, conversions.

mod convert;
mod errors;
mod filters;
mod floats;
mod kv_store;
mod persist;
mod vector_store;

use pyo3::prelude::*;

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
    m.add_function(wrap_pyfunction!(simd_backend, m)?)?;
    persist::register(m)?;
    Ok(())
}
