//! Persistence helpers that belong to no single store: `verify` and the shared atomic writer.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::persist::verify;

type FileReportTuple = (PathBuf, &'static str, Vec<String>, Vec<String>);

/// Checks every store file in a directory (or one file): `[(path, kind, problems, notes)]`.
#[pyfunction]
fn verify_path(py: Python<'_>, path: PathBuf) -> PyResult<Vec<FileReportTuple>> {
    let reports = py.detach(|| {
        if path.is_dir() {
            verify::verify_dir(&path)
        } else {
            Ok(vec![verify::verify_file(&path)])
        }
    })?;
    Ok(reports
        .into_iter()
        .map(|r| (r.path, r.kind, r.problems, r.notes))
        .collect())
}

/// Replaces a local file atomically under its directory's lock (temporary file, fsync, rename,
/// directory fsync); the Python stores use it for every local persist.
#[pyfunction]
fn write_atomically(py: Python<'_>, path: PathBuf, data: &[u8]) -> PyResult<()> {
    py.detach(|| crate::persist::write_atomically(&path, data))?;
    Ok(())
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verify_path, m)?)?;
    m.add_function(wrap_pyfunction!(write_atomically, m)?)?;
    Ok(())
}
