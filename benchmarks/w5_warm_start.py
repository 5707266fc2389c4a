"""W5: warm start. A fresh process imports symgrad and calls a function that an earlier
process already compiled: how long is the first call after the import, and does it do any
LLVM work?

One cold process compiles W1 (and W3) with SYMGRAD_CACHE_DIR pointing at a new temporary
directory; then fresh processes with the same directory make the same first call. LLVM work
is counted by wrapping llvmlite's parse_assembly (non-empty modules parsed) and
ExecutionEngine.add_object_file (object code loaded) in the child before symgrad is imported.
Peers: jax with its persistent compilation cache in a temporary directory (warm: jit
retraces, then reads the cache), PyTorch eager (no compilation at all).
Run: `python -m benchmarks.w5_warm_start`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from benchmarks.common import Row, Table, Time, at_most, fmt_time, judge, main, run_child

# ---- the child: import, then one first call -----------------------------------------------


def count_llvm_work() -> dict[str, int]:
    """Wrap llvmlite entry points so that this process counts what LLVM does."""
    import llvmlite.binding as llvm

    counts = {"modules": 0, "objects": 0}
    parse, add_object = llvm.parse_assembly, llvm.ExecutionEngine.add_object_file

    def counted_parse(text, *a, **k):
        counts["modules"] += bool(str(text).strip())
        return parse(text, *a, **k)

    def counted_add_object(self, *a, **k):
        counts["objects"] += 1
        return add_object(self, *a, **k)

    llvm.parse_assembly, llvm.ExecutionEngine.add_object_file = counted_parse, counted_add_object
    return counts


def child(lib: str, case: str, cache_dir: str) -> None:
    counts = count_llvm_work() if lib == "symgrad" else {}
    start = time.perf_counter()
    fn, args, ref = import_and_build(lib, case, cache_dir)
    imported = time.perf_counter() - start
    from benchmarks.common import max_rel_error

    start = time.perf_counter()
    result = fn(*args)
    first = time.perf_counter() - start
    print(json.dumps({"import": imported, "first": first, "error": max_rel_error(result, ref), **counts}))


def import_and_build(lib: str, case: str, cache_dir: str) -> tuple:
    """Import `lib` and its workload (W1 or W3): (callable, arguments, numpy's answer)."""
    from benchmarks import w1_call, w3_mlp

    params, X, Y = w3_mlp.problem()
    if lib == "symgrad":
        import symgrad as sg

        w1 = sg.value_and_grad(w1_call.f)
        w3 = sg.value_and_grad(lambda p, X, Y: w3_mlp.loss(p, X, Y, sg.tanh))
    elif lib == "jax":
        jax = persistent_jax(cache_dir)
        w1 = blocking(jax, jax.jit(jax.value_and_grad(w1_call.f)))
        w3 = blocking(jax, jax.jit(jax.value_and_grad(lambda p, X, Y: w3_mlp.loss(p, X, Y, jax.numpy.tanh))))
    else:
        from benchmarks.common import load_torch

        torch = load_torch()
        w1 = w1_call.torch_step(torch, w1_call.f)
        w3 = w3_mlp.eager_step(torch, torch.tensor, params, X, Y)
    if case == "w1":
        return w1, (w1_call.X,), w1_call.numpy_value_and_grad(w1_call.X)
    return w3, (params, X, Y), w3_mlp.numpy_step(params, X, Y)


def persistent_jax(cache_dir: str):
    from benchmarks.common import load_jax

    jax = load_jax()
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return jax


def blocking(jax, fn):
    return lambda *args: jax.block_until_ready(fn(*args))


# ---- the parent -----------------------------------------------------------------------------


def spawn(lib: str, case: str, cache_dir: str, timeout: float) -> dict | str:
    env = {**os.environ, "SYMGRAD_CACHE_DIR": cache_dir}
    report = run_child("benchmarks.w5_warm_start", ["--child", lib, case, cache_dir], timeout, env)
    if isinstance(report, str):
        return report
    return f"WRONG ({report['error']:.0e})" if report["error"] > 1e-9 else report


def cold_and_warm(lib: str, case: str, runs: int, timeout: float) -> tuple[Time, Time, dict, str]:
    """(cold first call, median warm first call, last warm report, cache dir summary).
    torch eager has no cache: its one process is both cold and warm."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{lib}-") as cache_dir:
        cold = spawn(lib, case, cache_dir, timeout)
        summary = directory_summary(cache_dir)
        warm = [spawn(lib, case, cache_dir, timeout) for _ in range(runs)] if lib != "torch" else [cold]
    if isinstance(cold, str):
        return cold, cold, {}, summary
    bad = [w for w in warm if isinstance(w, str)]
    if bad:
        return cold["first"], bad[0], {}, summary
    return cold["first"], statistics.median(w["first"] for w in warm), warm[-1], summary


def directory_summary(path: str) -> str:
    files = [os.path.join(d, f) for d, _, names in os.walk(path) for f in names]
    return f"{len(files)} files, {sum(os.path.getsize(f) for f in files) / 1024:.0f} KiB"


def run(args: argparse.Namespace) -> list[Table]:
    from importlib.util import find_spec

    libs = ["symgrad"] + [lib for lib in ("torch", "jax") if find_spec(lib) is not None]
    runs = 1 if args.quick else 3  # warm processes for symgrad; 1 for jax
    table = Table("W5: warm start, first call in a fresh process after import (cache from an earlier process)",
                  libs[1:])  # fmt: skip
    for case in ("w1", "w3"):
        results = {
            lib: cold_and_warm(lib, case, runs if lib == "symgrad" else 1, args.timeout) for lib in libs
        }
        cold = {lib: r[0] for lib, r in results.items()}
        warm = {lib: r[1] for lib, r in results.items()}
        report, summary = results["symgrad"][2], results["symgrad"][3]
        no_llvm = None if not report else report["modules"] == 0
        table.rows.append(Row(f"W5 cold first call {case.upper()}", "", "float64", cold, "", ""))
        target = "≤ 30 ms; no LLVM work" if case == "w1" else "no LLVM work"
        checks = [("≤ 30 ms", at_most(warm["symgrad"], 1.0, 0.03))] if case == "w1" else []
        table.rows.append(Row(f"W5 warm first call {case.upper()}", "", "float64", warm, target,
                              judge(*checks, ("no LLVM work", no_llvm), measured=warm["symgrad"])))  # fmt: skip
        if report:
            table.notes.append(
                f"{case.upper()}: after the cold process the symgrad cache dir held {summary}; a warm process "
                f"parsed {report['modules']} LLVM IR module(s) (each one optimised and compiled) and added "
                f"{report['objects']} object file(s) to its engine; its import took {fmt_time(report['import'])} "
                "(in-process, with the workload modules)."
            )  # fmt: skip
        if "jax" in results:
            table.notes.append(
                f"{case.upper()}: jax's cache dir held {results['jax'][3]} after its cold process."
            )
    table.notes += [
        f"Cold: one fresh process with an empty cache dir. Warm: median of {runs} fresh process(es) "
        "(jax: 1) with the directory the cold process left; torch: one process for both. Times "
        "exclude the import; results are checked against numpy.",
        "jax: persistent compilation cache on (min compile time 0), so a warm jit still traces "
        "and lowers, then reads XLA's executable from disk; torch is eager (nothing to compile).",
    ]
    return [table]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:5])
    else:
        main(run, __doc__)
