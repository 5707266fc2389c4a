"""Import time: wall time of `python -c "import symgrad"` against `import torch`, `import jax`
and `import numpy`, medians of several fresh subprocesses (interpreter start-up included;
`python -c pass` is shown for reference). The slowest modules of symgrad's import, from
`-X importtime`, go in the notes. Run: `python -m benchmarks.import_time`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from importlib.util import find_spec

from benchmarks.common import Row, Table, Time, at_most, fmt_time, judge, main


def wall_times(codes: dict[str, str], runs: int) -> dict[str, Time]:
    """Median wall time of `python -c code` for each code, run round-robin (noise hits all alike)."""
    samples: dict[str, list[float]] = {name: [] for name in codes}
    failed: dict[str, str] = {}
    for _ in range(runs):
        for name, code in codes.items():
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            samples[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                failed[name] = "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:50]
    return {name: failed.get(name) or statistics.median(samples[name]) for name in codes}


def import_profile(module: str, top: int = 5) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """From one `-X importtime` run: cumulative seconds of the big dependencies, and the
    modules with the most self time."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          capture_output=True, text=True)  # fmt: skip
    cumulative, own = {}, []
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[0].isdigit():
            cumulative[parts[2]] = int(parts[1]) / 1e6
            own.append((parts[2], int(parts[0]) / 1e6))
    deps = {
        name: cumulative[name]
        for name in (module, "sympy", "numpy", "llvmlite", "scipy")
        if name in cumulative
    }
    return deps, sorted(own, key=lambda r: -r[1])[:top]


def run(args: argparse.Namespace) -> list[Table]:
    runs = 3 if args.quick else 5
    peers = [lib for lib in ("torch", "jax", "numpy") if find_spec(lib) is not None]
    table = Table('Import time: python -c "import X", fresh process each run', peers)
    codes = {lib: f"import {lib}" for lib in ["symgrad", *peers]}
    times = wall_times({**codes, "python": "pass"}, runs)
    baseline = times.pop("python")
    status = judge(
        ("≤ 0.5x torch", at_most(times["symgrad"], times.get("torch"), 0.5)), measured=times["symgrad"]
    )
    table.rows.append(Row("import", "", "", times, "≤ 0.5x import torch", status))
    deps, own = import_profile("symgrad")
    table.notes += [
        f"Median of {runs} runs each, round-robin; includes interpreter start-up "
        f"(`python -c pass`: {fmt_time(baseline)}).",
        "One `-X importtime` run of symgrad, cumulative: "
        + ", ".join(f"{n} {fmt_time(t)}" for n, t in deps.items())
        + "; most self time: "
        + ", ".join(f"{n} {fmt_time(t)}" for n, t in own)
        + ".",
    ]
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
