"""W4: compile time. The first call (trace + differentiate + simplify + compile + run) of
W1's value_and_grad, of W3's, and of a chain of K ops `x = sin(x)*0.5001 + x*0.5` then
sum, N = 1000, for K = 10, 100, 1000 (and 10000 with --big); the log-log slope of the
chain's first-call time against K; and the per-call time of the compiled chain.

Every first call runs in a fresh subprocess (after the library is imported, so import time
is not counted) with symgrad's disk cache off (SYMGRAD_CACHE_DIR=off: a cold compile, not a
warm start, which W5 measures), with a timeout (--timeout, default 30 s): a timeout is
reported as such.
Peers: jax.jit(value_and_grad) the same way; hand-written numpy for the chain's per-call
time. Run: `python -m benchmarks.w4_compile [--big]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from benchmarks.common import Row, Table, Time, at_most, judge, main, max_rel_error, median_time, run_child

N = 1000
COLD = {**os.environ, "SYMGRAD_CACHE_DIR": "off"}  # every first call compiles


def chain(x, k: int, sin):
    return chain_steps(x, k, sin).sum()


def numpy_chain(x: np.ndarray, k: int) -> tuple:
    """Value and gradient of chain(x, k): forward keeping each input, then the reverse sweep."""
    inputs = []
    for _ in range(k):
        inputs.append(x)
        x = np.sin(x) * 0.5001 + x * 0.5
    g = np.ones_like(x)
    for x_in in reversed(inputs):
        g = g * (np.cos(x_in) * 0.5001 + 0.5)
    return x.sum(), g


def chain_input() -> np.ndarray:
    return np.random.default_rng(4).standard_normal(N)


# ---- the child: one first call in a fresh process ------------------------------------------


def child_case(lib: str, case: str) -> tuple:
    """(value_and_grad callable for `lib`, its arguments, numpy's answer) for one case."""
    from benchmarks import w1_call, w3_mlp

    if lib == "symgrad":
        import symgrad as sg

        vg, tanh, sin = sg.value_and_grad, sg.tanh, sg.sin
    elif lib == "casadi":
        return casadi_chain(int(case.split(":")[1]))
    else:
        from benchmarks.common import load_jax

        jax = load_jax()

        def vg(f):  # blocking, so that a call's time is its computation, not its dispatch
            jitted = jax.jit(jax.value_and_grad(f))
            return lambda *args: jax.block_until_ready(jitted(*args))

        tanh, sin = jax.numpy.tanh, jax.numpy.sin
    if case == "w1":
        return vg(w1_call.f), (w1_call.X,), w1_call.numpy_value_and_grad(w1_call.X)
    if case == "w3":
        params, X, Y = w3_mlp.problem()
        return vg(lambda p, X, Y: w3_mlp.loss(p, X, Y, tanh)), (params, X, Y), w3_mlp.numpy_step(params, X, Y)
    k = int(case.split(":")[1])
    return vg(lambda x: chain(x, k, sin)), (chain_input(),), numpy_chain(chain_input(), k)


def casadi_chain(k: int) -> tuple:
    """CasADi's chain: MX graph over a vector of N, value and gradient as one Function, run by
    its virtual machine (the issue's reference). Built inside the timed first call."""
    import casadi as ca

    def build_and_call(x: np.ndarray):
        if not hasattr(build_and_call, "fn"):
            sym = ca.MX.sym("x", N)
            y = chain_steps(sym, k, ca.sin)
            total = ca.sum1(y)
            build_and_call.fn = ca.Function("chain", [sym], [total, ca.gradient(total, sym)])
        value, grad = build_and_call.fn(x)
        return float(value), np.asarray(grad).ravel()

    return build_and_call, (chain_input(),), numpy_chain(chain_input(), k)


def chain_steps(x, k: int, sin):
    for _ in range(k):
        x = sin(x) * 0.5001 + x * 0.5
    return x


def child(lib: str, case: str) -> None:
    fn, args, ref = child_case(lib, case)
    start = time.perf_counter()
    result = fn(*args)
    first = time.perf_counter() - start
    per_call = median_time(fn, *args, repeats=5, budget=1.0) if case.startswith("chain") else None
    print(json.dumps({"first": first, "per_call": per_call, "error": max_rel_error(result, ref)}))


# ---- the parent -----------------------------------------------------------------------------


def first_call(lib: str, case: str, timeout: float, runs: int = 1) -> tuple[Time, Time]:
    """(median first-call seconds over `runs` fresh processes, per-call seconds) or reasons."""
    firsts, per_call = [], None
    for _ in range(runs):
        report = run_child("benchmarks.w4_compile", ["--child", lib, case], timeout, COLD)
        if isinstance(report, str):
            return report, None
        if report["error"] > 1e-9:
            return f"WRONG ({report['error']:.0e})", None
        firsts.append(report["first"])
        per_call = report["per_call"]
    return float(np.median(firsts)), per_call


def slope(ks: list[int], times: list[Time]) -> tuple[str, bool | None]:
    """Least-squares log-log slope over the measured K; a timeout at the next K gives a bound."""
    pts = [(math.log(k), math.log(t)) for k, t in zip(ks, times) if isinstance(t, float)]
    if len(pts) < 2:
        return "n/a", None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    fit = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    last = (pts[-1][1] - pts[-2][1]) / (pts[-1][0] - pts[-2][0])
    text, ok = f"{fit:.2f} (last step {last:.2f})", fit <= 1.1 and last <= 1.1
    missing = [(k, t) for k, t in zip(ks, times) if not isinstance(t, float)]
    if missing and missing[0][1].startswith("timeout"):  # the time is at least the timeout
        k, t = missing[0]
        bound = (math.log(float(t.split()[2])) - pts[-1][1]) / (math.log(k) - pts[-1][0])
        text, ok = text + f"; to K={k} ≥ {bound:.2f}", ok and bound <= 1.1
    elif missing:
        text, ok = text + f"; K={missing[0][0]} did not run", None if ok else ok
    return text, ok


def workload_rows(libs: list[str], runs: int, timeout: float) -> list[Row]:
    rows = []
    for case, size, limit in (("w1", "2x2", 0.02), ("w3", "MLP", None)):
        times = {lib: first_call(lib, case, timeout, runs)[0] for lib in libs if lib != "casadi"}
        check = ("≤ 20 ms", at_most(times["symgrad"], 1.0, limit)) if limit else None
        status = judge(check, measured=times["symgrad"]) if check else ""
        rows.append(
            Row(f"W4 first call {case.upper()}", size, "float64", times, check[0] if check else "", status)
        )
    return rows


def chain_rows(libs: list[str], ks: list[int], timeout: float, runs: int) -> list[Row]:
    """First call per K (median of `runs` processes below K=10000: one process's time moves
    by about 20% on this machine, and the slope's last step with it), the log-log slope,
    then the per-call times of the compiled chains."""
    firsts: dict[str, list[Time]] = {lib: [] for lib in libs}
    calls: dict[int, dict[str, Time]] = {}
    rows = []
    for k in ks:
        calls[k] = {"numpy": median_time(numpy_chain, chain_input(), k, budget=1.0)}
        for lib in libs:
            first, calls[k][lib] = first_call(
                lib, f"chain:{k}", timeout if k < 10000 else max(timeout, 300.0), runs if k < 10000 else 1
            )
            firsts[lib].append(first)
        limit, sg_first = {1000: 1.0, 10000: 10.0}.get(k), firsts["symgrad"][-1]
        target = f"≤ {limit:g} s" if limit else ""
        status = judge((target, at_most(sg_first, 1.0, limit)), measured=sg_first) if limit else ""
        row_times = {lib: firsts[lib][-1] for lib in libs}
        rows.append(Row("W4 first call chain", f"K={k}", "float64", row_times, target, status))
    slopes = {lib: slope(ks, firsts[lib]) for lib in libs}
    status = judge(("≤ 1.1", slopes["symgrad"][1]))
    rows.append(Row("W4 log-log slope", f"K={ks[0]}..{ks[-1]}", "float64", {lib: s[0] for lib, s in slopes.items()},
                    "≤ 1.1", status))  # fmt: skip
    for k in ks:
        sg_call = calls[k].get("symgrad") or "n/a (no compile)"
        casadi = calls[k].get("casadi")
        check = at_most(sg_call, casadi, 0.5) if casadi is not None else None
        status = judge(("≤ 0.5x CasADi" if casadi is not None else "CasADi not measured", check), measured=sg_call)
        rows.append(
            Row(
                "W4 chain call",
                f"K={k}",
                "float64",
                {**calls[k], "symgrad": sg_call},
                "≤ 0.5x CasADi",
                status,
            )
        )
    return rows


def run(args: argparse.Namespace) -> list[Table]:
    libs = ["symgrad"] + [lib for lib in ("jax", "casadi") if _importable(lib)]
    runs = 1 if args.quick else 3
    ks = [10, 100, 1000] + ([10000] if args.big else [])
    table = Table("W4: first call (trace + differentiate + compile + run) and compiled chain calls",
                  ["numpy", *libs[1:]])  # fmt: skip
    table.rows = workload_rows(libs, runs, args.timeout) + chain_rows(libs, ks, args.timeout, runs)
    table.notes += [
        "First calls: each in a fresh process after the import (import time not counted), "
        f"median of {runs} process(es) for W1, W3 and chains up to K=1000, one at K=10000; the result is checked "
        "against numpy before the time is accepted. jax: jit(value_and_grad(f)), x64 enabled.",
        "Chain calls: per-call time of the compiled chain value-and-grad in the same child "
        "(median), numpy hand-written (forward keeping inputs, reverse sweep) in this process. "
        "CasADi (when installed, the bench extra): an MX graph over a vector of N, value and "
        "gradient in one casadi.Function run by its virtual machine; chain cases only.",
        "Slope: least-squares fit of log(first call) on log(K) over the measured K, and the last "
        "step alone (the fit is flattered by fixed costs at small K): both must be ≤ 1.1. A timeout "
        f"at the next K gives a lower bound. Timeout per process: {args.timeout:.0f} s (K=10000: 300 s at least).",
    ]
    return [table]


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3])
    else:
        main(run, __doc__)
