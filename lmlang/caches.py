"""Bounded caches: every cache in lmlang has an owner, a bound, and a way to empty it.

A :class:`BoundedCache` keeps its ``capacity`` most recently used entries and drops the least recently used one
past that. Caches of pure computations that any model or query may share (automata, masks, matchers) are made
with :func:`process_cache`, which names them, so that :func:`clear_process_caches` (called by
``Session.clear``) and :func:`process_cache_sizes` (for tests and benchmarks) reach every one of them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A least-recently-used map of at most ``capacity`` entries, safe to share between threads (runs on
    different models go on at once and share the process-wide caches). ``make`` runs outside the lock: two
    threads may both make a missing entry, and the one put last is kept."""

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a cache holds at least one entry, not {capacity}")
        self.name = name
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __repr__(self) -> str:
        return f"BoundedCache({self.name!r}, {len(self)}/{self.capacity})"

    def get(self, key: K) -> V | None:
        """The entry of ``key`` (now the most recently used), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The entry of ``key``, made by ``make()`` and kept when missing."""
        found = self.get(key)
        return found if found is not None else self.put(key, make())

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._entries.pop(key, None)

    def values(self) -> list[V]:
        with self._lock:
            return list(self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_PROCESS: dict[str, BoundedCache] = {}
_PROCESS_LOCK = threading.Lock()


def process_cache(name: str, capacity: int) -> BoundedCache:
    """The process-wide cache called ``name`` (made on first call): for results that depend only on their key."""
    with _PROCESS_LOCK:
        if name not in _PROCESS:
            _PROCESS[name] = BoundedCache(name, capacity)
        return _PROCESS[name]


def clear_process_caches() -> None:
    """Empty every process-wide cache; later work rebuilds what it needs."""
    for cache in _PROCESS.values():
        cache.clear()


def process_cache_sizes() -> dict[str, tuple[int, int]]:
    """Each process-wide cache's name, with its entries and its bound."""
    return {name: (len(cache), cache.capacity) for name, cache in _PROCESS.items()}
