"""Memory over many compile/evict cycles and over a long eager training loop.

Not collected by pytest: tests/test_leaks.py runs it with small counts in a child
process (so the numbers are this workload's alone); run it by hand for the full size:

    SYMGRAD_CACHE_DIR=off python tests/leak_check.py cycles --count 10000 --limit 50
    python tests/leak_check.py training --count 5000

Each prints one JSON line: resident set size (RSS, MiB) after warm-up, at the end, its
peak, and what was compiled, evicted and still alive. Imports symgrad and numpy only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too
import symgrad  # noqa: E402
from symgrad import nn, optim  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def live(kind: type) -> int:
    return sum(isinstance(o, kind) for o in gc.get_objects())


def live_code() -> dict:
    """Machine code still loaded: NativeFunction objects and the MCJIT engines they own."""
    import llvmlite.binding as llvm
    from symgrad.compiler import NativeFunction

    return {"native_functions": live(NativeFunction), "engines": live(llvm.ExecutionEngine)}


def one_cycle(k: int, x: np.ndarray) -> None:
    """One new program, really compiled (a new constant is a new structure) and called
    twice (the second call builds its native entry): an eager backward plan, which lands
    in the bounded cache (even k), or a compiled transform, dropped right away (odd k)."""
    scale = 1.0 + k * 1e-6
    if k % 2:
        f = symgrad.compile(lambda a: (a * scale).exp())
        for _ in range(2):
            assert np.allclose(f(x), np.exp(x * scale)), k
        return
    for _ in range(2):
        w = symgrad.tensor(x, requires_grad=True)
        ((w * w).sin() * scale).sum().backward()
        assert np.allclose(w.grad.numpy(), np.cos(x * x) * 2 * x * scale), k


def cycles(count: int, limit: int, warmup: int) -> dict:
    symgrad.set_cache_limit(limit)
    x = np.linspace(-1.0, 1.0, 8)
    start = time.perf_counter()
    before, code_before = None, None
    for k in range(count):
        one_cycle(k, x)
        if k + 1 == warmup:
            gc.collect()
            before, code_before = rss_mib(), live_code()
    gc.collect()
    info = symgrad.cache_info()
    return {"workload": "compile/evict cycles", "cycles": count, "limit": limit, "warmup": warmup,
            "rss_after_warmup_mib": before, "rss_end_mib": rss_mib(), "peak_rss_mib": peak_mib(),
            "code_after_warmup": code_before, "code_end": live_code(),
            "compiles": info["compiles"], "llvm_compiles": info["llvm_compiles"],
            "evictions": info["evictions"], "entries": info["entries"],
            "seconds": time.perf_counter() - start}  # fmt: skip


def training(count: int, warmup: int) -> dict:
    """A small MLP trained with SGD, the same structure every step."""
    rng = np.random.default_rng(0)
    symgrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = optim.SGD(model.parameters(), lr=0.05)
    x = symgrad.tensor(rng.standard_normal((32, 8)))
    y = symgrad.tensor(rng.standard_normal((32, 1)))
    start, before, tensors_before, losses = time.perf_counter(), None, None, []
    for step in range(count):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step + 1 == warmup:
            gc.collect()
            before, tensors_before = rss_mib(), live(symgrad.Tensor)
    gc.collect()
    info = symgrad.cache_info()
    return {"workload": "eager training loop", "steps": count, "warmup": warmup,
            "rss_after_warmup_mib": before, "rss_end_mib": rss_mib(), "peak_rss_mib": peak_mib(),
            "live_tensors_after_warmup": tensors_before, "live_tensors_end": live(symgrad.Tensor),
            "compiles": info["compiles"], "first_loss": losses[0], "last_loss": losses[-1],
            "seconds": time.perf_counter() - start}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=("cycles", "training"))
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=50, help="cache entries kept (cycles)")
    parser.add_argument("--warmup", type=int, default=0, help="default: a fifth of --count")
    args = parser.parse_args()
    warmup = args.warmup or max(1, args.count // 5)
    if args.workload == "cycles":
        report = cycles(args.count, args.limit, warmup)
    else:
        report = training(args.count, warmup)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
