"""Bounded caches and freed machine code: eviction order, recompiling what was evicted,
memory over many compile/evict cycles and a long training loop, kept references that
outlive an eviction (checked in child processes, so a crash fails a test instead of
killing pytest)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad.cache import DEFAULT_CACHE

ROOT = Path(__file__).resolve().parents[1]
X = np.linspace(-1.0, 1.0, 7)
# llvmlite 0.50 leaks about 55-75 KiB per LLVM optimisation run (LLVMPY_CreatePassBuilder
# allocates a PassInstrumentationCallbacks that nothing deletes, and every run registers
# callbacks into it); symgrad cannot free that, so compile/evict cycles are allowed this
# much resident-set growth per LLVM compile, and must keep their loaded code bounded.
LLVMLITE_KIB_PER_COMPILE = 120
TRAINING_GROWTH_MIB = 2.0  # same structure every step: nothing compiles after warm-up


@pytest.fixture
def limit():
    """Set the cache limit for one test; the previous one comes back afterwards."""
    previous = DEFAULT_CACHE.limit
    yield sg.set_cache_limit
    sg.set_cache_limit(previous)


def backward(scale: float) -> np.ndarray:
    """One eager backward: a new scale is a new structure (constants are compiled in)."""
    w = sg.tensor(X, requires_grad=True)
    ((w * w).sin() * scale).sum().backward()
    return w.grad.numpy()


def expected(scale: float) -> np.ndarray:
    return np.cos(X * X) * 2 * X * scale


def child(*argv: str, timeout: float = 300) -> str:
    """Run python with `argv` in a fresh process without a disk cache; its stdout."""
    env = {**os.environ, "SYMGRAD_CACHE_DIR": "off", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, f"child exited with {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


# ---------------------------------------------------------------- eviction


def test_eager_plans_are_evicted_least_recently_used_first(limit) -> None:
    limit(3)
    a, b, c, d = (1.0 + k / 7919 for k in range(1, 5))  # scales no other test uses
    compiles = sg.cache_info()["compiles"]
    for s in (a, b, c):
        np.testing.assert_allclose(backward(s), expected(s), rtol=1e-12)
    backward(a)  # a is now the most recently used: b is the oldest
    assert sg.cache_info()["compiles"] == compiles + 3
    evictions = DEFAULT_CACHE.stats.evictions
    np.testing.assert_allclose(backward(d), expected(d), rtol=1e-12)
    assert len(DEFAULT_CACHE.entries) == 3 and DEFAULT_CACHE.stats.evictions == evictions + 1
    for s in (a, c, d):  # still cached
        backward(s)
    assert sg.cache_info()["compiles"] == compiles + 4
    np.testing.assert_allclose(backward(b), expected(b), rtol=1e-12)  # evicted: compiled again
    assert sg.cache_info()["compiles"] == compiles + 5


def test_transform_signatures_are_bounded(limit) -> None:
    limit(2)
    f = sg.compile(lambda a: (a * 1.75).exp())
    for n in (2, 3, 2, 4):  # 3 is the least recently used when 4 arrives
        np.testing.assert_allclose(f(np.linspace(0, 1, n)), np.exp(np.linspace(0, 1, n) * 1.75), rtol=1e-12)
    info = f.cache_info()
    assert [e["signature"] for e in info["entries"]] == ["args[0]: float64[2]", "args[0]: float64[4]"]
    assert info["evictions"] == 1 and info["misses"] == 3
    np.testing.assert_allclose(f(np.linspace(0, 1, 3)), np.exp(np.linspace(0, 1, 3) * 1.75), rtol=1e-12)
    assert f.cache_info()["misses"] == 4
    limit(1)  # lowering the limit trims live transforms at once
    assert len(f.cache_info()["entries"]) == 1


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_limits_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="set_cache_limit"):
        sg.set_cache_limit(bad)


def test_clear_cache_empties_transforms_too() -> None:
    f = sg.compile(lambda a: a * 2.25)
    f(X)
    sg.clear_cache()
    assert f.cache_info()["entries"] == [] and len(DEFAULT_CACHE.entries) == 0
    np.testing.assert_allclose(f(X), X * 2.25)


# ---------------------------------------------------------------- freed machine code


def test_an_evicted_plan_frees_its_engines(limit) -> None:
    limit(1)
    scale = 1.0 + 1 / 7907
    backward(scale), backward(scale)  # the second use builds the native entry
    plan = DEFAULT_CACHE.entries[next(reversed(DEFAULT_CACHE.entries))]
    assert plan.fast, "the plan's native entry was not built"
    kernel, entry_code = plan.compiled.native, plan.fast.__self__.code
    refs = [weakref.ref(x) for x in (kernel, kernel._engine, entry_code, entry_code._engine)]
    del plan, kernel, entry_code
    backward(scale + 1e-3)  # evicts the plan
    gc.collect()
    assert [r() for r in refs] == [None] * 4


def test_a_dropped_transform_frees_its_engines() -> None:
    f = sg.compile(lambda a: (a * 1.5).sin())
    f(X), f(X)
    compiled = next(iter(f.entries.values())).compiled
    refs = [weakref.ref(compiled.native), weakref.ref(f._fast.__self__.code)]
    del f, compiled
    gc.collect()
    assert [r() for r in refs] == [None, None]


KEPT = textwrap.dedent("""
    import gc
    import numpy as np
    import symgrad as sg
    from symgrad.cache import DEFAULT_CACHE

    x = np.linspace(-1.0, 1.0, 5)
    sg.set_cache_limit(1)
    f = sg.compile(lambda a: (a * 1.5).exp())
    f(x), f(x)
    fast, compiled = f._fast, next(iter(f.entries.values())).compiled
    entry = compiled.fast_entry()
    for _ in range(3):  # interpreted, compiled, then through its native entry
        w = sg.tensor(x, requires_grad=True)
        ((w * w).sin() * 1.5).sum().backward()
    plan = next(iter(DEFAULT_CACHE.entries.values()))
    sg.clear_cache()  # evicts everything: only the references above hold the code
    for k in range(20):  # new programs: freed memory gets reused
        g = sg.compile(lambda a: (a * (2.0 + k)).tanh())
        g(x), g(x)
        w = sg.tensor(x, requires_grad=True)
        ((w * w).cos() * (2.0 + k)).sum().backward()
    del g, w
    gc.collect()
    want, grad = np.exp(1.5 * x), np.cos(x * x) * 2 * x * 1.5
    assert np.allclose(fast(x), want) and np.allclose(entry(x), want)
    assert np.allclose(compiled([x])[0], want) and np.allclose(f(x), want)
    assert np.allclose(plan.fast(x), grad) and np.allclose(plan.compiled([x])[0], grad)
    print("ok")
""")


def test_kept_references_keep_their_code_after_eviction() -> None:
    assert child("-c", KEPT).split() == ["ok"]


# ---------------------------------------------------------------- memory over time


def leak_check(*args: str) -> dict:
    out = child(str(ROOT / "tests" / "leak_check.py"), *args)
    return json.loads(out.splitlines()[-1])


def test_memory_stays_bounded_over_compile_evict_cycles() -> None:
    report = leak_check("cycles", "--count", "240", "--limit", "20", "--warmup", "80")
    assert report["compiles"] == 240 and report["entries"] <= 20 and report["evictions"] >= 100
    # each cached plan holds two engines (kernel, native entry); dropped transforms hold none
    assert report["code_end"] == report["code_after_warmup"], report
    assert report["code_end"]["engines"] <= 2 * 20 + 2, report
    llvm_runs = report["llvm_compiles"] * (240 - 80) / 240
    growth = report["rss_end_mib"] - report["rss_after_warmup_mib"]
    assert growth < llvm_runs * LLVMLITE_KIB_PER_COMPILE / 1024, report


def test_eager_training_loop_holds_memory_flat() -> None:
    report = leak_check("training", "--count", "800", "--warmup", "200")
    assert report["compiles"] <= 2 and report["last_loss"] < report["first_loss"]
    assert report["live_tensors_end"] == report["live_tensors_after_warmup"], report
    growth = report["rss_end_mib"] - report["rss_after_warmup_mib"]
    assert growth < TRAINING_GROWTH_MIB, report


def test_views_do_not_keep_their_base_in_a_cycle() -> None:
    """A view remembers its base (to be remade after an in-place write) weakly: dropping both
    frees the base at once, not at the next garbage collection."""
    x = sg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    gc.disable()
    try:
        y = x * 2
        views = [y[1:], y.view(3, 1), y.t(), y.unsqueeze(0)]
        ref = weakref.ref(y)
        del y, views
        assert ref() is None
    finally:
        gc.enable()
