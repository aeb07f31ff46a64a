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
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from llama_index.core.schema import TextNode
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


def settle() -> None:
    """Waits for work left behind by the previous measurement. OpenBLAS (numpy) and OpenMP (FAISS)
    workers spin for ~0.1 s after a call; a measurement started meanwhile shares a core with them
    (ours then took 1.5x the time it takes when started 0.3 s later). A persist leaves the file it
    replaced to be freed on a background thread."""
    time.sleep(0.3)


def best_alternating(fns: Dict[str, Callable[[], Any]], repeat: int) -> Dict[str, tuple]:
    """Best-of-`repeat` time and last output of each function, `{name: (seconds, output)}`.

    Each round calls every function once, each after `settle()`, so host drift and other
    libraries' idle threads hit all of them alike."""
    best = {name: (float("inf"), None) for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            settle()
            t = time.perf_counter()
            out = fn()
            best[name] = (min(best[name][0], time.perf_counter() - t), out)
    return best


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


def others_single(x: np.ndarray, q: np.ndarray, k: int) -> Dict[str, Callable[[], Any]]:
    """FAISS IndexFlatIP and usearch exact search for one query, each that is installed."""
    fns: Dict[str, Callable[[], Any]] = {}
    try:
        import faiss

        index = faiss.IndexFlatIP(x.shape[1])
        index.add(x)
        fns["FAISS IndexFlatIP"] = lambda: list(index.search(q[None, :], k)[1][0])
    except ImportError:
        row("query", "FAISS IndexFlatIP", None, None, None, "faiss-cpu not installed")
    try:
        from usearch.index import MetricKind
        from usearch.index import search as usearch_search

        fns["usearch exact search"] = lambda: list(
            usearch_search(x, q, k, MetricKind.IP, exact=True).keys
        )
    except ImportError:
        row("query", "usearch exact search", None, None, None, "usearch not installed")
    return fns


def query_vs_numpy(n: int, d: int, repeat: int, with_others: bool = False) -> tuple:
    """numpy's and our time for one top-10 query on the same n x d data (and FAISS's and usearch's
    when `with_others`), timed alternately, rows printed.

    Returns (x, q, vq, want, store, t_np, t_rs)."""
    x = make_data(n, d)
    q = make_data(1, d, seed=1)[0]
    k = 10
    want = numpy_topk(x, q, k)
    store = rust_store(x)
    vq = VectorStoreQuery(query_embedding=q.astype(np.float64).tolist(), similarity_top_k=k)
    fns: Dict[str, Callable[[], Any]] = {
        "numpy": lambda: numpy_topk(x, q, k),
        "ours": lambda: store.query(vq),
    }
    others = others_single(x, q, k) if with_others else {}
    best = best_alternating({**fns, **others}, repeat)
    t_np, t_rs = best["numpy"][0], best["ours"][0]
    row("query", f"numpy x @ q + argpartition ({n:,}x{d})", t_np, t_np, True)
    row(
        "query",
        f"RustVectorStore.query ({n:,}x{d})",
        t_rs,
        t_np,
        ids_match(best["ours"][1].ids, want),
        "ratio = numpy time / ours",
    )
    for name in others:
        t, got = best[name]
        row("query", name, t, t_np, [int(i) for i in got] == [int(i) for i in want])
    return x, q, vq, want, store, t_np, t_rs


def bench_query(n: int, d: int, simple_n: int) -> None:
    print(f"\n== one top-10 query, {n:,} x {d} (unit rows, cosine; timed alternately) ==")
    x, q, vq, want, store, t_np, t_rs = query_vs_numpy(n, d, 7, with_others=True)
    k = 10
    # SimpleVectorStore: measured at simple_n rows and scaled linearly (it is a Python loop per row).
    xs = x[:simple_n]
    simple = simple_store(xs)
    t_s, res = best_of(lambda: simple.query(vq), 1)
    ok = ids_match(res.ids, numpy_topk(xs, q, k))
    # Its 10k lists of Python floats would otherwise stay alive through the rows below, and the
    # garbage collector traverses them whenever a timed call allocates (ours returns result objects:
    # in one run the 10k x 768 batch took 15.8 ms with the store alive, 11.3 ms with gc.freeze()).
    simple = res = None
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
    best = best_alternating(
        {"unfiltered": lambda: fstore.query(vq), "filtered": lambda: fstore.query(fq)}, 5
    )
    (t_fu, _), (t_ff, res) = best["unfiltered"], best["filtered"]
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

    bench_batch(n, d, x=x, store=store)


def bench_query_large(n: int, d: int) -> None:
    """One query at a size no Simple* store reaches: ours vs numpy only (the memory-bandwidth floor)."""
    print(f"\n== one top-10 query, {n:,} x {d} (ours and numpy only; timed alternately) ==")
    *_, t_np, t_rs = query_vs_numpy(n, d, 5)
    print(f"  -> ours vs numpy: {t_rs / t_np:.2f}x numpy's time")


def bench_batch(
    n: int, d: int, x: Optional[np.ndarray] = None, store: Any = None, label: str = ""
) -> None:
    """64 queries at once: numpy BLAS matmul + argpartition vs query_batch vs FAISS."""
    if x is None:
        print(f"\n== 64 queries at once, {n:,} x {d}{label} ==")
        x = make_data(n, d)
        store = rust_store(x)
    k = 10
    Q = make_data(64, d, seed=2)
    fns: Dict[str, Callable[[], Any]] = {
        "numpy": lambda: [np.argpartition(-r, k)[:k] for r in (Q @ x.T)],
        "ours": lambda: store.query_batch(Q, similarity_top_k=k),
    }
    try:
        import faiss

        index = faiss.IndexFlatIP(d)
        index.add(x)
        fns["faiss"] = lambda: index.search(Q, k)
    except ImportError:
        pass
    best = best_alternating(fns, 3)
    t_nb = best["numpy"][0]
    row("batch", f"numpy BLAS Q @ X.T + argpartition (64 q){label}", t_nb, t_nb, True)
    t_rb, res = best["ours"]
    ok = all(ids_match(r.ids, numpy_topk(x, Q[i], k)) for i, r in enumerate(res[:8]))
    row("batch", f"RustVectorStore.query_batch (64 q){label}", t_rb, t_nb, ok)
    if "faiss" in best:
        t_fb, (_, I) = best["faiss"]
        ok = list(I[0]) == list(numpy_topk(x, Q[0], k))
        row("batch", f"FAISS IndexFlatIP search (64 q){label}", t_fb, t_nb, ok)


def bench_add(n: int, d: int, simple_n: int) -> None:
    print(f"\n== add {n:,} nodes x {d} (TextNode objects with metadata) ==")
    x = make_data(n, d)
    nodes = [
        TextNode(id_=f"n-{i}", text="", embedding=e, metadata={"bucket": i % 10})
        for i, e in enumerate(x.tolist())
    ]
    t_o, _ = best_of(lambda: RustVectorStore().add(nodes), 3)
    t_s, _ = best_of(lambda: SimpleVectorStore().add(nodes[:simple_n]), 1)
    t_s *= n / simple_n
    note = "measured" if simple_n == n else f"Simple extrapolated from {simple_n:,} rows"
    row("add", "SimpleVectorStore.add", t_s, t_s, None, note)
    row("add", "RustVectorStore.add", t_o, t_s, None)
    t_e, _ = best_of(lambda: RustVectorStore().add_embeddings([f"n-{i}" for i in range(n)], x), 3)
    row("add", "RustVectorStore.add_embeddings (numpy)", t_e, t_s, None)


def bench_persist(n: int, d: int, simple_n: int) -> None:
    print(f"\n== persist and load, {n:,} x {d} (JSON = SimpleVectorStore's file) ==")
    x = make_data(n, d)
    store = rust_store(x)
    with tempfile.TemporaryDirectory() as tmp:
        ours = os.path.join(tmp, "ours__vector_store.json")
        store.persist_format = "json"
        # Each persist after a settle: a persist frees the file it replaces on a background thread,
        # which would otherwise compete with the next timed persist for the two cores.
        t_p, _ = best_alternating({"persist": lambda: store.persist(ours)}, 3)["persist"]
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
        row("persist", "RustVectorStore.persist, JSON (atomic, fsync)", t_p, t_sp * scale, None)
        row("load", "SimpleVectorStore.from_persist_path", t_sl * scale, t_sl * scale, None, note)
        ok = len(loaded.data.embedding_dict) == n
        row("load", "RustVectorStore.from_persist_path, JSON", t_l, t_sl * scale, ok)
        import json

        def json_load() -> Any:
            with open(ours, "rb") as f:
                return json.load(f)

        t_j, _ = best_of(json_load, 1)
        row(
            "load",
            "Python json.load of the same file (alone)",
            t_j,
            t_sl * scale,
            None,
            f"ours takes {t_l / t_j:.2f}x json.load's time",
        )
        binary = os.path.join(tmp, "bin__vector_store.json")
        store.persist_format = "binary"
        t_bp, _ = best_alternating({"persist": lambda: store.persist(binary)}, 3)["persist"]
        t_bl, bl = best_of(lambda: RustVectorStore.from_persist_path(binary), 3)
        bsize = os.path.getsize(binary.replace(".json", ".rsvec"))
        row(
            "persist",
            f"RustVectorStore.persist, binary ({bsize / 1e6:.0f} MB)",
            t_bp,
            t_sp * scale,
            None,
            f"{bsize / t_bp / 1e9:.2f} GB/s",
        )
        row(
            "load",
            "RustVectorStore.from_persist_path, binary (mmap)",
            t_bl,
            t_sl * scale,
            bl.memory_mapped and len(bl.data.embedding_dict) == n,
        )


RSS_CHILD = r"""
import os, sys, json
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
kind, path = sys.argv[1], sys.argv[2]
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index_rs import RustVectorStore
import gc; gc.collect()
before = rss()
cls = RustVectorStore if kind == "ours" else SimpleVectorStore
store = cls.from_persist_path(path)
gc.collect()
print(json.dumps({"delta": rss() - before}))
"""


def bench_memory(n: int, d: int) -> None:
    print(f"\n== resident memory after a JSON load, {n:,} x {d} ==")
    x = make_data(n, d)
    store = RustVectorStore(persist_format="json")
    store.add_embeddings(
        [f"n-{i}" for i in range(n)], x, metadata=[{"bucket": i % 10} for i in range(n)]
    )
    raw = x.nbytes
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "default__vector_store.json")
        store.persist(path)
        ids_md = sum(len(f"n-{i}") for i in range(n)) + len(json.dumps({"bucket": 0})) * n
        for kind in ("ours", "simple"):
            out = subprocess.run(
                [sys.executable, "-c", RSS_CHILD, kind, path],
                capture_output=True,
                text=True,
                check=True,
            )
            delta = json.loads(out.stdout)["delta"]
            what = "RustVectorStore" if kind == "ours" else "SimpleVectorStore"
            row(
                "memory",
                f"{what}: RSS growth after load",
                None,
                None,
                None,
                f"{delta / 1e6:.0f} MB = {delta / (raw + ids_md):.2f}x (raw f32 + ids + metadata = "
                f"{(raw + ids_md) / 1e6:.0f} MB)",
            )


def bench_end_to_end(n: int, d: int) -> None:
    """VectorStoreIndex build, StorageContext.persist, load_index_from_storage, 10 retrievals."""
    from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.core.storage.index_store import SimpleIndexStore

    from llama_index_rs import RustDocumentStore, RustIndexStore

    print(
        f"\n== end to end, {n:,} x {d}: build, persist, load_index_from_storage, 10 retrievals =="
    )
    x = make_data(n, d)
    Q = make_data(10, d, seed=5)
    table = {f"query {i}": Q[i].astype(np.float64).tolist() for i in range(10)}

    class Table(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> List[float]:
            return table[query]

        def _get_text_embedding(self, text: str) -> List[float]:
            return table[text]

        async def _aget_query_embedding(self, query: str) -> List[float]:
            return table[query]

    nodes = [
        TextNode(id_=f"n-{i}", text=f"chunk {i}", embedding=e) for i, e in enumerate(x.tolist())
    ]
    results = {}
    for label, (vs, ds, ix) in {
        "Simple* stores": (SimpleVectorStore, SimpleDocumentStore, SimpleIndexStore),
        "Rust* stores": (RustVectorStore, RustDocumentStore, RustIndexStore),
    }.items():
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            sc = StorageContext.from_defaults(vector_store=vs(), docstore=ds(), index_store=ix())
            index = VectorStoreIndex(nodes, storage_context=sc, embed_model=Table())
            index.storage_context.persist(persist_dir=tmp)
            sc = StorageContext.from_defaults(
                persist_dir=tmp,
                vector_store=vs.from_persist_dir(tmp),
                docstore=ds.from_persist_dir(tmp),
                index_store=ix.from_persist_dir(tmp),
            )
            index = load_index_from_storage(sc, embed_model=Table())
            retriever = index.as_retriever(similarity_top_k=10)
            ids = [[n.node.node_id for n in retriever.retrieve(f"query {i}")] for i in range(10)]
            results[label] = (time.perf_counter() - t, ids)
    t_s, ids_s = results["Simple* stores"]
    t_r, ids_r = results["Rust* stores"]
    want = [[f"n-{j}" for j in numpy_topk(x, Q[i], 10)] for i in range(10)]
    row("e2e", "Simple* stores", t_s, t_s, ids_s == want)
    row("e2e", "Rust* stores", t_r, t_s, ids_r == want)


def batch_threads_child() -> None:
    """`--batch-one-thread`: the 64-query batch comparison with one thread on each side."""
    bench_batch(10_000 if QUICK else 100_000, 768 if QUICK else 1536, label=" (1 thread)")
    for r in ROWS:
        print("ROW\t" + "\t".join(r))


def main() -> None:
    if "--batch-one-thread" in sys.argv:
        batch_threads_child()
        return
    print(
        f"llama-index-rs benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SIMD: {simd_backend()}"
    )
    if QUICK:
        bench_query(10_000, 768, 2_000)
        bench_add(2_000, 768, 500)
        bench_persist(2_000, 768, 500)
        bench_memory(20_000, 768)
        bench_end_to_end(2_000, 768)
    else:
        bench_query(10_000, 768, 10_000)
        bench_query(100_000, 1536, 10_000)
        bench_query_large(1_000_000, 768)
        bench_add(10_000, 768, 10_000)
        # Simple at full size: ~20-30 s persist, ~35 s load (not extrapolated).
        bench_persist(10_000, 768, 10_000)
        bench_memory(20_000, 768)
        bench_end_to_end(10_000, 768)
    env = dict(
        os.environ,
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        RAYON_NUM_THREADS="1",
    )
    child = subprocess.run(
        [sys.executable, __file__, "--batch-one-thread"] + (["--quick"] if QUICK else []),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    print(child.stdout.split("ROW\t")[0].rstrip())
    for line in child.stdout.splitlines():
        if line.startswith("ROW\t"):
            ROWS.append(line.split("\t")[1:])
    print("\n| section | what | time | ratio | check | note |\n|---|---|---:|---:|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
