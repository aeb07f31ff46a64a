"""RustVectorStore: a drop-in SimpleVectorStore whose data lives in Rust."""

from __future__ import annotations

import asyncio
import copy
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence

import fsspec
from fsspec.implementations.local import LocalFileSystem
from llama_index.core.bridge.pydantic import BaseModel, PrivateAttr, field_serializer
from llama_index.core.indices.query.embedding_utils import get_top_k_embeddings_learner
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.simple import (
    DEFAULT_VECTOR_STORE,
    LEARNER_MODES,
    MMR_MODE,
    NAMESPACE_SEP,
    SimpleVectorStore,
    SimpleVectorStoreData,
)
from llama_index.core.vector_stores.types import (
    DEFAULT_PERSIST_DIR,
    DEFAULT_PERSIST_FNAME,
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import node_to_metadata_dict

from llama_index_rs import _native
from llama_index_rs._live import LiveMapping
from llama_index_rs._verify import VerifyReport, verify

_PERSIST_FORMATS = ("both", "json", "binary")
_BINARY_SUFFIX = "vector_store.rsvec"

# SimpleVectorStore names its module in this message; "same exceptions" includes the text.
_SIMPLE_MODULE = "llama_index.core.vector_stores.simple"


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


class _LiveData(SimpleVectorStoreData):
    """`RustVectorStore.data`: a SimpleVectorStoreData whose three dicts are live views of the Rust
    store. Reading, setting and deleting items, and assigning whole dicts, act on the store."""

    def __init__(self, private: Dict[str, Any]) -> None:  # no dataclass fields of its own
        # The store's private-attribute dict, not the store: a view that referred to its store
        # would make a cycle (store -> data -> store), and a store in a cycle is freed only by the
        # garbage collector, not when its last reference goes. The dict holds the current native
        # store (`_replace` swaps it in place), so a view also outlives its store, like the
        # dicts of a SimpleVectorStoreData.
        object.__setattr__(self, "_private", private)

    def _native(self) -> Any:
        return self._private["_native"]

    def _replace(self, **dicts: Dict[str, Any]) -> None:
        """Replaces the native store by one with some of its three dicts replaced (assigning a
        whole dict of `store.data`)."""
        current = self._native().to_dict()
        current.update(dicts)
        self._private["_native"] = _native.VectorStore.from_dicts(
            current["embedding_dict"], current["text_id_to_ref_doc_id"], current["metadata_dict"]
        )

    @property  # type: ignore[override]
    def embedding_dict(self) -> LiveMapping:
        n = self._native
        return LiveMapping(
            keys=lambda: n().embedding_ids(),
            get=lambda k: n().get(k),
            set=lambda k, v: n().set_embedding(k, v),
            delete=lambda k: n().remove_embedding(k),
            length=lambda: len(n()),
        )

    @embedding_dict.setter
    def embedding_dict(self, value: Dict[str, List[float]]) -> None:
        self._replace(embedding_dict=dict(value))

    @property  # type: ignore[override]
    def text_id_to_ref_doc_id(self) -> LiveMapping:
        n = self._native

        def get(k: str) -> str:
            v = n().get_ref_doc_id(k)
            if v is None:
                raise KeyError(k)
            return v

        def delete(k: str) -> None:
            get(k)
            n().set_ref_doc_id(k, None)

        return LiveMapping(
            keys=lambda: [k for k, _ in n().ref_doc_items()],
            get=get,
            set=lambda k, v: n().set_ref_doc_id(k, v),
            delete=delete,
            length=lambda: n().ref_doc_len(),
        )

    @text_id_to_ref_doc_id.setter
    def text_id_to_ref_doc_id(self, value: Dict[str, str]) -> None:
        self._replace(text_id_to_ref_doc_id=dict(value))

    @property  # type: ignore[override]
    def metadata_dict(self) -> LiveMapping:
        n = self._native

        def get(k: str) -> Any:
            v = n().get_metadata(k)
            if v is None and k not in n().metadata_ids():
                raise KeyError(k)
            return v

        def delete(k: str) -> None:
            get(k)
            n().set_metadata(k, None)

        return LiveMapping(
            keys=lambda: n().metadata_ids(),
            get=get,
            set=lambda k, v: n().set_metadata(k, v),
            delete=delete,
            length=lambda: n().metadata_len(),
        )

    @metadata_dict.setter
    def metadata_dict(self, value: Dict[str, Any]) -> None:
        self._replace(metadata_dict=dict(value))

    def to_dict(self, encode_json: bool = False) -> Dict[str, Any]:
        return self._native().to_dict()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SimpleVectorStoreData):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"SimpleVectorStoreData(<live view of {len(self._native())} rows in Rust>)"

    def __deepcopy__(self, memo: dict) -> SimpleVectorStoreData:
        return SimpleVectorStoreData.from_dict(self.to_dict())

    def __reduce__(self) -> tuple:
        return (SimpleVectorStoreData.from_dict, (self.to_dict(),))


def _exotic_record(node: BaseNode) -> Dict[str, Any]:
    """The metadata record SimpleVectorStore.add stores for a node whose metadata is not plain JSON
    (the native side builds the record of plain metadata itself): LlamaIndex's own serialization."""
    record = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)
    record.pop("_node_content", None)
    return record


class RustVectorStore(SimpleVectorStore):
    """Drop-in replacement for LlamaIndex's `SimpleVectorStore`, with the data held in Rust.

    Same API, same persisted JSON (both directions), same query results; queries run on all cores
    with the GIL released, and the store is safe to use from several threads.

    Extensions: `query_batch` (many queries at once from a numpy array), `add_embeddings` (bulk
    loading from numpy without node objects), nested `MetadataFilters`.

    Persistence: `persist_format` says what `persist` writes on a local file system — "both" (the
    default: LlamaIndex's JSON file plus a binary file beside it, `<name>.rsvec`), "json" (only the
    JSON; an old binary file is removed) or "binary" (only the binary file). Loading prefers a binary
    file that mirrors the current JSON file and maps its vectors instead of reading them
    (`memory_mapped` tells); a JSON file rewritten by another tool is never shadowed by it. Every
    persist replaces files atomically (temporary file, fsync, rename) under a per-directory lock.
    """

    stores_text: bool = False
    _native: Any = PrivateAttr(default=None)
    _persist_format: str = PrivateAttr(default="both")

    def __init__(
        self,
        data: Optional[SimpleVectorStoreData] = None,
        fs: Optional[fsspec.AbstractFileSystem] = None,
        persist_format: str = "both",
        **kwargs: Any,
    ) -> None:
        if persist_format not in _PERSIST_FORMATS:
            raise ValueError(
                f'persist_format must be "both", "json" or "binary", not {persist_format!r}'
            )
        native = _native_from_data(data)
        BasePydanticVectorStore.__init__(self, data=SimpleVectorStoreData())
        self._fs = fs or fsspec.filesystem("file")
        self._persist_format = persist_format
        self._attach(native)

    # ---- plumbing ----

    @property
    def _core(self) -> Any:
        """The native store (the `_native` private attribute). Reading a pydantic private attribute
        goes through `BaseModel.__getattr__` in Python (~1.5 us); this reads its slot (~0.15 us),
        which is most of the per-call cost of a one-node `add` or a small `query`."""
        return self.__pydantic_private__["_native"]

    def _attach(self, native: Any) -> None:
        self._native = native
        object.__setattr__(self, "data", _LiveData(self.__pydantic_private__))
        self.__pydantic_fields_set__.add("data")

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "data":
            self._attach(_native_from_data(value))
            return
        super().__setattr__(name, value)

    def __getstate__(self) -> Dict[str, Any]:
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        fields.pop("data", None)
        private = dict(state.get("__pydantic_private__") or {})
        private["_native"] = self._core.to_json()
        return {**state, "__dict__": fields, "__pydantic_private__": private}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        private = dict(state["__pydantic_private__"])
        payload = private.pop("_native")
        super().__setstate__({**state, "__pydantic_private__": private})
        # BaseComponent.__setstate__ re-runs __init__ from the fields: private settings come back here.
        self._persist_format = private.get("_persist_format", "both")
        self._attach(_native.VectorStore.from_json(payload, "<pickled RustVectorStore>"))

    @field_serializer("data")
    def _serialize_data(self, data: SimpleVectorStoreData) -> Dict[str, Any]:
        # model_dump()/dict()/model_dump_json() give what SimpleVectorStore's give: plain dicts.
        return self._core.to_dict()

    def __eq__(self, other: object) -> bool:
        # pydantic's __eq__ would compare the native handles; compare content like SimpleVectorStore.
        if not isinstance(other, BaseModel):
            return NotImplemented
        if type(self) is not type(other):
            return False

        def rest(m: Any) -> tuple:
            fields = {k: v for k, v in m.__dict__.items() if k != "data"}
            private = {k: v for k, v in (m.__pydantic_private__ or {}).items() if k != "_native"}
            return fields, private, m.__pydantic_extra__

        return rest(self) == rest(other) and self._core.to_json() == other._core.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable, like every pydantic model

    def __deepcopy__(self, memo: Optional[Dict[int, Any]] = None) -> "RustVectorStore":
        state = super().__getstate__()
        fields = {k: v for k, v in state["__dict__"].items() if k != "data"}
        private = {
            k: v for k, v in (state.get("__pydantic_private__") or {}).items() if k != "_native"
        }
        new = type(self).__new__(type(self))
        object.__setattr__(new, "__dict__", copy.deepcopy(fields, memo))
        object.__setattr__(
            new, "__pydantic_extra__", copy.deepcopy(state["__pydantic_extra__"], memo)
        )
        object.__setattr__(new, "__pydantic_fields_set__", set(state["__pydantic_fields_set__"]))
        object.__setattr__(new, "__pydantic_private__", copy.deepcopy(private, memo))
        new._attach(self._core.copy())
        return new

    # ---- LlamaIndex API ----

    @classmethod
    def class_name(cls) -> str:
        return "RustVectorStore"

    @property
    def client(self) -> None:
        return None

    @property
    def persist_format(self) -> str:
        """What `persist` writes locally: "both", "json" or "binary"."""
        return self._persist_format

    @persist_format.setter
    def persist_format(self, value: str) -> None:
        if value not in _PERSIST_FORMATS:
            raise ValueError(f'persist_format must be "both", "json" or "binary", not {value!r}')
        self._persist_format = value

    @property
    def memory_mapped(self) -> bool:
        """True when the vectors are used in place from a memory-mapped binary file."""
        return self._core.memory_mapped

    @property
    def _data(self) -> SimpleVectorStoreData:
        return self.data

    def get(self, text_id: str) -> List[float]:
        return self._core.get(text_id)

    def get_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> List[BaseNode]:
        raise NotImplementedError("SimpleVectorStore does not store nodes directly.")

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> List[str]:
        # The loop over the nodes (node_id, get_embedding(), ref_doc_id, metadata, as
        # SimpleVectorStore.add reads them) runs in Rust; see `_exotic_record`.
        return self._core.add_nodes(nodes, _exotic_record)

    def add_embeddings(
        self,
        ids: Sequence[str],
        embeddings: Any,
        ref_doc_ids: Optional[Sequence[str]] = None,
        metadata: Optional[Sequence[Optional[Dict[str, Any]]]] = None,
    ) -> List[str]:
        """Bulk-add rows from a 2-D numpy array (or nested sequences) without node objects.

        `ref_doc_ids` default to "None" (LlamaIndex's value for parentless nodes); each `metadata`
        entry is stored as given (default `{}`), so filters see exactly these dicts.
        """
        ids = list(ids)
        refs = list(ref_doc_ids) if ref_doc_ids is not None else ["None"] * len(ids)
        mds = list(metadata) if metadata is not None else [{}] * len(ids)
        if len(refs) != len(ids) or len(mds) != len(ids):
            raise ValueError("ids, ref_doc_ids and metadata must have the same length")
        self._core.add(ids, embeddings, refs, [{} if m is None else m for m in mds])
        return ids

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        self._core.delete_ref_doc(ref_doc_id)

    def delete_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        self._core.delete_nodes(None if node_ids is None else list(node_ids), filters)

    def clear(self) -> None:
        self._core.clear()

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        node_ids = None if query.node_ids is None else list(query.node_ids)
        mode = query.mode
        if mode in LEARNER_MODES:
            ids, matrix = self._core.candidate_matrix(node_ids, query.filters)
            # SimpleVectorStore does not pass the mode on: every learner mode fits an SVM.
            sims, top_ids = get_top_k_embeddings_learner(
                query.query_embedding,
                matrix.astype("float64"),
                similarity_top_k=query.similarity_top_k,
                embedding_ids=ids,
            )
            return VectorStoreQueryResult(similarities=sims, ids=top_ids)
        if mode not in (MMR_MODE, VectorStoreQueryMode.DEFAULT):
            self._core.candidate_matrix(node_ids, query.filters)  # same errors first
            raise ValueError(f"Invalid query mode: {query.mode}")
        if query.query_embedding is None:
            ids, _ = self._core.candidate_matrix(node_ids, query.filters)
            if ids:
                raise TypeError("query_embedding is None: cannot compute similarities")
            return VectorStoreQueryResult(similarities=[], ids=[])
        ids, sims = self._core.query(
            query.query_embedding,
            query.similarity_top_k,
            node_ids,
            query.filters,
            "mmr" if mode == MMR_MODE else "default",
            kwargs.get("mmr_threshold"),  # SimpleVectorStore reads it from kwargs, not the query
        )
        return VectorStoreQueryResult(similarities=sims, ids=ids)

    def query_batch(
        self,
        embeddings: Any,
        similarity_top_k: Optional[int] = 10,
        filters: Optional[MetadataFilters] = None,
    ) -> List[VectorStoreQueryResult]:
        """Run many DEFAULT-mode queries at once (rows of a 2-D array); same results as `query`."""
        results = self._core.query_batch(embeddings, similarity_top_k, filters)
        return [VectorStoreQueryResult(similarities=s, ids=i) for i, s in results]

    # async variants: through the public sync methods (so overrides are honoured), off the event loop

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    async def aclear(self) -> None:
        self.clear()

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await asyncio.to_thread(self.query, query, **kwargs)

    # ---- persistence ----

    def persist(
        self,
        persist_path: str = os.path.join(DEFAULT_PERSIST_DIR, DEFAULT_PERSIST_FNAME),
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> None:
        fs = fs or self._fs
        dirpath = os.path.dirname(persist_path)
        if not fs.exists(dirpath):
            fs.makedirs(dirpath)
        if _is_local(fs):
            self._core.persist_files(persist_path, self._persist_format)
        else:  # no atomic rename on remote filesystems: one whole-object write of the JSON
            with fs.open(persist_path, "wb") as f:
                f.write(self._core.to_json())

    @classmethod
    def from_persist_path(
        cls, persist_path: str, fs: Optional[fsspec.AbstractFileSystem] = None
    ) -> "RustVectorStore":
        fs = fs or fsspec.filesystem("file")
        if _is_local(fs):
            binary_path = _native.VectorStore.binary_path_for(persist_path)
            if not (os.path.exists(persist_path) or os.path.exists(binary_path)):
                raise ValueError(
                    f"No existing {_SIMPLE_MODULE} found at {persist_path}, skipping load."
                )
            native, _source, skipped, damaged = _native.VectorStore.load_files(persist_path)
            if damaged:
                warnings.warn(
                    f"{skipped}; loaded {persist_path} instead", RuntimeWarning, stacklevel=2
                )
        else:
            if not fs.exists(persist_path):
                raise ValueError(
                    f"No existing {_SIMPLE_MODULE} found at {persist_path}, skipping load."
                )
            with fs.open(persist_path, "rb") as f:
                native = _native.VectorStore.from_json(f.read(), str(persist_path))
        store = cls()
        store._attach(native)
        return store

    @classmethod
    def verify(
        cls,
        persist_path: str = os.path.join(DEFAULT_PERSIST_DIR, DEFAULT_PERSIST_FNAME),
    ) -> VerifyReport:
        """Check this store's persisted files (the JSON file and the binary file beside it) in full:
        structure, checksums, and whether the binary file mirrors the JSON file."""
        paths = [persist_path, _native.VectorStore.binary_path_for(persist_path)]
        existing = [p for p in paths if os.path.exists(p)]
        if not existing:
            raise FileNotFoundError(2, "No such file or directory", persist_path)
        return VerifyReport([f for p in existing for f in verify(p).files])

    @classmethod
    def from_persist_dir(
        cls,
        persist_dir: str = DEFAULT_PERSIST_DIR,
        namespace: str = DEFAULT_VECTOR_STORE,
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> "RustVectorStore":
        return super().from_persist_dir(persist_dir=persist_dir, namespace=namespace, fs=fs)

    @classmethod
    def from_namespaced_persist_dir(
        cls,
        persist_dir: str = DEFAULT_PERSIST_DIR,
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> Dict[str, BasePydanticVectorStore]:
        if fs is not None and not _is_local(fs):
            return super().from_namespaced_persist_dir(persist_dir=persist_dir, fs=fs)
        # SimpleVectorStore's logic, also finding stores persisted with persist_format="binary".
        vector_stores: Dict[str, BasePydanticVectorStore] = {}
        try:
            for fname in os.listdir(persist_dir):
                if fname.endswith(DEFAULT_PERSIST_FNAME) or fname.endswith(_BINARY_SUFFIX):
                    namespace = fname.split(NAMESPACE_SEP)[0]
                    if namespace in (DEFAULT_PERSIST_FNAME, "vector_store.rsvec"):  # legacy name
                        vector_stores[DEFAULT_VECTOR_STORE] = cls.from_persist_dir(
                            persist_dir=persist_dir, fs=fs
                        )
                    elif namespace not in vector_stores:
                        vector_stores[namespace] = cls.from_persist_dir(
                            persist_dir=persist_dir, namespace=namespace, fs=fs
                        )
        except Exception:
            try:
                vector_stores[DEFAULT_VECTOR_STORE] = cls.from_persist_dir(
                    persist_dir=persist_dir, fs=fs, namespace=DEFAULT_VECTOR_STORE
                )
            except Exception:
                vector_stores[DEFAULT_VECTOR_STORE] = cls.from_persist_dir(
                    persist_dir=persist_dir, fs=fs
                )
        return vector_stores

    @classmethod
    def from_dict(cls, data: Dict[str, Any], **kwargs: Any) -> "RustVectorStore":
        store = cls()
        store._attach(_native_from_data(SimpleVectorStoreData.from_dict(data)))
        return store

    def to_dict(self, **kwargs: Any) -> Dict[str, Any]:
        return self._core.to_dict()


def _native_from_data(data: Optional[SimpleVectorStoreData]) -> Any:
    if data is None:
        return _native.VectorStore()
    if isinstance(data, _LiveData):
        return data._native().copy()
    return _native.VectorStore.from_dicts(
        data.embedding_dict, data.text_id_to_ref_doc_id, data.metadata_dict
    )
