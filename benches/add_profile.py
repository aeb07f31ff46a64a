"""Where `RustVectorStore.add` spends its time: LlamaIndex's node methods vs ours (issue 5).

Adds 10k real-sized nodes (768-d embeddings as lists of Python floats, as LlamaIndex passes them,
metadata and a source relationship) under cProfile and splits the time by owner:

- LlamaIndex: functions in llama_index/core (node_id, ref_doc_id, get_embedding, class_name, ...);
- ours: our Python code in llama_index_rs and the compiled `_native` methods it calls;
- other: builtins (list.append, isinstance) called from either.

Best of several runs (the machine is shared). Benchmarks never gate CI.

    python benches/add_profile.py           # 10k nodes x 768
    python benches/add_profile.py --quick   # 2k nodes
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import sys
import time

import numpy as np
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from llama_index_rs import RustVectorStore

N = 2_000 if "--quick" in sys.argv else 10_000
DIM = 768
REPEAT = 5


def make_nodes() -> list:
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((N, DIM)).astype(np.float32).tolist()
    return [
        TextNode(
            id_=f"node-{i}",
            text=f"chunk {i} " * 40,
            embedding=rows[i],
            metadata={"file_name": f"doc{i % 100}.md", "page": i % 40, "section": "intro"},
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc{i % 100}")},
        )
        for i in range(N)
    ]


def owner(func: tuple) -> str:
    filename, _, name = func
    if "llama_index/core" in filename:
        return "LlamaIndex node methods"
    if "llama_index_rs" in filename or "llama_index_rs._native" in name:
        return "ours (Python + Rust)"
    return "builtins (list.append, isinstance, ...)"


def main() -> None:
    nodes = make_nodes()
    RustVectorStore().add(nodes)  # warm up: layout check, imports
    best = None
    for _ in range(REPEAT):
        store = RustVectorStore()
        gc.collect()
        profile = cProfile.Profile()
        t = time.perf_counter()
        profile.enable()
        store.add(nodes)
        profile.disable()
        wall = time.perf_counter() - t
        if best is None or wall < best[0]:
            best = (wall, profile)
    wall, profile = best
    shares: dict = {}
    for func, (_cc, _nc, tottime, _ct, _callers) in pstats.Stats(profile).stats.items():
        shares[owner(func)] = shares.get(owner(func), 0.0) + tottime
    total = sum(shares.values())
    print(f"RustVectorStore.add of {N} nodes x {DIM} (best of {REPEAT}): {wall * 1e3:.1f} ms")
    print("| where | time | share |")
    print("| --- | ---: | ---: |")
    for who, t in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"| {who} | {t * 1e3:.1f} ms | {t / total:.0%} |")
    print()
    pstats.Stats(profile).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    main()
