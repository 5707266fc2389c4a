"""W4 per stage: where one first call of W4's chain (or W1, W3) spends its time, in this
process, with the disk cache off. Each stage's function is wrapped with a timer; nested
stages are reported on their own (trace excludes differentiate, emit excludes LLVM).
Run: `python -m benchmarks.w4_stages [--k 10000 | --w1 | --w3]`; median of --repeat
fresh processes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict


def _timed(owner: object, name: str, spent: dict[str, float], label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def child(case: str) -> dict[str, float]:
    """Seconds per stage of one first call of `case` ("w1", "w3" or "chain:K")."""
    os.environ["SYMGRAD_CACHE_DIR"] = "off"
    import llvmlite.binding as llvm
    from symgrad.compiler import jit

    from benchmarks import w4_compile
    from symgrad import simplify, staged, transforms

    spent: dict[str, float] = defaultdict(float)
    for owner, name, label in [
        (transforms.Staged, "trace", "trace+differentiate"), (transforms, "symbolic_vjp", "differentiate"),
        (simplify.Rewriter, "run", "simplify"), (staged, "lower", "lower"),
        (jit, "check_program", "check"), (jit.JitSession, "_build", "emit+LLVM"),
        (jit.JitSession, "_codegen", "LLVM"), (llvm, "parse_assembly", "LLVM parse"),
        (llvm.TargetMachine, "emit_object", "LLVM code generation"), (jit, "_engine_with", "load"),
        (jit.JitSession, "__init__", "JIT session"),
    ]:  # fmt: skip
        _timed(owner, name, spent, label)
    fn, args, _ = w4_compile.child_case("symgrad", case)
    start = time.perf_counter()
    fn(*args)
    total = time.perf_counter() - start
    stages = {
        "trace": spent["trace+differentiate"] - spent["differentiate"],
        "differentiate": spent["differentiate"],
        "simplify": spent["simplify"],
        "lower": spent["lower"],
        "check": spent["check"],
        "emit IR": spent["emit+LLVM"] - spent["LLVM"],
        "LLVM parse": spent["LLVM parse"],
        "LLVM code generation": spent["LLVM code generation"],
        "LLVM other (verify, pipeline)": spent["LLVM"] - spent["LLVM parse"] - spent["LLVM code generation"],
        "load": spent["load"],
        "JIT session": spent["JIT session"],
    }
    stages["other"] = total - sum(stages.values())
    stages["first call"] = total
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--k", type=int, default=10000, help="the chain's length (default 10000)")
    group.add_argument("--w1", action="store_true")
    group.add_argument("--w3", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes (median)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    case = "w1" if args.w1 else "w3" if args.w3 else f"chain:{args.k}"
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-m", "benchmarks.w4_stages", "--child", case],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        runs.append(json.loads(out.splitlines()[-1]))
    print(f"W4 stages, {case}, median of {args.repeat} fresh processes:")
    for stage in runs[0]:
        print(f"  {stage:32s} {statistics.median(r[stage] for r in runs) * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
