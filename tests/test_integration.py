"""LlamaIndex integration: VectorStoreIndex, retrievers, StorageContext persist/load with ours in
place of SimpleVectorStore give the same nodes and scores on the bundled corpus."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _support import Corpus, Ours
from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters


class PrecomputedEmbedding(BaseEmbedding):
    """A real BaseEmbedding that knows the corpus' query embeddings; unknown texts raise."""

    _table: dict[str, list[float]] = PrivateAttr(default_factory=dict)

    def __init__(self, corpus: Corpus, **kwargs: Any) -> None:
        super().__init__(model_name="precomputed-all-MiniLM-L6-v2", embed_batch_size=16, **kwargs)
        self._table = {
            qr["text"]: corpus.query_embeddings[i].tolist() for i, qr in enumerate(corpus.queries)
        }

    @classmethod
    def class_name(cls) -> str:
        return "PrecomputedEmbedding"

    def _lookup(self, text: str) -> list[float]:
        try:
            return list(self._table[text])
        except KeyError:
            raise KeyError(f"no precomputed embedding for {text!r}") from None

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._lookup(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._lookup(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._lookup(text)


@pytest.fixture(scope="module")
def embed(corpus):
    return PrecomputedEmbedding(corpus)


def build(corpus: Corpus, vector_store: Any, embed: BaseEmbedding) -> VectorStoreIndex:
    storage = StorageContext.from_defaults(vector_store=vector_store)
    return VectorStoreIndex(corpus.nodes(), storage_context=storage, embed_model=embed)


def retrieved(index: VectorStoreIndex, text: str, **kwargs: Any) -> list:
    return [
        (n.node.node_id, n.score, n.node.get_content())
        for n in index.as_retriever(**kwargs).retrieve(text)
    ]


def assert_same_retrieval(a: list, b: list) -> None:
    assert [x[0] for x in a] == [x[0] for x in b]
    assert np.allclose([x[1] for x in a], [x[1] for x in b], atol=1e-6, rtol=0)
    assert [x[2] for x in a] == [x[2] for x in b]


@pytest.fixture(scope="module")
def indexes(corpus, embed):
    return build(corpus, SimpleVectorStore(), embed), build(corpus, Ours(), embed)


def test_embed_model_refuses_unknown_text(embed):
    with pytest.raises(KeyError):
        embed.get_query_embedding("not one of the bundled queries")


def test_index_uses_our_store(indexes):
    _, ours = indexes
    assert isinstance(ours.vector_store, Ours)
    assert isinstance(ours.storage_context.vector_store, Ours)


def test_retrieve_same_as_simple(corpus, indexes):
    theirs, ours = indexes
    for qr in corpus.queries:
        r_t = retrieved(theirs, qr["text"], similarity_top_k=5)
        r_o = retrieved(ours, qr["text"], similarity_top_k=5)
        assert len(r_o) == 5
        assert_same_retrieval(r_t, r_o)


def test_retrieve_mmr_and_filters(corpus, indexes):
    theirs, ours = indexes
    filters = MetadataFilters(
        filters=[
            MetadataFilter(
                key="module", value=["json", "os", "zipfile", "pathlib"], operator=FilterOperator.IN
            )
        ]
    )
    for qr in corpus.queries[:4]:
        kw = {
            "similarity_top_k": 4,
            "vector_store_query_mode": "mmr",
            "vector_store_kwargs": {"mmr_threshold": 0.6},
        }
        assert_same_retrieval(
            retrieved(theirs, qr["text"], **kw), retrieved(ours, qr["text"], **kw)
        )
        kw2 = {"similarity_top_k": 8, "filters": filters}
        assert_same_retrieval(
            retrieved(theirs, qr["text"], **kw2), retrieved(ours, qr["text"], **kw2)
        )


def test_persist_and_load_index(corpus, embed, tmp_path):
    theirs = build(corpus, SimpleVectorStore(), embed)
    ours = build(corpus, Ours(), embed)
    theirs.storage_context.persist(persist_dir=str(tmp_path / "t"))
    ours.storage_context.persist(persist_dir=str(tmp_path / "o"))
    vs_name = "default__vector_store.json"
    assert (tmp_path / "o" / vs_name).read_bytes() == (tmp_path / "t" / vs_name).read_bytes()

    loaded_t = load_index_from_storage(
        StorageContext.from_defaults(persist_dir=str(tmp_path / "t")), embed_model=embed
    )
    ctx_o = StorageContext.from_defaults(
        persist_dir=str(tmp_path / "o"), vector_store=Ours.from_persist_dir(str(tmp_path / "o"))
    )
    loaded_o = load_index_from_storage(ctx_o, embed_model=embed)
    assert isinstance(loaded_o.vector_store, Ours)
    for qr in corpus.queries[::5]:
        assert_same_retrieval(
            retrieved(loaded_t, qr["text"], similarity_top_k=6),
            retrieved(loaded_o, qr["text"], similarity_top_k=6),
        )
    # the file ours wrote loads into the stock SimpleVectorStore path too
    loaded_cross = load_index_from_storage(
        StorageContext.from_defaults(persist_dir=str(tmp_path / "o")), embed_model=embed
    )
    assert type(loaded_cross.vector_store) is SimpleVectorStore
    q0 = corpus.queries[0]["text"]
    assert_same_retrieval(
        retrieved(loaded_t, q0, similarity_top_k=6), retrieved(loaded_cross, q0, similarity_top_k=6)
    )
    # StorageContext.to_dict accepts ours (isinstance check on SimpleVectorStore)
    from llama_index.core.storage.storage_context import VECTOR_STORE_KEY

    d_o = ours.storage_context.to_dict()
    d_t = theirs.storage_context.to_dict()
    assert d_o[VECTOR_STORE_KEY] == d_t[VECTOR_STORE_KEY]
    assert d_o[VECTOR_STORE_KEY]["default"]["embedding_dict"]


def test_insert_and_delete_through_index(corpus, embed):
    nodes = corpus.nodes()
    first, rest = nodes[:100], nodes[100:130]
    idx_t = VectorStoreIndex(
        first,
        storage_context=StorageContext.from_defaults(vector_store=SimpleVectorStore()),
        embed_model=embed,
    )
    idx_o = VectorStoreIndex(
        first, storage_context=StorageContext.from_defaults(vector_store=Ours()), embed_model=embed
    )
    for idx in (idx_t, idx_o):
        idx.insert_nodes(rest)
        idx.delete_ref_doc(nodes[0].ref_doc_id, delete_from_docstore=True)
        idx.delete_nodes([rest[3].node_id])
    assert idx_o.vector_store.to_dict() == idx_t.vector_store.to_dict()
    for qr in corpus.queries[:5]:
        assert_same_retrieval(
            retrieved(idx_t, qr["text"], similarity_top_k=7),
            retrieved(idx_o, qr["text"], similarity_top_k=7),
        )


def test_async_retrieve(corpus, indexes):
    import asyncio

    theirs, ours = indexes
    text = corpus.queries[3]["text"]

    async def go(index: VectorStoreIndex) -> list:
        res = await index.as_retriever(similarity_top_k=5).aretrieve(text)
        return [(n.node.node_id, n.score, n.node.get_content()) for n in res]

    assert_same_retrieval(asyncio.run(go(theirs)), asyncio.run(go(ours)))
