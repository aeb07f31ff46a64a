"""`llama_index_rs.verify(persist_dir)`: read every store file in full and report what is wrong."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Union

from llama_index_rs import _native


@dataclass(frozen=True)
class FileReport:
    """One file: its kind ("vector_store_json", "vector_store_binary", "json", "temporary"), the
    problems found (empty when the file is sound) and notes that are not problems."""

    path: str
    kind: str
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class VerifyReport:
    """The files checked; truthy when every one is sound. `str(report)` is a readable summary."""

    files: List[FileReport]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def problems(self) -> List[str]:
        return [f"{f.path}: {p}" for f in self.files for p in f.problems]

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        lines = []
        for f in self.files:
            status = "ok" if f.ok else "DAMAGED"
            lines.append(f"{status:8} {f.kind:20} {f.path}")
            lines += [f"         problem: {p}" for p in f.problems]
            lines += [f"         note: {n}" for n in f.notes]
        return "\n".join(lines) if lines else "no store files found"


def verify(path: Union[str, "os.PathLike[str]"]) -> VerifyReport:
    """Check every store file in a persist directory (or a single file): JSON files must parse (a
    vector-store JSON must also have the right shape), binary vector files must have a sound header,
    matching checksums for every section and well-formed entries. Nothing is modified."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    return VerifyReport(
        [
            FileReport(os.fspath(p), k, list(pr), list(n))
            for p, k, pr, n in _native.verify_path(path)
        ]
    )
