"""A store is freed when its last reference goes, as the Simple* stores are.

Reference counting frees an object at once; an object in a reference cycle waits for the garbage
collector, whose full collections can be far apart. A vector store can hold gigabytes, so a cycle
inside a store (store -> view -> store) would keep them after `del`. These tests run with the
collector off, so only reference counting can free anything.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any, Callable, Iterator

import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.data_structs.data_structs import IndexDict
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.storage.index_store import SimpleIndexStore
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index.core.vector_stores import SimpleVectorStore

from llama_index_rs import RustDocumentStore, RustIndexStore, RustKVStore, RustVectorStore


@pytest.fixture(autouse=True)
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def nodes(n: int = 20) -> list:
    return [
        TextNode(id_=f"n{i}", text=f"text {i}", embedding=[1.0, float(i), 0.5], metadata={"k": i})
        for i in range(n)
    ]


def freed_on_del(make: Callable[[], Any]) -> bool:
    obj = make()
    ref = weakref.ref(obj)
    del obj
    return ref() is None


def used_vector_store(cls: type) -> Any:
    store = cls()
    store.add(nodes())
    assert len(store.data.embedding_dict) == 20  # our live views are made on access
    return store


def used_index_store(cls: type) -> Any:
    store = cls()
    struct = IndexDict(index_id="ix")
    for node in nodes(3):
        struct.add_node(node)
    store.add_index_struct(struct)
    return store


def used_docstore(cls: type) -> Any:
    store = cls()
    store.add_documents(nodes())
    return store


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda cls: cls(), id="new"),
        pytest.param(used_vector_store, id="used"),
    ],
)
def test_vector_store_is_freed_by_reference_counting(make: Callable[[type], Any]) -> None:
    assert freed_on_del(lambda: make(SimpleVectorStore))  # the oracle
    assert freed_on_del(lambda: make(RustVectorStore))


@pytest.mark.parametrize(
    "simple, ours, make",
    [
        (SimpleIndexStore, RustIndexStore, lambda cls: cls()),
        (SimpleIndexStore, RustIndexStore, used_index_store),
        (SimpleDocumentStore, RustDocumentStore, used_docstore),
        (SimpleKVStore, RustKVStore, lambda cls: cls()),
    ],
    ids=["index-new", "index-used", "docstore", "kv"],
)
def test_other_stores_are_freed_by_reference_counting(
    simple: type, ours: type, make: Callable
) -> None:
    assert freed_on_del(lambda: make(simple))
    assert freed_on_del(lambda: make(ours))


@pytest.mark.parametrize("rust", [False, True], ids=["simple", "rust"])
def test_a_whole_index_is_freed_by_reference_counting(rust: bool) -> None:
    if rust:
        ctx = StorageContext.from_defaults(
            vector_store=RustVectorStore(),
            docstore=RustDocumentStore(),
            index_store=RustIndexStore(),
        )
    else:
        ctx = StorageContext.from_defaults()
    index = VectorStoreIndex(nodes(), storage_context=ctx, embed_model=MockEmbedding(embed_dim=3))
    index.insert_nodes(nodes(25)[20:])
    refs = [weakref.ref(o) for o in (ctx.vector_store, ctx.docstore, ctx.index_store, index)]
    del ctx, index
    assert [r() for r in refs] == [None] * len(refs)


def test_vector_store_data_outlives_its_store_like_simple_data() -> None:
    for cls in (SimpleVectorStore, RustVectorStore):
        store = used_vector_store(cls)
        data = store.data
        del store
        assert len(data.embedding_dict) == 20
        assert data.embedding_dict["n3"] == [1.0, 3.0, 0.5]
        assert data.metadata_dict["n3"]["k"] == 3
        data.embedding_dict = {"a": [1.0, 2.0]}
        assert dict(data.embedding_dict) == {"a": [1.0, 2.0]}


def test_view_follows_its_store_when_a_dict_is_replaced() -> None:
    store = used_vector_store(RustVectorStore)
    data = store.data
    data.text_id_to_ref_doc_id = {"n0": "doc"}
    assert store.data.text_id_to_ref_doc_id["n0"] == "doc"
    assert dict(store._core.to_dict()["text_id_to_ref_doc_id"]) == {"n0": "doc"}
    assert len(store.data.embedding_dict) == 20


def test_kv_store_outliving_its_index_store_has_every_added_struct() -> None:
    # The index store writes added structs into its KV store lazily; a KV store kept after its index
    # store is gone must still read them, as SimpleIndexStore's would.
    kept = {}
    for simple, cls in ((True, SimpleIndexStore), (False, RustIndexStore)):
        store = used_index_store(cls)
        kv = store._kvstore
        del store
        kept[simple] = kv.get_all("index_store/data")
    assert kept[False] == kept[True] != {}
