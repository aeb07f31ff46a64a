"""Persistence under failure and contention: out-of-space (real, not simulated), two processes
persisting one directory, readers that never wait for the writers' lock, fsspec memory round trip,
and the memory cost of loading a large store from its binary file."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import textwrap
import threading
import time

import fsspec
import numpy as np
import pytest

import llama_index_rs
from llama_index_rs import RustVectorStore, _native


def store_of(n: int, dim: int = 32, seed: int = 0, tag: str = "n") -> RustVectorStore:
    rng = np.random.default_rng(seed)
    s = RustVectorStore()
    s.add_embeddings(
        [f"{tag}{i}" for i in range(n)], rng.standard_normal((n, dim)).astype(np.float32)
    )
    return s


def snapshot(path: str) -> bytes:
    return bytes(_native.VectorStore.load_files(path)[0].to_json())


OUT_OF_SPACE = textwrap.dedent(
    """
    import resource, signal, sys, numpy as np
    from llama_index_rs import RustVectorStore
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    path, limit = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    s = RustVectorStore()
    s.add_embeddings([f"big{i}" for i in range(3000)], np.ones((3000, 64), np.float32))
    try:
        s.persist(path)
    except OSError as e:
        print("OSError", e.errno, e.filename)
    """
)


def test_file_size_limit_gives_oserror_and_keeps_the_old_files(tmp_path):
    path = str(tmp_path / "default__vector_store.json")
    store_of(10).persist(path)
    before = {n: open(tmp_path / n, "rb").read() for n in os.listdir(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", OUT_OF_SPACE, path, str(64 * 1024)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[:2] == ["OSError", str(errno.EFBIG)], proc.stdout
    assert proc.stdout.split()[2] == path
    after = {n: open(tmp_path / n, "rb").read() for n in os.listdir(tmp_path)}
    assert after == before  # old files intact, no temporary file left


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield str(mnt)
    subprocess.run(
        ["umount", "-l", str(mnt)], check=True
    )  # lazy: a loaded store may still map a file


def test_full_disk_gives_enospc_and_keeps_the_old_files(tiny_tmpfs):
    path = os.path.join(tiny_tmpfs, "default__vector_store.json")
    small = store_of(20)
    small.persist(path)
    before = {n: open(os.path.join(tiny_tmpfs, n), "rb").read() for n in os.listdir(tiny_tmpfs)}
    with pytest.raises(OSError) as info:
        store_of(3000, dim=64).persist(path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == path
    after = {n: open(os.path.join(tiny_tmpfs, n), "rb").read() for n in os.listdir(tiny_tmpfs)}
    assert after == before
    assert RustVectorStore.from_persist_path(path).to_dict() == small.to_dict()


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from llama_index_rs import RustVectorStore
    path, tag, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for r in range(rounds):
        s = RustVectorStore()
        n = 200 + r
        s.add_embeddings([f"{tag}{r}-{i}" for i in range(n)], np.full((n, 24), r, np.float32))
        s.persist(path)
    print("ok")
    """
)


def test_two_processes_persisting_one_directory(tmp_path):
    path = str(tmp_path / "default__vector_store.json")
    rounds = 50
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, path, tag, str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    checks = 0
    while any(w.poll() is None for w in writers):
        if os.path.exists(path):
            report = llama_index_rs.verify(str(tmp_path))
            assert all(f.ok for f in report.files if f.kind != "temporary"), str(report)
            loaded = RustVectorStore.from_persist_path(path)
            ids = list(loaded.data.embedding_dict)
            # one writer's whole store: a single tag and round, never a mixture
            assert len({i.split("-")[0] for i in ids}) == 1
            checks += 1
    for w in writers:
        out, _ = w.communicate()
        assert w.returncode == 0 and out.strip() == "ok"
    assert checks > 0
    # the final pair is consistent: the binary file mirrors the JSON file and is what loads use
    native, source, skipped, _ = _native.VectorStore.load_files(path)
    assert str(source).endswith(".rsvec"), skipped


def test_readers_never_wait_for_the_writers_lock(tmp_path):
    path = str(tmp_path / "default__vector_store.json")
    s = store_of(50)
    s.persist(path)
    lock = open(tmp_path / ".llama_index_rs.lock", "a+")
    fcntl.flock(lock, fcntl.LOCK_EX)  # another "process" is persisting
    try:
        t0 = time.perf_counter()
        assert RustVectorStore.from_persist_path(path).to_dict() == s.to_dict()
        assert time.perf_counter() - t0 < 2
        writer = threading.Thread(target=s.persist, args=(path,))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive(), "persist did not wait for the lock"
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    writer.join(10)
    assert not writer.is_alive()


def test_fsspec_memory_filesystem_round_trip():
    fs = fsspec.filesystem("memory")
    s = store_of(30)
    s.persist("/persist/default__vector_store.json", fs=fs)
    loaded = RustVectorStore.from_persist_path("/persist/default__vector_store.json", fs=fs)
    assert loaded.to_dict() == s.to_dict()


RSS = textwrap.dedent(
    """
    import sys, time
    from llama_index_rs import RustVectorStore
    from llama_index.core.vector_stores.types import VectorStoreQuery

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

    before = rss()
    t0 = time.perf_counter()
    s = RustVectorStore.from_persist_path(sys.argv[1])
    load = time.perf_counter() - t0
    after = rss()
    assert s.memory_mapped and len(s.data.embedding_dict) == int(sys.argv[2])
    s.query(VectorStoreQuery(query_embedding=[0.01] * int(sys.argv[3]), similarity_top_k=3))
    print(before, after, load)
    """
)


def test_loading_a_large_binary_store_maps_instead_of_reading(tmp_path_factory):
    n, dim = 200_000, 768
    d = tmp_path_factory.mktemp("rss", numbered=True)
    path = str(d / "default__vector_store.json")
    try:
        native = _native.VectorStore()
        block = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
        native.add([f"n{i}" for i in range(n)], block, [None] * n, [None] * n)
        del block
        native.persist_files(path, "binary")
        del native
        proc = subprocess.run(
            [sys.executable, "-c", RSS, path, str(n), str(dim)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        before, after, load = proc.stdout.split()
        vector_bytes = n * dim * 4
        grew = int(after) - int(before)
        print(
            f"RSS +{grew / 2**20:.1f} MiB for {vector_bytes / 2**20:.0f} MiB of vectors, load {float(load) * 1e3:.0f} ms"
        )
        assert grew < 0.10 * vector_bytes, (
            f"RSS grew by {grew / 2**20:.0f} MiB loading {vector_bytes / 2**20:.0f} MiB of vectors"
        )
    finally:
        for name in os.listdir(d):
            os.remove(d / name)
        os.rmdir(d)
