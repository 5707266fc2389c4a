"""A training loop whose graph changes every iteration (issue 5: "a graph structure seen once
should not pay more than it gains"): step n computes mean(tanh(X_n @ W_n)**2) with a new
inner size n each step, so no two steps share a structure, then backward() and reads .grad.

symgrad's default interprets a structure's first backward and compiles it at the second
(`set_eager_compile_threshold(2)`); `compile at once` is threshold 1 (LLVM every step).
The peer is PyTorch eager; numpy is the hand-written gradient. The disk cache is off, so
every compile is real. Each variant runs in its own fresh process; medians over the steps.
Run: `python -m benchmarks.changing_graph`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from benchmarks.common import Row, Table, judge, main, run_child

STEPS = 30


def problem(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    return rng.standard_normal((16, n)), rng.standard_normal((n, 4))


def numpy_grad(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    A = np.tanh(X @ W)
    return X.T @ (2 * A * (1 - A**2) / A.size)


def child(variant: str) -> None:
    """STEPS steps, each of a new shape: per-step times and the worst error vs numpy."""
    if variant == "torch":
        from benchmarks.common import load_torch

        lib = load_torch()
    elif variant != "numpy":
        import symgrad as lib

        lib.set_eager_compile_threshold(1 if variant == "compile at once" else 2)
    times, worst = [], 0.0
    for n in range(1, STEPS + 1):
        X, W = problem(n)
        start = time.perf_counter()
        if variant == "numpy":
            grad = numpy_grad(X, W)
        else:
            w = lib.tensor(W, requires_grad=True)
            (lib.tanh(lib.tensor(X) @ w) ** 2).mean().backward()
            grad = w.grad.numpy()
        times.append(time.perf_counter() - start)
        ref = numpy_grad(X, W)
        worst = max(worst, float(np.max(np.abs(grad - ref)) / max(np.max(np.abs(ref)), 1e-300)))
    print(json.dumps({"median": statistics.median(times), "total": sum(times), "error": worst}))


def run(args: argparse.Namespace) -> list[Table]:
    variants = ["symgrad", "compile at once", "numpy"] + (["torch"] if _importable("torch") else [])
    env = {**os.environ, "SYMGRAD_CACHE_DIR": "off", "OPENBLAS_NUM_THREADS": "1"}
    results = {v: run_child("benchmarks.changing_graph", ["--child", v], 600, env) for v in variants}
    notes = []
    times = {}
    for v, r in results.items():
        if isinstance(r, str):
            notes.append(f"{v}: {r}")
            continue
        times[v] = r["median"]
        notes.append(f"{v}: {r['total'] * 1e3:.0f} ms for all {STEPS} steps, worst relative error vs numpy {r['error']:.1e}")
    peers = [p for p in ["compile at once", "numpy", "torch"] if p in times]
    table = Table(f"Changing graph: {STEPS} eager steps, each of a new shape (median per step)", peers)
    beats = times.get("compile at once")
    status = judge(("interpreting first sightings pays off", None if beats is None else times["symgrad"] < beats),
                   measured=times.get("symgrad", 0.0))  # fmt: skip
    table.rows.append(Row("changing graph", f"16xn @ nx4, n=1..{STEPS}", "float64", times, "", status))
    table.notes = notes
    return [table]


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


if __name__ == "__main__":
    if "--child" in sys.argv:
        child(sys.argv[sys.argv.index("--child") + 1])
    else:
        main(run, __doc__)
