"""Differential tests: RustVectorStore against LlamaIndex's SimpleVectorStore on identical inputs."""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import math
import os
import pickle
from typing import Any

import fsspec
import numpy as np
import pytest
from _support import (
    Ours,
    Pair,
    _Raised,
    assert_same_dict,
    assert_same_exception,
    assert_same_result,
    f32,
    node,
    nodes_from_matrix,
    ours_only,
    outcome,
    q,
    rand_matrix,
)
from hypothesis import given
from hypothesis import strategies as st
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.simple import SimpleVectorStoreData
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from pydantic import BaseModel

DEFAULT = VectorStoreQueryMode.DEFAULT
MMR = VectorStoreQueryMode.MMR


def persisted(store: Any, path: Any, **kw: Any) -> bytes:
    store.persist(str(path), **kw)
    with open(path, "rb") as f:
        return f.read()


def filled_pair(n: int = 40, dim: int = 8, seed: int = 0, refs: int = 5) -> tuple:
    rng = np.random.default_rng(seed)
    mat = rand_matrix(rng, n, dim)
    ref_ids = [None if i % 7 == 0 else f"doc{i % refs}" for i in range(n)]
    md = [{"i": i, "parity": "even" if i % 2 == 0 else "odd"} for i in range(n)]
    p = Pair()
    p.add(nodes_from_matrix(mat, refs=ref_ids, metadata=md))
    return p, mat, rng


# ============================================================== API surface


def test_isinstance_of_simple_vector_store(ours):
    assert isinstance(ours, SimpleVectorStore)
    assert isinstance(ours, BasePydanticVectorStore)


def test_client_and_stores_text(ours):
    assert ours.client is None
    assert ours.stores_text is False
    assert ours.is_embedding_query is True


@ours_only
def test_class_name():
    assert Ours.class_name() == "RustVectorStore"
    assert Ours().class_name() == "RustVectorStore"


def test_get_nodes_not_implemented(pair):
    pair.add([node("a", [1.0, 0.0])])
    for args in [(), (["a"],), (None, MetadataFilters(filters=[]))]:
        _, e_t = outcome(pair.theirs.get_nodes, *args)
        _, e_o = outcome(pair.ours.get_nodes, *args)
        assert isinstance(e_t, NotImplementedError)
        assert_same_exception(e_t, e_o)
    _, e_t = outcome(asyncio.run, pair.theirs.aget_nodes(["a"]))
    _, e_o = outcome(asyncio.run, pair.ours.aget_nodes(["a"]))
    assert_same_exception(e_t, e_o)


def _public_api() -> list[str]:
    base = set(dir(BaseModel))
    names = {n for n in dir(SimpleVectorStore) if not n.startswith("__") and n not in base}
    names |= {n for n in dir(BasePydanticVectorStore) if not n.startswith("__") and n not in base}
    names -= set(SimpleVectorStore.model_fields)  # pydantic fields, not methods
    return sorted(names)


# Inherited on purpose: each only calls public methods that RustVectorStore overrides.
INHERITED_OK = {
    "aget_nodes": "BasePydanticVectorStore.aget_nodes just calls self.get_nodes",
    "to_json": "BaseComponent.to_json is json.dumps(self.to_dict())",
    "from_json": "BaseComponent.from_json is cls.from_dict(json.loads(...))",
    # pydantic serializer hook: serializes the `data` field, then adds class_name();
    # test_model_dump_and_dict checks its output against SimpleVectorStore's
    "custom_model_dump": "serializes the data field (a live view) + class_name()",
}


@ours_only
def test_every_public_method_is_overridden():
    api = _public_api()
    assert {"add", "query", "persist", "aquery", "async_add", "_data", "client"} <= set(api)
    missing = [n for n in api if n not in Ours.__dict__ and n not in INHERITED_OK]
    assert missing == [], (
        f"silently inherited from SimpleVectorStore/BasePydanticVectorStore: {missing}"
    )


@ours_only
def test_signatures_match():
    def shape(obj: Any) -> list:
        sig = inspect.signature(obj)
        return [(p.name, p.kind, p.default) for p in sig.parameters.values()]

    bad = []
    for n in _public_api():
        t, o = inspect.getattr_static(SimpleVectorStore, n), inspect.getattr_static(Ours, n)
        assert type(o) is type(t), f"{n}: {type(t).__name__} vs {type(o).__name__}"
        if isinstance(t, property):
            continue
        ft, fo = getattr(SimpleVectorStore, n), getattr(Ours, n)
        if shape(ft) != shape(fo):
            bad.append((n, shape(ft), shape(fo)))
        if inspect.iscoroutinefunction(ft) != inspect.iscoroutinefunction(fo):
            bad.append((n, "async", "sync"))
    assert bad == []


# ============================================================== add / get / delete / clear


def test_add_returns_ids_and_get(pair):
    rng = np.random.default_rng(1)
    mat = rand_matrix(rng, 5, 7)
    nodes = nodes_from_matrix(mat, refs=["d1", "d1", None, "d2", None])
    assert pair.add(nodes) == [f"n{i}" for i in range(5)]
    for i in range(5):
        got_t, got_o = pair.both("get", f"n{i}")
        assert got_o == got_t == mat[i].tolist()
        assert all(type(x) is float for x in got_o)
    pair.check_state()
    assert pair.add([]) == []
    pair.check_state()


class _Float(float):
    pass


@pytest.mark.parametrize(
    "as_embedding",
    [
        pytest.param(lambda row: row, id="list-of-float"),
        pytest.param(lambda row: tuple(row), id="tuple"),
        pytest.param(lambda row: [np.float64(x) for x in row], id="numpy-float64"),
        pytest.param(lambda row: [_Float(x) for x in row], id="float-subclass"),
        pytest.param(lambda row: row[:-1] + [int(row[-1] * 8)], id="int-at-the-end"),
        pytest.param(lambda row: [True] + row[1:], id="bool-first"),
        pytest.param(lambda row: np.asarray(row), id="numpy-row"),
    ],
)
def test_embedding_element_types(pair, as_embedding):
    # lists of exact floats take a direct path; every other form the general one: same vectors
    rng = np.random.default_rng(3)
    mat = rand_matrix(rng, 6, 9)
    nodes = nodes_from_matrix(mat)
    for n in nodes:
        n.embedding = as_embedding(list(n.embedding))
    pair.add(nodes)
    for i in range(6):
        got_t, got_o = pair.both("get", f"n{i}")
        assert got_o == [float(np.float32(x)) for x in got_t]
    assert_same_result(*pair.both("query", q(as_embedding(mat[0].tolist()), k=6)))
    pair.check_state()


def test_get_missing_raises_keyerror(pair):
    pair.add([node("a", [1.0])])
    for key in ["missing", "", "A"]:
        with pytest.raises(_Raised) as ei:
            pair.both("get", key)
        assert isinstance(ei.value.ours, KeyError)


def test_readd_overwrites_in_place(pair):
    pair.add([node("a", [1.0, 0.0], ref="r1"), node("b", [0.0, 1.0], ref="r1")])
    pair.add([node("a", [0.5, 0.5], ref="r2", metadata={"x": 1})])
    pair.check_state()  # key order in to_dict: "a" keeps its first position
    pair.query(q([1.0, 0.0], k=None))
    pair.add([node("c", [1.0, 1.0]), node("c", [2.0, 1.0], ref="r3")])  # duplicate within one add
    pair.check_state()


def test_delete_by_ref_doc_id(pair):
    rng = np.random.default_rng(2)
    mat = rand_matrix(rng, 12, 4)
    refs = ["d1", None, "d2", "d1", None, "None", "d3", "d1", None, "d2", "é😀", "é😀"]
    pair.add(nodes_from_matrix(mat, refs=refs, metadata=[{"k": i} for i in range(12)]))
    pair.check_state()
    for ref in ["d1", "nonexistent", "None", "é😀", "d2", "d1"]:
        pair.both("delete", ref)
        pair.check_state()
        pair.query(q(mat[0].tolist(), k=None))
    pair.both("delete", "d3")
    pair.check_state()
    assert pair.ours.to_dict()["embedding_dict"] == {}


def test_delete_none_removes_parentless_nodes(pair):
    pair.add([node("a", [1.0, 0.0]), node("b", [0.0, 1.0], ref="x"), node("c", [1.0, 1.0])])
    assert pair.ours.to_dict()["text_id_to_ref_doc_id"] == {"a": "None", "b": "x", "c": "None"}
    pair.both("delete", "None")
    pair.check_state()
    assert list(pair.ours.to_dict()["embedding_dict"]) == ["b"]


def test_delete_nodes(pair):
    p, mat, _ = filled_pair(30)
    even = MetadataFilters(filters=[MetadataFilter(key="parity", value="even")])
    small = MetadataFilters(filters=[MetadataFilter(key="i", value=10, operator=FilterOperator.LT)])
    steps = [
        ((["n1", "n2", "zzz"],), {}),
        (([],), {}),
        ((None, even), {}),
        ((["n3", "n5", "n7", "n9", "n11", "n13"], small), {}),
        ((), {"filters": MetadataFilters(filters=[])}),
    ]
    for args, kwargs in steps:
        p.both("delete_nodes", *args, **kwargs)
        p.check_state()
        p.query(q(mat[3].tolist(), k=None))
    assert p.ours.to_dict()["embedding_dict"] == {}


def test_delete_nodes_all(pair):
    p, _, _ = filled_pair(10)
    p.both("delete_nodes")
    p.check_state()
    assert p.ours.to_dict() == {
        "embedding_dict": {},
        "text_id_to_ref_doc_id": {},
        "metadata_dict": {},
    }


def test_clear(pair):
    p, mat, _ = filled_pair(10)
    p.both("clear")
    p.check_state()
    p.query(q(mat[0].tolist(), k=None))
    p.add(nodes_from_matrix(mat[:3]))
    p.check_state()
    p.query(q(mat[0].tolist(), k=2))


def test_async_variants():
    p, mat, _ = filled_pair(20)
    extra = nodes_from_matrix(
        rand_matrix(np.random.default_rng(9), 3, 8), prefix="x", refs=["r", "r", None]
    )
    ids_t = asyncio.run(p.theirs.async_add(extra))
    ids_o = asyncio.run(p.ours.async_add(extra))
    assert ids_t == ids_o == ["x0", "x1", "x2"]
    p.check_state()
    for kwargs in [{}, {"mmr_threshold": 0.3}]:
        mode = MMR if kwargs else DEFAULT
        r_t = asyncio.run(p.theirs.aquery(q(mat[1].tolist(), k=5, mode=mode), **kwargs))
        r_o = asyncio.run(p.ours.aquery(q(mat[1].tolist(), k=5, mode=mode), **kwargs))
        assert_same_result(r_t, r_o)
    for store in (p.theirs, p.ours):
        asyncio.run(store.adelete("r"))
    p.check_state()
    for store in (p.theirs, p.ours):
        asyncio.run(store.adelete_nodes(["n1", "n2"]))
    p.check_state()
    even = MetadataFilters(filters=[MetadataFilter(key="parity", value="even")])
    for store in (p.theirs, p.ours):
        asyncio.run(store.adelete_nodes(filters=even))
    p.check_state()
    for store in (p.theirs, p.ours):
        asyncio.run(store.aclear())
    p.check_state()


# ============================================================== queries: random data


@pytest.mark.parametrize("dim", [1, 3, 97, 257, 1536])
def test_query_default_random(dim):
    n = 60 if dim < 1000 else 30
    p, mat, rng = filled_pair(n, dim, seed=dim)
    queries = rand_matrix(rng, 3, dim)
    for qe in list(queries) + [mat[5]]:
        for k in [None, 0, 1, 2, 7, n, n + 5]:
            p.query(q(qe.tolist(), k=k))


@pytest.mark.parametrize("dim", [3, 97])
@pytest.mark.parametrize("threshold", ["absent", None, 0.0, 0.25, 0.5, 1.0])
def test_query_mmr_random(dim, threshold):
    p, _mat, rng = filled_pair(25, dim, seed=dim + 1)
    kwargs = {} if threshold == "absent" else {"mmr_threshold": threshold}
    qe = rand_matrix(rng, 1, dim)[0].tolist()
    for k in [None, 0, 1, 3, 10, 25, 40]:
        p.query(q(qe, k=k, mode=MMR), **kwargs)


def test_query_mmr_threshold_on_query_object_is_ignored(pair):
    """SimpleVectorStore reads mmr_threshold from kwargs only, not from VectorStoreQuery."""
    p, mat, _ = filled_pair(15, 5)
    query = q(mat[0].tolist(), k=5, mode=MMR)
    query.mmr_threshold = 0.0
    p.query(query)
    p.query(query, mmr_threshold=0.9)


def test_query_node_ids_restriction_and_doc_ids_ignored():
    p, mat, _ = filled_pair(30, 6)
    qe = mat[2].tolist()
    for node_ids in [
        ["n1", "n4", "n9", "nope"],
        [],
        ["n4"],
        [f"n{i}" for i in range(30)],
        ["n3", "n3"],
    ]:
        for k in [None, 2, 10]:
            p.query(q(qe, k=k, node_ids=node_ids))
            p.query(q(qe, k=k, node_ids=node_ids, mode=MMR), mmr_threshold=0.7)
    for doc_ids in [["doc1"], [], ["nothing"]]:
        p.query(q(qe, k=None, doc_ids=doc_ids))


def test_query_empty_store(pair):
    for mode in (DEFAULT, MMR):
        for k in [None, 0, 1, 10]:
            res = pair.query(q([1.0, 2.0], k=k, mode=mode))
            assert res.ids == []


def test_query_unknown_mode_raises_value_error(pair):
    pair.add([node("a", [1.0, 0.0])])
    for mode in [
        VectorStoreQueryMode.HYBRID,
        VectorStoreQueryMode.SPARSE,
        VectorStoreQueryMode.TEXT_SEARCH,
    ]:
        with pytest.raises(_Raised) as ei:
            pair.both("query", q([1.0, 0.0], mode=mode))
        assert isinstance(ei.value.ours, ValueError)


# ============================================================== queries: the real corpus


@pytest.fixture(scope="module")
def corpus_pair(corpus):
    p = Pair()
    p.add(corpus.nodes())
    return p


def test_corpus_all_queries_top10(corpus, corpus_pair):
    assert len(corpus.queries) == 40
    for qe in corpus.query_embeddings:
        res = corpus_pair.query(q(qe.tolist(), k=10))
        assert len(res.ids) == 10


def test_corpus_mmr_and_filters(corpus, corpus_pair):
    mods = MetadataFilters(
        filters=[
            MetadataFilter(
                key="module", value=["json", "csv", "os", "pathlib"], operator=FilterOperator.IN
            ),
            MetadataFilter(key="n_chars", value=1000, operator=FilterOperator.GT),
        ]
    )
    for qe in corpus.query_embeddings[:3]:
        corpus_pair.query(q(qe.tolist(), k=5, mode=MMR), mmr_threshold=0.5)
        corpus_pair.query(q(qe.tolist(), k=20, filters=mods))


def test_corpus_persist_bytes(corpus_pair, tmp_path):
    assert persisted(corpus_pair.ours, tmp_path / "o.json") == persisted(
        corpus_pair.theirs, tmp_path / "t.json"
    )


# ============================================================== ties


@pytest.mark.parametrize("seed", range(6))
def test_ties_duplicate_vectors(seed):
    rng = np.random.default_rng(100 + seed)
    dim = 4
    distinct = rand_matrix(rng, 3, dim)
    n = 30
    rows = distinct[rng.integers(0, 3, n)]
    ids = [f"id{int(x):03d}" for x in rng.permutation(1000)[:n]]  # random, not sorted, order
    p = Pair()
    p.add([node(ids[i], rows[i].tolist()) for i in range(n)])
    for qe in [distinct[0], distinct[1], rand_matrix(rng, 1, dim)[0]]:
        for k in list(range(1, n + 2)) + [None, 0]:
            p.query(q(qe.tolist(), k=k))
        for k in [1, 3, 10, None]:
            p.query(q(qe.tolist(), k=k, mode=MMR), mmr_threshold=0.5)
            p.query(q(qe.tolist(), k=k, mode=MMR), mmr_threshold=1.0)


def test_ties_all_identical():
    p = Pair()
    ids = ["m", "c", "x", "a", "q", "b", "z", "k"]
    p.add([node(i, [0.5, 0.25, 1.0]) for i in ids])
    for k in list(range(1, 10)) + [None]:
        p.query(q([1.0, 1.0, 1.0], k=k))


# ============================================================== filters

FILTER_ROWS: list[dict[str, Any]] = [
    {
        "s": "apple",
        "i": 1,
        "f": 1.5,
        "b": True,
        "n": None,
        "l": ["x", "y"],
        "li": [1, 2],
        "mixed": "a",
    },
    {"s": "Banana", "i": 2, "f": -0.5, "b": False, "l": [], "li": [3], "mixed": 5},
    {"s": "", "i": 3, "f": 2.0, "l": ["y"], "li": []},
    {"s": "cherry pie", "i": 10, "f": 0.0, "b": True},
    {"s": "APPLE", "i": -4, "f": 1e20, "l": ["x"], "mixed": 2.5},
    {},
    {"s": "ñandú 😀", "i": 2**40, "f": 3.25, "l": ["😀", "x"]},
    {"s": "apple", "i": 1, "f": 1.0, "li": [1]},
    {"s": "İstanbul ΟΔΟΣ", "i": 2**70 + 1, "f": float(2**70), "d": {"a": 1, "x": [1]}},
    {"s": "STRASSE ẞ ǅ", "i": 2**70, "d": {}, "l": ["ß"]},
]
FILTER_KEYS = [
    "s",
    "i",
    "f",
    "b",
    "n",
    "l",
    "li",
    "d",
    "mixed",
    "missing",
    "ref_doc_id",
    "_node_type",
]
FILTER_VALUES: list[Any] = [
    "apple",
    "a",
    "APP",
    "",
    "x",
    1,
    2,
    0,
    10,
    -4,
    1.5,
    0.0,
    1e20,
    ["x"],
    ["apple", "cherry pie"],
    ["x", "y"],
    [1, 3],
    [1.5, 2.0],
    [],
    None,
    "doc1",
    "i",
    "ß",
    "σ",
    "ς",
    "Σ",
    "ǆ",
    "İ",
    2**70,
    float(2**70),
    2**40,
    ["a"],
    [2**70],
]


@pytest.fixture(scope="module")
def filter_pair():
    rng = np.random.default_rng(7)
    mat = rand_matrix(rng, len(FILTER_ROWS), 5)
    refs = (["doc1", None, "doc2", "doc1", None, "doc3", "doc1", "doc2"] * 2)[: len(FILTER_ROWS)]
    p = Pair()
    p.add(nodes_from_matrix(mat, refs=refs, metadata=FILTER_ROWS))
    return p, rng.standard_normal(5).astype(np.float32).tolist()


def _compare_query(p: Pair, query: VectorStoreQuery, **kwargs: Any) -> str:
    """Returns '' if same, else a description of the difference."""
    r_t, e_t = outcome(p.theirs.query, query, **kwargs)
    r_o, e_o = outcome(p.ours.query, query, **kwargs)
    try:
        assert_same_exception(e_t, e_o)
        if e_t is None:
            assert_same_result(r_t, r_o)
    except AssertionError as err:
        return str(err).splitlines()[0]
    return ""


@pytest.mark.parametrize("op", [o for o in FilterOperator], ids=lambda o: o.name)
def test_filter_operator(filter_pair, op):
    p, qe = filter_pair
    failures = []
    raised = matched = 0
    for key in FILTER_KEYS:
        for value in FILTER_VALUES:
            try:
                f = MetadataFilter(key=key, value=value, operator=op)
            except ValueError:  # pydantic ValidationError: value not accepted for this filter
                continue
            filters = MetadataFilters(filters=[f])
            diff = _compare_query(p, q(qe, k=None, filters=filters))
            if diff:
                failures.append(f"{key} {op.name} {value!r}: {diff}")
            r, e = outcome(p.theirs.query, q(qe, k=None, filters=filters))
            raised += e is not None
            matched += bool(e is None and r.ids)
    assert failures == [], "\n".join(failures[:30])
    assert matched > 0  # the grid exercises something for every operator


@pytest.mark.parametrize("cond", list(FilterCondition), ids=lambda c: c.name)
def test_filter_conditions(filter_pair, cond):
    p, qe = filter_pair
    F = FilterOperator
    combos = [
        [MetadataFilter(key="s", value="apple"), MetadataFilter(key="i", value=1)],
        [
            MetadataFilter(key="i", value=2, operator=F.GT),
            MetadataFilter(key="b", value=1, operator=F.EQ),
        ],
        [
            MetadataFilter(key="missing", value="z", operator=F.NE),
            MetadataFilter(key="l", value="x", operator=F.CONTAINS),
        ],
        [MetadataFilter(key="n", value=None, operator=F.IS_EMPTY)],
        [
            MetadataFilter(key="s", value="APP", operator=F.TEXT_MATCH_INSENSITIVE),
            MetadataFilter(key="f", value=1.0, operator=F.GTE),
            MetadataFilter(key="li", value=[1], operator=F.ANY),
        ],
        [MetadataFilter(key="ref_doc_id", value=["doc1", "None"], operator=F.IN)],
        # a type error in a later filter raises even if an earlier one already failed: no short circuit
        [MetadataFilter(key="s", value="zzz"), MetadataFilter(key="s", value=1, operator=F.GT)],
        [MetadataFilter(key="mixed", value=1, operator=F.GT)],
    ]
    failures = []
    for filters in combos:
        mf = MetadataFilters(filters=filters, condition=cond)
        for k in [None, 3]:
            diff = _compare_query(p, q(qe, k=k, filters=mf))
            if diff:
                failures.append(f"{cond.name} {filters}: {diff}")
        diff = _compare_query(p, q(qe, k=3, filters=mf, mode=MMR), mmr_threshold=0.4)
        if diff:
            failures.append(f"MMR {cond.name} {filters}: {diff}")
    assert failures == [], "\n".join(failures)


def test_filter_type_mismatch_same_exception_and_message(filter_pair):
    p, qe = filter_pair
    cases = [
        MetadataFilter(key="s", value=1, operator=FilterOperator.GT),  # "apple" > 1
        MetadataFilter(key="i", value="a", operator=FilterOperator.LTE),
        MetadataFilter(key="mixed", value="a", operator=FilterOperator.GTE),
        MetadataFilter(key="i", value="a", operator=FilterOperator.IN),  # 1 in "a"
        MetadataFilter(key="i", value=1, operator=FilterOperator.CONTAINS),  # 1 in 1
        MetadataFilter(key="i", value="a", operator=FilterOperator.TEXT_MATCH),
        MetadataFilter(key="l", value="x", operator=FilterOperator.TEXT_MATCH_INSENSITIVE),
        MetadataFilter(key="i", value=[1], operator=FilterOperator.ANY),
    ]
    for f in cases:
        query = q(qe, k=None, filters=MetadataFilters(filters=[f]))
        _, e_t = outcome(p.theirs.query, query)
        _, e_o = outcome(p.ours.query, query)
        assert isinstance(e_t, TypeError), f
        assert_same_exception(e_t, e_o)


def test_filter_empty_list_and_none(filter_pair):
    p, qe = filter_pair
    for cond in list(FilterCondition) + [None]:
        p.query(q(qe, k=None, filters=MetadataFilters(filters=[], condition=cond)))


def test_delete_nodes_with_filters_differential(filter_pair):
    base_t, base_o = filter_pair[0].theirs, filter_pair[0].ours
    F = FilterOperator
    for f in [
        MetadataFilter(key="s", value="apple"),
        MetadataFilter(key="missing", value="q", operator=F.NIN),
        MetadataFilter(key="i", value=2, operator=F.GTE),
        MetadataFilter(key="s", value=1, operator=F.GT),  # raises TypeError in both
    ]:
        p = Pair(SimpleVectorStore.from_dict(base_t.to_dict()), Ours.from_dict(base_o.to_dict()))
        _, e_t = outcome(p.theirs.delete_nodes, filters=MetadataFilters(filters=[f]))
        _, e_o = outcome(p.ours.delete_nodes, filters=MetadataFilters(filters=[f]))
        assert_same_exception(e_t, e_o)
        p.check_state()


filter_strategy = st.builds(
    lambda key, op, value: (key, op, value),
    st.sampled_from(FILTER_KEYS),
    st.sampled_from(list(FilterOperator)),
    st.sampled_from(FILTER_VALUES),
)


@given(
    specs=st.lists(filter_strategy, min_size=0, max_size=4),
    cond=st.sampled_from(list(FilterCondition)),
    k=st.sampled_from([None, 0, 1, 3, 100]),
    mode=st.sampled_from([DEFAULT, MMR]),
)
def test_filters_random(filter_pair, specs, cond, k, mode):
    p, qe = filter_pair
    filters = []
    for key, op, value in specs:
        try:
            filters.append(MetadataFilter(key=key, value=value, operator=op))
        except ValueError:  # pydantic ValidationError
            pass
    mf = MetadataFilters(filters=filters, condition=cond)
    assert _compare_query(p, q(qe, k=k, filters=mf, mode=mode)) == ""


def _no_metadata_file(tmp_path) -> str:
    path = tmp_path / "nometa.json"
    path.write_text(
        json.dumps(
            {
                "embedding_dict": {"a": [1.0, 0.0], "b": [0.0, 1.0]},
                "text_id_to_ref_doc_id": {"a": "x", "b": "None"},
            }
        )
    )
    return str(path)


def test_filter_on_store_without_metadata(tmp_path):
    path = _no_metadata_file(tmp_path)
    p = Pair(SimpleVectorStore.from_persist_path(path), Ours.from_persist_path(path))
    p.check_state()
    for filters in [
        MetadataFilters(filters=[MetadataFilter(key="x", value=1)]),
        MetadataFilters(filters=[]),
    ]:
        _, e_t = outcome(p.theirs.query, q([1.0, 0.0], filters=filters))
        _, e_o = outcome(p.ours.query, q([1.0, 0.0], filters=filters))
        assert isinstance(e_t, ValueError)
        assert_same_exception(e_t, e_o)
    p.query(q([1.0, 0.0], k=None))  # no filters: fine
    # no rows at all: no error
    p2 = Pair()
    p2.query(q([1.0, 0.0], filters=MetadataFilters(filters=[MetadataFilter(key="x", value=1)])))


@ours_only
def test_nested_filters_supported(filter_pair):
    """Documented extension: SimpleVectorStore raises "Nested MetadataFilters are not supported."."""
    p, qe = filter_pair
    inner = MetadataFilters(
        filters=[
            MetadataFilter(key="s", value="apple"),
            MetadataFilter(key="i", value=3, operator=FilterOperator.GTE),
        ],
        condition=FilterCondition.OR,
    )
    outer = MetadataFilters(
        filters=[MetadataFilter(key="f", value=0.0, operator=FilterOperator.GTE), inner],
        condition=FilterCondition.AND,
    )
    with pytest.raises(ValueError, match="Nested MetadataFilters are not supported"):
        p.theirs.query(q(qe, k=None, filters=outer))
    res = p.ours.query(q(qe, k=None, filters=outer))
    expected = {
        f"n{i}"
        for i, md in enumerate(FILTER_ROWS)
        if md.get("f") is not None
        and md["f"] >= 0.0
        and ((md.get("s") == "apple") or (md.get("i") is not None and md["i"] >= 3))
    }
    assert set(res.ids) == expected and expected
    not_inner = MetadataFilters(filters=[inner], condition=FilterCondition.NOT)
    res = p.ours.query(q(qe, k=None, filters=not_inner))
    assert set(res.ids) == {f"n{i}" for i in range(len(FILTER_ROWS))} - {
        f"n{i}"
        for i, md in enumerate(FILTER_ROWS)
        if md.get("s") == "apple" or (md.get("i") is not None and md["i"] >= 3)
    }
    # the same rows as the flat, oracle-evaluated equivalent, with the same scores
    flat = p.theirs.query(q(qe, k=None))
    sims = dict(zip(flat.ids, flat.similarities))
    for i, s in zip(res.ids, res.similarities):
        assert abs(sims[i] - s) <= 1e-6


# ============================================================== persistence

EXOTIC_METADATA: list[dict[str, Any]] = [
    {"ключ": "значение 😀", "emoji": "👩‍👩‍👧", "ctrl": 'tab\tnl\n"q" \\ \x01 \u2028'},
    {"nested": {"a": [1, {"b": None, "c": [True, False]}], "t": True}, "empty": {}, "el": []},
    {
        "big": 2**70,
        "neg": -(2**63),
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "f": 0.1,
        "negzero": -0.0,
    },
    {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")},
    {"int": 3, "float": 3.0, "bool": True, "none": None, "str": "3"},
    {},
]


def exotic_pair() -> Pair:
    rng = np.random.default_rng(11)
    ids = ["plain", "ñandú-😀-中文", 'id with "quotes" and \\', "\u00e9", "𝔘𝔫𝔦", "last"]
    refs = ["réf-😀", None, "None", "r", "réf-😀", "中"]
    mat = rand_matrix(rng, len(ids), 6)
    mat[0, 0] = np.float32(1e-45)  # subnormal float32
    mat[1, :] = np.float32(1.0)
    mat[2, 1] = np.float32(-0.0)
    mat[3, 2] = np.float32(3.4028235e38)
    p = Pair()
    p.add(
        [
            node(ids[i], mat[i].tolist(), ref=refs[i], metadata=EXOTIC_METADATA[i])
            for i in range(len(ids))
        ]
    )
    return p


def test_persist_bytes_identical_exotic(tmp_path):
    p = exotic_pair()
    p.check_state()
    assert persisted(p.ours, tmp_path / "o" / "vs.json") == persisted(
        p.theirs, tmp_path / "t" / "vs.json"
    )


def test_persist_default_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p, _, _ = filled_pair(5)
    p.ours.persist()
    ours_bytes = (tmp_path / "storage" / "vector_store.json").read_bytes()
    p.theirs.persist()
    assert (tmp_path / "storage" / "vector_store.json").read_bytes() == ours_bytes


def test_their_file_to_ours_and_back(tmp_path):
    p = exotic_pair()
    theirs_file = tmp_path / "theirs.json"
    original = persisted(p.theirs, theirs_file)
    loaded = Ours.from_persist_path(str(theirs_file))
    assert isinstance(loaded, Ours)
    assert_same_dict(p.theirs.to_dict(), loaded.to_dict())
    assert persisted(loaded, tmp_path / "again.json") == original
    # ours -> their loader
    back = SimpleVectorStore.from_persist_path(str(tmp_path / "again.json"))
    assert_same_dict(back.to_dict(), loaded.to_dict())
    assert persisted(back, tmp_path / "back.json") == original
    for qe in [[1.0] * 6, [0.5, -1.0, 2.0, 0.0, 1.0, 1.0]]:
        assert_same_result(back.query(q(qe, k=None)), loaded.query(q(qe, k=None)))


def test_from_persist_dir_and_namespaces(tmp_path):
    p, mat, _ = filled_pair(12)
    d = tmp_path / "store"
    p.theirs.persist(str(d / "default__vector_store.json"))
    other = Pair()
    other.add(nodes_from_matrix(mat[:4], prefix="img"))
    other.theirs.persist(str(d / "image__vector_store.json"))

    t = SimpleVectorStore.from_persist_dir(str(d))
    o = Ours.from_persist_dir(str(d))
    assert isinstance(o, Ours)
    assert_same_dict(t.to_dict(), o.to_dict())
    o_img = Ours.from_persist_dir(str(d), namespace="image")
    assert_same_dict(other.theirs.to_dict(), o_img.to_dict())

    all_t = SimpleVectorStore.from_namespaced_persist_dir(str(d))
    all_o = Ours.from_namespaced_persist_dir(str(d))
    assert sorted(all_t) == sorted(all_o) == ["default", "image"]
    for ns in all_t:
        assert isinstance(all_o[ns], Ours)
        assert_same_dict(all_t[ns].to_dict(), all_o[ns].to_dict())

    _, e_t = outcome(SimpleVectorStore.from_persist_dir, str(d), namespace="nope")
    _, e_o = outcome(Ours.from_persist_dir, str(d), namespace="nope")
    assert isinstance(e_t, ValueError)
    assert_same_exception(e_t, e_o)


def test_namespaced_persist_dir_legacy_name(tmp_path):
    p, _, _ = filled_pair(6)
    # the legacy name alone: SimpleVectorStore looks for default__vector_store.json and fails
    d1 = tmp_path / "legacy_only"
    p.theirs.persist(str(d1 / "vector_store.json"))
    _, e_t = outcome(SimpleVectorStore.from_namespaced_persist_dir, str(d1))
    _, e_o = outcome(Ours.from_namespaced_persist_dir, str(d1))
    assert isinstance(e_t, ValueError)
    assert_same_exception(e_t, e_o)
    # legacy name next to a default one: maps to "default"
    d2 = tmp_path / "legacy_and_default"
    p.theirs.persist(str(d2 / "vector_store.json"))
    p.theirs.persist(str(d2 / "default__vector_store.json"))
    all_t = SimpleVectorStore.from_namespaced_persist_dir(str(d2))
    all_o = Ours.from_namespaced_persist_dir(str(d2))
    assert list(all_t) == list(all_o) == ["default"]
    assert_same_dict(all_t["default"].to_dict(), all_o["default"].to_dict())
    # a missing directory: listdir fails, falls back, raises ValueError in both
    _, e_t = outcome(SimpleVectorStore.from_namespaced_persist_dir, str(tmp_path / "nope"))
    _, e_o = outcome(Ours.from_namespaced_persist_dir, str(tmp_path / "nope"))
    assert_same_exception(e_t, e_o)


def test_to_dict_from_dict_roundtrip():
    p = exotic_pair()
    d_t, d_o = p.theirs.to_dict(), p.ours.to_dict()
    assert_same_dict(d_t, d_o)
    assert set(d_o) == {"embedding_dict", "text_id_to_ref_doc_id", "metadata_dict"}
    o2 = Ours.from_dict(d_t)
    assert isinstance(o2, Ours)
    assert_same_dict(d_t, o2.to_dict())
    t2 = SimpleVectorStore.from_dict(d_o)
    assert_same_dict(d_t, t2.to_dict())
    # from_dict does not keep a reference to the caller's dict
    d_t["embedding_dict"]["plain"] = [9.0] * 6
    assert o2.to_dict()["embedding_dict"]["plain"] != [9.0] * 6


def test_to_json_from_json():
    p = exotic_pair()
    s_t, s_o = p.theirs.to_json(), p.ours.to_json()
    assert s_o == s_t
    o2 = Ours.from_json(s_t)
    assert isinstance(o2, Ours)
    assert_same_dict(p.theirs.to_dict(), o2.to_dict())


def test_constructor_with_data():
    p = exotic_pair()
    data = SimpleVectorStoreData.from_dict(p.theirs.to_dict())
    o = Ours(data=data)
    assert_same_dict(p.theirs.to_dict(), o.to_dict())
    o2 = Ours(data)
    assert_same_dict(p.theirs.to_dict(), o2.to_dict())


HAND_WRITTEN = (
    "\ufeff"  # UTF-8 byte order mark: Python's json.load(bytes) accepts it
    '{ "embedding_dict" : {\n'
    '    "a": [0.5, -2.0, 1.0000000116860974e-07],\n'
    '    "\\ud83d\\ude00 \\u00e9\\u4e2d": [0.25 , 1e0, -0.0],\n'
    '    "c": [1.5E+2, 3.0, 0.10000000149011612]\n'
    "  },\n"
    '  "text_id_to_ref_doc_id": {"a": "None", "\\ud83d\\ude00 \\u00e9\\u4e2d": "r\\u00e9f", "c": "x"},\n'
    '  "metadata_dict": {\n'
    '    "a": {"x": NaN, "y": Infinity, "z": -Infinity, "s": "\\u00e9\\ud83d\\ude00\\n\\"", "big": 123456789012345678901234567890},\n'
    '    "\\ud83d\\ude00 \\u00e9\\u4e2d": {"nested": {"l": [1, 2.5, null, true, false, "\\/"]}},\n'
    '    "c": {}\n'
    "  }\n"
    "}\n"
)


def test_hand_written_file(tmp_path):
    path = tmp_path / "hand.json"
    path.write_bytes(HAND_WRITTEN.encode("utf-8"))
    t = SimpleVectorStore.from_persist_path(str(path))
    o = Ours.from_persist_path(str(path))
    assert_same_dict(t.to_dict(), o.to_dict())
    assert persisted(o, tmp_path / "o.json") == persisted(t, tmp_path / "t.json")
    for qe in [[1.0, 0.0, 0.0], [0.1, 0.2, -0.3]]:
        assert_same_result(t.query(q(qe, k=None)), o.query(q(qe, k=None)))


def test_file_without_metadata_dict(tmp_path):
    path = _no_metadata_file(tmp_path)
    t, o = SimpleVectorStore.from_persist_path(path), Ours.from_persist_path(path)
    assert_same_dict(t.to_dict(), o.to_dict())
    assert persisted(o, tmp_path / "o.json") == persisted(t, tmp_path / "t.json")
    p = Pair(t, o)
    p.add([node("new", [1.0, 1.0], metadata={"k": 1})])
    p.check_state()
    # metadata_dict is no longer empty, but rows "a" and "b" have none: the oracle's lookup raises
    filters = MetadataFilters(filters=[MetadataFilter(key="k", value=1)])
    _r_t, e_t = outcome(p.theirs.query, q([1.0, 0.0], k=None, filters=filters))
    _r_o, e_o = outcome(p.ours.query, q([1.0, 0.0], k=None, filters=filters))
    assert isinstance(e_t, KeyError)
    assert_same_exception(e_t, e_o)


def test_file_with_int_embeddings(tmp_path):
    """Ints where floats are expected (e.g. a file written by another tool)."""
    path = tmp_path / "ints.json"
    path.write_text(
        '{"embedding_dict": {"a": [1, 0, -2], "b": [0.5, 2, 3]}, '
        '"text_id_to_ref_doc_id": {"a": "None", "b": "d"}, "metadata_dict": {"a": {}, "b": {"n": 1}}}'
    )
    t, o = SimpleVectorStore.from_persist_path(str(path)), Ours.from_persist_path(str(path))
    assert o.to_dict() == t.to_dict()
    assert_same_result(t.query(q([1.0, 1.0, 1.0], k=None)), o.query(q([1.0, 1.0, 1.0], k=None)))
    assert persisted(o, tmp_path / "o.json") == persisted(t, tmp_path / "t.json")


def test_file_with_nan_embedding_tokens(tmp_path):
    """SimpleVectorStore accepts NaN components, so files with NaN/Infinity embeddings exist."""
    path = tmp_path / "nanemb.json"
    path.write_text(
        '{"embedding_dict": {"a": [NaN, 1.0], "b": [Infinity, -Infinity], "c": [1.0, 0.5]}, '
        '"text_id_to_ref_doc_id": {"a": "None", "b": "None", "c": "None"}, "metadata_dict": {}}'
    )
    t, o = SimpleVectorStore.from_persist_path(str(path)), Ours.from_persist_path(str(path))
    assert_same_dict(t.to_dict(), o.to_dict())
    assert persisted(o, tmp_path / "o.json") == persisted(t, tmp_path / "t.json")


def test_fsspec_memory_filesystem():
    fs = fsspec.filesystem("memory")
    p = exotic_pair()
    p.theirs.persist("/lirs-t/vs.json", fs=fs)
    p.ours.persist("/lirs-o/vs.json", fs=fs)
    try:
        assert fs.cat("/lirs-o/vs.json") == fs.cat("/lirs-t/vs.json")
        o = Ours.from_persist_path("/lirs-t/vs.json", fs=fs)
        assert isinstance(o, Ours)
        assert_same_dict(p.theirs.to_dict(), o.to_dict())
        t = SimpleVectorStore.from_persist_path("/lirs-o/vs.json", fs=fs)
        assert_same_dict(p.theirs.to_dict(), t.to_dict())
        # constructor fs= is used by persist() without fs
        o2 = Ours(fs=fs)
        o2.add([node("a", [1.0, 2.0])])
        o2.persist("/lirs-o2/vs.json")
        t2 = SimpleVectorStore(fs=fs)
        t2.add([node("a", [1.0, 2.0])])
        t2.persist("/lirs-t2/vs.json")
        assert fs.cat("/lirs-o2/vs.json") == fs.cat("/lirs-t2/vs.json")
        # from_persist_dir with fs uses concat_dirs
        fs.pipe("/lirs-d/default__vector_store.json", fs.cat("/lirs-t/vs.json"))
        o3 = Ours.from_persist_dir("/lirs-d", fs=fs)
        assert_same_dict(p.theirs.to_dict(), o3.to_dict())
        _, e_t = outcome(SimpleVectorStore.from_persist_path, "/lirs-none/x.json", fs=fs)
        _, e_o = outcome(Ours.from_persist_path, "/lirs-none/x.json", fs=fs)
        assert_same_exception(e_t, e_o)
    finally:
        for d in ["/lirs-t", "/lirs-o", "/lirs-o2", "/lirs-t2", "/lirs-d"]:
            if fs.exists(d):
                fs.rm(d, recursive=True)


# ============================================================== .data / ._data live view


@pytest.mark.parametrize("attr", ["data", "_data"])
def test_data_live_view(attr):
    p, mat, _ = filled_pair(8, 4)
    views = [getattr(s, attr) for s in (p.theirs, p.ours)]
    for name in ["embedding_dict", "text_id_to_ref_doc_id", "metadata_dict"]:
        m_t, m_o = (getattr(v, name) for v in views)
        assert len(m_o) == len(m_t)
        assert list(m_o) == list(m_t)
        assert [m_o[k] for k in m_o] == [m_t[k] for k in m_t]
        assert dict(m_o.items()) == dict(m_t.items())
        assert ("n1" in m_o) == ("n1" in m_t) and ("zz" in m_o) == ("zz" in m_t)
        assert m_o.get("zz") is None
        with pytest.raises(KeyError):
            m_o["zz"]

    qe = mat[0].tolist()
    new = f32([1.0, -1.0, 0.5, 0.25])
    for v in views:
        v.embedding_dict["fresh"] = list(new)
        v.text_id_to_ref_doc_id["fresh"] = "doc-fresh"
        v.metadata_dict["fresh"] = {"parity": "even", "i": 99}
    p.check_state()
    res = p.query(q(new, k=3))
    assert res.ids[0] == "fresh"
    even = MetadataFilters(filters=[MetadataFilter(key="parity", value="even")])
    p.query(q(qe, k=None, filters=even))
    for v in views:
        v.embedding_dict["n2"] = list(new)  # overwrite an existing row
    p.check_state()
    p.query(q(new, k=4))
    for v in views:
        del v.embedding_dict["n3"]
        del v.text_id_to_ref_doc_id["n3"]
        del v.metadata_dict["n3"]
    p.check_state()
    p.query(q(qe, k=None))
    p.both("delete", "doc-fresh")
    p.check_state()
    # assign whole dicts
    emb = {"x": f32([1.0, 0.0, 0.0, 0.0]), "y": f32([0.0, 1.0, 0.5, 0.0])}
    for v in views:
        v.embedding_dict = dict(emb)
        v.text_id_to_ref_doc_id = {"x": "dx", "y": "None"}
        v.metadata_dict = {"x": {"parity": "even"}, "y": {"parity": "odd"}}
    p.check_state()
    p.query(q([1.0, 1.0, 0.0, 0.0], k=None))
    p.query(q([1.0, 1.0, 0.0, 0.0], k=None, filters=even))


def test_data_assignment_and_equality():
    p, _mat, _ = filled_pair(6, 3)
    replacement = SimpleVectorStoreData.from_dict(
        {
            "embedding_dict": {"z": f32([0.3, 0.2, 0.1])},
            "text_id_to_ref_doc_id": {"z": "None"},
            "metadata_dict": {"z": {}},
        }
    )
    for s in (p.theirs, p.ours):
        s.data = copy.deepcopy(replacement)
    p.check_state()
    p.query(q([1.0, 1.0, 1.0], k=None))
    assert p.ours.data == p.theirs.data
    assert p.ours.data.to_dict() == p.theirs.data.to_dict()


# ============================================================== pickle, deepcopy, subclassing


def test_pickle_roundtrip():
    p = exotic_pair()
    o2 = pickle.loads(pickle.dumps(p.ours))
    assert type(o2) is type(p.ours)
    assert_same_dict(p.theirs.to_dict(), o2.to_dict())
    qe = [0.5, -1.0, 2.0, 0.0, 1.0, 1.0]
    assert_same_result(p.theirs.query(q(qe, k=None)), o2.query(q(qe, k=None)))
    o2.add([node("after-pickle", f32([1, 2, 3, 4, 5, 6]))])
    assert "after-pickle" not in p.ours.to_dict()["embedding_dict"]


def test_deepcopy_independent():
    p, mat, _ = filled_pair(10, 4)
    o2 = copy.deepcopy(p.ours)
    t2 = copy.deepcopy(p.theirs)
    assert type(o2) is type(p.ours)
    assert_same_dict(t2.to_dict(), o2.to_dict())
    for s in (o2, t2):
        s.add([node("copy-only", mat[0].tolist())])
        s.delete("doc1")
    assert_same_dict(t2.to_dict(), o2.to_dict())
    p.check_state()
    assert "copy-only" not in p.ours.to_dict()["embedding_dict"]
    assert "n1" in p.ours.to_dict()["embedding_dict"]
    assert_same_result(t2.query(q(mat[0].tolist(), k=None)), o2.query(q(mat[0].tolist(), k=None)))
    c = copy.copy(p.ours)
    assert_same_dict(p.theirs.to_dict(), c.to_dict())


CALLS: list[str] = []


class Sub(Ours):  # type: ignore[misc, valid-type]
    """A user subclass (module level so it pickles)."""

    def add(self, nodes, **kwargs):  # type: ignore[no-untyped-def]
        CALLS.append("add")
        return super().add([n for n in nodes if not n.node_id.startswith("skip")], **kwargs)

    def query(self, query, **kwargs):  # type: ignore[no-untyped-def]
        CALLS.append("query")
        res = super().query(query, **kwargs)
        return VectorStoreQueryResult(ids=res.ids[:1], similarities=res.similarities[:1])

    def delete(self, ref_doc_id, **kwargs):  # type: ignore[no-untyped-def]
        CALLS.append("delete")
        return super().delete(ref_doc_id, **kwargs)


def test_subclass_overrides_are_honoured():
    CALLS.clear()
    calls = CALLS
    s = Sub()
    assert isinstance(s, Ours)
    assert asyncio.run(
        s.async_add([node("a", [1.0, 0.0], ref="d"), node("skip-me", [0.0, 1.0])])
    ) == ["a"]
    assert s.add([node("b", [0.5, 0.5])]) == ["b"]
    assert set(s.to_dict()["embedding_dict"]) == {"a", "b"}
    res = asyncio.run(s.aquery(q([1.0, 0.0], k=10)))
    assert res.ids == ["a"]
    assert s.query(q([1.0, 0.0], k=10)).ids == ["a"]
    asyncio.run(s.adelete("d"))
    assert calls == ["add", "add", "query", "query", "delete"]
    assert set(s.to_dict()["embedding_dict"]) == {"b"}
    s2 = pickle.loads(pickle.dumps(s))
    assert type(s2) is Sub and set(s2.to_dict()["embedding_dict"]) == {"b"}


# ============================================================== extensions


def test_query_batch_equals_individual_queries():
    p, _mat, rng = filled_pair(50, 16)
    queries = rand_matrix(rng, 7, 16)
    even = MetadataFilters(filters=[MetadataFilter(key="parity", value="even")])
    for k, filters in [(5, None), (None, None), (3, even), (100, even), (1, None)]:
        batch = p.ours.query_batch(queries, similarity_top_k=k, filters=filters)
        assert len(batch) == len(queries)
        for row, res in zip(queries, batch):
            assert_same_result(p.theirs.query(q(row.tolist(), k=k, filters=filters)), res)
            assert_same_result(p.ours.query(q(row.tolist(), k=k, filters=filters)), res)
    assert p.ours.query_batch(np.zeros((0, 16), dtype=np.float32), similarity_top_k=3) == []


def test_add_embeddings_equals_add_nodes(tmp_path):
    rng = np.random.default_rng(21)
    mat = rand_matrix(rng, 20, 8)
    ids = [f"e{i}" for i in range(20)]
    refs = [f"d{i % 3}" for i in range(20)]
    md = [{"i": i} for i in range(20)]
    for kwargs, node_kwargs in [
        ({}, lambda i: {}),
        ({"ref_doc_ids": refs, "metadata": md}, lambda i: {"ref": refs[i]}),
    ]:
        bulk = Ours()
        assert bulk.add_embeddings(ids, mat, **kwargs) == ids
        t = SimpleVectorStore()
        t.add([node(ids[i], mat[i].tolist(), **node_kwargs(i)) for i in range(20)])
        assert bulk.to_dict()["embedding_dict"] == t.to_dict()["embedding_dict"]
        assert bulk.to_dict()["text_id_to_ref_doc_id"] == t.to_dict()["text_id_to_ref_doc_id"]
        for row in rand_matrix(rng, 3, 8):
            assert_same_result(t.query(q(row.tolist(), k=5)), bulk.query(q(row.tolist(), k=5)))
        if "metadata" in kwargs:
            f = MetadataFilters(
                filters=[MetadataFilter(key="i", value=10, operator=FilterOperator.GTE)]
            )
            res = bulk.query(q(mat[0].tolist(), k=None, filters=f))
            assert sorted(res.ids) == sorted(ids[10:])
            assert bulk.to_dict()["metadata_dict"] == {ids[i]: md[i] for i in range(20)}
    with pytest.raises(ValueError):
        Ours().add_embeddings(["a", "b"], mat[:2], ref_doc_ids=["x"])


@pytest.mark.parametrize("odd_row", [None, "numpy-float64", "int", "short"])
def test_large_first_add_with_repeated_ids(odd_row, tmp_path):
    # 400 x 384 floats: big enough for the pool to read the lists, and the first add into an empty
    # store adopts the rows as storage (a repeated id leaves a tombstone). One odd row sends the
    # whole batch down the general path (or, too short, to the same error as the oracle).
    rng = np.random.default_rng(5)
    mat = rand_matrix(rng, 400, 384)
    refs = [None if i % 9 == 0 else f"doc{i % 4}" for i in range(400)]
    md = [{"i": i, "tag": "ü" * (i % 3)} for i in range(400)]
    nodes = nodes_from_matrix(mat, refs=refs, metadata=md)
    for i in (120, 399):  # ids repeating earlier ones, with other vectors and metadata
        nodes[i].id_ = f"n{i - 100}"
    row = nodes[250].embedding
    if odd_row == "numpy-float64":
        nodes[250].embedding = [np.float64(x) for x in row]
    elif odd_row == "int":
        nodes[250].embedding = row[:-1] + [3]
    elif odd_row == "short":
        nodes[250].embedding = row[:-1]
    p = Pair()
    if odd_row == "short":
        ours = Ours()
        with pytest.raises(ValueError, match="dimension 383"):
            ours.add(nodes)
        assert ours.to_dict() == Ours().to_dict()
        return
    p.add(nodes)
    p.check_state()
    for k in (1, 10, None):
        p.query(q(mat[20].tolist(), k=k))
    p.query(q(mat[299].tolist(), k=5, mode=MMR))
    assert persisted(p.theirs, tmp_path / "t.json") == persisted(p.ours, tmp_path / "o.json")
    p.both("delete_nodes", [f"n{i}" for i in range(0, 400, 3)])
    p.add(nodes_from_matrix(mat[:50], prefix="m"))
    p.check_state()
    p.query(q(mat[7].tolist(), k=15))


@ours_only
def test_simd_backend():
    import llama_index_rs

    backend = llama_index_rs.simd_backend()
    assert isinstance(backend, str) and backend.strip()


# ============================================================== documented differences


@ours_only
def test_zero_vector_scores_zero():
    o = Ours()
    o.add(
        [
            node("pos", [1.0, 0.5]),
            node("zero", [0.0, 0.0]),
            node("neg", [-1.0, -0.5]),
            node("pos2", [0.5, 0.1]),
        ]
    )
    res = o.query(q([1.0, 0.0], k=None))
    assert res.ids == ["pos2", "pos", "zero", "neg"]
    assert res.similarities[2] == 0.0
    assert all(not math.isnan(s) for s in res.similarities)
    res = o.query(q([0.0, 0.0], k=None))
    assert sorted(res.ids) == ["neg", "pos", "pos2", "zero"]
    assert res.similarities == [0.0] * 4
    res = o.query(q([1.0, 0.0], k=2, mode=MMR), mmr_threshold=0.5)
    assert res.ids[0] == "pos2" and not any(math.isnan(s) for s in res.similarities)


@ours_only
def test_get_returns_float32_rounded_values():
    o = Ours()
    o.add([node("a", [0.1, 1 / 3, 1e-40, 123456789.123])])
    assert o.get("a") == f32([0.1, 1 / 3, 1e-40, 123456789.123])
    assert o.get("a") != [0.1, 1 / 3, 1e-40, 123456789.123]


# ============================================================== edge cases of node -> row conversion


def test_user_metadata_colliding_with_reserved_keys(pair):
    """node_to_metadata_dict overwrites document_id/doc_id/ref_doc_id/_node_type."""
    md = {
        "ref_doc_id": "user",
        "doc_id": 5,
        "document_id": None,
        "_node_type": "Fake",
        "_node_content": "x",
        "k": 1,
    }
    pair.add([node("a", [1.0, 0.0], ref="real", metadata=md), node("b", [0.0, 1.0], metadata=md)])
    pair.check_state()
    f = MetadataFilters(filters=[MetadataFilter(key="ref_doc_id", value="user")])
    pair.query(q([1.0, 0.0], k=None, filters=f))


def test_non_json_native_metadata_values(pair):
    import datetime
    import decimal

    md = [
        {"when": datetime.datetime(2024, 1, 2, 3, 4, 5), "day": datetime.date(2024, 2, 29)},
        {"tup": (1, "a", (2.5, None)), "dec": decimal.Decimal("1.10")},
        {"s": "x"},
        {"nan": float("nan"), "nested": {"inf": float("inf"), "t": (1,)}},
    ]
    nodes = [node(f"m{i}", f32([1.0, i + 0.5]), metadata=m) for i, m in enumerate(md)]
    pair.add(nodes)
    pair.check_state()
    f = MetadataFilters(
        filters=[MetadataFilter(key="tup", value=1, operator=FilterOperator.CONTAINS)]
    )
    pair.query(q([1.0, 0.0], k=None, filters=f))
    f = MetadataFilters(
        filters=[MetadataFilter(key="nan", value=None, operator=FilterOperator.IS_EMPTY)]
    )
    pair.query(q([1.0, 0.0], k=None, filters=f))


def test_node_types_recorded(pair):
    from llama_index.core.schema import Document, IndexNode

    doc = Document(id_="doc", text="d", embedding=f32([0.5, 0.5]), metadata={"t": "doc"})
    idx = IndexNode(id_="idx", text="i", index_id="other", embedding=f32([1.0, 0.25]))
    pair.add([doc, idx, node("txt", f32([0.25, 1.0]), ref="doc")])
    pair.check_state()
    assert pair.ours.to_dict()["metadata_dict"]["idx"]["_node_type"] == "IndexNode"


def test_int_embeddings_through_add(pair, tmp_path):
    pair.add([node("a", [1, 0, -2]), node("b", [3, 1, 0])])
    assert pair.ours.get("a") == pair.theirs.get("a")
    pair.check_state()
    pair.query(q([1, 1, 1], k=None))
    assert persisted(pair.ours, tmp_path / "o.json") == persisted(pair.theirs, tmp_path / "t.json")


def test_query_embedding_types(pair):
    p, mat, _ = filled_pair(12, 5)
    base = mat[4]
    for qe in [
        base.tolist(),
        [int(x * 10) or 1 for x in base],
        list(base),
        [float(x) for x in base.astype(np.float64)],
    ]:
        p.query(q(None, k=4).__class__(query_embedding=qe, similarity_top_k=4))
    p.query(VectorStoreQuery(query_embedding=base, similarity_top_k=4))  # numpy array


def test_node_ids_as_other_iterables():
    p, mat, _ = filled_pair(12, 5)
    qe = mat[0].tolist()
    for ids in [("n1", "n2", "n3"), {"n4", "n5"}]:
        p.query(VectorStoreQuery(query_embedding=qe, similarity_top_k=None, node_ids=ids))  # type: ignore[arg-type]
        p.both("delete_nodes", ids)
        p.check_state()


def test_get_after_delete_and_readd(pair):
    pair.add([node("a", [1.0, 2.0], ref="d")])
    pair.both("delete", "d")
    with pytest.raises(_Raised) as ei:
        pair.both("get", "a")
    assert isinstance(ei.value.ours, KeyError)
    pair.add([node("a", [2.0, 1.0])])
    g_t, g_o = pair.both("get", "a")
    assert g_t == g_o


@pytest.mark.parametrize("op", ["pop", "update", "setdefault", "clear", "popitem"])
def test_live_view_mutable_mapping_methods(op):
    p, _mat, _ = filled_pair(6, 3)
    for s in (p.theirs, p.ours):
        for name, val in [
            ("embedding_dict", f32([0.1, 0.2, 0.3])),
            ("text_id_to_ref_doc_id", "dd"),
            ("metadata_dict", {"parity": "odd"}),
        ]:
            m = getattr(s.data, name)
            if op == "pop":
                m.pop("n2")
                m.pop("nope", None)
            elif op == "update":
                m.update({"n9": val, "n1": val})
            elif op == "setdefault":
                m.setdefault("n1", val)
                m.setdefault("n8", val)
            elif op == "clear":
                m.clear()
            elif op == "popitem":
                m.popitem()
    p.check_state()
    if p.theirs.data.embedding_dict:
        p.query(q([1.0, 0.5, 0.25], k=None))


# ============================================================== the file on disk is the truth


def test_rewritten_json_is_not_shadowed(tmp_path):
    """Ours may keep a binary sidecar; a JSON file rewritten by another tool must win."""
    path = tmp_path / "default__vector_store.json"
    p1, mat, _ = filled_pair(20, 6, seed=1)
    p1.ours.persist(str(path))
    # another tool (SimpleVectorStore) rewrites the same path with different content
    p2, _, _ = filled_pair(20, 6, seed=2)
    p2.theirs.persist(str(path))
    o = Ours.from_persist_path(str(path))
    assert_same_dict(p2.theirs.to_dict(), o.to_dict())
    assert_same_result(p2.theirs.query(q(mat[0].tolist(), k=5)), o.query(q(mat[0].tolist(), k=5)))


def test_rewritten_json_same_size_same_second(tmp_path):
    path = tmp_path / "default__vector_store.json"
    p, _mat, _ = filled_pair(10, 4, seed=3)
    p.ours.persist(str(path))
    st_before = os.stat(path)
    raw = path.read_bytes()
    d = json.loads(raw)
    first = next(iter(d["embedding_dict"]))
    old = d["embedding_dict"][first][0]
    d["embedding_dict"][first][0] = -old  # same number of bytes unless sign changes length
    new_raw = json.dumps(d).encode()
    if len(new_raw) != len(raw):
        d["embedding_dict"][first][0] = old
        d["embedding_dict"][first][1], d["embedding_dict"][first][2] = (
            d["embedding_dict"][first][2],
            d["embedding_dict"][first][1],
        )
        new_raw = json.dumps(d).encode()
    assert len(new_raw) == len(raw) and new_raw != raw
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(new_raw)
    os.utime(path, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    o = Ours.from_persist_path(str(path))
    t = SimpleVectorStore.from_persist_path(str(path))
    assert_same_dict(t.to_dict(), o.to_dict())


def test_sidecar_files_do_not_confuse_namespaced_loader(tmp_path):
    p, _, _ = filled_pair(8, 4)
    p.ours.persist(str(tmp_path / "default__vector_store.json"))
    p.ours.persist(str(tmp_path / "other__vector_store.json"))
    names = sorted(os.listdir(tmp_path))
    assert [n for n in names if n.endswith("vector_store.json")] == [
        "default__vector_store.json",
        "other__vector_store.json",
    ]
    loaded_t = SimpleVectorStore.from_namespaced_persist_dir(str(tmp_path))
    loaded_o = Ours.from_namespaced_persist_dir(str(tmp_path))
    assert sorted(loaded_t) == sorted(loaded_o) == ["default", "other"]


def test_persist_over_the_file_a_store_was_loaded_from(tmp_path):
    path = tmp_path / "vs.json"
    p, mat, _ = filled_pair(30, 6)
    p.ours.persist(str(path))
    p.theirs.persist(str(tmp_path / "t.json"))
    loaded_o = Ours.from_persist_path(str(path))
    loaded_t = SimpleVectorStore.from_persist_path(str(tmp_path / "t.json"))
    lp = Pair(loaded_t, loaded_o)
    lp.both("delete", "doc1")
    lp.add(nodes_from_matrix(mat[:3], prefix="new"))
    loaded_o.persist(str(path))  # replaces the file it may have mapped
    loaded_t.persist(str(tmp_path / "t.json"))
    lp.check_state()
    lp.query(q(mat[2].tolist(), k=None))
    assert path.read_bytes() == (tmp_path / "t.json").read_bytes()
    again = Ours.from_persist_path(str(path))
    assert_same_dict(loaded_t.to_dict(), again.to_dict())
    # the original in-memory pair is unaffected
    p.check_state()
    assert "new0" not in p.ours.to_dict()["embedding_dict"]


def test_store_survives_its_file_being_replaced_or_removed(tmp_path):
    path = tmp_path / "vs.json"
    p, mat, _ = filled_pair(30, 6)
    p.ours.persist(str(path))
    loaded = Ours.from_persist_path(str(path))
    other, _, _ = filled_pair(5, 6, seed=9)
    other.theirs.persist(str(path))  # another writer replaces the file (truncate + write)
    assert_same_dict(p.theirs.to_dict(), loaded.to_dict())
    assert_same_result(
        p.theirs.query(q(mat[1].tolist(), k=7)), loaded.query(q(mat[1].tolist(), k=7))
    )
    os.remove(path)
    assert_same_result(
        p.theirs.query(q(mat[1].tolist(), k=7)), loaded.query(q(mat[1].tolist(), k=7))
    )
    c = pickle.loads(pickle.dumps(loaded))
    assert_same_dict(p.theirs.to_dict(), c.to_dict())


def test_persist_relative_filename(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p, _, _ = filled_pair(4, 3)
    _, e_t = outcome(p.theirs.persist, "t.json")
    _, e_o = outcome(p.ours.persist, "o.json")
    assert_same_exception(e_t, e_o, message=False)
    if e_t is None:
        assert (tmp_path / "o.json").read_bytes() == (tmp_path / "t.json").read_bytes()


def test_pathlib_paths(tmp_path):
    p, _mat, _ = filled_pair(6, 3)
    r_t, e_t = outcome(p.theirs.persist, tmp_path / "t" / "vs.json")
    r_o, e_o = outcome(p.ours.persist, tmp_path / "o" / "vs.json")
    assert_same_exception(e_t, e_o, message=False)
    if e_t is None:
        assert (tmp_path / "o" / "vs.json").read_bytes() == (
            tmp_path / "t" / "vs.json"
        ).read_bytes()
        r_t, e_t = outcome(SimpleVectorStore.from_persist_path, tmp_path / "t" / "vs.json")
        r_o, e_o = outcome(Ours.from_persist_path, tmp_path / "t" / "vs.json")
        assert_same_exception(e_t, e_o, message=False)
        if e_t is None:
            assert_same_dict(r_t.to_dict(), r_o.to_dict())
    _, e_t = outcome(SimpleVectorStore.from_persist_path, tmp_path / "missing.json")
    _, e_o = outcome(Ours.from_persist_path, tmp_path / "missing.json")
    assert_same_exception(e_t, e_o)


def test_empty_store_persist_and_load(tmp_path):
    p = Pair()
    assert persisted(p.ours, tmp_path / "o.json") == persisted(p.theirs, tmp_path / "t.json")
    o = Ours.from_persist_path(str(tmp_path / "t.json"))
    assert o.to_dict() == {"embedding_dict": {}, "text_id_to_ref_doc_id": {}, "metadata_dict": {}}
    assert o.query(q([1.0, 2.0], k=3)).ids == []


def test_model_dump_and_dict():
    """BaseComponent/pydantic serialization of the store itself (warnings are errors here)."""
    p = exotic_pair()
    for method in ("model_dump", "dict"):
        d_t = getattr(p.theirs, method)()
        d_o = getattr(p.ours, method)()
        assert d_t.pop("class_name") == "SimpleVectorStore"
        assert d_o.pop("class_name") == Ours.class_name()
        assert_same_dict(d_t["data"], d_o["data"])
        d_t.pop("data"), d_o.pop("data")
        assert d_o == d_t
    j_t = json.loads(p.theirs.model_dump_json())
    j_o = json.loads(p.ours.model_dump_json())
    j_t.pop("class_name"), j_o.pop("class_name")
    assert j_o == j_t


def test_equality_like_pydantic_models():
    p, mat, _ = filled_pair(6, 3)
    d = p.theirs.to_dict()
    assert SimpleVectorStore.from_dict(d) == SimpleVectorStore.from_dict(
        d
    )  # the oracle's behaviour
    a, b = Ours.from_dict(d), Ours.from_dict(d)
    assert a == b
    b.add([node("extra", mat[0].tolist())])
    assert a != b


@given(
    ids=st.lists(
        st.text(
            alphabet=["a", "B", "z", "é", "\uffff", "😀", "\U0010fffd", " ", "0"],
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=25,
        unique=True,
    ),
    choice=st.data(),
)
def test_ties_random_ids(ids, choice):
    """Tied similarities: which ids survive at the k-th place follows the oracle's (sim, id) heap,
    i.e. Python string order (code points), for any Unicode ids."""
    vectors = [f32([1.0, 0.0, 0.5]), f32([0.5, 0.5, 0.5]), f32([-1.0, 2.0, 0.25])]
    rows = [vectors[choice.draw(st.integers(0, 2))] for _ in ids]
    p = Pair()
    p.add([node(i, r) for i, r in zip(ids, rows)])
    k = choice.draw(st.sampled_from([None, 0] + list(range(1, len(ids) + 2))))
    p.query(q([1.0, 0.25, 0.5], k=k))
    p.query(
        q([1.0, 0.25, 0.5], k=k, mode=MMR),
        mmr_threshold=choice.draw(st.sampled_from([None, 0.0, 0.5, 1.0])),
    )


@ours_only
def test_delete_nodes_filter_error_deletes_nothing():
    """Documented difference: the oracle deletes row by row, so rows before the one whose filter
    raises are already gone when the TypeError arrives; ours raises the same error and deletes
    nothing (bad input loses nothing)."""
    p = Pair()
    p.add(
        [
            node("first", [1.0, 0.0], metadata={"v": 5}),
            node("second", [0.0, 1.0], metadata={"v": "str"}),
        ]
    )
    f = MetadataFilters(filters=[MetadataFilter(key="v", value=1, operator=FilterOperator.GT)])
    _, e_t = outcome(p.theirs.delete_nodes, filters=f)
    _, e_o = outcome(p.ours.delete_nodes, filters=f)
    assert isinstance(e_t, TypeError)
    assert_same_exception(e_t, e_o)
    assert list(p.theirs.to_dict()["embedding_dict"]) == ["second"]
    assert list(p.ours.to_dict()["embedding_dict"]) == ["first", "second"]


def test_node_ids_restriction_shields_rows_from_filter_errors():
    """The oracle evaluates filters only on rows inside node_ids (`in set and filter(...)`)."""
    p = Pair()
    p.add(
        [
            node("ok1", [1.0, 0.0], metadata={"v": 5}),
            node("bad", [0.5, 0.5], metadata={"v": "str"}),
            node("ok2", [0.0, 1.0], metadata={"v": 0}),
        ]
    )
    f = MetadataFilters(filters=[MetadataFilter(key="v", value=1, operator=FilterOperator.GT)])
    res = p.query(q([1.0, 1.0], k=None, filters=f, node_ids=["ok1", "ok2"]))
    assert res.ids == ["ok1"]
    _, e_t = outcome(p.theirs.query, q([1.0, 1.0], k=None, filters=f))
    _, e_o = outcome(p.ours.query, q([1.0, 1.0], k=None, filters=f))
    assert isinstance(e_t, TypeError)
    assert_same_exception(e_t, e_o)
    p.both("delete_nodes", ["ok1", "ok2"], f)
    p.check_state()
    assert list(p.ours.to_dict()["embedding_dict"]) == ["bad", "ok2"]


def test_learner_modes_like_oracle():
    """With scikit-learn: same ranking; without it: the same ImportError."""
    p, mat, _ = filled_pair(20, 6)
    for mode in [
        VectorStoreQueryMode.SVM,
        VectorStoreQueryMode.LINEAR_REGRESSION,
        VectorStoreQueryMode.LOGISTIC_REGRESSION,
    ]:
        r_t, e_t = outcome(p.theirs.query, q(mat[0].tolist(), k=5, mode=mode))
        r_o, e_o = outcome(p.ours.query, q(mat[0].tolist(), k=5, mode=mode))
        assert_same_exception(e_t, e_o, message=isinstance(e_t, ImportError))
        if e_t is None:
            assert r_o.ids == r_t.ids
            assert np.allclose(r_o.similarities, r_t.similarities, atol=1e-4)


@given(
    rows=st.lists(
        st.lists(
            st.floats(width=32, allow_nan=False, allow_infinity=False).filter(lambda x: x != 0.0),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=8,
    ),
    md=st.dictionaries(
        st.text(max_size=4),
        st.one_of(
            st.floats(allow_nan=False),
            st.integers(-(2**80), 2**80),
            st.text(max_size=6),
            st.booleans(),
            st.none(),
        ),
        max_size=4,
    ),
)
def test_persisted_bytes_random_float32_values(tmp_path_factory, rows, md):
    """Every float32 value (subnormals, huge, exponent/positional switch of repr) and arbitrary
    JSON-native metadata persist byte-identically."""
    d = tmp_path_factory.mktemp("f32")
    p = Pair()
    p.add([node(f"r{i}", r, ref="d" if i % 2 else None, metadata=md) for i, r in enumerate(rows)])
    assert persisted(p.ours, d / "o.json") == persisted(p.theirs, d / "t.json")
    loaded = Ours.from_persist_path(str(d / "t.json"))
    assert persisted(loaded, d / "o2.json") == (d / "t.json").read_bytes()
