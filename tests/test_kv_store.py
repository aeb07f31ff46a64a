"""RustKVStore against SimpleKVStore: every method, persisted bytes, odd values, bad files."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import pickle

import fsspec
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index.core.storage.kvstore.types import BaseKVStore

from llama_index_rs import RustKVStore

ODD_VALUES = [
    {"text": 'héllo wörld 🎉 \u2028 \x7f \x00 \\ " /'},
    {"f": [1e-05, 1e16, 1e16, -0.0, 0.1, 1.5e300, 5e-324, float("inf"), float("-inf")]},
    {"nan": float("nan")},
    {"big": [2**63, -(2**63) - 1, 2**200, 10**40]},
    {"nested": {"a": [{"b": {"c": [None, True, False, "x"]}}], "ü": {}}},
    {"lone": "\ud800 and \udfff"},
    {},
]

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.sampled_from(["a", "b", "é", "🎉", "k\ud800", "c/d", ""])
collections = st.sampled_from(["data", "docstore/data", "ü", "other"])


def persisted(store: BaseKVStore, tmp_path, name: str = "kv.json") -> bytes:
    path = os.path.join(str(tmp_path), name)
    store.persist(path)
    with open(path, "rb") as f:
        return f.read()


def test_isinstance_and_every_public_method_overridden():
    assert isinstance(RustKVStore(), SimpleKVStore)
    public = {n for n in dir(SimpleKVStore) if not n.startswith("_")}
    for name in public:
        assert name in RustKVStore.__dict__, name
    for name in ("__getstate__", "__setstate__", "__deepcopy__"):
        assert name in RustKVStore.__dict__


@pytest.mark.parametrize("value", ODD_VALUES)
def test_odd_values_round_trip_byte_identical(value, tmp_path):
    s, r = SimpleKVStore(), RustKVStore()
    for store in (s, r):
        store.put("k", value)
        store.put("é", {"v": value}, collection="ü")
    assert persisted(s, tmp_path, "s.json") == persisted(r, tmp_path, "r.json")
    got = r.get("k")
    assert json.dumps(got) == json.dumps(s.get("k"))
    loaded = RustKVStore.from_persist_path(os.path.join(str(tmp_path), "s.json"))
    assert persisted(loaded, tmp_path, "l.json") == persisted(s, tmp_path, "s.json")
    # and Simple reads what we wrote
    back = SimpleKVStore.from_persist_path(os.path.join(str(tmp_path), "r.json"))
    assert json.dumps(back.to_dict()) == json.dumps(s.to_dict())


def test_quirks_absent_collection_is_created_by_reads_and_deletes(tmp_path):
    s, r = SimpleKVStore(), RustKVStore()
    for store in (s, r):
        assert store.get("x", collection="c1") is None
        assert store.get_all(collection="c2") == {}
        assert store.delete("x", collection="c3") is False
        store.put("a", {"v": 1}, collection="c4")
        store.put("b", {"v": 2}, collection="c4")
        store.delete("a", collection="c4")
        store.put("a", {"v": 3}, collection="c4")  # delete + re-add goes to the end
        store.put("b", {"v": 4}, collection="c4")  # replace keeps its position
    assert persisted(s, tmp_path, "s") == persisted(r, tmp_path, "r")
    assert list(r.get_all("c4")) == ["b", "a"]


def test_values_are_isolated_copies():
    r = RustKVStore()
    v = {"a": [1]}
    r.put("k", v)
    v["a"].append(2)
    got = r.get("k")
    got["a"].append(3)
    r.get_all()["k"]["a"].append(4)
    assert r.get("k") == {"a": [1]}


def test_async_and_batches():
    s, r = SimpleKVStore(), RustKVStore()

    async def go(store):
        await store.aput("a", {"x": 1})
        await store.aput_all([("b", {"y": 2}), ("c", {"z": 3})])
        out = [
            await store.aget("a"),
            await store.aget_all(),
            await store.adelete("b"),
            await store.adelete("b"),
        ]
        return out

    assert asyncio.run(go(s)) == asyncio.run(go(r))
    r.put_all([("d", {})], batch_size=100)  # any batch size (SimpleKVStore raises)
    assert r.get("d") == {}


def test_put_all_is_all_or_nothing_for_unserializable_values():
    r = RustKVStore()
    with pytest.raises(TypeError):
        r.put_all([("a", {"x": 1}), ("b", {"x": object()})])
    assert r.to_dict() == {"data": {}} or r.to_dict() == {}


def test_to_dict_from_dict_pickle_deepcopy():
    r = RustKVStore({"data": {"a": {"x": 1.5}}, "c": {}})
    assert r.to_dict() == SimpleKVStore({"data": {"a": {"x": 1.5}}, "c": {}}).to_dict()
    for clone in (
        pickle.loads(pickle.dumps(r)),
        copy.deepcopy(r),
        RustKVStore.from_dict(r.to_dict()),
    ):
        assert type(clone) is RustKVStore
        assert clone.to_json() == r.to_json()
        clone.put("b", {})
        assert r.get("b") is None


def test_subclass_override_is_honoured():
    seen = []

    class Logged(RustKVStore):
        def put(self, key, val, collection="data"):
            seen.append(key)
            super().put(key, val, collection)

    s = Logged()
    s.put_all([("a", {}), ("b", {})])
    asyncio.run(s.aput("c", {}))
    assert seen == ["a", "b", "c"]


def test_fsspec_memory_filesystem():
    fs = fsspec.filesystem("memory")
    s, r = SimpleKVStore(), RustKVStore()
    for store, p in ((s, "/kv/s.json"), (r, "/kv/r.json")):
        store.put("é", {"v": [1e-05, "🎉"]})
        store.persist(p, fs=fs)
    assert fs.cat("/kv/s.json") == fs.cat("/kv/r.json")
    assert RustKVStore.from_persist_path("/kv/s.json", fs=fs).get("é") == {"v": [1e-05, "🎉"]}


# ---- bad input ----


def test_missing_file_raises_file_not_found(tmp_path):
    for cls in (SimpleKVStore, RustKVStore):
        with pytest.raises(FileNotFoundError):
            cls.from_persist_path(os.path.join(str(tmp_path), "nope.json"))


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b'{"data": {"a": ',
        b'{"data": {"a": 1,}}',
        b"\xff\xfe",
        b'{"a": {"k": tru}}',
        b"{} {}",
    ],
)
def test_malformed_files_raise_value_error(tmp_path, content):
    path = os.path.join(str(tmp_path), "bad.json")
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(ValueError):  # SimpleKVStore: json.JSONDecodeError, a ValueError
        SimpleKVStore.from_persist_path(path)
    with pytest.raises(ValueError, match="bad.json"):
        RustKVStore.from_persist_path(path)


@pytest.mark.parametrize("content", [b"[1, 2]", b'"x"', b'{"data": [1]}', b'{"data": 3}', b"null"])
def test_wrong_typed_files_raise_value_error(tmp_path, content):
    path = os.path.join(str(tmp_path), "wrong.json")
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(ValueError, match="must be a JSON object"):
        RustKVStore.from_persist_path(path)


def test_accepts_what_json_loads_accepts(tmp_path):
    deep = "[" * 300 + "]" * 300
    text = (
        '\ufeff{"data": {"a": {"x": NaN, "y": -Infinity, "s": "\\ud83d\\ude00\\udc00", '
        '"big": 123456789012345678901234567890, "d": ' + deep + '}, "a": {"dup": 1}}}'
    )
    path = os.path.join(str(tmp_path), "odd.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    r = RustKVStore.from_persist_path(path)
    s = SimpleKVStore.from_persist_path(path)
    assert persisted(r, tmp_path, "r") == persisted(s, tmp_path, "s")


# ---- random operation sequences ----


class KVMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s, self.r = SimpleKVStore(), RustKVStore()

    @rule(
        key=keys,
        value=st.dictionaries(st.text(max_size=3), json_value, max_size=3),
        coll=collections,
    )
    def put(self, key, value, coll):
        self.s.put(key, copy.deepcopy(value), collection=coll)
        self.r.put(key, value, collection=coll)

    @rule(
        pairs=st.lists(
            st.tuples(keys, st.dictionaries(st.text(max_size=2), json_leaf, max_size=2)), max_size=4
        ),
        coll=collections,
    )
    def put_all(self, pairs, coll):
        self.s.put_all(copy.deepcopy(pairs), collection=coll)
        self.r.put_all(pairs, collection=coll)

    @rule(key=keys, coll=collections)
    def get(self, key, coll):
        assert json.dumps(self.s.get(key, collection=coll)) == json.dumps(
            self.r.get(key, collection=coll)
        )

    @rule(coll=collections)
    def get_all(self, coll):
        assert json.dumps(self.s.get_all(collection=coll)) == json.dumps(
            self.r.get_all(collection=coll)
        )

    @rule(key=keys, coll=collections)
    def delete(self, key, coll):
        assert self.s.delete(key, collection=coll) == self.r.delete(key, collection=coll)

    @rule()
    def reload(self):
        self.r = RustKVStore.from_json(self.r.to_json())

    @invariant()
    def same_bytes(self):
        assert self.r.to_json() == json.dumps(self.s.to_dict()).encode()


TestKVMachine = KVMachine.TestCase
TestKVMachine.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)


def test_floats_repr_matches_python():
    r = RustKVStore()
    xs = [1e-05, 1e16, 1e16, -0.0, 0.1 + 0.2, 1 / 3, 2.5e-8, 123456789.0, 1e22, 1e21]
    r.put("k", {"xs": xs})
    assert r.to_json() == json.dumps({"data": {"k": {"xs": xs}}}).encode()
    assert all(math.copysign(1, a) == math.copysign(1, b) for a, b in zip(r.get("k")["xs"], xs))
