"""Persistence benchmarks: binary load (mapped), binary persist bandwidth, atomic vs plain JSON write.

    PYTHONPATH=python python3 benches/persistence.py [rows] [dim]

Prints a table; never gates CI. Files go to a temporary directory under /tmp and are deleted.
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
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 768
    d = tempfile.mkdtemp(dir="/tmp")
    try:
        path = os.path.join(d, "default__vector_store.json")
        native = _native.VectorStore()
        block = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
        native.add([f"n{i}" for i in range(n)], block, [None] * n, [None] * n, [None] * n)
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
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
