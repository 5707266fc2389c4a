"""A disk cache of compiled object code, so a fresh process compiles nothing.

One file per key (sha256 of everything the code depends on, see
`JitSession.key_material`): a header with a magic and the key, the object code
and the IR texts, and a trailing sha256 of all of it. Files are written to a
temporary name and renamed into place; a file that is missing, truncated,
corrupted or made for another key is logged and treated as a miss, never loaded.
A directory owned by another user or writable by group or others is refused.
The directory is bounded in size ($SYMGRAD_CACHE_MAX_BYTES): stores check it now and
then (scanning tens of thousands of files takes a good part of a second, so a store of
s bytes checks with probability s / (max_bytes / 8): about once per eighth of the bound
written, by any process) and evict the least recently used files (a hit refreshes a
file's mtime). Processes share it safely: a file that vanishes under a reader is a miss.
Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import random
import stat
import struct
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("symgrad")
MAGIC = b"SGOBJ\x00\x01\n"  # file format version 1
_LENGTH = struct.Struct("<I")
_DIGEST = 32  # bytes of sha256
SUFFIX = ".sgo"
MAX_BYTES_ENV = "SYMGRAD_CACHE_MAX_BYTES"  # bytes, or with a K/M/G suffix (powers of 1024)
DEFAULT_MAX_BYTES = 256 * 2**20
CHECK_FRACTION = 8  # stores check the size about once per max_bytes / CHECK_FRACTION written
STALE_TEMP_SECONDS = 3600  # a temp file this old was left by a writer that died
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def digest(material: dict[str, str]) -> str:
    """The cache key: hex sha256 of the key material, in a canonical encoding."""
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


@functools.cache
def compiler_version() -> str:
    """A hash of this package's sources: any change to the back end invalidates the cache
    (sources that cannot be read give a per-process value: nothing is ever reused)."""
    h = hashlib.sha256()
    package = Path(__file__).parent
    try:
        for name in sorted(n for n in os.listdir(package) if n.endswith(".py")):
            h.update(name.encode() + b"\0" + (package / name).read_bytes() + b"\0")
    except OSError as error:
        log.warning("cannot hash the compiler's sources (%s): the code cache will only miss", error)
        h.update(os.urandom(16))
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    """What a fresh process needs to use a compiled program without LLVM work."""

    symbol: str
    object_code: bytes
    llvm_ir: str
    optimized_ir: str


class CorruptEntry(ValueError):
    """An entry file that must not be loaded (the message says why)."""


def encode(key: str, entry: Entry) -> bytes:
    parts = [entry.object_code, zlib.compress(entry.llvm_ir.encode(), 1),
             zlib.compress(entry.optimized_ir.encode(), 1)]  # fmt: skip
    header = json.dumps({"symbol": entry.symbol, "sizes": [len(p) for p in parts]}).encode()
    body = b"".join([MAGIC, key.encode(), _LENGTH.pack(len(header)), header, *parts])
    return body + hashlib.sha256(body).digest()


def decode(key: str, data: bytes) -> Entry:
    """The entry stored in `data` for `key`, or CorruptEntry."""
    prefix = len(MAGIC) + len(key)
    if len(data) < prefix + _LENGTH.size + _DIGEST or not data.startswith(MAGIC):
        raise CorruptEntry("not a symgrad object-cache file (bad magic or too short)")
    if data[len(MAGIC) : prefix] != key.encode():
        raise CorruptEntry("the file belongs to another key")
    body, checksum = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != checksum:
        raise CorruptEntry("checksum mismatch (truncated or corrupted)")
    (length,) = _LENGTH.unpack_from(body, prefix)
    start = prefix + _LENGTH.size + length
    header = json.loads(body[prefix + _LENGTH.size : start])
    sizes = header["sizes"]
    if start + sum(sizes) != len(body):
        raise CorruptEntry("sizes in the header do not add up")
    parts, offset = [], start
    for size in sizes:
        parts.append(body[offset : offset + size])
        offset += size
    llvm_ir, optimized_ir = (zlib.decompress(p).decode() for p in parts[1:])
    return Entry(header["symbol"], parts[0], llvm_ir, optimized_ir)


def max_bytes_from_env() -> int:
    """The size bound from $SYMGRAD_CACHE_MAX_BYTES ("512M", "2G", "1000000"), else the default."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip().upper().removesuffix("IB").removesuffix("B")
    if not text:
        return DEFAULT_MAX_BYTES
    unit = text[-1] if text[-1] in "KMG" else ""
    try:
        value = int(float(text[: len(text) - len(unit)]) * _UNITS[unit])
    except ValueError:
        value = -1
    if value < 0:
        log.warning("ignoring %s=%r (not a size): using %d bytes", MAX_BYTES_ENV,
                    os.environ[MAX_BYTES_ENV], DEFAULT_MAX_BYTES)  # fmt: skip
        return DEFAULT_MAX_BYTES
    return value


class DiskCache:
    """Object-code entries in one private directory, at most `max_bytes` of them (None: from
    the environment). Use `DiskCache.open`."""

    def __init__(self, directory: Path, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes_from_env() if max_bytes is None else max_bytes
        self.errors = 0  # entries refused or writes that failed
        self.writes = 0
        self.evictions = 0  # files this process removed to stay within max_bytes
        self.checks = 0  # directory scans
        self._random = random.Random()

    @classmethod
    def open(cls, directory: str | os.PathLike[str], max_bytes: int | None = None) -> DiskCache | None:
        """The cache in `directory` (created private if missing), or None if it cannot
        be used safely; the reason is logged and the caller runs without a cache."""
        path = Path(directory).expanduser()
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            problem = unsafe_directory(path)
        except OSError as error:
            problem = f"cannot create it ({error})"
        if problem:
            log.warning("not using code cache directory %s: %s", path, problem)
            return None
        return cls(path, max_bytes)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def load(self, key: str, symbol: str) -> Entry | None:
        """The entry for `key` defining `symbol`, or None (a miss; a bad file is logged)."""
        try:
            entry = decode(key, _read_private(self.path(key)))
            if entry.symbol != symbol:
                raise CorruptEntry(f"it defines {entry.symbol!r}, not {symbol!r}")
            with contextlib.suppress(OSError):  # most recently used: evicted last
                os.utime(self.path(key))
            return entry
        except FileNotFoundError:  # never stored, or evicted (by any process): a miss
            log.debug("code cache: no entry %s (never stored, or evicted)", self.path(key).name)
            return None
        except (OSError, CorruptEntry, ValueError, KeyError, TypeError, zlib.error) as error:
            self.errors += 1
            log.warning("ignoring code cache file %s: %s", self.path(key), error)
            return None

    def store(self, key: str, entry: Entry) -> bool:
        """Write the entry atomically (temp file + rename); False (logged) if that fails."""
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=self.directory)
            data = encode(key, entry)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path(key))
            self.writes += 1
        except OSError as error:
            self.errors += 1
            log.warning("could not write code cache entry in %s: %s", self.directory, error)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            return False
        if self._check_due(len(data)):
            self.bound(keep=self.path(key))
        return True

    def _check_due(self, size: int) -> bool:
        """Whether this store scans the directory: always if it alone is an eighth of the
        bound, else with probability size / (max_bytes / 8)."""
        budget = max(self.max_bytes // CHECK_FRACTION, 1)
        return size >= budget or self._random.random() * budget < size

    def bound(self, keep: Path | None = None) -> None:
        """Remove least recently used files until the directory holds at most `max_bytes`
        (never `keep`, the file just written); also temp files of writers that died."""
        self.checks += 1
        files, total = [], 0
        for path, st in _entries(self.directory):
            if path.suffix == ".tmp":
                if time.time() - st.st_mtime > STALE_TEMP_SECONDS:
                    _remove(path)
            elif path != keep:
                files.append((st.st_mtime, path, st.st_size))
            total += st.st_size
        removed, freed = 0, 0
        for _, path, size in sorted(files, key=lambda f: f[0]):
            if total - freed <= self.max_bytes:
                break
            _remove(path)  # gone already (another process evicting): freed all the same
            removed, freed = removed + 1, freed + size
        if removed:
            self.evictions += removed
            log.info("code cache %s: evicted %d least recently used file(s) (%d bytes) to stay "
                     "within %d bytes", self.directory, removed, freed, self.max_bytes)  # fmt: skip

    def size(self) -> int:
        """Bytes of cache entries in the directory now."""
        return sum(st.st_size for path, st in _entries(self.directory) if path.suffix == SUFFIX)


def clear(directory: str | os.PathLike[str]) -> int:
    """Delete the cache entries (and temp files) in `directory`; how many were removed.
    Only files this module writes are touched, whatever else the directory holds."""
    removed = 0
    for path, _ in _entries(Path(directory).expanduser()):
        removed += _remove(path)
    return removed


def _entries(directory: Path) -> list[tuple[Path, os.stat_result]]:
    """(path, stat) of the entry and temp files in `directory`; files that vanish are skipped."""
    found = []
    try:
        with os.scandir(directory) as scan:
            for item in scan:
                is_temp = item.name.startswith(".") and item.name.endswith(".tmp")
                if item.name.endswith(SUFFIX) or is_temp:
                    with contextlib.suppress(FileNotFoundError):
                        found.append((Path(item.path), item.stat(follow_symlinks=False)))
    except FileNotFoundError:
        pass
    return found


def _remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError as error:
        log.warning("could not remove code cache file %s: %s", path, error)
        return False


def unsafe_directory(path: Path) -> str:
    """Why `path` must not hold cached code (empty if it may): code loaded from it
    runs in this process, so only this user may be able to write there."""
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by this user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.filemode(st.st_mode)})"
    return ""


def _read_private(path: Path) -> bytes:
    """Read a regular file owned by this user, not following a symlink."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CorruptEntry("not a regular file")
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            raise CorruptEntry(f"owned by uid {st.st_uid}, not by this user")
        return f.read()
