"""A disk cache of compiled object code, so a fresh process compiles nothing.

One file per key (sha256 of everything the code depends on, see
`JitSession.key_material`): a header with a magic and the key, the object code
and the IR texts, and a trailing sha256 of all of it. Files are written to a
temporary name and renamed into place; a file that is missing, truncated,
corrupted or made for another key is logged and treated as a miss, never loaded.
A directory owned by another user or writable by group or others is refused.
Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import stat
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("symgrad")
MAGIC = b"SGOBJ\x00\x01\n"  # file format version 1
_LENGTH = struct.Struct("<I")
_DIGEST = 32  # bytes of sha256
SUFFIX = ".sgo"


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


class DiskCache:
    """Object-code entries in one private directory. Use `DiskCache.open`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.errors = 0  # entries refused or writes that failed
        self.writes = 0

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> DiskCache | None:
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
        return cls(path)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def load(self, key: str, symbol: str) -> Entry | None:
        """The entry for `key` defining `symbol`, or None (a miss; a bad file is logged)."""
        try:
            entry = decode(key, _read_private(self.path(key)))
            if entry.symbol != symbol:
                raise CorruptEntry(f"it defines {entry.symbol!r}, not {symbol!r}")
            return entry
        except FileNotFoundError:
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
            with os.fdopen(fd, "wb") as f:
                f.write(encode(key, entry))
            os.replace(tmp, self.path(key))
            self.writes += 1
            return True
        except OSError as error:
            self.errors += 1
            log.warning("could not write code cache entry in %s: %s", self.directory, error)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
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
