"""Writes seed inputs for the fuzz targets into fuzz/seeds/<target>/ from real persisted stores
(llama_index_rs, installed) and the demo corpus (demo/data). Run from the repo root:
    python3 fuzz/make_seeds.py
then `cargo fuzz cmin <target> fuzz/seeds/<target>` style minimization (see fuzz/run.sh)."""

import json
import pathlib
import shutil
import struct
import tempfile

from llama_index.core.schema import TextNode
from llama_index_rs import RustDocumentStore, RustIndexStore, RustKVStore, RustVectorStore

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds"
DATA = ROOT / "demo" / "data"


def put(target: str, name: str, data: bytes) -> None:
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def demo_rows(n: int, dim: int):
    meta = json.loads((DATA / "meta.json").read_text())
    full = meta["dim"]
    raw = (DATA / "embeddings.f32").read_bytes()
    lines = (DATA / "nodes.jsonl").read_text().splitlines()[:n]
    rows = []
    for i, line in enumerate(lines):
        node = json.loads(line)
        emb = list(struct.unpack_from(f"<{full}f", raw, i * full * 4))[:dim]
        rows.append((node, emb))
    return rows


def vector_stores(tmp: pathlib.Path):
    """(name, persist dir) of a few persisted vector stores."""
    out = []
    specs = [
        ("demo3x8", demo_rows(3, 8), {}),
        ("demo1x384", demo_rows(1, 384), {}),
        ("odd", [], {}),
    ]
    for name, rows, _ in specs:
        store = RustVectorStore(persist_format="both")
        nodes = []
        for node, emb in rows:
            n = TextNode(
                id_=node["id"],
                text=node["text"][:40],
                embedding=emb,
                metadata={"module": node.get("ref_doc_id"), "k": 3, "f": 0.5},
            )
            nodes.append(n)
        if name == "odd":
            nodes = [
                TextNode(
                    id_="é-\U0001f600",
                    text="x",
                    embedding=[-0.0, 1e-05, 1.5e16, 3.4e38],
                    metadata={
                        "s": "\ud800x",
                        "big": 10**30,
                        "neg": -(10**20),
                        "l": [None, True, {"a": []}],
                    },
                ),
                TextNode(id_="b", text="y", embedding=[1e-40, 0.1, -2.5, 3.0]),
            ]
        store.add(nodes)
        d = tmp / name
        store.persist(persist_path=str(d / "default__vector_store.json"))
        out.append((name, d))
    return out


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        for name, d in vector_stores(tmp):
            for f in sorted(d.iterdir()):
                data = f.read_bytes()
                if f.name.endswith("vector_store.json"):
                    put("vector_json", f"{name}.json", b"\x03" + data)
                    put("json_parse", f"vector-{name}.json", data)
                    put("json_chunked", f"vector-{name}.json", b"\x02" + data)
                elif f.suffix != ".lock" and data[:8] == b"LIRSVEC\0":
                    put("binary_loader", f"{name}.bin", b"\x00" + data)
                    put("binary_loader", f"{name}-fixcrc.bin", b"\x01" + data)
        # KV, docstore and index store files.
        kv = RustKVStore()
        kv.put("k1", {"a": 1, "b": [1.5, -0.0, None], "s": "\u00e9\U0001f600"}, collection="data")
        kv.put("k2", {"nan": float("nan"), "big": 2**70}, collection="other")
        kv.get("k", collection="empty")
        kv.persist(str(tmp / "kv.json"))
        ds = RustDocumentStore()
        ds.add_documents(
            [
                TextNode(id_=n["id"], text=n["text"][:60], metadata={"m": n["ref_doc_id"]})
                for n, _ in demo_rows(2, 1)
            ]
        )
        ds.persist(str(tmp / "docstore.json"))
        from llama_index.core.data_structs import IndexDict

        istore = RustIndexStore()
        s = IndexDict()
        s.add_node(TextNode(id_="n1", text="t"))
        istore.add_index_struct(s)
        istore.persist(str(tmp / "index_store.json"))
        for f in ["kv.json", "docstore.json", "index_store.json"]:
            data = (tmp / f).read_bytes()
            put("kv_json", f, data)
            put("json_parse", f, data)
            put("json_chunked", f, b"\x05" + data)
    # Demo corpus documents and hand-written edge cases.
    put("json_parse", "meta.json", (DATA / "meta.json").read_bytes())
    node = (DATA / "nodes.jsonl").read_bytes().split(b"\n")[0]
    put("json_parse", "node.json", node)
    edge = [
        b'\xef\xbb\xbf {"a": NaN, "b": -Infinity, "c": [1e400, -0.0, 1E-7, 123456789012345678901234567890]}',
        b'["\\ud800", "\\ud83d\\ude00", "\\u00e9\xc3\xa9", "\\"\\\\\\/\\b\\f\\n\\r\\t"]',
        b'{"a": 1, "a": 2, "b": {"x": {"y": [[[]]]}}}',
        b"12",
        b'"x"',
    ]
    for i, e in enumerate(edge):
        put("json_parse", f"edge{i}.json", e)
        put("json_chunked", f"edge{i}.json", bytes([i]) + e)
    put("kv_json", "edge.json", b'{"c": {"k": {"a": NaN, "b": 1.0e5}, "k": [1,2]}, "d": {}}')
    put(
        "vector_json",
        "edge.json",
        b'\x00{"embedding_dict": {"a": [1, 2.5], "b": [NaN, 1e-05]}, '
        b'"text_id_to_ref_doc_id": {"a": null}, "metadata_dict": null, "extra": 12345}',
    )


if __name__ == "__main__":
    main()
