"""Rust drop-in replacements for LlamaIndex's in-memory stores.

    from llama_index_rs import RustVectorStore
    storage_context = StorageContext.from_defaults(vector_store=RustVectorStore())
"""

from llama_index_rs._native import __version__, simd_backend
from llama_index_rs._verify import FileReport, VerifyReport, verify
from llama_index_rs.vector_store import RustVectorStore

__all__ = ["FileReport", "RustVectorStore", "VerifyReport", "__version__", "simd_backend", "verify"]
