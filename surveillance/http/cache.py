"""A small time-limited cache for what every request looks up: who a token belongs to.

Entries expire after ``seconds`` (0 turns the cache off), so a revoked token or a user
removed from a site stops working within that time, in every process. Only successful
lookups are kept. Each operation is a single dict operation, atomic under the GIL, so
worker threads and the event loop may share a cache without a lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        seconds: float,
        *,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self.clear()  # simpler than LRU; refills within one TTL
        self._entries[key] = (self._clock() + self.seconds, value)

    def clear(self) -> None:
        self._entries.clear()
