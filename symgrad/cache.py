"""The code cache: compiled gradient plans keyed by graph structure, shapes and dtypes.

Owns the JIT session (created on first compile), the bound on cached entries (least
recently used ones are evicted; their machine code is freed once nothing else holds
it) and the statistics that `symgrad.cache_info()` reports. Imports the back end.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("symgrad")

_gc_lock = threading.Lock()
_gc_pause = {"depth": 0, "was_enabled": True}  # compilations in progress; the state to restore


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while compiling: a large graph holds hundreds of
    thousands of objects, and each full collection walks all of them (finding nothing: the
    DAG is acyclic). Nested and concurrent compilations share one pause; the collector is
    re-enabled when the last one ends, if it was enabled before."""
    with _gc_lock:
        if _gc_pause["depth"] == 0:
            _gc_pause["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_pause["depth"] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pause["depth"] -= 1
            if _gc_pause["depth"] == 0 and _gc_pause["was_enabled"]:
                gc.enable()
# Entries kept in memory (per cache, and per transform). A compiled entry costs about
# 50-150 KiB (machine code, an MCJIT engine per program and per native entry, IR text).
DEFAULT_LIMIT = 1024


@dataclass
class CacheStats:
    compiles: int = 0
    hits: int = 0
    misses: int = 0
    compile_seconds: float = 0.0
    evictions: int = 0


def check_limit(limit: Any) -> int:
    """`limit` as an entry count, or ValueError naming set_cache_limit."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"set_cache_limit: the limit must be a positive int, got {limit!r}")
    return limit


class Key:
    """A cache key whose hash is computed once: structural keys are large tuples, and a
    repeated eager backward looks its plan up by the key object it stored (pending.py)."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: Hashable) -> None:
        self.value, self._hash = value, hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (type(other) is Key and self._hash == other._hash and self.value == other.value)

    def __repr__(self) -> str:
        return f"Key({self.value!r})"


@dataclass
class CodeCache:
    """Maps a structural key to whatever `build` made for it, compiling at most once per key
    and keeping the `limit` most recently used entries."""

    entries: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)
    stats: CacheStats = field(default_factory=CacheStats)
    limit: int = DEFAULT_LIMIT
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _session: Any = None

    @property
    def session(self) -> Any:
        if self._session is None:
            from .compiler import JitSession

            self._session = JitSession(cache_dir=disk_cache_dir())
        return self._session

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:  # reentrant: lookup takes it too
            entry = self.lookup(key)
            if entry is not None:
                return entry
            self.stats.misses += 1
            start = time.perf_counter()
            with paused_gc():
                entry = build()
            elapsed = time.perf_counter() - start
            self.stats.compiles += 1
            self.stats.compile_seconds += elapsed
            log.debug("compiled a new specialisation in %.1f ms", elapsed * 1e3)
            self.entries[key] = entry
            self.trim()
            return entry

    def lookup(self, key: Hashable) -> Any:
        """The entry for `key` (counted as a hit), or None without counting a miss."""
        with self._lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
                self.stats.hits += 1
            return entry

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self.limit = check_limit(limit)
            self.trim()

    def trim(self) -> None:
        """Evict least recently used entries beyond the limit (their code is freed with the
        last reference: a plan still held elsewhere keeps working)."""
        with self._lock:
            while len(self.entries) > self.limit:
                self.entries.popitem(last=False)
                self.stats.evictions += 1

    def info(self) -> dict[str, Any]:
        s = self.stats
        info = {"compiles": s.compiles, "hits": s.hits, "misses": s.misses,
                "entries": len(self.entries), "compile_seconds": s.compile_seconds,
                "evictions": s.evictions, "limit": self.limit}  # fmt: skip
        if self._session is not None:
            jit = self._session.stats
            info.update(llvm_compiles=jit.codegen, llvm_seconds=jit.codegen_seconds,
                        disk_hits=jit.disk_hits, disk_misses=jit.disk_misses,
                        disk_dir=disk_cache_dir())  # fmt: skip
        return info

    def clear(self, disk: bool = False) -> None:
        """Drop every entry and reset the statistics; with `disk`, delete the cached object
        files of the disk cache directory too."""
        with self._lock:
            self.entries.clear()
            self.stats = CacheStats()
        if disk:
            self.clear_disk()

    def clear_disk(self) -> None:
        """Delete the cached object files (of this session's directory, else the configured one)."""
        from .compiler import diskcache

        opened = self._session.disk_cache if self._session is not None else None
        directory = opened.directory if opened is not None else disk_cache_dir()
        if directory is not None:
            removed = diskcache.clear(directory)
            log.info("symgrad: removed %d cached object file(s) from %s", removed, directory)


def disk_cache_dir() -> str | None:
    """Where compiled object code is kept between processes: $SYMGRAD_CACHE_DIR, else
    $XDG_CACHE_HOME/symgrad or ~/.cache/symgrad; SYMGRAD_CACHE_DIR=off (or empty) disables it.
    Its size is bounded by $SYMGRAD_CACHE_MAX_BYTES; `symgrad.clear_cache(disk=True)` empties it."""
    chosen = os.environ.get("SYMGRAD_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "none") else chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "symgrad")


DEFAULT_CACHE = CodeCache()
