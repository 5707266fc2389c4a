"""Differential fuzzing in CI: random programs agree across torch, symgrad eager, symgrad
compiled and the interpreter (the generator and the check live in tests/fuzz.py, which is
also the script for long campaigns: `python tests/fuzz.py --examples 10000`).

A bounded, derandomized number of programs runs here, so CI is deterministic: PER_OP
programs for each op of the generator's table, each starting with that op. Each known
difference (`fuzz.KNOWN_DIFFERENCES`, kept out of the generator) has a minimal program
below that is expected to fail (strict xfail): once symgrad is fixed it passes, the xfail
turns into a failure, and its entry and generator guard should go.
"""

from __future__ import annotations

import os

import fuzz  # tests/fuzz.py: pytest puts this directory on sys.path
import numpy as np
import pytest
from fuzz import FOCUS, KNOWN_DIFFERENCES, Mismatch, Program, check, programs
from hypothesis import HealthCheck, given, settings

# Programs whose first statement applies each op: 2 take ~35 s on 2 busy cores with an empty
# code cache (SYMGRAD_CACHE_DIR=off); raise it locally for a deeper deterministic run.
PER_OP = int(os.environ.get("SYMGRAD_FUZZ_PER_OP", "2"))
SETTINGS = settings(max_examples=PER_OP, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])  # fmt: skip


@pytest.mark.parametrize("family,op", FOCUS, ids=[f"{f}-{o}" if o else f for f, o in FOCUS])
def test_random_programs_agree(family: str, op: str | None) -> None:
    """Every op of the generator's table starts PER_OP random programs; all paths agree on them."""
    focused = []

    @SETTINGS
    @given(programs(focus=(family, op)))
    def run(program: Program) -> None:
        focused.append(program.focused)
        check(program)

    run()
    assert any(focused), f"no program applied {family} {op or ''}: the generator cannot draw it"


# ---- fixed differences: their minimal programs --------------------------------------------


@pytest.mark.parametrize("f", ["exp", "sin", "tanh"])
@pytest.mark.parametrize("reduction", ["amax()", "amin()", "max()"])
@pytest.mark.parametrize("n", [3, 11, 37])
def test_extreme_of_recomputed_ties(f: str, reduction: str, n: int) -> None:
    """amax/amin/max() of f(x) with tied x share the gradient among the ties: f gives one value
    per input in vector lanes and remainder iterations alike (once the gradient went to one)."""
    check(case([f"t0 = x0.{f}()", f"t1 = t0.{reduction}"], [[2.875] * n], 1.0))


# ---- known differences: one minimal program each ------------------------------------------


def case(lines: list[str], inputs: list, weights: list) -> Program:
    """A float64 program whose loss is sum(w * out) over the value of its last statement."""
    sink = lines[-1].split(" = ")[0].split("[")[0].split(" +")[0]
    arrays = [np.asarray(x, dtype=np.float64) for x in inputs]
    out_dtype = np.float32 if any("float32" in line or ".float()" in line for line in lines) else np.float64
    return Program(
        arrays, lines, [sink], [np.asarray(weights, dtype=out_dtype)], float32=out_dtype == np.float32
    )


NAN = float("nan")
M = Mismatch
# (key of KNOWN_DIFFERENCES, needs torch to show, the exception check() raises, minimal program)
KNOWN_CASES = [
    ("prod-with-zero", True, M, case(["t0 = x0.prod()"], [[0.0, 2.0, 3.0]], 1.0)),  # grad [6, 0, 0], not [nan, 0, 0]
    ("var-correction", True, M, case(["t0 = x0.var(correction=3)"], [[1.0, 2.0]], 1.0)),  # inf, not -0.5
    ("var-correction", True, M, case(["t0 = x0.var(1)"], [np.zeros((2, 0))], [1.0, 1.0])),  # nan, not -0
    ("var-correction", True, M, case(["t0 = x0.var(correction=2)"], [[0.0, 1.0]], 1.0)),  # grad [inf, inf]
    ("assign-dtype-traced", False, M, case(["t0 = lib.zeros((2,), dtype=lib.float32)", "t0[:] = x0"],
                                           [[1.0, 2.0]], [1.0, -1.0])),  # compiled: float64
    ("inplace-add", False, RuntimeError, case(["t0 = lib.zeros((2,), dtype=lib.float64)", "t0 += x0",
                                               "t1 = t0 * t0"], [[1.0, 2.0]], [1.0, -1.0])),  # eager
    ("inplace-add", False, RuntimeError, case(["t0 = lib.zeros((3,), dtype=lib.float64)", "t0[1:] += x0"],
                                              [[1.0, 2.0]], [1.0, -1.0, 0.5])),  # compiled
    ("atan2-origin", True, M, case(["t0 = lib.atan2(x0, x0)"], [[0.0, 1.0]], [1.0, 1.0])),  # grad 0, not nan
    ("std-zero", True, M, case(["t0 = x0.std()"], [[1.5, 1.5]], 1.0)),  # grad 0, not nan
    ("empty-softmax", False, ValueError, case(["t0 = x0.softmax(1)"], [np.zeros((2, 0))], np.zeros((2, 0)))),
    ("empty-softmax", False, ValueError, case(["t0 = lib.logsumexp(x0, 1)"], [np.zeros((2, 0))], [1.0, 1.0])),
    ("cat-empty-grad", True, M, case(["t0 = lib.cat([x0, x1])"], [np.zeros(0), [1.0, 2.0]], [1.0, -1.0])),
    ("nan-piecewise", True, M, case(["t0 = x0.sign()"], [[NAN, 1.0]], [1.0, 1.0])),  # torch: sign(nan) = 0
    ("nan-piecewise", True, M, case(["t0 = lib.clamp(x0, max=x1)"], [[1.0, 2.0], [NAN, 1.5]], [1.0, 1.0])),
]  # fmt: skip
TORCH = pytest.mark.skipif(fuzz.torch is None, reason="a difference from torch")


def _known_params() -> list:
    params = []
    for k, (key, needs_torch, raises, p) in enumerate(KNOWN_CASES):
        xfail = pytest.mark.xfail(strict=True, raises=raises, reason=KNOWN_DIFFERENCES[key])
        params.append(pytest.param(key, p, marks=[xfail, TORCH] if needs_torch else [xfail], id=f"{key}-{k}"))
    return params


@pytest.mark.parametrize("key,program", _known_params())
def test_known_difference(key: str, program: Program) -> None:
    """Fails (xfail) while the difference lasts; a fix makes it pass, and strict xfail fails."""
    check(program)


def test_every_known_difference_has_a_case() -> None:
    assert {key for key, *_ in KNOWN_CASES} == set(KNOWN_DIFFERENCES)
