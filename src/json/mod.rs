//! LlamaIndex-compatible JSON: a writer that formats exactly like Python's `json.dumps` defaults
//! (`", "`/`": "` separators, `ensure_ascii`, float `repr`, `NaN`/`Infinity`), and readers that accept
//! exactly what Python's `json` module accepts.

mod chunked;
mod f32_repr;
mod number;
mod pow5_table;
mod read;
pub mod scan;
mod value;
mod write;

#[cfg(test)]
mod tests;

pub use chunked::ChunkedReader;
pub(crate) use chunked::BLOCK as CHUNK_BLOCK;
pub use read::{parse, Cursor, CursorState, MAX_DEPTH};
pub use value::{push_code_point, CodePoints, JStr, Object, Value};
pub use write::{
    to_vec, write_f32_as_python_float, write_f32_list_items, write_f64, write_i64, write_str, write_str_utf8,
    write_value,
};
