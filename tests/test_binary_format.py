"""The binary vector file (`<name>.rsvec`): round trips, which file a load uses, and a corpus of
broken files that must each give a clear exception (loaded in a subprocess, so a crash is caught)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from llama_index.core.vector_stores.simple import SimpleVectorStore

import llama_index_rs
from llama_index_rs import RustVectorStore, _native

HEADER_LEN = 256
SECTIONS = ["vectors", "norms", "ids", "ref_doc_ids", "metadata"]


def make_store(n: int = 40, dim: int = 19, seed: int = 0) -> RustVectorStore:
    rng = np.random.default_rng(seed)
    store = RustVectorStore()
    store.add_embeddings(
        [f"n{i}-\u00e9" for i in range(n)],
        rng.standard_normal((n, dim)).astype(np.float32),
        ref_doc_ids=[f"doc{i % 4}" for i in range(n)],
        metadata=[
            {"i": i, "t": "caf\u00e9 \U0001f600", "f": 0.1 * i, "l": [1, None]} for i in range(n)
        ],
    )
    del store.data.embedding_dict["n3-\u00e9"]  # orphans: ref-doc and metadata entries stay
    store.data.text_id_to_ref_doc_id["ghost"] = "g"
    store.data.metadata_dict["ghost2"] = {"x": None}
    return store


def header(path) -> dict:
    b = open(path, "rb").read(HEADER_LEN)
    out = {"magic": b[:8], "version": struct.unpack_from("<I", b, 8)[0]}
    out["dim"], out["rows"], out["stride"] = struct.unpack_from("<QQQ", b, 24)
    out["sections"] = {
        name: dict(
            zip(("offset", "len", "count", "crc"), struct.unpack_from("<QQQI", b, 80 + 32 * i))
        )
        for i, name in enumerate(SECTIONS)
    }
    return out


def reseal(b: bytearray) -> bytearray:
    """Recompute the header CRC, so a damaged field is reported as itself."""
    struct.pack_into("<I", b, 240, zlib.crc32(bytes(b[:240])))
    return b


@pytest.fixture
def persisted(tmp_path):
    store = make_store()
    path = str(tmp_path / "default__vector_store.json")
    store.persist(path)
    return store, path, str(_native.VectorStore.binary_path_for(path))


def test_both_formats_round_trip_to_the_same_store(persisted):
    store, path, binary = persisted
    assert os.path.exists(binary) and not binary.endswith("vector_store.json")
    loaded = RustVectorStore.from_persist_path(path)
    assert loaded.memory_mapped
    assert loaded.to_dict() == store.to_dict()
    assert list(loaded.data.text_id_to_ref_doc_id) == list(store.data.text_id_to_ref_doc_id)
    assert list(loaded.data.metadata_dict) == list(store.data.metadata_dict)
    # the JSON file is still what SimpleVectorStore reads
    assert SimpleVectorStore.from_persist_path(path).to_dict() == store.to_dict()


def test_mapped_store_is_mutable_and_persists_over_its_own_file(persisted):
    store, path, binary = persisted
    loaded = RustVectorStore.from_persist_path(path)
    dim = 19
    loaded.add_embeddings(["new"], np.ones((1, dim), np.float32))
    loaded.data.embedding_dict["n5-\u00e9"] = [0.5] * dim  # replaces a mapped row in place
    loaded.delete("doc1")
    store.add_embeddings(["new"], np.ones((1, dim), np.float32))
    store.data.embedding_dict["n5-\u00e9"] = [0.5] * dim
    store.delete("doc1")
    assert loaded.to_dict() == store.to_dict()
    loaded.persist(path)  # renamed over the file it maps: the old mapping stays valid
    assert loaded.to_dict() == store.to_dict()
    assert RustVectorStore.from_persist_path(path).to_dict() == store.to_dict()


def test_json_rewritten_by_another_tool_is_not_shadowed(persisted):
    _, path, _ = persisted
    other = SimpleVectorStore()
    other.data.embedding_dict = {"a": [1.0, 2.0]}
    other.persist(path)
    loaded = RustVectorStore.from_persist_path(path)
    assert not loaded.memory_mapped
    assert loaded.to_dict()["embedding_dict"] == {"a": [1.0, 2.0]}


@pytest.mark.parametrize("fmt", ["json", "binary"])
def test_single_format_directories_load(tmp_path, fmt):
    store = make_store()
    store.persist_format = fmt
    store.persist(str(tmp_path / "default__vector_store.json"))
    store.persist(str(tmp_path / "other__vector_store.json"))
    names = sorted(n for n in os.listdir(tmp_path) if not n.startswith("."))
    ext = ".json" if fmt == "json" else ".rsvec"
    assert all(n.endswith(ext) for n in names), names
    stores = RustVectorStore.from_namespaced_persist_dir(str(tmp_path))
    assert sorted(stores) == ["default", "other"]
    for s in stores.values():
        assert s.to_dict() == store.to_dict()
        assert s.memory_mapped == (fmt == "binary")
    assert RustVectorStore.from_persist_dir(str(tmp_path)).to_dict() == store.to_dict()


def test_persist_format_is_validated_and_survives_pickle():
    import pickle

    with pytest.raises(ValueError, match="persist_format"):
        RustVectorStore(persist_format="parquet")
    s = RustVectorStore(persist_format="binary")
    assert pickle.loads(pickle.dumps(s)).persist_format == "binary"


def test_verify_reports_and_damaged_binary_falls_back_with_a_warning(persisted):
    store, path, binary = persisted
    report = llama_index_rs.verify(os.path.dirname(path))
    assert report.ok and {f.kind for f in report.files} == {
        "vector_store_json",
        "vector_store_binary",
    }
    assert RustVectorStore.verify(path).ok
    b = bytearray(open(binary, "rb").read())
    vec = header(binary)["sections"]["vectors"]
    b[vec["offset"] + 5] ^= 0x40  # payload flip: loads don't read every page, verify does
    open(binary, "wb").write(b)
    report = llama_index_rs.verify(os.path.dirname(path))
    assert not report.ok
    assert any("vectors checksum" in p for p in report.problems), str(report)
    ids = header(binary)["sections"]["ids"]
    b[ids["offset"] + 6] ^= 0x01
    open(binary, "wb").write(b)
    with pytest.warns(RuntimeWarning, match="ids checksum"):
        loaded = RustVectorStore.from_persist_path(path)
    assert not loaded.memory_mapped and loaded.to_dict() == store.to_dict()


# ---------------------------------------------------------------- the broken-file corpus


def corpus(valid: bytes) -> dict:
    """name -> bytes: truncations at every structural boundary, bit flips, wrong dims, bad magic and
    version, offsets out of range, counts claiming more data than the file holds."""
    h = {"sections": {}}
    for i, name in enumerate(SECTIONS):
        h["sections"][name] = dict(
            zip(("offset", "len", "count", "crc"), struct.unpack_from("<QQQI", valid, 80 + 32 * i))
        )
    out = {}
    cuts = {0, 1, 7, 8, 12, 16, 24, 32, 48, 80, 200, 239, 240, 255, 256, len(valid) - 1}
    for s in h["sections"].values():
        cuts |= {
            s["offset"],
            s["offset"] + 1,
            s["offset"] + s["len"] // 2,
            max(s["offset"] + s["len"] - 1, 0),
        }
    for c in sorted(x for x in cuts if 0 <= x < len(valid)):
        out[f"truncated_at_{c}"] = valid[:c]
    for bit_at in [0, 9, 13, 17, 21, 25, 33, 41, 49, 57, 81, 89, 97, 120, 200, 241]:
        b = bytearray(valid)
        b[bit_at] ^= 0x04
        out[f"header_bit_flip_{bit_at}"] = bytes(b)
    for name in ["norms", "ids", "ref_doc_ids", "metadata"]:
        s = h["sections"][name]
        for k, at in enumerate(
            [s["offset"], s["offset"] + s["len"] // 3, s["offset"] + s["len"] - 1]
        ):
            b = bytearray(valid)
            b[at] ^= 0x20
            out[f"{name}_bit_flip_{k}"] = bytes(b)

    def resealed(tag, fn):
        b = bytearray(valid)
        fn(b)
        out[tag] = bytes(reseal(b))

    out["bad_magic"] = b"NOTAVEC\0" + valid[8:]
    resealed("bad_magic_resealed", lambda b: b.__setitem__(slice(0, 8), b"LIRSVEX\0"))
    resealed("version_2", lambda b: struct.pack_into("<I", b, 8, 2))
    resealed("version_0", lambda b: struct.pack_into("<I", b, 8, 0))
    resealed("big_endian_mark", lambda b: struct.pack_into(">I", b, 12, 0x01020304))
    resealed("element_type_f16", lambda b: struct.pack_into("<I", b, 16, 2))
    resealed("header_len_512", lambda b: struct.pack_into("<I", b, 20, 512))
    resealed(
        "dim_plus_one",
        lambda b: struct.pack_into("<Q", b, 24, struct.unpack_from("<Q", b, 24)[0] + 1),
    )
    resealed("dim_zero", lambda b: struct.pack_into("<Q", b, 24, 0))
    resealed("dim_huge", lambda b: struct.pack_into("<QQ", b, 24, 1 << 40, 1 << 40))
    resealed(
        "rows_plus_one",
        lambda b: struct.pack_into("<Q", b, 32, struct.unpack_from("<Q", b, 32)[0] + 1),
    )
    resealed("rows_huge", lambda b: struct.pack_into("<Q", b, 32, 1 << 33))
    resealed("unknown_flag", lambda b: struct.pack_into("<Q", b, 48, 6))
    for i, name in enumerate(SECTIONS):
        at = 80 + 32 * i
        resealed(
            f"{name}_offset_past_end",
            lambda b, at=at: struct.pack_into("<Q", b, at, len(valid) + 8),
        )
        resealed(f"{name}_offset_in_header", lambda b, at=at: struct.pack_into("<Q", b, at, 16))
        resealed(
            f"{name}_offset_overflow", lambda b, at=at: struct.pack_into("<Q", b, at, 2**64 - 8)
        )
        resealed(
            f"{name}_len_past_end", lambda b, at=at: struct.pack_into("<Q", b, at + 8, len(valid))
        )
        resealed(f"{name}_count_huge", lambda b, at=at: struct.pack_into("<Q", b, at + 16, 2**40))
        resealed(
            f"{name}_count_plus_one",
            lambda b, at=at: struct.pack_into(
                "<Q", b, at + 16, struct.unpack_from("<Q", b, at + 16)[0] + 1
            ),
        )
        resealed(
            f"{name}_crc_wrong",
            lambda b, at=at: struct.pack_into(
                "<I", b, at + 24, struct.unpack_from("<I", b, at + 24)[0] ^ 1
            ),
        )
    # vectors_crc_wrong is only visible to verify (loads do not read the payload): checked separately
    del out["vectors_crc_wrong"]
    out["empty_file"] = b""
    out["garbage"] = os.urandom(5000)
    out["json_instead"] = b'{"embedding_dict": {}}' + b" " * 300
    return out


LOADER = textwrap.dedent(
    """
    import json, sys
    from llama_index_rs import _native
    results = {}
    for path in sys.argv[1:]:
        try:
            _native.VectorStore.load_files(path[: -len(".rsvec")] + ".json")
            results[path] = ["loaded", ""]
        except Exception as e:
            results[path] = [type(e).__name__, str(e)]
    print(json.dumps(results))
    """
)


def test_broken_binary_corpus_gives_clear_errors_in_a_subprocess(tmp_path, persisted):
    _, _, binary = persisted
    valid = open(binary, "rb").read()
    files = corpus(valid)
    assert len(files) >= 50, len(files)
    paths = []
    for name, data in files.items():
        d = tmp_path / name
        d.mkdir()
        p = d / "default__vector_store.rsvec"  # binary alone: no JSON to fall back to
        p.write_bytes(data)
        paths.append(str(p))
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, *paths], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"loader crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    results = json.loads(proc.stdout)
    for path, (kind, message) in results.items():
        name = os.path.basename(os.path.dirname(path))
        assert kind == "ValueError", f"{name}: {kind}: {message}"
        assert "default__vector_store.rsvec" in message, (
            f"{name}: error does not name the file: {message}"
        )
    # a payload flip: verify catches it, and names the section
    b = bytearray(valid)
    b[header(binary)["sections"]["vectors"]["offset"]] ^= 1
    p = tmp_path / "payload.rsvec"
    p.write_bytes(b)
    assert any("vectors checksum" in x for x in llama_index_rs.verify(str(p)).problems)


def test_a_store_with_no_rows_round_trips(tmp_path):
    s = RustVectorStore(persist_format="binary")
    s.data.metadata_dict["only"] = {"a": 1}
    path = str(tmp_path / "default__vector_store.json")
    s.persist(path)
    loaded = RustVectorStore.from_persist_path(path)
    assert loaded.to_dict() == s.to_dict()
    assert not loaded.memory_mapped


def craft(binary: str, section: str, edit) -> None:
    """Edit one section's bytes in place and recompute its CRC and the header's: a crafted file that
    passes every checksum (damage on disk would fail them)."""
    b = bytearray(open(binary, "rb").read())
    h = header(binary)
    s = h["sections"][section]
    body = bytearray(b[s["offset"] : s["offset"] + s["len"]])
    edit(body)
    assert len(body) == s["len"]
    b[s["offset"] : s["offset"] + s["len"]] = body
    crc = zlib.crc32(struct.pack("<QQ", h["dim"], h["rows"]) + bytes(body))
    struct.pack_into("<I", b, 80 + 32 * SECTIONS.index(section) + 24, crc)
    open(binary, "wb").write(reseal(b))


def test_checks_left_to_first_use_raise_value_errors_naming_the_file(tmp_path):
    """A load leaves metadata as JSON text in the map and builds the id index on first need, so a
    crafted file with bad metadata text or a repeated id loads; the first use raises a ValueError
    naming the file, persist writes nothing, and verify reports the file."""
    store = make_store(n=6, dim=5)
    path = str(tmp_path / "default__vector_store.json")
    store.persist_format = "binary"
    store.persist(path)
    binary = str(_native.VectorStore.binary_path_for(path))

    def break_first_value(body):
        body[8] = ord("?")  # row key (4), length (4), then the value's first byte

    craft(binary, "metadata", break_first_value)
    loaded = RustVectorStore.from_persist_path(path)
    assert len(loaded.data.embedding_dict) == 5
    assert list(loaded.data.metadata_dict) == list(store.data.metadata_dict)  # keys: nothing parsed
    assert loaded.data.metadata_dict["n1-\u00e9"] == store.data.metadata_dict["n1-\u00e9"]
    with pytest.raises(ValueError, match="default__vector_store.rsvec"):
        loaded.data.metadata_dict["n0-\u00e9"]
    from llama_index.core.vector_stores.types import (
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
    )

    q = VectorStoreQuery(
        query_embedding=[1.0] * 5,
        similarity_top_k=2,
        filters=MetadataFilters(filters=[MetadataFilter(key="i", value=1)]),
    )
    with pytest.raises(ValueError, match="metadata of"):
        loaded.query(q)
    assert loaded.query(VectorStoreQuery(query_embedding=[1.0] * 5, similarity_top_k=2)).ids
    out = str(tmp_path / "out" / "default__vector_store.json")
    os.makedirs(os.path.dirname(out))
    with pytest.raises(ValueError, match="metadata of"):
        loaded.persist(out)
    assert sorted(os.listdir(os.path.dirname(out))) in ([], [".llama_index_rs.lock"])
    assert any("metadata of" in p for p in llama_index_rs.verify(binary).problems)

    store.persist(path)  # a clean file again, then repeat the first id in the second slot
    binary_bytes = open(binary, "rb").read()
    ids_at = header(binary)["sections"]["ids"]["offset"]
    first_len = struct.unpack_from("<I", binary_bytes, ids_at)[0]
    first = binary_bytes[ids_at + 4 : ids_at + 4 + first_len]

    def repeat_first_id(body):
        second_len = struct.unpack_from("<I", body, 4 + first_len)[0]
        assert second_len == first_len
        body[8 + first_len : 8 + 2 * first_len] = first

    craft(binary, "ids", repeat_first_id)
    loaded = RustVectorStore.from_persist_path(path)
    assert list(loaded.data.embedding_dict)[:2] == [first.decode()] * 2
    assert loaded.get(first.decode()) == pytest.approx(store.get(first.decode()))  # the first wins
    assert any("appears twice" in p for p in llama_index_rs.verify(binary).problems)
