"""Persistence benchmarks: binary load (mapped), binary persist bandwidth, atomic vs plain JSON write.

    PYTHONPATH=python python3 benches/persistence.py [rows] [dim]
    PYTHONPATH=python python3 benches/persistence.py load [rows] [dim] [dir]   # large binary loads

Prints a table; never gates CI. Files go to a temporary directory under /tmp and are deleted.

`load` times only loading a binary-only store (`persist_format="binary"`: at 1M x 1536 the JSON file
would be ~30 GB): the file is written once, in chunks, then loaded several times. It stays in the page
cache between loads (dropping the cache needs root), so these are warm loads: what is measured is the
work a load does, not the disk. Also reported: the resident-set growth of one load, and the first
query and the first lookup by id after a load (the id index is built on first need).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import numpy as np

from llama_index_rs import RustVectorStore, _native


def best(fn, repeat=3):
    """Best wall time of `fn()`; what it returns is dropped after the clock stops."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        del result
    return min(times)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def load_benchmark(n: int, dim: int, parent: str) -> None:
    from llama_index.core.vector_stores.types import VectorStoreQuery

    d = tempfile.mkdtemp(dir=parent)
    try:
        path = os.path.join(d, "default__vector_store.json")
        native = _native.VectorStore()
        rng = np.random.default_rng(0)
        chunk = 50_000
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            ids = [f"node-{i:08d}-{i * 2654435761 % 2**32:08x}" for i in range(start, start + m)]
            refs = [f"doc-{i // 8}" for i in range(start, start + m)]
            metas = [
                {"bucket": i % 10, "file_name": f"file_{i // 8}.txt"}
                for i in range(start, start + m)
            ]
            native.add(ids, rng.standard_normal((m, dim), dtype=np.float32), refs, metas)
        t0 = time.perf_counter()
        native.persist_files(path, "binary")
        t_persist = time.perf_counter() - t0
        del native
        size = os.path.getsize(_native.VectorStore.binary_path_for(path))
        RustVectorStore.from_persist_path(path)  # warm the page cache for the non-vector sections

        t_native = best(lambda: _native.VectorStore.load_files(path), 5)
        t_public = best(lambda: RustVectorStore.from_persist_path(path), 5)
        before = rss_mb()
        store = RustVectorStore.from_persist_path(path)
        grown = rss_mb() - before
        q = VectorStoreQuery(query_embedding=rng.standard_normal(dim).tolist(), similarity_top_k=10)
        t0 = time.perf_counter()
        result = store.query(q)
        t_query = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = store.get("node-00000007-" + f"{7 * 2654435761 % 2**32:08x}")
        t_get = time.perf_counter() - t0
        correct = store.memory_mapped and len(result.ids) == 10 and len(got) == dim
        label = f"{n} x {dim} ({size / 1e6:,.0f} MB file, warm page cache)"
        print(f"| binary persist {label} | {t_persist:.1f} s | |")
        print(
            f"| binary load, `_native.VectorStore.load_files`, {label} | {t_native * 1e3:.1f} ms | best of 5 |"
        )
        print(
            f"| binary load, `RustVectorStore.from_persist_path`, {label} | {t_public * 1e3:.1f} ms | best of 5 |"
        )
        print(
            f"| RSS growth of one load | {grown:.0f} MB | vectors {n * dim * 4 / 1e9:.1f} GB, untouched |"
        )
        print(
            f"| first top-10 query after the load (reads every row) | {t_query * 1e3:.0f} ms | correct={correct} |"
        )
        print(f"| first get by id after the load (builds the id index) | {t_get * 1e3:.0f} ms | |")
        del store
    finally:
        shutil.rmtree(d)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
        dim = int(sys.argv[3]) if len(sys.argv) > 3 else 1536
        load_benchmark(n, dim, sys.argv[4] if len(sys.argv) > 4 else "/tmp")
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 768
    d = tempfile.mkdtemp(dir="/tmp")
    try:
        path = os.path.join(d, "default__vector_store.json")
        native = _native.VectorStore()
        block = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
        native.add([f"n{i}" for i in range(n)], block, [None] * n, [None] * n)
        del block
        vec_bytes = n * dim * 4
        t_persist = best(lambda: native.persist_files(path, "binary"))
        t_load = best(lambda: _native.VectorStore.load_files(path))
        loaded = RustVectorStore.from_persist_path(path)
        correct = loaded.memory_mapped and len(loaded.data.embedding_dict) == n
        print(
            f"| binary persist {n} x {dim} ({vec_bytes / 1e9:.2f} GB, fsync incl.) | {t_persist * 1e3:.0f} ms | {vec_bytes / t_persist / 1e9:.2f} GB/s |"
        )
        print(f"| binary load (mapped) {n} x {dim} | {t_load * 1e3:.0f} ms | correct={correct} |")
        del loaded

        # JSON: atomic (temp + fsync + rename + dir fsync, under the lock) vs a plain write of the same bytes
        small = _native.VectorStore()
        m = 10_000
        small.add(
            [f"n{i}" for i in range(m)],
            np.random.default_rng(1).standard_normal((m, 768), dtype=np.float32),
            [None] * m,
            [None] * m,
        )
        jpath = os.path.join(d, "small__vector_store.json")
        data = bytes(small.to_json())

        def plain():
            with open(jpath, "wb") as f:
                f.write(data)

        t_plain = best(plain, 5)
        t_atomic = best(lambda: _native.write_atomically(jpath, data), 5)
        t_plain_fsync = best(lambda: (plain(), os.fsync(os.open(jpath, os.O_RDONLY))), 5)
        print(f"| JSON {len(data) / 1e6:.0f} MB plain write | {t_plain * 1e3:.0f} ms | |")
        print(f"| JSON plain write + fsync | {t_plain_fsync * 1e3:.0f} ms | |")
        print(
            f"| JSON atomic write (temp, fsync, rename, dir fsync, lock) | {t_atomic * 1e3:.0f} ms | {100 * (t_atomic / t_plain - 1):+.0f}% vs plain, {100 * (t_atomic / t_plain_fsync - 1):+.0f}% vs plain+fsync |"
        )
        # The whole persist as users call it, against the same streamed formatting written without
        # the protocol: formatting overlaps the write and its early writeback, so the device mostly
        # keeps pace and the fsync at the end is short.
        t_persist_plain = best(lambda: small._write_json_unsafely(jpath), 5)
        t_persist_atomic = best(lambda: small.persist_files(jpath, "json"), 5)
        print(
            f"| JSON persist, same formatting, plain write (as SimpleVectorStore writes) | {t_persist_plain * 1e3:.0f} ms | |"
        )
        print(
            f"| JSON persist, `persist_files` (atomic: temp, fsync, rename, dir fsync, lock) | {t_persist_atomic * 1e3:.0f} ms | {100 * (t_persist_atomic / t_persist_plain - 1):+.0f}% vs plain |"
        )
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
