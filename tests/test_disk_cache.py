"""The disk cache of object code: fresh processes reload instead of compiling, and
no bad file or unsafe directory is ever loaded from (nor crashes anything)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from symgrad.compiler import JitSession, diskcache

PROGRAM_SOURCE = """
from symgrad.compiler import Access, Buffer, Fill, Instr, KernelProgram, Loop, Store

def program(n=1000, scale=0.5):
    # out = sum(sin(x) * exp(-x * x) * scale), y = tanh(x): libm/libmvec calls and a reduction
    body = (Instr("load", load=0), Instr("sin", (0,)), Instr("mul", (0, 0)), Instr("neg", (2,)),
            Instr("exp", (3,)), Instr("mul", (1, 4)), Instr("const", value=scale),
            Instr("mul", (5, 6)), Instr("tanh", (0,)))
    loop = Loop((n,), "float64", (Access(0, 0, (1,)),), body,
                (Store(Access(1, 0, (0,)), 7, "sum"), Store(Access(2, 0, (1,)), 8)))
    buffers = (Buffer("float64", n, "input"), Buffer("float64", 1, "output"),
               Buffer("float64", n, "output"))
    return KernelProgram(buffers, (Fill(1, 0.0), loop))
"""
namespace: dict = {}
exec(PROGRAM_SOURCE, namespace)
program = namespace["program"]

CHILD = PROGRAM_SOURCE + textwrap.dedent("""
    import dataclasses, hashlib, json, sys, time
    import numpy as np
    from symgrad.compiler import JitSession
    session = JitSession(cache_dir=sys.argv[1])
    start = time.perf_counter()
    compiled = session.compile(program(), name="child")
    seconds = time.perf_counter() - start
    outputs = compiled([np.linspace(-3, 3, 1000)])
    digest = hashlib.sha256(b"".join(o.tobytes() for o in outputs)).hexdigest()
    print(json.dumps({"stats": dataclasses.asdict(session.stats), "seconds": seconds,
                      "digest": digest, "cached": session.disk_cache is not None}))
""")


def run_child(cache_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(cache_dir)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def digest_of(outputs: list[np.ndarray]) -> str:
    import hashlib

    return hashlib.sha256(b"".join(o.tobytes() for o in outputs)).hexdigest()


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + diskcache.SUFFIX))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    return directory


X = np.linspace(-3, 3, 1000)


# ---------------------------------------------------------------- reloading


def test_fresh_process_compiles_nothing(cache_dir: Path) -> None:
    first, second = run_child(cache_dir), run_child(cache_dir)
    assert first["cached"] and second["cached"]
    assert first["stats"]["codegen"] >= 1 and first["stats"]["disk_misses"] >= 1
    assert second["stats"]["codegen"] == 0 and second["stats"]["disk_misses"] == 0
    assert second["stats"]["disk_hits"] >= 1
    assert second["seconds"] < first["seconds"]
    assert second["digest"] == first["digest"]
    fresh = JitSession().compile(program(), name="child")  # no cache at all
    assert digest_of(fresh([X])) == first["digest"]


def test_same_program_twice_in_a_session_is_loaded_once(cache_dir: Path) -> None:
    session = JitSession(cache_dir=str(cache_dir))
    a, b = session.compile(program()), session.compile(program())
    c = session.compile(program(scale=0.25))
    assert session.stats.codegen == 2 and session.stats.session_hits == 1
    assert a.name == b.name != c.name
    assert digest_of(a([X])) == digest_of(b([X])) != digest_of(c([X]))
    assert len(entries(cache_dir)) == 2


def test_key_material_names_what_the_code_depends_on(cache_dir: Path) -> None:
    session = JitSession(cache_dir=str(cache_dir))
    material = session.key_material(program(), "k")
    for field in ("compiler", "llvmlite", "llvm", "cpu", "features", "libmvec", "program"):
        assert material[field]
    keys = {
        diskcache.digest(material),
        diskcache.digest(session.key_material(program(scale=0.25), "k")),
        diskcache.digest(session.key_material(program(), "other")),
        diskcache.digest(JitSession(vector_math=False).key_material(program(), "k")),
        diskcache.digest(JitSession(opt_level=2).key_material(program(), "k")),
    }
    assert len(keys) == 5
    assert diskcache.digest(JitSession().key_material(program(), "k")) == diskcache.digest(material)


def test_add_ir_goes_through_the_cache(cache_dir: Path) -> None:
    ir = "define i64 @answer() {\n  ret i64 42\n}\n"
    first = JitSession(cache_dir=str(cache_dir))
    first.add_ir(ir, "answer", cache=True)
    first.add_ir(ir.replace("answer", "uncached"), "uncached")  # not asked to: never stored
    second = JitSession(cache_dir=str(cache_dir))
    native = second.add_ir(ir, "answer", cache=True)
    assert (first.stats.codegen, second.stats.codegen, second.stats.disk_hits) == (2, 0, 1)
    assert len(entries(cache_dir)) == 1
    import ctypes

    assert ctypes.CFUNCTYPE(ctypes.c_int64)(native.address)() == 42


# ---------------------------------------------------------------- bad files


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def damage_empty(path: Path) -> None:
    path.write_bytes(b"")


def damage_garbage(path: Path) -> None:
    path.write_bytes(os.urandom(5000))


def damage_foreign(path: Path) -> None:
    """A complete, valid entry, but of another key (another program)."""
    other = JitSession()
    key = diskcache.digest(other.key_material(program(scale=3.0), "kernel"))
    symbol = f"kernel_{key[:16]}"
    entry = diskcache.Entry(symbol, b"\x7fELF not really", "ir", "optimised ir")
    path.write_bytes(diskcache.encode(key, entry))


def damage_symlink(path: Path) -> None:
    target = path.with_name("elsewhere.bin")
    path.rename(target)
    path.symlink_to(target)


@pytest.mark.parametrize("damage", [damage_truncate, damage_flip_a_byte, damage_empty,
                                    damage_garbage, damage_foreign, damage_symlink])  # fmt: skip
def test_bad_entries_are_logged_and_recompiled(cache_dir: Path, damage, caplog) -> None:
    want = JitSession(cache_dir=str(cache_dir)).compile(program())([X])
    (path,) = entries(cache_dir)
    damage(path)
    session = JitSession(cache_dir=str(cache_dir))
    with caplog.at_level(logging.WARNING, logger="symgrad"):
        got = session.compile(program())([X])
    assert "ignoring code cache file" in caplog.text
    assert session.stats.codegen == 1 and session.stats.disk_hits == 0
    assert digest_of(got) == digest_of(want)
    again = JitSession(cache_dir=str(cache_dir))  # the rewritten entry is good again
    assert digest_of(again.compile(program())([X])) == digest_of(want)
    assert again.stats.disk_hits == 1 and again.stats.codegen == 0


def test_decode_checks_magic_key_and_completeness() -> None:
    key, other = "a" * 64, "b" * 64
    data = diskcache.encode(key, diskcache.Entry("f", b"object", "ir", "opt"))
    assert diskcache.decode(key, data) == diskcache.Entry("f", b"object", "ir", "opt")
    for bad_key, bad_data, words in [(other, data, "another key"), (key, data[:-1], "checksum"),
                                     (key, b"XX" + data[2:], "magic"), (key, data[:10], "magic")]:  # fmt: skip
        with pytest.raises(diskcache.CorruptEntry, match=words):
            diskcache.decode(bad_key, bad_data)


# ---------------------------------------------------------------- concurrency


WRITER = textwrap.dedent("""
    import sys
    from symgrad.compiler import diskcache
    cache = diskcache.DiskCache.open(sys.argv[1])
    entry = diskcache.Entry("f", bytes(range(256)) * 400, "ir " * 1000, "opt " * 1000)
    for _ in range(int(sys.argv[2])):
        assert cache.store("c" * 64, entry)
""")


def test_concurrent_writers_never_expose_a_partial_entry(cache_dir: Path) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(cache_dir), "600"])
               for _ in range(2)]  # fmt: skip
    cache = diskcache.DiskCache.open(cache_dir)
    assert cache is not None
    expected = diskcache.Entry("f", bytes(range(256)) * 400, "ir " * 1000, "opt " * 1000)
    seen = 0
    while any(w.poll() is None for w in writers):
        entry = cache.load("c" * 64, "f")
        assert entry is None or entry == expected
        seen += entry is not None
    assert all(w.returncode == 0 for w in writers) and seen > 0
    assert cache.errors == 0 and cache.load("c" * 64, "f") == expected
    assert [p.name for p in cache_dir.iterdir()] == ["c" * 64 + diskcache.SUFFIX]  # no temp files left


def test_two_processes_compiling_the_same_program(cache_dir: Path) -> None:
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(cache_dir)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = [json.loads(c.communicate(timeout=120)[0].splitlines()[-1]) for c in children]
    assert results[0]["digest"] == results[1]["digest"]
    assert len(entries(cache_dir)) == 1
    assert run_child(cache_dir)["stats"]["codegen"] == 0


# ---------------------------------------------------------------- unsafe or unusable directories


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_directory_writable_by_others_is_refused(cache_dir: Path, mode: int, caplog) -> None:
    cache_dir.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="symgrad"):
        session = JitSession(cache_dir=str(cache_dir))
    assert session.disk_cache is None and "writable by group or others" in caplog.text
    assert session.compile(program())([X])[0].shape == (1,)
    assert entries(cache_dir) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_directory_of_another_user_is_refused(cache_dir: Path, caplog) -> None:
    os.chown(cache_dir, 12345, -1)
    with caplog.at_level(logging.WARNING, logger="symgrad"):
        assert JitSession(cache_dir=str(cache_dir)).disk_cache is None
    assert "owned by uid 12345" in caplog.text


def test_directory_that_cannot_be_created(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="symgrad"):
        session = JitSession(cache_dir=str(blocker / "cache"))
    assert session.disk_cache is None and "cannot create it" in caplog.text
    assert session.compile(program())([X])[0].shape == (1,)


def test_unwritable_directory(cache_dir: Path, monkeypatch, caplog) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root writes anywhere: simulate it

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(diskcache.tempfile, "mkstemp", refuse)
    else:
        cache_dir.chmod(0o500)
    session = JitSession(cache_dir=str(cache_dir))
    with caplog.at_level(logging.WARNING, logger="symgrad"):
        got = session.compile(program())([X])
    assert "could not write code cache entry" in caplog.text
    assert session.disk_cache is not None and session.disk_cache.errors == 1
    assert digest_of(got) == digest_of(JitSession().compile(program())([X]))
    cache_dir.chmod(0o700)
    assert entries(cache_dir) == []


def test_new_directory_is_private(tmp_path: Path) -> None:
    session = JitSession(cache_dir=str(tmp_path / "new" / "cache"))
    assert session.disk_cache is not None
    assert (tmp_path / "new" / "cache").stat().st_mode & 0o077 == 0


# ---------------------------------------------------------------- size bound and clearing


def blob(size: int) -> diskcache.Entry:
    return diskcache.Entry("s", b"x" * size, "ir", "opt")


def entry_bytes(size: int) -> int:
    return len(diskcache.encode("k" * 64, blob(size)))


def test_a_store_beyond_the_bound_evicts_the_least_recently_used(cache_dir: Path, caplog) -> None:
    cache = diskcache.DiskCache(cache_dir, max_bytes=3 * entry_bytes(1000))
    a, b, c, d = (letter * 64 for letter in "abcd")
    for age, key in enumerate((a, b, c)):
        assert cache.store(key, blob(1000))
        os.utime(cache.path(key), (1000 + age, 1000 + age))  # a is the oldest, then b, c
    assert cache.load(a, "s") == blob(1000)  # a hit makes a the most recently used
    with caplog.at_level(logging.INFO, logger="symgrad"):
        assert cache.store(d, blob(1000))
    assert sorted(p.name[0] for p in entries(cache_dir)) == ["a", "c", "d"]
    assert cache.evictions == 1 and "evicted 1 least recently used" in caplog.text
    assert cache.size() <= cache.max_bytes
    assert cache.load(b, "s") is None and cache.load(c, "s") == blob(1000)


def test_the_entry_just_stored_is_kept_even_if_alone_too_big(cache_dir: Path) -> None:
    cache = diskcache.DiskCache(cache_dir, max_bytes=100)
    cache.store("a" * 64, blob(500))
    cache.store("b" * 64, blob(500))
    assert [p.name[0] for p in entries(cache_dir)] == ["b"]


def test_small_stores_check_the_size_now_and_then(cache_dir: Path) -> None:
    cache = diskcache.DiskCache(cache_dir, max_bytes=2**30)  # an eighth is 128 MiB
    for k in range(50):
        cache.store(f"{k:064x}", blob(100))
    assert cache.checks <= 3 and cache.evictions == 0  # checks are rare: about 1 in 10^6 here
    cache.max_bytes = 0  # every store now checks, and nothing but the new entry stays
    cache.store("f" * 64, blob(100))
    assert cache.checks >= 1 and [p.name for p in entries(cache_dir)] == ["f" * 64 + diskcache.SUFFIX]


@pytest.mark.parametrize("text, expected", [("", diskcache.DEFAULT_MAX_BYTES), ("1000", 1000),
                                            ("2M", 2 * 2**20), ("512MiB", 512 * 2**20),
                                            ("1.5g", 3 * 2**29), ("lots", diskcache.DEFAULT_MAX_BYTES)])  # fmt: skip
def test_size_bound_from_the_environment(monkeypatch, caplog, text: str, expected: int) -> None:
    monkeypatch.setenv(diskcache.MAX_BYTES_ENV, text)
    with caplog.at_level(logging.WARNING, logger="symgrad"):
        assert diskcache.max_bytes_from_env() == expected
    assert ("ignoring" in caplog.text) == (text == "lots")


def test_clear_removes_cache_files_and_nothing_else(cache_dir: Path) -> None:
    cache = diskcache.DiskCache(cache_dir)
    cache.store("a" * 64, blob(10))
    cache.store("b" * 64, blob(10))
    (cache_dir / ".abc-123.tmp").write_bytes(b"partial")
    (cache_dir / "notes.txt").write_text("not ours")
    assert diskcache.clear(cache_dir) == 3
    assert [p.name for p in cache_dir.iterdir()] == ["notes.txt"]
    assert diskcache.clear(cache_dir / "missing") == 0


def test_clearing_the_code_cache_with_disk(cache_dir: Path, monkeypatch) -> None:
    from symgrad.cache import CodeCache

    session = JitSession(cache_dir=str(cache_dir))
    session.compile(program())
    assert len(entries(cache_dir)) == 1
    CodeCache(_session=session).clear()  # memory only
    assert len(entries(cache_dir)) == 1
    CodeCache(_session=session).clear(disk=True)
    assert entries(cache_dir) == []
    JitSession(cache_dir=str(cache_dir)).compile(program())
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(cache_dir))  # no session yet: the configured one
    CodeCache().clear(disk=True)
    assert entries(cache_dir) == []


def test_a_file_removed_while_loading_is_a_miss(cache_dir: Path, monkeypatch, caplog) -> None:
    want = JitSession(cache_dir=str(cache_dir)).compile(program())([X])
    read = diskcache._read_private

    def evicted_meanwhile(path: Path) -> bytes:
        path.unlink()  # another process evicts it between the lookup and the read
        return read(path)

    monkeypatch.setattr(diskcache, "_read_private", evicted_meanwhile)
    session = JitSession(cache_dir=str(cache_dir))
    with caplog.at_level(logging.DEBUG, logger="symgrad"):
        got = session.compile(program())([X])
    assert "no entry" in caplog.text and "ignoring" not in caplog.text
    assert (session.stats.disk_misses, session.stats.codegen, session.disk_cache.errors) == (1, 1, 0)
    assert digest_of(got) == digest_of(want)


EVICTING_WRITER = textwrap.dedent("""
    import sys
    from symgrad.compiler import diskcache
    cache = diskcache.DiskCache.open(sys.argv[1], max_bytes=int(sys.argv[2]))
    for k in range(int(sys.argv[3])):
        key = f"{sys.argv[4]}{k:063x}"
        assert cache.store(key, diskcache.Entry("s", bytes(2000), "ir", "opt"))
        entry = cache.load(f"{'ab'[sys.argv[4] == 'a']}{k // 2:063x}", "s")  # the other's
        assert entry is None or entry.object_code == bytes(2000)
    assert cache.errors == 0
""")


def test_processes_storing_and_evicting_at_once(cache_dir: Path) -> None:
    bound = 6 * entry_bytes(2000)  # each store is more than an eighth of it: every store checks
    writers = [subprocess.Popen([sys.executable, "-c", EVICTING_WRITER, str(cache_dir), str(bound), "150", tag])
               for tag in "ab"]  # fmt: skip
    for w in writers:
        w.wait(timeout=120)
    assert [w.returncode for w in writers] == [0, 0]
    cache = diskcache.DiskCache(cache_dir, max_bytes=bound)
    assert cache.size() <= bound + entry_bytes(2000)  # the other's last store may not be counted yet
    assert not list(cache_dir.glob(".*.tmp"))
    for path in entries(cache_dir):
        assert cache.load(path.stem, "s") is not None
