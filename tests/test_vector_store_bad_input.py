"""Bad input: ragged/NaN embeddings, odd k, wrong dimensions, garbage files. Always a clear Python
exception, never a crash or a partially modified store."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _support import (
    REPO,
    Ours,
    Pair,
    assert_same_exception,
    node,
    ours_only,
    outcome,
    q,
)
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import VectorStoreQueryMode

MMR = VectorStoreQueryMode.MMR


def base_pair() -> Pair:
    p = Pair()
    p.add(
        [
            node("a", [1.0, 0.0, 0.5], ref="d"),
            node("b", [0.0, 1.0, 0.25]),
            node("c", [0.5, 0.5, 0.5], ref="d"),
        ]
    )
    return p


# ============================================================== add validation (documented differences)


@ours_only
def test_ragged_dimensions_within_one_add():
    o = Ours()
    before = o.to_dict()
    with pytest.raises(ValueError) as ei:
        o.add([node("ok", [1.0, 2.0, 3.0]), node("bad-id", [1.0, 2.0])])
    msg = str(ei.value)
    assert "bad-id" in msg and "3" in msg and "2" in msg
    assert o.to_dict() == before  # nothing added


@ours_only
def test_ragged_dimensions_across_adds():
    o = Ours()
    o.add([node("a", [1.0, 2.0, 3.0])])
    before = o.to_dict()
    with pytest.raises(ValueError) as ei:
        o.add([node("fine", [0.0, 1.0, 0.0]), node("wrong-dim", [1.0, 2.0, 3.0, 4.0])])
    msg = str(ei.value)
    assert "wrong-dim" in msg and "3" in msg and "4" in msg
    assert o.to_dict() == before
    assert o.query(q([1.0, 0.0, 0.0], k=None)).ids == ["a"]


def test_ragged_dimensions_oracle_accepts_then_fails():
    """The difference above, pinned on the oracle side: SimpleVectorStore accepts ragged rows."""
    t = SimpleVectorStore()
    t.add([node("a", [1.0, 2.0, 3.0]), node("b", [1.0, 2.0])])
    assert len(t.data.embedding_dict) == 2
    with pytest.raises(ValueError):
        t.query(q([1.0, 0.0, 0.0], k=None))


@ours_only
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_inf_components_rejected(bad):
    o = Ours()
    o.add([node("keep", [1.0, 1.0])])
    before = o.to_dict()
    with pytest.raises(ValueError) as ei:
        o.add([node("new-ok", [0.5, 0.5]), node("poisoned", [1.0, bad])])
    assert "poisoned" in str(ei.value)
    assert o.to_dict() == before


@ours_only
def test_empty_embedding_rejected_or_consistent():
    o = Ours()
    o.add([node("a", [1.0, 2.0])])
    before = o.to_dict()
    with pytest.raises(ValueError):
        o.add([node("empty", [])])
    assert o.to_dict() == before


def test_node_without_embedding_raises_same(pair):
    from llama_index.core.schema import TextNode

    n = TextNode(id_="noemb", text="x")
    _, e_t = outcome(pair.theirs.add, [n])
    _, e_o = outcome(pair.ours.add, [n])
    assert isinstance(e_t, ValueError)
    assert_same_exception(e_t, e_o)


# ============================================================== odd queries


def test_empty_store_queries(pair):
    for mode in (VectorStoreQueryMode.DEFAULT, MMR):
        for k in [None, 0, 1, 5, -1]:
            r_t, e_t = outcome(pair.theirs.query, q([1.0, 0.0], k=k, mode=mode))
            r_o, e_o = outcome(pair.ours.query, q([1.0, 0.0], k=k, mode=mode))
            assert_same_exception(e_t, e_o, message=False)
            if e_t is None:
                assert r_o.ids == r_t.ids == [] and r_o.similarities == []


@pytest.mark.parametrize("k", [None, 0, 1, 3, 4, 100])
def test_k_values(k):
    p = base_pair()
    p.query(q([1.0, 0.2, 0.3], k=k))
    p.query(q([1.0, 0.2, 0.3], k=k, mode=MMR), mmr_threshold=0.5)


@pytest.mark.parametrize("k", [-1, -2, -5])
def test_negative_k_same_as_oracle(k):
    """heapq with a negative bound: the oracle pops after every push once len > k."""
    p = base_pair()
    for mode in (VectorStoreQueryMode.DEFAULT, MMR):
        r_t, e_t = outcome(p.theirs.query, q([1.0, 0.2, 0.3], k=k, mode=mode))
        r_o, e_o = outcome(p.ours.query, q([1.0, 0.2, 0.3], k=k, mode=mode))
        assert_same_exception(e_t, e_o, message=False)
        if e_t is None:
            assert r_o.ids == r_t.ids


def test_unknown_query_mode(pair):
    pair.add([node("a", [1.0])])
    for mode in [
        VectorStoreQueryMode.HYBRID,
        VectorStoreQueryMode.SEMANTIC_HYBRID,
        VectorStoreQueryMode.MMR.__class__("sparse"),
    ]:
        _, e_t = outcome(pair.theirs.query, q([1.0], mode=mode))
        _, e_o = outcome(pair.ours.query, q([1.0], mode=mode))
        assert isinstance(e_t, ValueError)
        assert_same_exception(e_t, e_o)


@pytest.mark.parametrize("qe", [[1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0]])
def test_query_wrong_dimension(qe):
    p = base_pair()
    _, e_t = outcome(p.theirs.query, q(qe))
    _, e_o = outcome(p.ours.query, q(qe))
    assert isinstance(e_t, ValueError)
    assert_same_exception(e_t, e_o, message=False)
    assert isinstance(e_o, ValueError)


def test_query_embedding_none():
    p = base_pair()
    _, e_t = outcome(p.theirs.query, q(None))
    _, e_o = outcome(p.ours.query, q(None))
    assert e_t is not None
    assert_same_exception(e_t, e_o, message=False)


# ============================================================== garbage files

GARBAGE = {
    "truncated": b'{"embedding_dict": {"a": [1.0, 2.',
    "truncated_after_key": b'{"embedding_dict"',
    "top_level_list": b'[{"embedding_dict": {}}]',
    "top_level_string": b'"hello"',
    "top_level_null": b"null",
    "embedding_dict_list": b'{"embedding_dict": [[1.0, 2.0]], "text_id_to_ref_doc_id": {}, "metadata_dict": {}}',
    "embedding_is_string": b'{"embedding_dict": {"a": "1.0, 2.0"}, "text_id_to_ref_doc_id": {"a": "None"}, "metadata_dict": {}}',
    "embedding_has_string": b'{"embedding_dict": {"a": [1.0, "x"]}, "text_id_to_ref_doc_id": {"a": "None"}, "metadata_dict": {}}',
    "ragged_rows": b'{"embedding_dict": {"a": [1.0, 2.0], "b": [1.0]}, "text_id_to_ref_doc_id": {"a": "None", "b": "None"}, "metadata_dict": {}}',
    "empty": b"",
    "whitespace": b"   \n ",
    "binary": bytes(range(256)) * 4,
    "invalid_utf8": b'{"embedding_dict": {"\xff\xfe": [1.0]}}',
    "trailing_garbage": b'{"embedding_dict": {}, "text_id_to_ref_doc_id": {}, "metadata_dict": {}} xx',
    "single_quotes": b"{'embedding_dict': {}}",
    "deep_nesting": b'{"embedding_dict": {}, "metadata_dict": {"a": '
    + b"[" * 100000
    + b"]" * 100000
    + b"}}",
}


@pytest.mark.parametrize("name", sorted(set(GARBAGE) - {"ragged_rows"}))
def test_garbage_files_rejected_like_oracle(tmp_path, name):
    path = tmp_path / f"{name}.json"
    path.write_bytes(GARBAGE[name])
    _, e_t = outcome(SimpleVectorStore.from_persist_path, str(path))
    _, e_o = outcome(Ours.from_persist_path, str(path))
    if e_t is None:
        assert e_o is None, f"oracle loads {name}, ours raised {e_o!r}"
    else:
        assert e_o is not None, f"{name}: oracle rejects ({e_t!r}), ours accepted it"


@ours_only
@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_files_clean_exception_type(tmp_path, name):
    """Where the oracle fails with AttributeError/TypeError/RecursionError (or, for ragged rows,
    accepts and fails at query time), ours raises ValueError/OSError at load."""
    path = tmp_path / f"{name}.json"
    path.write_bytes(GARBAGE[name])
    _, e_t = outcome(SimpleVectorStore.from_persist_path, str(path))
    _, e_o = outcome(Ours.from_persist_path, str(path))
    if e_t is None and name != "ragged_rows":
        return  # covered by the differential test above
    assert isinstance(e_o, (ValueError, OSError)), f"{name}: {e_o!r}"
    if name in {"truncated", "empty", "top_level_list", "ragged_rows"}:
        assert path.name in str(e_o), f"error does not name the file: {e_o}"


def test_garbage_loads_in_subprocess_do_not_crash(tmp_path):
    """A segfault or abort in the native loader would kill pytest; run the loads in a child."""
    for name, content in GARBAGE.items():
        (tmp_path / f"{name}.json").write_bytes(content)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from _support import Ours
        results = []
        for name in sorted(os.listdir({str(tmp_path)!r})):
            try:
                Ours.from_persist_path(os.path.join({str(tmp_path)!r}, name))
                results.append(name + ":ok")
            except Exception as e:
                results.append(name + ":" + type(e).__name__)
        print("|".join(results))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, f"child died: rc={proc.returncode}\n{proc.stderr[-2000:]}"
    outcomes = dict(item.split(":") for item in proc.stdout.strip().split("|"))
    assert len(outcomes) == len(GARBAGE)
    assert outcomes["truncated.json"] in {"ValueError", "JSONDecodeError"}


def test_missing_file_message(tmp_path):
    path = str(tmp_path / "nope" / "vector_store.json")
    _, e_t = outcome(SimpleVectorStore.from_persist_path, path)
    _, e_o = outcome(Ours.from_persist_path, path)
    assert isinstance(e_o, ValueError)
    assert (
        str(e_o)
        == f"No existing llama_index.core.vector_stores.simple found at {path}, skipping load."
    )
    assert_same_exception(e_t, e_o)


def test_directory_instead_of_file(tmp_path):
    d = tmp_path / "a_dir.json"
    d.mkdir()
    _, e_t = outcome(SimpleVectorStore.from_persist_path, str(d))
    _, e_o = outcome(Ours.from_persist_path, str(d))
    assert e_t is not None and e_o is not None
    assert isinstance(e_o, (ValueError, OSError))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.json"
    path.write_text('{"embedding_dict": {}}')
    path.chmod(0)
    _, e_o = outcome(Ours.from_persist_path, str(path))
    assert isinstance(e_o, OSError)


def test_persist_into_unwritable_location(tmp_path):
    p = base_pair()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = str(blocker / "sub" / "vs.json")  # parent is a regular file
    _, e_t = outcome(p.theirs.persist, target)
    _, e_o = outcome(p.ours.persist, target)
    assert e_t is not None and isinstance(e_o, OSError)
    p.check_state()  # a failed persist changes nothing


def test_failed_load_leaves_existing_file_usable(tmp_path):
    p = base_pair()
    good = tmp_path / "good.json"
    p.ours.persist(str(good))
    (tmp_path / "bad.json").write_bytes(GARBAGE["truncated"])
    with pytest.raises(ValueError):
        Ours.from_persist_path(str(tmp_path / "bad.json"))
    o = Ours.from_persist_path(str(good))
    assert o.to_dict() == p.theirs.to_dict()
    assert not math.isnan(o.query(q([1.0, 0.0, 0.0])).similarities[0])
    assert np.isfinite(o.get("a")).all()
    assert json.loads(good.read_text()) == p.theirs.to_dict()
