"""Shared helpers for the differential test suite (imported by conftest and the test modules).

`Ours` is `llama_index_rs.RustVectorStore`, or — only while the native extension is not built and
`LIRS_TEST_STANDIN=1` is set — a plain `SimpleVectorStore` subclass, so that every differential
test can be validated oracle-vs-oracle. Tests of documented differences are marked `ours_only` and
are skipped under the stand-in.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

STANDIN = os.environ.get("LIRS_TEST_STANDIN") == "1"
REPO = pathlib.Path(__file__).parent.parent
DATA_DIR = REPO / "demo" / "data"
SIM_TOL = 1e-6

ours_only = pytest.mark.skipif(
    STANDIN, reason="asserts a documented difference of RustVectorStore (stand-in is the oracle)"
)

if STANDIN:
    _STANDIN_LOCK = threading.RLock()

    class StandInVectorStore(SimpleVectorStore):
        """The oracle in disguise, with the extensions implemented on top of it and a lock so the
        thread tests are meaningful (SimpleVectorStore is not thread-safe)."""

        def _lock(self) -> threading.RLock:
            return _STANDIN_LOCK  # module-level: keeps the stand-in picklable and deep-copyable

        def add(self, nodes: Sequence[Any], **kw: Any) -> list[str]:
            with self._lock():
                return super().add(nodes, **kw)

        def delete(self, ref_doc_id: str, **kw: Any) -> None:
            with self._lock():
                super().delete(ref_doc_id, **kw)

        def delete_nodes(self, node_ids=None, filters=None, **kw: Any) -> None:  # type: ignore[no-untyped-def]
            with self._lock():
                super().delete_nodes(node_ids, filters, **kw)

        def query(self, query: VectorStoreQuery, **kw: Any) -> VectorStoreQueryResult:
            with self._lock():
                return super().query(query, **kw)

        def persist(self, *args: Any, **kw: Any) -> None:
            with self._lock():
                super().persist(*args, **kw)

        def query_batch(
            self,
            embeddings: Any,
            similarity_top_k: int | None = 10,
            filters: MetadataFilters | None = None,
        ) -> list[VectorStoreQueryResult]:
            return [
                self.query(
                    VectorStoreQuery(
                        query_embedding=[float(x) for x in row],
                        similarity_top_k=similarity_top_k,
                        filters=filters,
                    )
                )
                for row in np.asarray(embeddings)
            ]

        def add_embeddings(self, ids, embeddings, ref_doc_ids=None, metadata=None):  # type: ignore[no-untyped-def]
            ids = list(ids)
            refs = list(ref_doc_ids) if ref_doc_ids is not None else ["None"] * len(ids)
            mds = list(metadata) if metadata is not None else [{}] * len(ids)
            if len(refs) != len(ids) or len(mds) != len(ids):
                raise ValueError("ids, ref_doc_ids and metadata must have the same length")
            with self._lock():
                for i, e, r, m in zip(ids, np.asarray(embeddings).tolist(), refs, mds):
                    self.data.embedding_dict[i] = [float(x) for x in e]
                    self.data.text_id_to_ref_doc_id[i] = r
                    self.data.metadata_dict[i] = {} if m is None else m
            return ids

    Ours: Any = StandInVectorStore
else:
    from llama_index_rs import RustVectorStore as Ours


# ---------------------------------------------------------------- data helpers


def f32(values: Iterable[float]) -> list[float]:
    """Round to float32 and back to Python floats (the values local models produce)."""
    return np.asarray(list(values), dtype=np.float32).tolist()


def rand_matrix(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.standard_normal((n, dim)).astype(np.float32)


def node(
    id_: str,
    embedding: Sequence[float],
    ref: str | None = None,
    metadata: dict[str, Any] | None = None,
    text: str = "",
) -> TextNode:
    rels = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=ref)} if ref is not None else {}
    return TextNode(
        id_=id_,
        text=text or f"text of {id_}",
        metadata=dict(metadata or {}),
        embedding=list(embedding),
        relationships=rels,
    )


def nodes_from_matrix(
    mat: np.ndarray,
    prefix: str = "n",
    refs: Sequence[str | None] | None = None,
    metadata: Sequence[dict[str, Any]] | None = None,
) -> list[TextNode]:
    rows = mat.tolist()
    return [
        node(
            f"{prefix}{i}",
            rows[i],
            ref=None if refs is None else refs[i],
            metadata=None if metadata is None else metadata[i],
        )
        for i in range(len(rows))
    ]


def q(
    embedding: Sequence[float] | None,
    k: int | None = 10,
    mode: VectorStoreQueryMode = VectorStoreQueryMode.DEFAULT,
    filters: MetadataFilters | None = None,
    node_ids: list[str] | None = None,
    doc_ids: list[str] | None = None,
) -> VectorStoreQuery:
    return VectorStoreQuery(
        query_embedding=None if embedding is None else list(embedding),
        similarity_top_k=k,  # type: ignore[arg-type]
        mode=mode,
        filters=filters,
        node_ids=node_ids,
        doc_ids=doc_ids,
    )


# ---------------------------------------------------------------- the pair


class Pair:
    """(SimpleVectorStore, Ours) driven with identical operations."""

    def __init__(self, theirs: SimpleVectorStore | None = None, ours: Any = None) -> None:
        self.theirs = theirs if theirs is not None else SimpleVectorStore()
        self.ours = ours if ours is not None else Ours()

    def both(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Call `method` on both; return (theirs, ours) results. Exceptions must agree in type."""
        r_t, e_t = _call(getattr(self.theirs, method), *args, **kwargs)
        r_o, e_o = _call(getattr(self.ours, method), *args, **kwargs)
        assert_same_exception(e_t, e_o)
        if e_t is not None:
            raise _Raised(e_t, e_o)
        return r_t, r_o

    def add(self, nodes: Sequence[TextNode]) -> list[str]:
        ids_t, ids_o = self.both("add", nodes)
        assert ids_t == ids_o
        return ids_o

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        res_t, res_o = self.both("query", query, **kwargs)
        assert_same_result(res_t, res_o)
        return res_o

    def check_state(self) -> None:
        assert_same_dict(self.theirs.to_dict(), self.ours.to_dict())


class _Raised(Exception):
    def __init__(self, theirs: BaseException, ours: BaseException) -> None:
        super().__init__(f"both raised: {theirs!r} / {ours!r}")
        self.theirs, self.ours = theirs, ours


def _call(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001 - compared, not swallowed
        return None, e


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    return _call(fn, *args, **kwargs)


def assert_same_exception(
    theirs: BaseException | None, ours: BaseException | None, message: bool = True
) -> None:
    if theirs is None or ours is None:
        assert theirs is None and ours is None, f"theirs raised {theirs!r}, ours raised {ours!r}"
        return
    assert type(ours) is type(theirs) or isinstance(ours, type(theirs)), (
        f"exception type: theirs {theirs!r}, ours {ours!r}"
    )
    if message:
        assert str(ours) == str(theirs), f"exception message: theirs {theirs!r}, ours {ours!r}"


def assert_same_result(
    theirs: VectorStoreQueryResult, ours: VectorStoreQueryResult, tol: float = SIM_TOL
) -> None:
    """Same ids in the same order; similarities within `tol`."""
    assert ours.ids is not None and ours.similarities is not None
    t_ids, o_ids = list(theirs.ids or []), list(ours.ids)
    t_s = [float(s) for s in theirs.similarities or []]
    o_s = [float(s) for s in ours.similarities]
    assert len(o_ids) == len(t_ids), f"lengths differ: theirs {t_ids}, ours {o_ids}"
    assert len(o_s) == len(o_ids)
    assert o_ids == t_ids, (
        f"ids differ:\n theirs {t_ids}\n ours   {o_ids}\n sims {t_s}\n ours {o_s}"
    )
    for a, b in zip(t_s, o_s):
        if math.isnan(a):
            assert math.isnan(b)
        else:
            assert abs(a - b) <= tol, f"similarities differ: theirs {t_s}, ours {o_s}"
    assert ours.nodes is None


def _normalise(x: Any) -> Any:
    """NaN-aware deep comparison key (NaN != NaN otherwise)."""
    if isinstance(x, float) and math.isnan(x):
        return ("<nan>",)
    if isinstance(x, dict):
        return {k: _normalise(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_normalise(v) for v in x]
    return x


def assert_same_dict(theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    """to_dict() equality including key order of every mapping (it decides persisted bytes)."""
    n_o, n_t = _normalise(ours), _normalise(theirs)
    if n_o != n_t:
        lines = []
        for part in sorted(set(n_o) | set(n_t)):
            a, b = n_t.get(part, "<absent>"), n_o.get(part, "<absent>")
            if a == b:
                continue
            if isinstance(a, dict) and isinstance(b, dict):
                only_t, only_o = [k for k in a if k not in b], [k for k in b if k not in a]
                changed = [k for k in a if k in b and a[k] != b[k]]
                lines.append(
                    f"{part}: only theirs {only_t[:5]}, only ours {only_o[:5]}, "
                    f"changed {[(k, a[k], b[k]) for k in changed[:3]]}"
                )
            else:
                lines.append(f"{part}: theirs {a!r:.200} ours {b!r:.200}")
        raise AssertionError("to_dict differs:\n" + "\n".join(lines))
    assert json.dumps(ours) == json.dumps(theirs), "same content, different key order"


# ---------------------------------------------------------------- the real corpus


class Corpus:
    def __init__(self, root: pathlib.Path) -> None:
        self.meta = json.loads((root / "meta.json").read_text())
        self.dim = int(self.meta["dim"])
        self.records = [json.loads(l) for l in (root / "nodes.jsonl").read_text().splitlines() if l]
        self.embeddings = np.fromfile(root / "embeddings.f32", dtype="<f4").reshape(-1, self.dim)
        self.queries = [
            json.loads(l) for l in (root / "queries.jsonl").read_text().splitlines() if l
        ]
        self.query_embeddings = np.fromfile(root / "query_embeddings.f32", dtype="<f4").reshape(
            -1, self.dim
        )
        assert len(self.records) == len(self.embeddings)
        assert len(self.queries) == len(self.query_embeddings)

    def nodes(self) -> list[TextNode]:
        rows = self.embeddings.tolist()
        return [
            node(
                r["id"],
                rows[i],
                ref=r.get("ref_doc_id"),
                metadata=r.get("metadata"),
                text=r["text"],
            )
            for i, r in enumerate(self.records)
        ]
