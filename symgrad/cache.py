"""The code cache: compiled gradient plans keyed by graph structure, shapes and dtypes.

Owns the JIT session (created on first compile) and the statistics that
`symgrad.cache_info()` reports. Imports the back end and the front-end
pipeline stages (differentiate, rules, lower).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("symgrad")


@dataclass
class CacheStats:
    compiles: int = 0
    hits: int = 0
    misses: int = 0
    compile_seconds: float = 0.0


@dataclass
class CodeCache:
    """Maps a structural key to whatever `build` made for it, compiling at most once per key."""

    entries: dict[Hashable, Any] = field(default_factory=dict)
    stats: CacheStats = field(default_factory=CacheStats)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _session: Any = None

    @property
    def session(self) -> Any:
        if self._session is None:
            from .compiler import JitSession

            self._session = JitSession(cache_dir=disk_cache_dir())
        return self._session

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.stats.hits += 1
                return entry
            self.stats.misses += 1
            start = time.perf_counter()
            entry = build()
            elapsed = time.perf_counter() - start
            self.stats.compiles += 1
            self.stats.compile_seconds += elapsed
            log.debug("compiled a new specialisation in %.1f ms", elapsed * 1e3)
            self.entries[key] = entry
            return entry

    def info(self) -> dict[str, Any]:
        s = self.stats
        info = {"compiles": s.compiles, "hits": s.hits, "misses": s.misses,
                "entries": len(self.entries), "compile_seconds": s.compile_seconds}  # fmt: skip
        if self._session is not None:
            jit = self._session.stats
            info.update(llvm_compiles=jit.codegen, llvm_seconds=jit.codegen_seconds,
                        disk_hits=jit.disk_hits, disk_misses=jit.disk_misses,
                        disk_dir=disk_cache_dir())  # fmt: skip
        return info

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self.stats = CacheStats()


def disk_cache_dir() -> str | None:
    """Where compiled object code is kept between processes: $SYMGRAD_CACHE_DIR, else
    $XDG_CACHE_HOME/symgrad or ~/.cache/symgrad; SYMGRAD_CACHE_DIR=off (or empty) disables it.
    Delete the directory to clear it."""
    chosen = os.environ.get("SYMGRAD_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "none") else chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "symgrad")


DEFAULT_CACHE = CodeCache()
