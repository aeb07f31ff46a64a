//! The one error type of the core. `src/python/errors.rs` maps each variant to the exception that
//! LlamaIndex's Python store raises in the same situation.

use std::io;

/// Every failure the core can report. Messages name the key, the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A lookup by key found nothing (Python: `KeyError(key)`).
    #[error("{0}")]
    KeyNotFound(String),
    /// An argument or a stored value is not acceptable (Python: `ValueError`).
    #[error("{0}")]
    InvalidValue(String),
    /// An operation is not defined for the operand types (Python: `TypeError`), e.g. a filter
    /// comparing a string with a number, exactly where Python's comparison would raise.
    #[error("{0}")]
    Type(String),
    /// Stored data of a shape only LlamaIndex's own Python logic handles (Python: `NotImplementedError`,
    /// which the Python classes catch to run that logic instead).
    #[error("{0}")]
    Unsupported(String),
    /// Text that is not the JSON a LlamaIndex store writes (Python: `ValueError`, like `json.JSONDecodeError`).
    #[error("{source_name}: invalid JSON at byte {offset}: {message}")]
    Json {
        source_name: String,
        offset: u64,
        message: String,
    },
    /// A file whose structure or checksums are wrong (Python: `ValueError`).
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    /// An operating-system error on a named file (Python: the matching `OSError` subclass).
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn io(path: impl AsRef<std::path::Path>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn json(source_name: impl Into<String>, offset: usize, message: impl Into<String>) -> Self {
        StoreError::Json {
            source_name: source_name.into(),
            offset: offset as u64,
            message: message.into(),
        }
    }
}
