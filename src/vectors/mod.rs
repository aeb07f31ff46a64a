//! The pure-Rust core of `RustVectorStore`: SimpleVectorStore's data (embeddings, ref-doc ids,
//! metadata) in one row table with aligned f32 rows, plus search with LlamaIndex's exact results.
//!
//! - `kernels`: f32-row x f64-query dot products accumulated in f64 (AVX2+FMA or scalar).
//! - `rows`: 64-byte-aligned row storage (owned, or memory-mapped from a binary file).
//! - `binary_format`: the binary vector file, and choosing between it and the JSON file at load.
//! - `table`: `VectorStore`, the three dicts with Python dict order and delete semantics.
//! - `filter`: `build_metadata_filter_fn` semantics on `json::Value`s.
//! - `columns`: lazily built per-key metadata columns, the fast path of filtered queries.
//! - `search`: top-k (LlamaIndex's heapq tie order), MMR, batched queries.
//!
//! Where this core deliberately differs from SimpleVectorStore (for the README's "Differences" list):
//! - A similarity numpy would compute as NaN (zero vector, non-finite query) is 0.0.
//! - `add` rejects NaN / infinite components, a dimension other than the store's (while it holds rows)
//!   and empty vectors, before changing anything; Python accepts them and fails (or misranks) later.
//! - `delete_nodes` raises a filter error before deleting anything (Python deletes up to the failing
//!   row); rows without a ref-doc entry are deleted without the `KeyError` Python raises after having
//!   already removed the embedding.
//! - `delete_ref_doc` also drops ref-doc entries that have no embedding (Python raises `KeyError`).
//! - An MMR threshold that is NaN / infinite is an `InvalidValue` (Python raises `KeyError(None)`).
//! - Nested `MetadataFilters` are evaluated (Python raises `ValueError`).

pub mod binary_format;
mod columns;
pub mod filter;
pub mod json_format;
pub mod kernels;
mod rows;
mod search;
mod table;

pub use filter::{FilterCondition, FilterNode, FilterOperator, Filters, MetadataFilter};
pub use kernels::backend_name;
pub use rows::OwnedRows;
pub use search::{Hit, Query, QueryMode};
pub use table::{NewRow, RowRef, VectorStore};

#[cfg(test)]
mod test_ops;
#[cfg(test)]
mod tests;
