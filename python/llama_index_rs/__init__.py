"""Rust drop-in replacements for LlamaIndex's in-memory stores.

    from llama_index_rs import RustVectorStore, RustDocumentStore, RustIndexStore, RustKVStore
    storage_context = StorageContext.from_defaults(
        vector_store=RustVectorStore(), docstore=RustDocumentStore(), index_store=RustIndexStore()
    )

or, for every default store in the process: `llama_index_rs.install()` (undo: `uninstall()`).
"""

from llama_index_rs._install import install, uninstall
from llama_index_rs._native import __version__, simd_backend
from llama_index_rs._verify import FileReport, VerifyReport, verify
from llama_index_rs.docstore import RustDocumentStore
from llama_index_rs.index_store import RustIndexStore
from llama_index_rs.kv_store import RustKVStore
from llama_index_rs.vector_store import RustVectorStore

__all__ = [
    "FileReport",
    "RustDocumentStore",
    "RustIndexStore",
    "RustKVStore",
    "RustVectorStore",
    "VerifyReport",
    "__version__",
    "install",
    "simd_backend",
    "uninstall",
    "verify",
]
