"""Build demo/data/: a few-MB subset of ../shared/data/stdlib-minilm bundled with the repo.

Keeps every chunk of the modules that hold the top-3 answers of the first 40 queries, so the demo's
queries find their real answers inside the subset. Deterministic: rerunning gives identical files.

    python scripts/make_demo_data.py [path/to/stdlib-minilm]
"""

import json
import pathlib
import sys

import numpy as np

SRC = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/stdlib-minilm")
DST = pathlib.Path(__file__).resolve().parent.parent / "demo" / "data"
N_QUERIES = 40


def main() -> None:
    meta = json.loads((SRC / "meta.json").read_text())
    E = np.fromfile(SRC / "embeddings.f32", dtype="<f4").reshape(meta["n_chunks"], meta["dim"])
    Q = np.fromfile(SRC / "query_embeddings.f32", dtype="<f4").reshape(
        meta["n_queries"], meta["dim"]
    )
    rows = [json.loads(line) for line in open(SRC / "nodes.jsonl", encoding="utf-8")]
    queries = [json.loads(line) for line in open(SRC / "queries.jsonl", encoding="utf-8")][
        :N_QUERIES
    ]
    modules = set()
    for q in range(N_QUERIES):
        for i in np.argsort(-(E @ Q[q]), kind="stable")[:3]:
            modules.add(rows[i]["metadata"]["module"])
    keep = [i for i, r in enumerate(rows) if r["metadata"]["module"] in modules]
    DST.mkdir(parents=True, exist_ok=True)
    with open(DST / "nodes.jsonl", "w", encoding="utf-8") as f:
        for i in keep:
            f.write(json.dumps(rows[i], ensure_ascii=False) + "\n")
    E[keep].astype("<f4").tofile(DST / "embeddings.f32")
    with open(DST / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    Q[:N_QUERIES].astype("<f4").tofile(DST / "query_embeddings.f32")
    (DST / "meta.json").write_text(
        json.dumps(
            {
                "source": "stdlib-minilm (see ../shared/data/stdlib-minilm/README.md)",
                "model": meta["model"],
                "dim": meta["dim"],
                "n_chunks": len(keep),
                "n_queries": N_QUERIES,
                "modules": sorted(modules),
            },
            indent=1,
        )
        + "\n"
    )
    print(f"{len(keep)} chunks from {len(modules)} modules, {N_QUERIES} queries -> {DST}")


if __name__ == "__main__":
    main()
