"""`install()` / `uninstall()`: make every default store LlamaIndex creates a Rust one.

Patched (and restored by `uninstall`): the Simple* names LlamaIndex's own modules use to build
default stores (StorageContext.from_defaults / from_dict, IngestionPipeline.load, the multi-modal
index's image store, the docstore registry), IngestionCache's default cache and its loader, and
StorageContext.to_dict (so it accepts Rust and Simple* stores alike). Classes users name
explicitly (`SimpleVectorStore()`) are untouched.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Dict, List, Optional, Tuple

import fsspec

_lock = threading.Lock()
_saved: List[Tuple[Any, str, Any]] = []  # (owner, attribute, original value)


def _set(owner: Any, name: str, value: Any) -> None:
    _saved.append((owner, name, getattr(owner, name)))
    setattr(owner, name, value)


def _storage_context_to_dict(self: Any) -> dict:
    """StorageContext.to_dict, checking against LlamaIndex's own classes (ours subclass them)."""
    from llama_index.core.graph_stores.simple import SimpleGraphStore
    from llama_index.core.graph_stores.simple_labelled import SimplePropertyGraphStore
    from llama_index.core.storage.docstore.simple_docstore import SimpleDocumentStore
    from llama_index.core.storage.index_store.simple_index_store import SimpleIndexStore
    from llama_index.core.storage.storage_context import (
        DOC_STORE_KEY,
        GRAPH_STORE_KEY,
        INDEX_STORE_KEY,
        PG_STORE_KEY,
        VECTOR_STORE_KEY,
    )
    from llama_index.core.vector_stores.simple import SimpleVectorStore

    all_simple = (
        isinstance(self.docstore, SimpleDocumentStore)
        and isinstance(self.index_store, SimpleIndexStore)
        and isinstance(self.graph_store, SimpleGraphStore)
        and isinstance(self.property_graph_store, (SimplePropertyGraphStore, type(None)))
        and all(isinstance(vs, SimpleVectorStore) for vs in self.vector_stores.values())
    )
    if not all_simple:
        raise ValueError("to_dict only available when using simple doc/index/vector stores")
    return {
        VECTOR_STORE_KEY: {key: vs.to_dict() for key, vs in self.vector_stores.items()},
        DOC_STORE_KEY: self.docstore.to_dict(),
        INDEX_STORE_KEY: self.index_store.to_dict(),
        GRAPH_STORE_KEY: self.graph_store.to_dict(),
        PG_STORE_KEY: (self.property_graph_store.to_dict() if self.property_graph_store else None),
    }


def _cache_from_persist_path(
    cls: Any,
    persist_path: str,
    collection: Optional[str] = None,
    fs: Optional[fsspec.AbstractFileSystem] = None,
) -> Any:
    from llama_index.core.ingestion.cache import DEFAULT_CACHE_NAME

    from llama_index_rs.kv_store import RustKVStore

    return cls(
        collection=collection or DEFAULT_CACHE_NAME,
        cache=RustKVStore.from_persist_path(persist_path, fs=fs),
    )


def install() -> None:
    """Make every default store in this process a Rust one (idempotent)."""
    from llama_index_rs.docstore import RustDocumentStore
    from llama_index_rs.index_store import RustIndexStore
    from llama_index_rs.kv_store import RustKVStore
    from llama_index_rs.vector_store import RustVectorStore

    with _lock:
        if _saved:
            return
        sc = importlib.import_module("llama_index.core.storage.storage_context")
        _set(sc, "SimpleDocumentStore", RustDocumentStore)
        _set(sc, "SimpleIndexStore", RustIndexStore)
        _set(sc, "SimpleVectorStore", RustVectorStore)
        _set(sc.StorageContext, "to_dict", _storage_context_to_dict)

        pipeline = importlib.import_module("llama_index.core.ingestion.pipeline")
        _set(pipeline, "SimpleDocumentStore", RustDocumentStore)

        mm = importlib.import_module("llama_index.core.indices.multi_modal.base")
        _set(mm, "SimpleVectorStore", RustVectorStore)

        registry = importlib.import_module("llama_index.core.storage.docstore.registry")
        _set(registry, "SimpleDocumentStore", RustDocumentStore)
        types: Dict[Any, Any] = dict(registry.DOCSTORE_TYPE_TO_CLASS)
        types[registry.DocumentStoreType.SIMPLE] = RustDocumentStore
        _set(registry, "DOCSTORE_TYPE_TO_CLASS", types)
        _set(registry, "DOCSTORE_CLASS_TO_TYPE", {c: t for t, c in types.items()})

        cache_mod = importlib.import_module("llama_index.core.ingestion.cache")
        cache_cls = cache_mod.IngestionCache
        _set(cache_cls, "from_persist_path", classmethod(_cache_from_persist_path))
        field = cache_cls.model_fields["cache"]
        _set(field, "default_factory", RustKVStore)
        cache_cls.model_rebuild(force=True)


def uninstall() -> None:
    """Restore LlamaIndex's own default stores."""
    with _lock:
        while _saved:
            owner, name, value = _saved.pop()
            setattr(owner, name, value)
        cache_mod = importlib.import_module("llama_index.core.ingestion.cache")
        cache_mod.IngestionCache.model_rebuild(force=True)
