//! llama-index-rs: the pure-Rust core of drop-in replacements for LlamaIndex's in-memory stores.
//!
//! Layers: `json` (Python-`json`-compatible reading and writing), `vectors` (row table, top-k, filters,
//! MMR), `kv` (ordered collections of raw JSON values), `persist` (atomic files, binary vector format).
//! PyO3 code exists only in `python/`, behind the `python` cargo feature.

pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz_checks;
mod hugepages;
pub mod json;
pub mod kv;
pub mod persist;
mod release;
pub mod vectors;

#[cfg(feature = "python")]
mod python;

pub use error::{StoreError, StoreResult};
