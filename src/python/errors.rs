//! The one mapping from core errors to the exceptions LlamaIndex's Python stores raise.

use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyIsADirectoryError, PyKeyError, PyNotADirectoryError,
    PyNotImplementedError, PyOSError, PyPermissionError, PyTypeError, PyValueError,
};
use pyo3::PyErr;

use crate::error::StoreError;

impl From<StoreError> for PyErr {
    fn from(err: StoreError) -> PyErr {
        match err {
            StoreError::KeyNotFound(key) => PyKeyError::new_err(key),
            StoreError::Type(msg) => PyTypeError::new_err(msg),
            StoreError::Unsupported(msg) => PyNotImplementedError::new_err(msg),
            StoreError::InvalidValue(_) | StoreError::Json { .. } | StoreError::Corrupt { .. } => {
                PyValueError::new_err(err.to_string())
            }
            StoreError::Io { path, source } => {
                let errno = source.raw_os_error().unwrap_or(0);
                let args = (errno, source.to_string(), path);
                use std::io::ErrorKind as K;
                match source.kind() {
                    K::NotFound => PyFileNotFoundError::new_err(args),
                    K::PermissionDenied => PyPermissionError::new_err(args),
                    K::AlreadyExists => PyFileExistsError::new_err(args),
                    K::IsADirectory => PyIsADirectoryError::new_err(args),
                    K::NotADirectory => PyNotADirectoryError::new_err(args),
                    _ => PyOSError::new_err(args),
                }
            }
        }
    }
}
