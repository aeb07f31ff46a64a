"""RustIndexStore: a drop-in SimpleIndexStore whose add_index_struct costs O(changes), not O(size)."""

from __future__ import annotations

import copy
import json
import weakref
from typing import Any, Dict, List, Optional, Tuple

import fsspec
from llama_index.core.data_structs.data_structs import IndexDict, IndexStruct, MultiModelIndexDict
from llama_index.core.storage.index_store.keyval_index_store import KVIndexStore
from llama_index.core.storage.index_store.simple_index_store import SimpleIndexStore
from llama_index.core.storage.index_store.types import DEFAULT_PERSIST_DIR, DEFAULT_PERSIST_PATH
from llama_index.core.storage.kvstore.simple_kvstore import SimpleKVStore

from llama_index_rs import _native
from llama_index_rs.kv_store import RustKVStore

# Struct types whose `nodes_dict` is tracked incrementally (their JSON layout is known exactly).
_TRACKED_TYPES = (IndexDict, MultiModelIndexDict)
_SET, _DEL, _CLEAR = 0, 1, 2
_NODES = "n"


class _JournalDict(dict):
    """The `nodes_dict` of an IndexDict added to a RustIndexStore: a plain dict that also records
    every mutation, so the next `add_index_struct` applies only those. Copies, pickles and deep
    copies are plain dicts."""

    __slots__ = ("_journal",)

    def __init__(self, data: Dict[str, Any]) -> None:
        super().__init__(data)
        self._journal: List[Tuple[int, Any, Any]] = []

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._journal.append((_SET, key, value))

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        self._journal.append((_DEL, key, None))

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            value = dict.pop(self, key)
            self._journal.append((_DEL, key, None))
            return value
        return dict.pop(self, key, *default)

    def popitem(self) -> Tuple[Any, Any]:
        key, value = dict.popitem(self)
        self._journal.append((_DEL, key, None))
        return key, value

    def clear(self) -> None:
        dict.clear(self)
        self._journal.append((_CLEAR, None, None))

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> "_JournalDict":
        self.update(other)
        return self

    def copy(self) -> Dict[str, Any]:
        return dict(self)

    def __reduce__(self) -> tuple:
        return (dict, (dict(self),))

    def __deepcopy__(self, memo: dict) -> Dict[str, Any]:
        return copy.deepcopy(dict(self), memo)


class _Json(str):
    """JSON text taken by `_snapshot`."""


def _snapshot(value: Any) -> Any:
    """What `add_index_struct` keeps of a field: the value itself when it cannot change later (a
    str or None: dumped at flush, once), else its JSON now. An empty dict is `{}` without a dump:
    the common case for a vector index's doc_id_dict and embeddings_dict."""
    if value is None or type(value) is str:
        return value
    if type(value) is dict and not value:
        return _Json("{}")
    return _Json(json.dumps(value))


def _json_of(snapshot: Any) -> str:
    return snapshot if type(snapshot) is _Json else json.dumps(snapshot)


class _Tracked:
    """What the store knows about one tracked struct: its nodes_dict as last added (in Rust), and
    its other fields as last added (`_snapshot`s)."""

    __slots__ = ("struct", "journal", "nodes", "fields")

    def __init__(self, struct: IndexStruct, journal: _JournalDict, nodes: Any) -> None:
        self.struct = weakref.ref(struct)
        self.journal = journal
        self.nodes = nodes
        self.fields: Tuple[Any, ...] = ()


class _Tracker:
    """The incremental state of a RustIndexStore over a RustKVStore: the structs added (`_Tracked`)
    and which of them the KV store has not been given yet. `flush` writes those; the KV store calls
    it before anything reads it."""

    __slots__ = ("native", "collection", "tracked", "dirty")

    def __init__(self, native: Any, collection: str) -> None:
        self.native = native  # the RustKVStore's native store, None for other KV stores
        self.collection = collection
        self.tracked: Dict[str, _Tracked] = {}
        self.dirty: Dict[str, None] = {}

    def flush(self) -> None:
        """Writes the JSON of every struct added since the last flush into the KV store."""
        if not self.dirty:
            return
        for key in list(self.dirty):
            tracked = self.tracked[key]
            type_json, index_id, summary, doc_ids_json, embeddings_json = tracked.fields
            data = (
                f'{{"index_id": {_json_of(index_id)}, "summary": {_json_of(summary)}, '
                f'"nodes_dict": {tracked.nodes.collection_json(_NODES)}, '
                f'"doc_id_dict": {doc_ids_json}, "embeddings_dict": {embeddings_json}}}'
            )
            self.native.put(key, {"__type__": type_json, "__data__": data}, self.collection)
        self.dirty.clear()

    def add(self, index_struct: IndexStruct) -> None:
        """`add_index_struct` of a tracked type: applies the changes since its last add."""
        key = index_struct.index_id
        nodes_dict = index_struct.nodes_dict
        tracked = self.tracked.get(key)
        if (
            tracked is not None
            and tracked.struct() is index_struct
            and nodes_dict is tracked.journal
        ):
            ops, nodes_dict._journal = nodes_dict._journal, []
            nodes = tracked.nodes
            for op, k, v in ops:
                if op == _SET:
                    nodes.put(k, v, _NODES)
                elif op == _DEL:
                    nodes.delete(k, _NODES)
                else:
                    nodes = tracked.nodes = _native.KvStore()
        else:
            nodes = _native.KvStore()
            nodes.put_all(list(nodes_dict.items()), _NODES)
            journal = _JournalDict(nodes_dict)
            index_struct.nodes_dict = journal
            tracked = self.tracked[key] = _Tracked(index_struct, journal, nodes)
        tracked.fields = (
            index_struct.get_type(),
            _snapshot(index_struct.index_id),
            _snapshot(index_struct.summary),
            _snapshot(index_struct.doc_id_dict),
            _snapshot(index_struct.embeddings_dict),
        )
        if not self.native.contains(key, self.collection):
            self.native.put(key, None, self.collection)  # placeholder: keeps the key's position
        self.dirty[key] = None

    def untrack(self, key: str) -> None:
        if self.tracked.pop(key, None) is not None:
            self.dirty.pop(key, None)


class RustIndexStore(SimpleIndexStore):
    """Drop-in replacement for LlamaIndex's `SimpleIndexStore`, backed by `RustKVStore`.

    Same API, same exceptions, byte-identical `index_store.json` (with its doubly encoded
    `"__data__"`). `add_index_struct` of a vector index struct (IndexDict) costs O(changes since the
    last add) instead of re-serializing the whole struct, so one-by-one inserts into a
    VectorStoreIndex stay linear. To do so it replaces the struct's `nodes_dict` by a dict subclass
    that records mutations; the stored state still changes only when `add_index_struct` is called,
    exactly as with SimpleIndexStore. The JSON is built lazily, when something reads the store.
    """

    def __init__(self, simple_kvstore: Optional[SimpleKVStore] = None) -> None:
        kvstore = simple_kvstore if simple_kvstore is not None else RustKVStore()
        KVIndexStore.__init__(self, kvstore)
        self._init_tracking()

    def _init_tracking(self) -> None:
        native = self._kvstore._native if type(self._kvstore) is RustKVStore else None
        self._tracker = _Tracker(native, self._collection)
        if native is not None:
            # The hook refers to the tracker, not to this store: the KV store referring back to its
            # index store would make a cycle, which only the garbage collector frees.
            self._kvstore._flush_hook = self._tracker.flush

    def _flush(self) -> None:
        self._tracker.flush()

    def add_index_struct(self, index_struct: IndexStruct) -> None:
        if type(index_struct) not in _TRACKED_TYPES or self._tracker.native is None:
            self._tracker.untrack(index_struct.index_id)
            return super().add_index_struct(index_struct)
        self._tracker.add(index_struct)

    async def async_add_index_struct(self, index_struct: IndexStruct) -> None:
        self.add_index_struct(index_struct)

    def delete_index_struct(self, key: str) -> None:
        self._flush()
        self._tracker.untrack(key)
        super().delete_index_struct(key)

    async def adelete_index_struct(self, key: str) -> None:
        self.delete_index_struct(key)

    def get_index_struct(self, struct_id: Optional[str] = None) -> Optional[IndexStruct]:
        return super().get_index_struct(struct_id)

    async def aget_index_struct(self, struct_id: Optional[str] = None) -> Optional[IndexStruct]:
        return self.get_index_struct(struct_id)

    def index_structs(self) -> List[IndexStruct]:
        return super().index_structs()

    async def async_index_structs(self) -> List[IndexStruct]:
        return self.index_structs()

    # ---- persistence ----

    @classmethod
    def from_persist_dir(
        cls,
        persist_dir: str = DEFAULT_PERSIST_DIR,
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> "RustIndexStore":
        return super().from_persist_dir(persist_dir, fs=fs)

    @classmethod
    def from_persist_path(
        cls, persist_path: str, fs: Optional[fsspec.AbstractFileSystem] = None
    ) -> "RustIndexStore":
        return cls(RustKVStore.from_persist_path(persist_path, fs=fs))

    def persist(
        self,
        persist_path: str = DEFAULT_PERSIST_PATH,
        fs: Optional[fsspec.AbstractFileSystem] = None,
    ) -> None:
        super().persist(persist_path, fs=fs)

    @classmethod
    def from_dict(cls, save_dict: dict) -> "RustIndexStore":
        return cls(RustKVStore.from_dict(save_dict))

    def to_dict(self) -> dict:
        return super().to_dict()

    # ---- pickling and copying: the written state only, tracking starts afresh ----

    def __getstate__(self) -> dict:
        self._flush()
        return {k: v for k, v in self.__dict__.items() if k != "_tracker"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_tracking()

    def __deepcopy__(self, memo: dict) -> "RustIndexStore":
        new = type(self).__new__(type(self))
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new
