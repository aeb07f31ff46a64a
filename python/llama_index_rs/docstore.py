"""RustDocumentStore: a drop-in SimpleDocumentStore over RustKVStore."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import fsspec
from llama_index.core.bridge.pydantic import BaseModel
from llama_index.core.constants import DATA_KEY, TYPE_KEY
from llama_index.core.schema import BaseComponent, BaseNode, TextNode
from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore
from llama_index.core.storage.docstore.simple_docstore import SimpleDocumentStore
from llama_index.core.storage.docstore.types import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_PERSIST_DIR,
    DEFAULT_PERSIST_PATH,
    RefDocInfo,
)
from llama_index.core.storage.docstore.utils import doc_to_json, json_to_doc
from llama_index.core.storage.kvstore.simple_kvstore import SimpleKVStore

from llama_index_rs.kv_store import RustKVStore


def _constructor_is_validation(cls: type) -> bool:
    """True when `cls.from_dict(data)` is `BaseModel.__init__` of a bare instance with `data` minus
    class_name, for data without the keys TextNode.__init__ handles ("text_resource") or that clash
    with its signature ("self"): no other `__init__`/`__new__` in the MRO and the inherited
    `BaseComponent.from_dict`."""
    inits = [c for c in cls.__mro__ if "__init__" in c.__dict__]
    news = [c for c in cls.__mro__ if "__new__" in c.__dict__]
    return (
        inits == [TextNode, BaseModel, object]
        and news == [object]
        and cls.from_dict.__func__ is BaseComponent.__dict__["from_dict"].__func__  # type: ignore[attr-defined]
    )


_TEXT_NODE_TYPE = TextNode.get_type()  # compared as json_to_doc compares it
_TEXT_NODE_INIT = TextNode.__init__
_FAST_TEXT_NODES = _constructor_is_validation(TextNode)


def _doc_from_parts(doc_type: Any, data: Any) -> BaseNode:
    """`json_to_doc({"__data__": data, "__type__": doc_type})` for a `data` dict nothing else
    references (it may be modified). A TextNode (the common case) is validated into a new instance
    as `BaseModel.__init__` does it, without `from_dict`, `TextNode(**data)` and `TextNode.__init__`
    (which pydantic's validator would call again, since TextNode has its own `__init__`): same node,
    same fields set, same errors, fewer layers."""
    if (
        doc_type == _TEXT_NODE_TYPE
        and type(doc_type) is str
        and type(data) is dict
        and _FAST_TEXT_NODES
        and TextNode.__init__ is _TEXT_NODE_INIT
        and "extra_info" not in data
        and "text_resource" not in data
        and "self" not in data
    ):
        data.pop("class_name", None)
        node = object.__new__(TextNode)
        TextNode.__pydantic_validator__.validate_python(data, self_instance=node)
        return node
    return json_to_doc({DATA_KEY: data, TYPE_KEY: doc_type})


def _json_to_doc(doc_dict: Any) -> BaseNode:
    """`json_to_doc(doc_dict)` for a dict nothing else references (see `_doc_from_parts`)."""
    if (
        type(doc_dict) is dict
        and len(doc_dict) == 2
        and DATA_KEY in doc_dict
        and TYPE_KEY in doc_dict
    ):
        return _doc_from_parts(doc_dict[TYPE_KEY], doc_dict[DATA_KEY])
    return json_to_doc(doc_dict)


class RustDocumentStore(SimpleDocumentStore):
    """Drop-in replacement for LlamaIndex's `SimpleDocumentStore`, backed by `RustKVStore`.

    Same collections, same persisted `docstore.json` (byte-identical), same exceptions. In Rust:
    `document_exists` (no parsing), `get_document_hash` / `get_all_document_hashes` (no node
    objects), the bookkeeping of `add_documents` (existence checks, ref-doc info merging, puts), and
    the stored JSON -> dict step of `get_document` (a TextNode is then validated directly).

    Difference: the async methods run the sync ones, which also fixes LlamaIndex's
    `adelete_document` leaving the node id in its ref doc's `node_ids`.
    """

    def __init__(
        self,
        simple_kvstore: Optional[SimpleKVStore] = None,
        namespace: Optional[str] = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        kvstore = simple_kvstore if simple_kvstore is not None else RustKVStore()
        KVDocumentStore.__init__(self, kvstore, namespace=namespace, batch_size=batch_size)

    def _native_kv(self) -> Any:
        """The Rust store when the hot paths may bypass Python (a plain RustKVStore), else None."""
        kv = self._kvstore
        if type(kv) is RustKVStore:
            kv._flush()
            return kv._native
        return None

    # ---- persistence ----

    @classmethod
    def from_persist_dir(
        cls,
        persist_dir: str = DEFAULT_PERSIST_DIR,
        namespace: Optional[str] = None,
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> "RustDocumentStore":
        return super().from_persist_dir(persist_dir, namespace=namespace, fs=fs)

    @classmethod
    def from_persist_path(
        cls,
        persist_path: str,
        namespace: Optional[str] = None,
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> "RustDocumentStore":
        return cls(RustKVStore.from_persist_path(persist_path, fs=fs), namespace)

    def persist(
        self,
        persist_path: str = DEFAULT_PERSIST_PATH,
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> None:
        super().persist(persist_path, fs=fs)

    @classmethod
    def from_dict(cls, save_dict: dict, namespace: Optional[str] = None) -> "RustDocumentStore":
        return cls(RustKVStore.from_dict(save_dict), namespace)

    def to_dict(self) -> dict:
        return super().to_dict()

    # ---- documents ----

    @property
    def docs(self) -> Dict[str, BaseNode]:
        native = self._native_kv()
        if native is None:
            return KVDocumentStore.docs.fget(self)  # type: ignore[attr-defined]
        return {
            key: _json_to_doc(json) for key, json in native.get_all(self._node_collection).items()
        }

    def add_documents(
        self,
        docs: Sequence[BaseNode],
        allow_update: bool = True,
        batch_size: Optional[int] = None,
        store_text: bool = True,
    ) -> None:
        native = self._native_kv()
        cls = type(self)
        if (
            native is None
            or cls.document_exists is not RustDocumentStore.document_exists
            or cls.get_ref_doc_info is not RustDocumentStore.get_ref_doc_info
        ):
            return KVDocumentStore.add_documents(self, docs, allow_update, batch_size, store_text)
        entries = []
        for node in docs:
            source = node.source_node
            entries.append(
                (
                    node.node_id,
                    doc_to_json(node) if store_text else None,
                    node.hash,
                    None if source is None else source.node_id,
                    node.metadata or {},
                )
            )
        collections = (self._node_collection, self._metadata_collection, self._ref_doc_collection)
        try:
            native.add_documents(collections, entries, allow_update, store_text)
        except NotImplementedError:  # stored data of a shape only LlamaIndex's logic handles
            KVDocumentStore.add_documents(self, docs, allow_update, batch_size, store_text)

    async def async_add_documents(
        self,
        docs: Sequence[BaseNode],
        allow_update: bool = True,
        batch_size: Optional[int] = None,
        store_text: bool = True,
    ) -> None:
        self.add_documents(docs, allow_update, batch_size, store_text)

    def get_document(self, doc_id: str, raise_error: bool = True) -> Optional[BaseNode]:
        kv = self._kvstore
        if type(kv) is not RustKVStore:  # `_native_kv` inlined: this is the hottest read path
            return super().get_document(doc_id, raise_error=raise_error)
        kv._flush()
        found = kv._native.get_node_parts(doc_id, self._node_collection)
        if found is None:
            if raise_error:
                raise ValueError(f"doc_id {doc_id} not found.")
            return None
        doc_type, data = found
        return json_to_doc(data) if doc_type is None else _doc_from_parts(doc_type, data)

    async def aget_document(self, doc_id: str, raise_error: bool = True) -> Optional[BaseNode]:
        return self.get_document(doc_id, raise_error=raise_error)

    def document_exists(self, doc_id: str) -> bool:
        native = self._native_kv()
        if native is None:
            return super().document_exists(doc_id)
        return native.contains(doc_id, self._node_collection)

    async def adocument_exists(self, doc_id: str) -> bool:
        return self.document_exists(doc_id)

    def delete_document(self, doc_id: str, raise_error: bool = True) -> None:
        super().delete_document(doc_id, raise_error=raise_error)

    async def adelete_document(self, doc_id: str, raise_error: bool = True) -> None:
        self.delete_document(doc_id, raise_error=raise_error)

    def get_nodes(self, node_ids: List[str], raise_error: bool = True) -> List[BaseNode]:
        return super().get_nodes(node_ids, raise_error=raise_error)

    async def aget_nodes(self, node_ids: List[str], raise_error: bool = True) -> List[BaseNode]:
        return self.get_nodes(node_ids, raise_error=raise_error)

    def get_node(self, node_id: str, raise_error: bool = True) -> Optional[BaseNode]:
        return super().get_node(node_id, raise_error=raise_error)

    async def aget_node(self, node_id: str, raise_error: bool = True) -> Optional[BaseNode]:
        return self.get_node(node_id, raise_error=raise_error)

    def get_node_dict(self, node_id_dict: Dict[int, str]) -> Dict[int, BaseNode]:
        return super().get_node_dict(node_id_dict)

    async def aget_node_dict(self, node_id_dict: Dict[int, str]) -> Dict[int, BaseNode]:
        return self.get_node_dict(node_id_dict)

    # ---- hashes ----

    def set_document_hash(self, doc_id: str, doc_hash: str) -> None:
        super().set_document_hash(doc_id, doc_hash)

    async def aset_document_hash(self, doc_id: str, doc_hash: str) -> None:
        self.set_document_hash(doc_id, doc_hash)

    def set_document_hashes(self, doc_hashes: Dict[str, str]) -> None:
        super().set_document_hashes(doc_hashes)

    async def aset_document_hashes(self, doc_hashes: Dict[str, str]) -> None:
        self.set_document_hashes(doc_hashes)

    def get_document_hash(self, doc_id: str) -> Optional[str]:
        native = self._native_kv()
        if native is not None:
            try:
                present, value = native.get_field(doc_id, self._metadata_collection, "doc_hash")
                return value if present else None
            except NotImplementedError:
                pass
        return super().get_document_hash(doc_id)

    async def aget_document_hash(self, doc_id: str) -> Optional[str]:
        return self.get_document_hash(doc_id)

    def get_all_document_hashes(self) -> Dict[str, str]:
        native = self._native_kv()
        if native is not None:
            try:
                return native.flipped_truthy_fields(self._metadata_collection, "doc_hash")
            except NotImplementedError:
                pass
        return super().get_all_document_hashes()

    async def aget_all_document_hashes(self) -> Dict[str, str]:
        return self.get_all_document_hashes()

    # ---- ref docs ----

    def get_ref_doc_info(self, ref_doc_id: str) -> Optional[RefDocInfo]:
        return super().get_ref_doc_info(ref_doc_id)

    async def aget_ref_doc_info(self, ref_doc_id: str) -> Optional[RefDocInfo]:
        return self.get_ref_doc_info(ref_doc_id)

    def get_all_ref_doc_info(self) -> Optional[Dict[str, RefDocInfo]]:
        return super().get_all_ref_doc_info()

    async def aget_all_ref_doc_info(self) -> Optional[Dict[str, RefDocInfo]]:
        return self.get_all_ref_doc_info()

    def ref_doc_exists(self, ref_doc_id: str) -> bool:
        return super().ref_doc_exists(ref_doc_id)

    async def aref_doc_exists(self, ref_doc_id: str) -> bool:
        return self.ref_doc_exists(ref_doc_id)

    def delete_ref_doc(self, ref_doc_id: str, raise_error: bool = True) -> None:
        super().delete_ref_doc(ref_doc_id, raise_error=raise_error)

    async def adelete_ref_doc(self, ref_doc_id: str, raise_error: bool = True) -> None:
        self.delete_ref_doc(ref_doc_id, raise_error=raise_error)
