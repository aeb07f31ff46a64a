"""llama-index-rs demo: a real RAG index over the bundled stdlib corpus, on the Rust stores.

1. builds a VectorStoreIndex over 1,013 real text chunks (stdlib docstrings, all-MiniLM-L6-v2
   embeddings) with RustVectorStore, RustDocumentStore and RustIndexStore, persists it, reloads it
   with load_index_from_storage,
2. prints the top results for a few real queries,
3. times the same pipeline with LlamaIndex's Simple* stores (plus one-by-one inserts), and the
   vector store alone at 10k x 768 (rows made from the real vectors), and prints the ratios.

Run with `make demo`.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

import numpy as np

os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR",
    str(
        pathlib.Path(__import__("llama_index.core").core.__file__).parent
        / "_static"
        / "tiktoken_cache"
    ),
)

from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.storage.docstore import SimpleDocumentStore  # noqa: E402
from llama_index.core.storage.index_store import SimpleIndexStore  # noqa: E402
from llama_index.core.vector_stores import SimpleVectorStore, VectorStoreQuery  # noqa: E402

from llama_index_rs import (  # noqa: E402
    RustDocumentStore,
    RustIndexStore,
    RustVectorStore,
    simd_backend,
)

RUST = (RustVectorStore, RustDocumentStore, RustIndexStore)
SIMPLE = (SimpleVectorStore, SimpleDocumentStore, SimpleIndexStore)


def new_context(stores: tuple) -> StorageContext:
    vector, doc, index = stores
    return StorageContext.from_defaults(vector_store=vector(), docstore=doc(), index_store=index())


def load_context(stores: tuple, d: str) -> StorageContext:
    vector, doc, index = stores
    return StorageContext.from_defaults(
        persist_dir=d,
        vector_store=vector.from_persist_dir(d),
        docstore=doc.from_persist_dir(d),
        index_store=index.from_persist_dir(d),
    )


DATA = pathlib.Path(__file__).resolve().parent / "data"


class PrecomputedEmbedding(BaseEmbedding):
    """Serves the corpus' precomputed all-MiniLM-L6-v2 query embeddings (the model is not shipped)."""

    table: Dict[str, List[float]] = {}

    def _get_query_embedding(self, query: str) -> List[float]:
        try:
            return self.table[query]
        except KeyError:
            raise KeyError(f"no precomputed embedding for query {query!r}") from None

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._get_query_embedding(text)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._get_query_embedding(query)


def load_corpus() -> tuple:
    meta = json.loads((DATA / "meta.json").read_text())
    dim = meta["dim"]
    E = np.fromfile(DATA / "embeddings.f32", dtype="<f4").reshape(-1, dim)
    Q = np.fromfile(DATA / "query_embeddings.f32", dtype="<f4").reshape(-1, dim)
    rows = [json.loads(line) for line in open(DATA / "nodes.jsonl", encoding="utf-8")]
    queries = [json.loads(line)["text"] for line in open(DATA / "queries.jsonl", encoding="utf-8")]
    nodes = [
        TextNode(
            id_=r["id"],
            text=r["text"],
            metadata=r["metadata"],
            embedding=e.tolist(),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=r["ref_doc_id"])},
        )
        for r, e in zip(rows, E)
    ]
    return nodes, queries, Q


def timed(fn: Callable[[], Any]) -> tuple:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def pipeline(
    stores: tuple, nodes: list, embed_model: BaseEmbedding, queries: List[str]
) -> Dict[str, float]:
    """Build, persist, reload and query an index; then insert nodes one by one. Seconds per phase."""
    with tempfile.TemporaryDirectory() as d:
        t: Dict[str, float] = {}
        index, t["build"] = timed(
            lambda: VectorStoreIndex(
                nodes, storage_context=new_context(stores), embed_model=embed_model
            )
        )
        _, t["persist"] = timed(lambda: index.storage_context.persist(persist_dir=d))
        index, t["load"] = timed(
            lambda: load_index_from_storage(load_context(stores, d), embed_model=embed_model)
        )
        retriever = index.as_retriever(similarity_top_k=10)
        _, t["retrieve"] = timed(lambda: [retriever.retrieve(q) for q in queries])
        index = VectorStoreIndex([], storage_context=new_context(stores), embed_model=embed_model)
        _, t["insert 1-by-1"] = timed(lambda: [index.insert_nodes([n]) for n in nodes])
        return t


def vector_timings(
    store_cls: type, ids: List[str], E: np.ndarray, Q: np.ndarray
) -> Dict[str, float]:
    nodes = [TextNode(id_=i, text="", embedding=e) for i, e in zip(ids, E.tolist())]
    t: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "default__vector_store.json")
        store = store_cls()
        _, t["add"] = timed(lambda: store.add(nodes))
        q = VectorStoreQuery(query_embedding=Q[0].tolist(), similarity_top_k=10)
        _, t["query"] = timed(lambda: store.query(q))
        # Ours by default writes LlamaIndex's JSON plus a binary mirror, and loads from the mirror
        # (memory-mapped); the labels say so.
        _, t["persist *"] = timed(lambda: store.persist(path))
        _, t["load *"] = timed(lambda: store_cls.from_persist_path(path))
    return t


def table(title: str, ours: Dict[str, float], theirs: Dict[str, float]) -> None:
    print(f"\n{title}")
    print(f"  {'phase':<14}{'LlamaIndex Simple*':>20}{'llama-index-rs':>18}{'speed-up':>10}")
    for k in ours:
        print(
            f"  {k:<14}{theirs[k] * 1e3:>17.1f} ms{ours[k] * 1e3:>15.1f} ms{theirs[k] / max(ours[k], 1e-9):>9.0f}x"
        )


def main() -> None:
    nodes, queries, Q = load_corpus()
    embed_model = PrecomputedEmbedding(table={q: e.tolist() for q, e in zip(queries, Q)})
    print(
        f"llama-index-rs demo: {len(nodes)} real chunks x {Q.shape[1]} dims, SIMD: {simd_backend()}"
    )

    with tempfile.TemporaryDirectory() as d:
        index = VectorStoreIndex(nodes, storage_context=new_context(RUST), embed_model=embed_model)
        index.storage_context.persist(persist_dir=d)
        print(f"persisted to {d}: {', '.join(sorted(os.listdir(d)))}")
        index = load_index_from_storage(load_context(RUST, d), embed_model=embed_model)
        retriever = index.as_retriever(similarity_top_k=3)
        for q in queries[:5]:
            print(f"\nQ: {q}")
            for hit in retriever.retrieve(q):
                first = hit.node.get_content().strip().splitlines()[0][:70]
                print(f"   {hit.score:.3f}  {hit.node.node_id:<28} {first}")

    table(
        f"End to end, {len(nodes)} x {Q.shape[1]}, Rust vs Simple vector/doc/index stores"
        f" (build, persist, load, {len(queries)} retrievals, then {len(nodes)} one-by-one inserts):",
        pipeline(RUST, nodes, embed_model, queries),
        pipeline(SIMPLE, nodes, embed_model, queries),
    )

    # A bigger store from the same real vectors: 10k rows x 768 (two real embeddings side by side).
    rng = np.random.default_rng(0)
    E = np.fromfile(DATA / "embeddings.f32", dtype="<f4").reshape(-1, Q.shape[1])
    pick = rng.integers(0, len(E), size=(10_000, 2))
    big = np.concatenate([E[pick[:, 0]], E[pick[:, 1]]], axis=1).astype(np.float32)
    bigq = np.concatenate([Q, Q], axis=1).astype(np.float32)
    ids = [f"row-{i}" for i in range(len(big))]
    if "--quick" in sys.argv:
        big, ids = big[:2000], ids[:2000]
    table(
        f"Vector store alone, {len(big):,} x {big.shape[1]} (one top-10 query; persist/load; * ours writes\n"
        "  LlamaIndex's JSON plus its binary mirror and loads the mirror memory-mapped):",
        vector_timings(RustVectorStore, ids, big, bigq),
        vector_timings(SimpleVectorStore, ids, big, bigq),
    )


if __name__ == "__main__":
    main()
