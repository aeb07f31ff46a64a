//! LlamaIndex-compatible JSON: a writer that formats exactly like Python's `json.dumps` defaults
//! (`", "`/`": "` separators, `ensure_ascii`, float `repr`, `NaN`/`Infinity`), and readers that accept
//! exactly what Python's `json` module accepts.

mod value;

pub use value::{push_code_point, CodePoints, JStr, Object, Value};
