"""Side-by-side benchmark: RustVectorStore vs SimpleVectorStore vs numpy vs FAISS vs usearch.

Same data, one process, one run; results are ratios. Every timed answer is checked against numpy's
exact top-k (a fast wrong answer is reported as wrong, not as fast). Benchmarks never gate CI.

    python benches/compare.py            # full: 10k x 768 and 100k x 1536
    python benches/compare.py --quick    # smaller sizes, a couple of minutes

SimpleVectorStore is measured directly where it finishes in reasonable time and extrapolated
linearly from a smaller size elsewhere; the table says which.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import tempfile
import time
from typing import Any, Callable, List, Optional

import numpy as np
from llama_index.core.vector_stores import SimpleVectorStore, VectorStoreQuery
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters
from llama_index_rs import RustVectorStore, simd_backend

QUICK = "--quick" in sys.argv
ROWS: List[List[str]] = []


def best_of(fn: Callable[[], Any], repeat: int) -> tuple:
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def row(
    section: str,
    what: str,
    seconds: Optional[float],
    base: Optional[float],
    ok: Optional[bool],
    note: str = "",
) -> None:
    ratio = "" if seconds is None or base is None else f"{base / seconds:.2f}x"
    t = (
        "-"
        if seconds is None
        else (f"{seconds * 1e3:.2f} ms" if seconds < 10 else f"{seconds:.1f} s")
    )
    check = {True: "ok", False: "WRONG", None: ""}[ok]
    ROWS.append([section, what, t, ratio, check, note])
    print(f"  {what:<44}{t:>12}  {ratio:>9}  {check:<5} {note}", flush=True)


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def numpy_topk(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    s = x @ q
    idx = np.argpartition(-s, k)[:k]
    return idx[np.argsort(-s[idx], kind="stable")]


def ids_match(got: List[str], want_idx: np.ndarray) -> bool:
    return [int(g.split("-")[1]) for g in got] == [int(i) for i in want_idx]


def rust_store(x: np.ndarray, with_metadata: bool = False) -> RustVectorStore:
    store = RustVectorStore()
    ids = [f"n-{i}" for i in range(len(x))]
    md = [{"bucket": i % 10} for i in range(len(x))] if with_metadata else None
    store.add_embeddings(ids, x, metadata=md)
    return store


def simple_store(x: np.ndarray) -> SimpleVectorStore:
    store = SimpleVectorStore()
    for i, e in enumerate(x.tolist()):
        store.data.embedding_dict[f"n-{i}"] = e
        store.data.text_id_to_ref_doc_id[f"n-{i}"] = "None"
        store.data.metadata_dict[f"n-{i}"] = {"bucket": i % 10}
    return store


def bench_query(n: int, d: int, simple_n: int) -> None:
    print(f"\n== one top-10 query, {n:,} x {d} (unit rows, cosine) ==")
    x = make_data(n, d)
    q = make_data(1, d, seed=1)[0]
    k = 10
    want = numpy_topk(x, q, k)
    t_np, got = best_of(lambda: numpy_topk(x, q, k), 7)
    row("query", f"numpy x @ q + argpartition ({n:,}x{d})", t_np, t_np, True)
    store = rust_store(x)
    vq = VectorStoreQuery(query_embedding=q.astype(np.float64).tolist(), similarity_top_k=k)
    t_rs, res = best_of(lambda: store.query(vq), 7)
    row(
        "query",
        "RustVectorStore.query",
        t_rs,
        t_np,
        ids_match(res.ids, want),
        "ratio = numpy time / ours",
    )
    try:
        import faiss

        index = faiss.IndexFlatIP(d)
        index.add(x)
        t_f, (D, I) = best_of(lambda: index.search(q[None, :], k), 7)
        row("query", "FAISS IndexFlatIP", t_f, t_np, list(I[0]) == list(want))
    except ImportError:
        row("query", "FAISS IndexFlatIP", None, None, None, "faiss-cpu not installed")
    try:
        from usearch.index import MetricKind
        from usearch.index import search as usearch_search

        t_u, m = best_of(lambda: usearch_search(x, q, k, MetricKind.IP, exact=True), 5)
        row("query", "usearch exact search", t_u, t_np, list(m.keys) == list(want))
    except ImportError:
        row("query", "usearch exact search", None, None, None, "usearch not installed")
    # SimpleVectorStore: measured at simple_n rows and scaled linearly (it is a Python loop per row).
    xs = x[:simple_n]
    simple = simple_store(xs)
    t_s, res = best_of(lambda: simple.query(vq), 1)
    ok = ids_match(res.ids, numpy_topk(xs, q, k))
    scaled = t_s * n / simple_n
    row(
        "query",
        "SimpleVectorStore.query",
        scaled,
        t_np,
        ok,
        "measured" if simple_n == n else f"extrapolated from {simple_n:,} rows ({t_s:.2f} s)",
    )
    print(
        f"  -> ours vs numpy: {t_rs / t_np:.2f}x numpy's time; vs SimpleVectorStore: {scaled / t_rs:,.0f}x faster"
    )

    # Filtered query: a filter passing 10% of the rows.
    fstore = rust_store(x, with_metadata=True)
    filters = MetadataFilters(
        filters=[MetadataFilter(key="bucket", value=3, operator=FilterOperator.EQ)]
    )
    fq = VectorStoreQuery(query_embedding=vq.query_embedding, similarity_top_k=k, filters=filters)
    t_fu, _ = best_of(lambda: fstore.query(vq), 5)
    t_ff, res = best_of(lambda: fstore.query(fq), 5)
    sel = np.arange(3, n, 10)
    want_f = sel[numpy_topk(x[sel], q, k)]
    row(
        "filter",
        "RustVectorStore.query, filter passes 10%",
        t_ff,
        t_fu,
        ids_match(res.ids, want_f),
        f"ratio = unfiltered ({t_fu * 1e3:.1f} ms) / filtered",
    )

    # Batch of 64 queries.
    Q = make_data(64, d, seed=2)
    t_nb, _ = best_of(lambda: [np.argpartition(-r, k)[:k] for r in (Q @ x.T)], 3)
    row("batch", "numpy BLAS Q @ X.T + argpartition (64 q)", t_nb, t_nb, True)
    t_rb, res = best_of(lambda: store.query_batch(Q, similarity_top_k=k), 3)
    ok = all(ids_match(r.ids, numpy_topk(x, Q[i], k)) for i, r in enumerate(res[:8]))
    row("batch", "RustVectorStore.query_batch (64 q)", t_rb, t_nb, ok)
    try:
        import faiss

        t_fb, (D, I) = best_of(lambda: index.search(Q, k), 3)
        row(
            "batch",
            "FAISS IndexFlatIP search (64 q)",
            t_fb,
            t_nb,
            list(I[0]) == list(numpy_topk(x, Q[0], k)),
        )
    except ImportError:
        pass


def bench_persist(n: int, d: int, simple_n: int) -> None:
    print(f"\n== JSON persist and load, {n:,} x {d} ==")
    x = make_data(n, d)
    store = rust_store(x)
    with tempfile.TemporaryDirectory() as tmp:
        ours = os.path.join(tmp, "ours__vector_store.json")
        t_p, _ = best_of(lambda: store.persist(ours), 3)
        t_l, loaded = best_of(lambda: RustVectorStore.from_persist_path(ours), 3)
        size = os.path.getsize(ours)
        xs = x[:simple_n]
        simple = simple_store(xs)
        theirs = os.path.join(tmp, "theirs__vector_store.json")
        t_sp, _ = best_of(lambda: simple.persist(theirs), 1)
        t_sl, _ = best_of(lambda: SimpleVectorStore.from_persist_path(theirs), 1)
        scale = n / simple_n
        note = "measured" if simple_n == n else f"Simple extrapolated from {simple_n:,} rows"
        row(
            "persist",
            f"SimpleVectorStore.persist ({size / 1e6:.0f} MB)",
            t_sp * scale,
            t_sp * scale,
            None,
            note,
        )
        row("persist", "RustVectorStore.persist", t_p, t_sp * scale, None)
        row("load", "SimpleVectorStore.from_persist_path", t_sl * scale, t_sl * scale, None, note)
        row(
            "load",
            "RustVectorStore.from_persist_path",
            t_l,
            t_sl * scale,
            len(loaded.data.embedding_dict) == n,
        )
        import json

        def json_load() -> Any:
            with open(ours, "rb") as f:
                return json.load(f)

        t_j, _ = best_of(json_load, 1)
        row(
            "load",
            "Python json.load of the same file",
            t_j,
            t_sl * scale,
            None,
            f"ours takes {t_l / t_j:.2f}x json.load's time",
        )


def main() -> None:
    print(
        f"llama-index-rs benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SIMD: {simd_backend()}"
    )
    if QUICK:
        bench_query(10_000, 768, 2_000)
        bench_persist(2_000, 768, 500)
    else:
        bench_query(10_000, 768, 10_000)
        bench_query(100_000, 1536, 10_000)
        bench_persist(10_000, 768, 2_000)
    print("\n| section | what | time | ratio | check | note |\n|---|---|---:|---:|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
