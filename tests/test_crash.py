"""Crash safety: a child process persists a changing vector store in a loop and is SIGKILLed at random
moments (>= 100 times). After each kill every store file in the directory loads and holds either the
content being replaced or the content being written — never a mixture, never unreadable."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

from llama_index_rs import _native

KILLS = 100
EVENT = re.compile(r"(start|done) (\d+)")  # a line the child wrote whole
ROWS, DIM = 1500, 48

# The child loads only the compiled module (not LlamaIndex), so 100 restarts stay cheap; it drives the
# same Rust persist that RustVectorStore.persist calls.
CHILD = textwrap.dedent(
    f"""
    import importlib.util, os, random, sys
    spec = importlib.util.spec_from_file_location("_native", sys.argv[1])
    native = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(native)

    def content(v):
        rng = random.Random(v)
        n = {ROWS} + v % 17
        ids = [f"v{{v}}-{{i}}" for i in range(n)]
        emb = [[rng.uniform(-1, 1) for _ in range({DIM})] for _ in range(n)]
        s = native.VectorStore()
        s.add(ids, emb, [f"doc{{i % 5}}" for i in range(n)], [{{"v": v, "i": i}} for i in range(n)])
        return s

    path, version = sys.argv[2], int(sys.argv[3])
    while True:
        s = content(version)
        # one write(2) per line: a pipe write under PIPE_BUF is atomic, so a kill never leaves half a
        # line (under PYTHONUNBUFFERED, print() issues one write per argument)
        os.write(1, b"start %d\\n" % version)
        s.persist_files(path, "both")
        os.write(1, b"done %d\\n" % version)
        version += 1
    """
)


def content_json(version: int) -> bytes:
    rng = random.Random(version)
    n = ROWS + version % 17
    ids = [f"v{version}-{i}" for i in range(n)]
    emb = [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(n)]
    s = _native.VectorStore()
    s.add(
        ids,
        emb,
        [f"doc{i % 5}" for i in range(n)],
        [{"v": version, "i": i} for i in range(n)],
    )
    return bytes(s.to_json())


def test_sigkill_during_persist_never_leaves_a_broken_or_mixed_file(tmp_path):
    so = _native.__file__
    json_path = str(tmp_path / "default__vector_store.json")
    binary_path = str(_native.VectorStore.binary_path_for(json_path))
    rng = random.Random(1234)
    version = 0
    expected_cache: dict = {}

    def expected(v):
        if v not in expected_cache:
            expected_cache[v] = content_json(v)
        return expected_cache[v]

    on_disk = {"json": None, "binary": None}  # version each file holds (checked after every kill)
    kills_mid_persist = 0
    isolated = tmp_path.parent / (tmp_path.name + "-isolated")
    isolated.mkdir(exist_ok=True)

    def check(kind, got, old, new):
        allowed = {v for v in (old, new) if v is not None}
        match = [v for v in allowed if expected(v) == got]
        assert match, f"{kind} file holds neither version {sorted(allowed)} (never a mixture)"
        on_disk[kind] = match[0]

    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, so, json_path, str(version)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        events = [m.groups() for m in map(EVENT.fullmatch, out.splitlines()) if m]
        started = [int(v) for kind, v in events if kind == "start"]
        done = [int(v) for kind, v in events if kind == "done"]
        new = started[-1] if started and (not done or started[-1] != done[-1]) else None
        kills_mid_persist += new is not None
        if started:
            version = started[-1] + 1
        old_json = done[-1] if done else on_disk["json"]
        old_bin = done[-1] if done else on_disk["binary"]
        # every file on its own ...
        if os.path.exists(json_path):
            check("json", bytes(_native.VectorStore.load_json(json_path).to_json()), old_json, new)
        if os.path.exists(binary_path):  # the binary file by itself, in a directory without JSON
            (isolated / "default__vector_store.rsvec").write_bytes(open(binary_path, "rb").read())
            alone = _native.VectorStore.load_files(str(isolated / "default__vector_store.json"))[0]
            check("binary", bytes(alone.to_json()), old_bin, new)
        # ... and what a load picks: the binary file only when it mirrors the JSON file
        if os.path.exists(json_path):
            loaded, _source, _, damaged = _native.VectorStore.load_files(json_path)
            assert not damaged
            assert bytes(loaded.to_json()) == expected(on_disk["json"])
        report = [r for r in _native.verify_path(str(tmp_path)) if r[1] != "temporary"]
        assert all(not r[2] for r in report), report
    assert kills_mid_persist >= 10, f"only {kills_mid_persist} kills landed inside a persist"
    # the next persist removes the temporary files the killed writers left behind
    s = _native.VectorStore()
    s.persist_files(json_path, "both")
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert leftovers == []
