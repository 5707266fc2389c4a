"""Shared pieces of the benchmark scripts: medians of timed batches, optional peers (torch,
jax), result checks, verdicts against issue 5's targets, and markdown tables.

Ratios are always symgrad's time divided by the peer's time, measured in the same process:
below 1 symgrad is faster ("2x faster than X" is a ratio of at most 0.5).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where `benchmarks` imports from
Time = float | str | None  # seconds, a reason it was not measured ("timeout > 30 s"), or absent


# ---- timing ---------------------------------------------------------------------------------


def _batch(fn: Callable, args: tuple, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn(*args)
    return time.perf_counter() - start


def calibrate(fn: Callable, args: tuple, batch: float) -> tuple[int, float]:
    """(calls per batch, seconds per batch) so that one batch of fn(*args) takes about `batch` s.
    The first estimate is the fastest of three single calls: a call that still compiles
    something (symgrad's eager backward builds its native entry at a structure's third
    pass) must not make every batch a single call."""
    number, elapsed = 1, min(_batch(fn, args, 1) for _ in range(3))
    while elapsed < batch:
        number = min(10**7, max(2 * number, int(1.2 * number * batch / max(elapsed, 1e-9))))
        elapsed = _batch(fn, args, number)
    return number, elapsed


def median_time(
    fn: Callable, *args: Any, repeats: int = 7, batch: float = 0.02, budget: float = 1.5
) -> float:
    """Median seconds per call of fn(*args) over `repeats` batches (fewer, at least 3, when
    that would exceed `budget` seconds), after one warm-up call."""
    t = compare({"fn": fn}, args, repeats=repeats, batch=batch, budget=budget)["fn"]
    if not isinstance(t, float):
        raise RuntimeError(t)
    return t


def compare(fns: dict[str, Callable], args: tuple, check: Callable[[str, Any], str | None] | None = None,
            repeats: int = 7, batch: float = 0.02, budget: float = 1.5) -> dict[str, Time]:  # fmt: skip
    """Median seconds per call of each fn(*args), timed round-robin so that a noisy neighbour
    slows every candidate alike and the ratios stay meaningful.

    Each candidate is called twice first (compiling whatever it compiles: symgrad builds a
    signature's native entry at its second call) and the first result passed to
    check(name, result), which returns None or why the result is wrong; a wrong or failing
    candidate gets that reason instead of a time. Batches last about `batch` seconds;
    there are fewer rounds (3 at least) when `repeats` rounds would exceed `budget` seconds.
    The garbage collector stays on: its cost is part of a call.
    """
    times: dict[str, Time] = {}
    live: dict[str, tuple[Callable, int]] = {}
    samples: dict[str, list[float]] = {}  # the calibrating batch is the first sample
    round_seconds = 0.0
    for name, fn in fns.items():
        try:
            result = fn(*args)
            problem = check(name, result) if check else None
            if problem is None:
                fn(*args)
                number, elapsed = calibrate(fn, args, batch)
                live[name], samples[name] = (fn, number), [elapsed / number]
                round_seconds += elapsed
        except Exception as error:  # noqa: BLE001 - a failing peer is reported, not raised
            problem = failure(error)
        times[name] = problem
    gc.collect()
    for _ in range(max(3, min(repeats, int(budget / max(round_seconds, 1e-9)))) - 1):
        for name, (fn, number) in live.items():
            samples[name].append(_batch(fn, args, number) / number)
    return {name: statistics.median(samples[name]) if name in live else t for name, t in times.items()}


def failure(error: BaseException) -> str:
    text = str(error).splitlines()[0][:40] if str(error) else ""
    return f"failed: {type(error).__name__}: {text}"


def checker(ref: Any, tol: float, notes: list[str], label: str = "") -> Callable[[str, Any], str | None]:
    """A check for compare(): the result must match `ref` within relative error `tol`."""

    def check(name: str, result: Any) -> str | None:
        err = max_rel_error(result, ref)
        if err <= tol:
            return None
        notes.append(f"{name}{label}: WRONG result, max relative error {err:.1e} (allowed {tol:.0e})")
        return f"WRONG ({err:.0e})"

    return check


# ---- child processes ---------------------------------------------------------------------


def run_child(module: str, argv: list[str], timeout: float, env: dict | None = None) -> dict | str:
    """Run `python -m <module> <argv>` from the repository root: the JSON object it prints on
    its last line of output, or why there is none ("timeout > 30 s", "failed: ...")."""
    command = [sys.executable, "-m", module, *argv]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timeout > {timeout:.0f} s"
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:50]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- peers ----------------------------------------------------------------------------------


def load_torch() -> Any:
    """torch pinned to one thread, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def load_jax() -> Any:
    """jax with float64 enabled, or None when it is not installed."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax


def versions() -> dict[str, str]:
    import importlib.metadata as md

    found = {"python": sys.version.split()[0]}
    for name in ("symgrad", "numpy", "sympy", "llvmlite", "torch", "jax", "jaxlib"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = "not installed"
    return found


# ---- checks and verdicts --------------------------------------------------------------------


def max_rel_error(got: Any, ref: Any) -> float:
    """Largest |got - ref| / max(|ref|, 1) over every array of two equally nested results."""
    if isinstance(ref, dict):
        return max(max_rel_error(got[k], ref[k]) for k in ref)
    if isinstance(ref, (tuple, list)):
        return max(max_rel_error(g, r) for g, r in zip(got, ref, strict=True))
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1.0), initial=0.0))


def tolerance(dtype: Any, reduced: int = 1) -> float:
    """Allowed relative error: a few ulp, more for float32 sums of `reduced` terms."""
    eps = float(np.finfo(dtype).eps)
    return 64 * eps * max(1.0, float(np.sqrt(reduced)))


def judge(*checks: tuple[str, bool | None], measured: Time = 0.0) -> str:
    """'met', or 'missed: <failed checks>'; checks that could not be made (None) are named.
    When symgrad's own time is a failure (`measured`: "WRONG ...", "failed: ..."), that instead."""
    if isinstance(measured, str):
        return measured
    failed = [label for label, ok in checks if ok is False]
    unknown = [label for label, ok in checks if ok is None]
    if not failed and unknown and len(unknown) == len(checks):
        return "not checked: " + ", ".join(unknown)
    verdict = "missed: " + ", ".join(failed) if failed else "met"
    return verdict + (" (not checked: " + ", ".join(unknown) + ")" if unknown else "")


def ratio(a: Time, b: Time) -> float | None:
    return a / b if isinstance(a, float) and isinstance(b, float) and b > 0 else None


def at_most(a: Time, b: Time, limit: float) -> bool | None:
    """Is a / b <= limit? None when either time is missing."""
    r = ratio(a, b)
    return None if r is None else r <= limit


# ---- tables ---------------------------------------------------------------------------------


@dataclass
class Row:
    workload: str
    size: str
    dtype: str
    times: dict[str, Time]  # "symgrad" first, then the peers
    target: str = ""
    status: str = ""


@dataclass
class Table:
    title: str
    peers: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        head = ["workload", "size", "dtype", "symgrad", *self.peers, *[f"sg/{p}" for p in self.peers], "target",
                "status"]  # fmt: skip
        lines = [f"### {self.title}", "", _line(head), _line(["---"] * len(head))]
        for r in self.rows:
            sg = r.times.get("symgrad")
            cells = [r.workload, r.size, r.dtype, fmt_time(sg), *[fmt_time(r.times.get(p)) for p in self.peers],
                     *[fmt_ratio(ratio(sg, r.times.get(p))) for p in self.peers], r.target, r.status]  # fmt: skip
            lines.append(_line(cells))
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def fmt_time(t: Time) -> str:
    if t is None:
        return "n/a"
    if isinstance(t, str):
        return t
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t * 1e9:.3g} ns"


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.3g}"


def tables_to_json(tables: list[Table]) -> str:
    return json.dumps([asdict(t) for t in tables])


def tables_from_json(text: str) -> list[Table]:
    out = []
    for t in json.loads(text):
        rows = [Row(**r) for r in t.pop("rows")]
        out.append(Table(rows=rows, **t))
    return out


# ---- command line ---------------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    p.add_argument("--big", action="store_true", help="add the largest size (W4: K=10000)")
    p.add_argument(
        "--quick", action="store_true", help="fewer sizes and repeats (W2: no 1e7), for a smoke run"
    )
    p.add_argument("--no-torch-compile", action="store_true", help="skip torch.compile (slow to warm up)")
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds allowed for one first-call subprocess"
    )
    p.add_argument("--json", help="also write the tables to this file as JSON (used by run.py)")
    return p


def main(run: Callable[[argparse.Namespace], list[Table]], doc: str | None) -> None:
    """The body of every workload script: parse flags, run, print the tables (and JSON)."""
    args = parser(doc).parse_args()
    tables = run(args)
    for t in tables:
        print(t.markdown(), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            f.write(tables_to_json(tables))
