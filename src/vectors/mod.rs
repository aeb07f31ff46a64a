//! The pure-Rust core of `RustVectorStore`: SimpleVectorStore's data (embeddings, ref-doc ids,
//! metadata) in one row table with aligned f32 rows, plus search with LlamaIndex's exact results.
//!
//! - `kernels`: f32-row x f64-query dot products accumulated in f64 (AVX2+FMA or scalar).
//! - `rows`: 64-byte-aligned row storage (owned; room for a memory-mapped variant).
//! - `table`: `VectorStore`, the three dicts with Python dict order and delete semantics.
//! - `filter`: `build_metadata_filter_fn` semantics on `json::Value`s.
//! - `search`: top-k (LlamaIndex's heapq tie order), MMR, batched queries.

pub mod filter;
pub mod kernels;
mod rows;
mod search;
mod table;

pub use filter::{FilterCondition, FilterNode, FilterOperator, Filters, MetadataFilter};
pub use kernels::backend_name;
pub use search::{Hit, Query, QueryMode};
pub use table::{NewRow, RowRef, VectorStore};

#[cfg(test)]
mod tests;
