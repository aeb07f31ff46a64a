"""Real threads: 8 readers query while a writer adds and deletes; persist while querying.
No deadlock (every join has a timeout), and every result is consistent with some store state."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from _support import Ours, node, q, rand_matrix

DIM = 16
N_BASE = 3000
JOIN_TIMEOUT = 120.0


def _base_store(rng: np.random.Generator) -> tuple:
    mat = rand_matrix(rng, N_BASE, DIM)
    o = Ours()
    ids = o.add_embeddings(
        [f"base{i}" for i in range(N_BASE)],
        mat,
        ref_doc_ids=[f"doc{i % 50}" for i in range(N_BASE)],
    )
    assert len(ids) == N_BASE
    return o, mat


def _run(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert alive == [], f"threads did not finish (deadlock?): {alive}"


def test_concurrent_queries_while_writing():
    rng = np.random.default_rng(5)
    store, mat = _base_store(rng)
    extra = rand_matrix(rng, 400, DIM)
    queries = rand_matrix(rng, 8, DIM)
    ever_present = {f"base{i}" for i in range(N_BASE)} | {f"extra{i}" for i in range(len(extra))}
    stable = {f"base{i}" for i in range(N_BASE) if i % 50 >= 10}  # docs 0..9 get deleted
    errors: list[BaseException] = []
    counts = [0] * len(queries)
    stop = threading.Event()

    def reader(j: int) -> None:
        try:
            while not stop.is_set():
                k = [1, 5, 10, 50][counts[j] % 4]
                res = store.query(q(queries[j].tolist(), k=k))
                assert len(res.ids) == len(res.similarities) == k
                assert len(set(res.ids)) == k
                assert set(res.ids) <= ever_present, set(res.ids) - ever_present
                sims = [float(s) for s in res.similarities]
                assert sims == sorted(sims, reverse=True)
                assert all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for s in sims)
                counts[j] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def writer() -> None:
        try:
            rows = extra.tolist()
            for start in range(0, len(rows), 20):
                store.add(
                    [
                        node(f"extra{i}", rows[i], ref=f"xdoc{i % 7}")
                        for i in range(start, start + 20)
                    ]
                )
                if start % 100 == 0:
                    store.delete(f"doc{start // 100}")
                    store.delete_nodes([f"extra{start}"])
            for d in range(7):
                store.delete(f"xdoc{d}")
            for d in range(10):
                store.delete(f"doc{d}")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            time.sleep(0.2)
            stop.set()

    threads = [threading.Thread(target=reader, args=(j,), name=f"reader{j}") for j in range(8)]
    threads.append(threading.Thread(target=writer, name="writer"))
    _run(threads)
    assert errors == [], repr(errors[:3])
    assert all(c > 0 for c in counts), counts
    # final state: exactly the stable rows, and a query agrees with a fresh numpy computation
    final = set(store.to_dict()["embedding_dict"])
    assert final == stable
    res = store.query(q(queries[0].tolist(), k=10))
    idx = np.array(sorted(int(i[4:]) for i in stable))
    m = mat[idx].astype(np.float64)
    qv = queries[0].astype(np.float64)
    sims = m @ qv / (np.linalg.norm(m, axis=1) * np.linalg.norm(qv))
    top = idx[np.argsort(-sims)[:10]]
    assert res.ids == [f"base{i}" for i in top]
    assert np.allclose(res.similarities, np.sort(sims)[::-1][:10], atol=1e-6)


def test_persist_while_querying(tmp_path):
    rng = np.random.default_rng(6)
    store, mat = _base_store(rng)
    expected = store.query(q(mat[0].tolist(), k=10))
    errors: list[BaseException] = []
    stop = threading.Event()
    paths = [tmp_path / f"p{i}.json" for i in range(3)]

    def reader() -> None:
        try:
            while not stop.is_set():
                res = store.query(q(mat[0].tolist(), k=10))
                assert res.ids == expected.ids
                assert np.allclose(res.similarities, expected.similarities, atol=1e-9)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def persister() -> None:
        try:
            for p in paths:
                store.persist(str(p))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            stop.set()

    threads: list[Any] = [threading.Thread(target=reader, name=f"reader{j}") for j in range(8)]
    threads.append(threading.Thread(target=persister, name="persister"))
    _run(threads)
    assert errors == [], repr(errors[:3])
    first = paths[0].read_bytes()
    assert all(p.read_bytes() == first for p in paths)
    reloaded = Ours.from_persist_path(str(paths[-1]))
    res = reloaded.query(q(mat[0].tolist(), k=10))
    assert res.ids == expected.ids


def test_concurrent_adds_from_many_threads():
    rng = np.random.default_rng(8)
    mats = [rand_matrix(rng, 200, DIM) for _ in range(4)]
    store = Ours()
    errors: list[BaseException] = []

    def adder(t: int) -> None:
        try:
            rows = mats[t].tolist()
            for start in range(0, 200, 25):
                store.add(
                    [node(f"t{t}-{i}", rows[i], ref=f"t{t}") for i in range(start, start + 25)]
                )
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    _run([threading.Thread(target=adder, args=(t,), name=f"adder{t}") for t in range(4)])
    assert errors == []
    d = store.to_dict()
    assert len(d["embedding_dict"]) == 800
    for t in range(4):
        assert store.get(f"t{t}-7") == mats[t][7].tolist()
        assert d["text_id_to_ref_doc_id"][f"t{t}-199"] == f"t{t}"


def test_persist_while_writing_gives_consistent_snapshots(tmp_path):
    rng = np.random.default_rng(12)
    store, _ = _base_store(rng)
    extra = rand_matrix(rng, 300, DIM).tolist()
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for start in range(0, 300, 10):
                store.add(
                    [node(f"w{i}", extra[i], ref=f"w{start}") for i in range(start, start + 10)]
                )
                store.delete(f"doc{start // 10 % 50}")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            done.set()

    snapshots: list[str] = []

    def persister() -> None:
        try:
            i = 0
            while not done.is_set() or i < 2:
                path = tmp_path / f"snap{i}.json"
                store.persist(str(path))
                snapshots.append(str(path))
                i += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    _run(
        [
            threading.Thread(target=writer, name="writer"),
            threading.Thread(target=persister, name="persister"),
        ]
    )
    assert errors == [], repr(errors[:3])
    assert snapshots
    from llama_index.core.vector_stores import SimpleVectorStore

    for path in snapshots:
        t = SimpleVectorStore.from_persist_path(path)  # the oracle can read every snapshot
        d = t.to_dict()
        ids = list(d["embedding_dict"])
        assert ids == list(d["text_id_to_ref_doc_id"]) == list(d["metadata_dict"])
        w = [int(i[1:]) for i in ids if i.startswith("w")]
        assert len(w) % 10 == 0 and sorted(w) == list(range(len(w)))  # whole add batches only
