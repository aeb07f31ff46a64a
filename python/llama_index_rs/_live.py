"""Live mapping views over a Rust store, for code that reads and writes the Simple* stores' dicts."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Callable


class LiveMapping(MutableMapping):
    """A mutable mapping whose every operation goes to the Rust store: reads, writes and deletes are
    seen by the next query. Iteration walks a snapshot of the keys taken when it starts."""

    __slots__ = ("_keys", "_get", "_set", "_delete", "_len")

    def __init__(
        self,
        keys: Callable[[], list],
        get: Callable[[str], Any],
        set: Callable[[str, Any], None],
        delete: Callable[[str], None],
        length: Callable[[], int],
    ) -> None:
        self._keys, self._get, self._set, self._delete, self._len = keys, get, set, delete, length

    def __getitem__(self, key: str) -> Any:
        return self._get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._set(key, value)

    def __delitem__(self, key: str) -> None:
        self._delete(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return self._len()

    def __contains__(self, key: object) -> bool:
        try:
            self._get(key)  # type: ignore[arg-type]
        except (KeyError, TypeError):
            return False
        return True

    def popitem(self) -> tuple:
        # dict.popitem is LIFO (MutableMapping's generic one removes the first key).
        keys = self._keys()
        if not keys:
            raise KeyError("popitem(): dictionary is empty")
        key = keys[-1]
        value = self._get(key)
        self._delete(key)
        return key, value

    def copy(self) -> dict:
        return dict(self.items())

    def __deepcopy__(self, memo: dict) -> dict:
        import copy

        return copy.deepcopy(dict(self.items()), memo)

    def __reduce__(self) -> tuple:
        return (dict, (dict(self.items()),))

    def __repr__(self) -> str:
        return repr(dict(self.items()))
