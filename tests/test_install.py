"""install()/uninstall() and a full RAG pipeline on Rust stores only, against the pure-Python one."""

from __future__ import annotations

import json
import pathlib
from typing import Dict, List

import numpy as np
import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.ingestion import DocstoreStrategy, IngestionCache, IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.storage.index_store import SimpleIndexStore
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index.core.vector_stores import SimpleVectorStore

import llama_index_rs
from llama_index_rs import RustDocumentStore, RustIndexStore, RustKVStore, RustVectorStore

DATA = pathlib.Path(__file__).resolve().parent.parent / "demo" / "data"


class TableEmbedding(BaseEmbedding):
    """Serves the corpus' precomputed all-MiniLM-L6-v2 embeddings by text (no network)."""

    table: Dict[str, List[float]] = {}

    def _get_query_embedding(self, query: str) -> List[float]:
        return self.table[query]

    def _get_text_embedding(self, text: str) -> List[float]:
        if text in self.table:
            return self.table[text]
        # node text with its metadata header: the chunk is the part after it
        return next(v for k, v in self.table.items() if text.endswith(k.strip()))

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self.table[query]


def corpus(n: int = 150):
    meta = json.loads((DATA / "meta.json").read_text())
    dim = meta["dim"]
    emb = np.fromfile(DATA / "embeddings.f32", dtype="<f4").reshape(-1, dim)
    qemb = np.fromfile(DATA / "query_embeddings.f32", dtype="<f4").reshape(-1, dim)
    rows = [json.loads(line) for line in open(DATA / "nodes.jsonl", encoding="utf-8")][:n]
    queries = [json.loads(line)["text"] for line in open(DATA / "queries.jsonl", encoding="utf-8")]
    table = {r["text"]: e.tolist() for r, e in zip(rows, emb)}
    table.update({q: e.tolist() for q, e in zip(queries, qemb)})
    docs = [Document(id_=r["id"], text=r["text"], metadata=r["metadata"]) for r in rows]
    return docs, queries[:10], TableEmbedding(table=table)


RUST_SIDE_FILES = {
    "default__vector_store.rsvec",
    "image__vector_store.rsvec",
    ".llama_index_rs.lock",
}


def rag(tmp_path, name, stores):
    docs, queries, embed = corpus()
    # chunk_size large enough that each corpus chunk stays one node (its embedding is known)
    pipe = IngestionPipeline(
        transformations=[
            SentenceSplitter(chunk_size=4096, id_func=lambda i, d: f"{d.doc_id}-{i}"),
            embed,
        ],
        docstore=stores["docstore"]() if stores else SimpleDocumentStore(),
        docstore_strategy=DocstoreStrategy.DUPLICATES_ONLY,
    )
    nodes = pipe.run(documents=docs)
    sc = (
        StorageContext.from_defaults(
            docstore=stores["docstore"](),
            index_store=stores["index_store"](),
            vector_store=stores["vector_store"](),
        )
        if stores
        else StorageContext.from_defaults()
    )
    index = VectorStoreIndex(nodes[:100], storage_context=sc, embed_model=embed)
    index.set_index_id("rag-index")  # the default id is a random uuid
    for node in nodes[100:]:
        index.insert_nodes([node])
    d = tmp_path / name
    sc.persist(str(d))
    pipe.persist(str(d / "pipeline"))
    loaded = load_index_from_storage(
        StorageContext.from_defaults(persist_dir=str(d)), embed_model=embed
    )
    retriever = loaded.as_retriever(similarity_top_k=5)
    results = [
        [(n.node_id, round(n.score, 6), n.get_content()) for n in retriever.retrieve(q)]
        for q in queries
    ]
    # Our side files (binary vector mirror, advisory lock) sit beside LlamaIndex's; every file both
    # write must be byte-identical, vector store JSON included (the embeddings are float32 values).
    files = {
        p.name: p.read_bytes()
        for p in d.rglob("*")
        if p.is_file() and p.name not in RUST_SIDE_FILES
    }
    return results, files, loaded


RUST = {
    "docstore": RustDocumentStore,
    "index_store": RustIndexStore,
    "vector_store": RustVectorStore,
}


def test_rag_pipeline_explicit_rust_stores_matches_python(tmp_path):
    expected, files, _ = rag(tmp_path, "py", None)
    got, rust_files, loaded = rag(tmp_path, "rs", RUST)
    assert got == expected
    assert rust_files == files  # docstore.json, index_store.json byte-identical


def test_rag_pipeline_via_install_matches_python(tmp_path):
    expected, files, _ = rag(tmp_path, "py", None)
    llama_index_rs.install()
    try:
        got, rust_files, loaded = rag(tmp_path, "rs", None)
        assert isinstance(loaded.storage_context.docstore, RustDocumentStore)
        assert isinstance(loaded.storage_context.index_store, RustIndexStore)
        assert isinstance(loaded.storage_context.vector_store, RustVectorStore)
    finally:
        llama_index_rs.uninstall()
    assert got == expected
    assert rust_files == files


def test_install_uninstall_defaults(tmp_path):
    llama_index_rs.install()
    llama_index_rs.install()  # idempotent
    try:
        sc = StorageContext.from_defaults()
        assert type(sc.docstore) is RustDocumentStore
        assert type(sc.index_store) is RustIndexStore
        assert all(type(v) is RustVectorStore for v in sc.vector_stores.values())
        assert type(IngestionCache().cache) is RustKVStore
        sc2 = StorageContext.from_dict(sc.to_dict())
        assert type(sc2.docstore) is RustDocumentStore
        # to_dict still accepts LlamaIndex's own stores
        plain = StorageContext.from_defaults(
            docstore=SimpleDocumentStore(),
            index_store=SimpleIndexStore(),
            vector_store=SimpleVectorStore(),
        )
        assert set(plain.to_dict()) == set(sc.to_dict())
        sc.persist(str(tmp_path))
        sc3 = StorageContext.from_defaults(persist_dir=str(tmp_path))
        assert type(sc3.docstore) is RustDocumentStore
        assert {k: type(v) for k, v in sc3.vector_stores.items()} == {
            "default": RustVectorStore,
            "image": RustVectorStore,
        }
        cache = IngestionCache()
        cache.persist(str(tmp_path / "cache.json"))
        assert (
            type(IngestionCache.from_persist_path(str(tmp_path / "cache.json")).cache)
            is RustKVStore
        )
    finally:
        llama_index_rs.uninstall()
    sc = StorageContext.from_defaults()
    assert type(sc.docstore) is SimpleDocumentStore
    assert type(sc.index_store) is SimpleIndexStore
    assert type(IngestionCache().cache) is SimpleKVStore


def test_exports():
    assert {
        "RustKVStore",
        "RustDocumentStore",
        "RustIndexStore",
        "RustVectorStore",
        "install",
        "uninstall",
    } <= set(llama_index_rs.__all__)


@pytest.mark.parametrize("cls", [RustDocumentStore, RustIndexStore])
def test_unknown_files_raise_like_simple(cls, tmp_path):
    with pytest.raises(FileNotFoundError):
        cls.from_persist_dir(str(tmp_path / "nowhere"))
