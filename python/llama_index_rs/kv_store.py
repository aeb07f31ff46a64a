"""RustKVStore: a drop-in SimpleKVStore whose values live in Rust as JSON text."""

from __future__ import annotations

import copy
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import fsspec
from fsspec.implementations.local import LocalFileSystem
from llama_index.core.storage.kvstore.simple_kvstore import DATA_TYPE, SimpleKVStore
from llama_index.core.storage.kvstore.types import DEFAULT_BATCH_SIZE, DEFAULT_COLLECTION

from llama_index_rs import _native


def _local_path(fs: fsspec.AbstractFileSystem, path: str) -> Optional[str]:
    """The OS path when `fs` is the local filesystem, else None."""
    if isinstance(fs, LocalFileSystem):
        return fs._strip_protocol(str(path))
    return None


class RustKVStore(SimpleKVStore):
    """Drop-in replacement for LlamaIndex's `SimpleKVStore`.

    Values are kept in Rust as the JSON text `json.dumps` would write for them, in ordered
    collections (Python dict order), and become Python objects only when read. Persisted files are
    byte-identical to SimpleKVStore's; untouched values are written back verbatim.

    Differences (documented): values are isolated copies, so mutating a dict after `put`, or a
    dict returned by `get`/`get_all`/`to_dict`, never changes the store (SimpleKVStore copies only
    one level deep); a value that `json.dumps` cannot serialize is rejected by `put` with
    `TypeError` (SimpleKVStore fails later, in `persist`); keys and collection names must be `str`;
    `put_all` accepts any `batch_size`; a file whose top level or a collection is not a JSON object
    is rejected at load with `ValueError`.
    """

    _native: Any

    def __init__(self, data: Optional[DATA_TYPE] = None) -> None:
        self._mapping_factory = dict
        self._flush_hook: Optional[Callable[[], None]] = None
        self._native = _native.KvStore() if data is None else _native.KvStore.from_dict(data)

    @classmethod
    def _from_native(cls, native: Any) -> "RustKVStore":
        store = cls()
        store._native = native
        return store

    def _flush(self) -> None:
        """Lets an owner (RustIndexStore) write pending state before anything reads the store."""
        if self._flush_hook is not None:
            self._flush_hook()

    @property  # type: ignore[override]
    def _collections_mappings(self) -> Dict[str, Dict[str, dict]]:
        """A snapshot of all collections (SimpleKVStore's attribute, read-only here)."""
        return self.to_dict()

    # ---- BaseKVStore API ----

    def put(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> None:
        self._native.put(key, val, collection)

    async def aput(self, key: str, val: dict, collection: str = DEFAULT_COLLECTION) -> None:
        self.put(key, val, collection=collection)

    def put_all(
        self,
        kv_pairs: List[Tuple[str, dict]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if type(self).put is not RustKVStore.put:  # a subclass overrides put: honour it
            for key, val in kv_pairs:
                self.put(key, val, collection=collection)
            return
        self._native.put_all(kv_pairs, collection)

    async def aput_all(
        self,
        kv_pairs: List[Tuple[str, dict]],
        collection: str = DEFAULT_COLLECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.put_all(kv_pairs, collection=collection, batch_size=batch_size)

    def get(self, key: str, collection: str = DEFAULT_COLLECTION) -> Optional[dict]:
        self._flush()
        return self._native.get(key, collection)

    async def aget(self, key: str, collection: str = DEFAULT_COLLECTION) -> Optional[dict]:
        return self.get(key, collection=collection)

    def get_all(self, collection: str = DEFAULT_COLLECTION) -> Dict[str, dict]:
        self._flush()
        return self._native.get_all(collection)

    async def aget_all(self, collection: str = DEFAULT_COLLECTION) -> Dict[str, dict]:
        return self.get_all(collection=collection)

    def delete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        self._flush()
        return self._native.delete(key, collection)

    async def adelete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        return self.delete(key, collection=collection)

    # ---- persistence ----

    def to_json(self) -> bytes:
        """The bytes `persist` writes (`json.dumps` of all collections, UTF-8)."""
        self._flush()
        return self._native.to_json()

    def persist(self, persist_path: str, fs: Optional[fsspec.AbstractFileSystem] = None) -> None:
        """Persist the store: an atomic replace on local disks, one whole-object write elsewhere."""
        fs = fs or fsspec.filesystem("file")
        dirpath = os.path.dirname(persist_path)
        if not fs.exists(dirpath):
            fs.makedirs(dirpath)
        self._flush()
        local = _local_path(fs, persist_path)
        if local is not None:
            self._native.persist(local)
        else:
            data = self._native.to_json()
            with fs.open(persist_path, "wb") as f:
                f.write(data)

    @classmethod
    def from_persist_path(
        cls, persist_path: str, fs: Optional[fsspec.AbstractFileSystem] = None
    ) -> "RustKVStore":
        """Load a store persisted by RustKVStore or SimpleKVStore (FileNotFoundError if missing)."""
        fs = fs or fsspec.filesystem("file")
        local = _local_path(fs, persist_path)
        if local is not None:
            native = _native.KvStore.load(local)
        else:
            with fs.open(persist_path, "rb") as f:
                native = _native.KvStore.from_json(f.read(), str(persist_path))
        return cls._from_native(native)

    def to_dict(self) -> dict:
        self._flush()
        return self._native.to_dict()

    @classmethod
    def from_dict(cls, save_dict: dict) -> "RustKVStore":
        return cls(save_dict)

    @classmethod
    def from_json(cls, data: bytes, source_name: str = "<bytes>") -> "RustKVStore":
        """Load from the bytes `to_json` / `persist` produce."""
        return cls._from_native(_native.KvStore.from_json(data, source_name))

    # ---- pickling and copying ----

    def __getstate__(self) -> dict:
        self._flush()
        state = {k: v for k, v in self.__dict__.items() if k not in ("_native", "_flush_hook")}
        state["_native_json"] = self._native.to_json()
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        payload = state.pop("_native_json")
        self.__dict__.update(state)
        self._flush_hook = None
        self._native = _native.KvStore.from_json(payload, "<pickled RustKVStore>")

    def __deepcopy__(self, memo: dict) -> "RustKVStore":
        self._flush()
        new = type(self).__new__(type(self))
        for k, v in self.__dict__.items():
            if k not in ("_native", "_flush_hook"):
                new.__dict__[k] = copy.deepcopy(v, memo)
        new._flush_hook = None
        new._native = self._native.copy()
        return new
