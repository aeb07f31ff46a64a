"""Hypothesis round trips (issue 4, fuzzing): random JSON-compatible data -> persist -> load -> persist
is byte-identical, and equals what `json.dumps` / the Simple* store writes for the same data.

Data: text with lone surrogates, emoji and control characters; floats including -0.0, 1e-05, 1e+16,
NaN and infinities; integers beyond 64 bits; nested lists and dicts. The Rust-side fuzz targets
(fuzz/, see fuzz/README.md) cover arbitrary bytes; these cover arbitrary *values* end to end.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index.core.vector_stores import SimpleVectorStore

from llama_index_rs import RustKVStore, RustVectorStore

# Any code point, lone surrogates included (Python's json round-trips them; ensure_ascii escapes them).
texts = st.text(
    st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
        st.sampled_from(["\ud800", "\udfff", "\U0001f600", "\x00", "\x7f", '"', "\\", "\u2028"]),
    ),
    max_size=12,
)
special_floats = st.sampled_from(
    [
        -0.0,
        0.0,
        1e-05,
        1e-04,
        1e16,
        1e15,
        1.5e16,
        1e-320,
        5e-324,
        1.7976931348623157e308,
        math.nan,
        math.inf,
        -math.inf,
    ]
)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), special_floats)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.integers(-(10**60), 10**60),
    floats,
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
json_objects = st.dictionaries(texts, json_values, max_size=5)

# Node ids must be str without lone surrogates (the vector loader refuses them; see README).
ids = st.text(
    st.characters(min_codepoint=1, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),
    min_size=1,
    max_size=8,
)
f32_values = st.floats(width=32, allow_nan=False, allow_infinity=False)
# float32 neighbours of the interesting doubles (embeddings are float32 values; see README).
F32_SPECIALS = [
    float(np.float32(x)) for x in (-0.0, 1e-05, 1e-04, 1e16, 1e15, 3.4e38, 1e-45, 1e-40, 0.1)
]


def _read(path: pathlib.Path) -> bytes:
    return path.read_bytes()


@settings(max_examples=40, deadline=None)
@given(data=st.dictionaries(texts, st.dictionaries(texts, json_objects, max_size=4), max_size=3))
def test_kv_store_round_trip_matches_json_dumps_and_simple_kv_store(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("kv")
    ours, theirs = RustKVStore(), SimpleKVStore()
    for collection, entries in data.items():
        for key, value in entries.items():
            ours.put(key, value, collection=collection)
            theirs.put(key, value, collection=collection)
    ours.persist(str(d / "ours.json"))
    theirs.persist(str(d / "theirs.json"))
    written = _read(d / "ours.json")
    assert written == _read(d / "theirs.json")
    assert written == json.dumps({c: e for c, e in data.items() if e}).encode()
    loaded = RustKVStore.from_persist_path(str(d / "ours.json"))
    loaded.persist(str(d / "again.json"))
    assert _read(d / "again.json") == written


@settings(max_examples=25, deadline=None)
@given(
    rows=st.dictionaries(
        ids,
        st.tuples(
            st.one_of(st.none(), ids),
            st.one_of(st.none(), json_objects),
        ),
        min_size=1,
        max_size=6,
    ),
    dim=st.integers(1, 5),
    values=st.lists(f32_values, min_size=30, max_size=30),
    extra=st.lists(st.sampled_from(F32_SPECIALS), max_size=3),
)
def test_vector_store_round_trip_matches_json_dumps_and_simple_vector_store(
    tmp_path_factory, rows, dim, values, extra
):
    d = tmp_path_factory.mktemp("vec")
    pool = (extra + values) * 2
    ours, theirs = RustVectorStore(persist_format="both"), SimpleVectorStore()
    expected = {"embedding_dict": {}, "text_id_to_ref_doc_id": {}, "metadata_dict": {}}
    for i, (node_id, (ref_doc_id, metadata)) in enumerate(rows.items()):
        embedding = [float(np.float32(x)) for x in pool[i * dim : (i + 1) * dim]]
        for store in (ours, theirs):
            store.data.embedding_dict[node_id] = list(embedding)
            if ref_doc_id is not None:
                store.data.text_id_to_ref_doc_id[node_id] = ref_doc_id
            if metadata is not None:
                store.data.metadata_dict[node_id] = dict(metadata)
        expected["embedding_dict"][node_id] = embedding
        if ref_doc_id is not None:
            expected["text_id_to_ref_doc_id"][node_id] = ref_doc_id
        if metadata is not None:
            expected["metadata_dict"][node_id] = metadata

    ours.persist(persist_path=str(d / "o" / "default__vector_store.json"))
    theirs.persist(persist_path=str(d / "t" / "default__vector_store.json"))
    written = _read(d / "o" / "default__vector_store.json")
    assert written == _read(d / "t" / "default__vector_store.json")
    assert written == json.dumps(expected).encode()

    # Loads prefer the binary file written beside the JSON: its entries must round-trip too.
    from_binary = RustVectorStore.from_persist_path(str(d / "o" / "default__vector_store.json"))
    from_binary.persist_format = "json"
    from_binary.persist(persist_path=str(d / "b" / "default__vector_store.json"))
    assert _read(d / "b" / "default__vector_store.json") == written
    # And the JSON-only file (no binary beside it) loads back to the same bytes.
    from_json = RustVectorStore.from_persist_path(str(d / "b" / "default__vector_store.json"))
    from_json.persist_format = "json"
    from_json.persist(persist_path=str(d / "j" / "default__vector_store.json"))
    assert _read(d / "j" / "default__vector_store.json") == written
