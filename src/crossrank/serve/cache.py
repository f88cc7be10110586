"""A thread-safe LRU cache of scores, bounded by an estimate of the memory it holds."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

from crossrank.runtime.score_store import pair_digest

# Per entry: the key tuple and its digests, the float, and OrderedDict's links.
_ENTRY_OVERHEAD = 200


def pair_key(model: str, query: str, text: str) -> tuple[str, bytes]:
    """(model, :func:`~crossrank.runtime.score_store.pair_digest` of the pair): the texts are
    not kept."""
    return model, pair_digest(query, text)


class ScoreCache:
    """Maps ``pair_key`` to a pair's raw outputs (a tuple of floats); evicts the least recently used beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"expected max_bytes >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple[str, bytes], tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self._entry = _ENTRY_OVERHEAD + sys.getsizeof(b"0" * 32)
        self.hits = 0
        self.misses = 0

    @property
    def bytes(self) -> int:
        return len(self._data) * self._entry

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: tuple[str, bytes]) -> tuple[float, ...] | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple[str, bytes], value: tuple[float, ...]) -> None:
        if self.max_bytes < self._entry:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) * self._entry > self.max_bytes:
                self._data.popitem(last=False)
