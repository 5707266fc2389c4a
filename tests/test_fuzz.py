"""Differential fuzzing in CI: random programs agree across torch, symgrad eager, symgrad
compiled and the interpreter (the generator and the check live in tests/fuzz.py, which is
also the script for long campaigns: `python tests/fuzz.py --examples 10000`).

A bounded, derandomized number of programs runs here, so CI is deterministic: PER_OP
programs for each op of the generator's table, each starting with that op. Each known
difference (`fuzz.KNOWN_DIFFERENCES`, kept out of the generator) has a minimal program
below that is expected to fail (strict xfail): once symgrad is fixed it passes, the xfail
turns into a failure, and its entry and generator guard should go; its program then joins
FIXED_CASES, which must pass.
"""

from __future__ import annotations

import os

import fuzz  # tests/fuzz.py: pytest puts this directory on sys.path
import numpy as np
import pytest
from fuzz import FOCUS, KNOWN_DIFFERENCES, Mismatch, Program, check, programs
from hypothesis import HealthCheck, given, settings

import symgrad as sg

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
    ("prod-nonfinite-zero", True, M, case(["t0 = x0.prod()"], [[0.0, NAN, 2.0]], 1.0)),  # torch [nan, 0, nan]
    ("inf-into-flat-piece", True, M, case(["t0 = lib.relu(x0)", "t1 = lib.neg(t0)", "t2 = lib.log(t1)"], [0.0], 0.274)),
    ("inf-into-flat-piece", True, M, case(["t0 = x0.clamp(min=0.0)", "t1 = lib.log(t0)"], [[-1.0, 2.0]], [1.0, 1.0])),
    ("inf-into-flat-piece", True, M, case(["t0 = lib.minimum(x1, x0)", "t1 = 0.0 ** (t0.atan() * 2)"], [0.0, -1.0], 0.274)),
    ("var-of-inf", True, M, case(["t0 = lib.log(x0)", "t1 = t0.var()"], [[0.0, 1.0]], 1.0)),
    ("sum-of-0d-signed-zero", True, M, case(["t0 = lib.neg(x0)", "t1 = t0.sum()", "t2 = lib.log(t1)"], [0.0], 0.274)),
    ("zero-times-overflow", True, M, case(["t0 = lib.rsqrt(x0.float())", "t1 = lib.tanh(t0)"], [1.1754943508222875e-38], 0.274)),
    ("nan-piecewise", True, M, case(["t0 = x0.sign()"], [[NAN, 1.0]], [1.0, 1.0])),  # torch: sign(nan) = 0
    ("nan-piecewise", True, M, case(["t0 = lib.clamp(x0, max=x1)"], [[1.0, 2.0], [NAN, 1.5]], [1.0, 1.0])),
]  # fmt: skip

# Differences the fuzzer found and symgrad fixed: (what it was, the minimal program)
FIXED_CASES = [
    # atan2's gradient at (0, 0) is 0, as in torch (the formula gives 0/0)
    ("atan2-origin", case(["t0 = lib.atan2(x0, x0)"], [[0.0, 1.0]], [1.0, 1.0])),
    ("atan2-origin", case(["t0 = lib.atan2(x0, x1)"], [[0.0, -0.0, 2.0], [0.0, 0.0, -1.0]], [1.0, 2.0, 1.0])),
    # the gradient of prod is the product of the other elements, also where elements are 0
    ("prod-with-zero", case(["t0 = x0.prod()"], [[0.0, 2.0, 3.0]], 1.0)),  # [6, 0, 0], not [nan, 0, 0]
    ("prod-with-zero", case(["t0 = x0.prod(1)"], [[[0.0, 2.0, 0.0], [1.0, 2.0, 4.0], [-0.0, 0.5, 3.0]]], [1.0, -1.0, 2.0])),
    ("prod-with-zero", case(["t0 = lib.prod(x0, dim=0, keepdim=True)", "t1 = t0 * x0"], [[[0.0, 2.0], [3.0, 0.0]]],
                            [[1.0, -1.0], [0.5, 2.0]])),
    # var/std divide by max(0, N - correction): inf, or nan where all are equal; torch's gradient
    # is g * where(x == mean, nan, inf) without dim, 2 g (x - mean) / (N - correction) with dim
    ("var-correction", case(["t0 = x0.var(correction=3)"], [[1.0, 2.0]], 1.0)),  # inf, grad [inf, inf]
    ("var-correction", case(["t0 = x0.var(1)"], [np.zeros((2, 0))], [1.0, 1.0])),  # nan, empty grad
    ("var-correction", case(["t0 = x0.var(correction=2)"], [[0.0, 1.0]], 1.0)),  # grad [inf, inf]
    ("var-correction", case(["t0 = x0.var(correction=2)"], [[1.5, 1.5]], -1.0)),  # nan, grad nan
    ("var-correction", case(["t0 = x0.var(dim=1, correction=2)"], [[[1.0, 2.0], [3.0, 3.0]]], [1.0, -1.0])),  # grad +-inf, nan
    ("var-correction", case(["t0 = x0.var(dim=1, correction=3)"], [[[1.0, 2.0], [3.0, 3.0]]], [1.0, -1.0])),  # finite grad
    ("var-correction", case(["t0 = x0.std(dim=(0, 1), correction=4, keepdim=True)"], [[[1.0, 2.0], [3.0, 3.0]]], [[0.5]])),
    ("var-correction", case(["t0 = x0.std(correction=2)"], [1.5], 1.0)),  # 0-d: nan, grad nan
    ("var-correction", case(["t0 = lib.log(x0)", "t1 = t0.var()"], [0.0], 0.274)),  # x = mean = -inf: grad nan, not inf
    # where std is 0 its gradient is 0 (torch masks it), also along dims and after a mean that is exact
    ("std-zero", case(["t0 = x0.std()"], [[1.5, 1.5]], 1.0)),
    ("std-zero", case(["t0 = x0.std(0)"], [[[0.5, 1.0], [0.5, 2.0], [0.5, 0.0]]], [1.0, -1.0])),
    # writes into b keep b's dtype, also traced
    ("assign-dtype-traced", case(["t0 = lib.zeros((2,), dtype=lib.float32)", "t0[:] = x0"], [[1.0, 2.0]], [1.0, -1.0])),
    ("assign-dtype-traced", case(["t0 = lib.zeros((3,), dtype=lib.float32)", "t0[1:] += x0 * 2.0", "t1 = t0 * t0"],
                                 [[1.0, 2.0]], [1.0, -1.0, 0.5])),
    ("assign-dtype-traced", case(["t0 = lib.zeros((2,), dtype=lib.float32)", "t0 += x0", "t0[0] = x0[1]"],
                                 [[1.0, 2.0]], [1.0, -1.0])),
    # b += v reads a copy of b's old values: later uses of b (b * b) read the new b, as in torch
    ("inplace-add", case(["t0 = lib.zeros((2,), dtype=lib.float64)", "t0 += x0", "t1 = t0 * t0"], [[1.0, 2.0]], [1.0, -1.0])),
    ("inplace-add", case(["t0 = lib.zeros((3,), dtype=lib.float64)", "t0[1:] += x0"], [[1.0, 2.0]], [1.0, -1.0, 0.5])),
    ("inplace-add", case(["t0 = lib.zeros((3,), dtype=lib.float64)", "t0[lib.tensor([2, 0], dtype=lib.int64)] += x0",
                          "t1 = t0 * t0"], [[1.0, 2.0]], [1.0, -1.0, 0.5])),
    # cumsum: an inf reaches only the sums after it (it was a product with triangular ones: inf * 0)
    ("cumsum-inf", case(["t0 = lib.log(x0)", "t1 = t0.cumsum(1)"], [[[0.0, 1.0, 2.0], [1.0, 0.0, 3.0]]],
                        [[1.0, -1.0, 0.5], [0.5, 2.0, 1.0]])),
    ("cumsum-inf", case(["t0 = x0 ** x1.atan()", "t1 = t0.cumsum(0)"], [np.zeros((2, 3)), [0.0, -1.0, 1.0]],
                        [[1.0, -1.0, 0.5], [0.5, 2.0, 1.0]])),
    # softmax, log_softmax, logsumexp over a dim of size 0: empty results, logsumexp -inf
    ("empty-softmax", case(["t0 = x0.softmax(1)"], [np.zeros((2, 0))], np.zeros((2, 0)))),
    ("empty-softmax", case(["t0 = lib.log_softmax(x0, dim=-1)"], [np.zeros((2, 0))], np.zeros((2, 0)))),
    ("empty-softmax", case(["t0 = lib.logsumexp(x0, 1)"], [np.zeros((2, 0))], [1.0, 1.0])),
    # cat with a part of size 0 (also the legacy shape (0,) beside 2-d parts): its gradient is empty
    ("cat-empty-grad", case(["t0 = lib.cat([x0, x1])"], [np.zeros(0), [1.0, 2.0]], [1.0, -1.0])),
    ("cat-empty-grad", case(["t0 = lib.cat([x1, x0], 1)"], [np.zeros(0), [[1.0], [2.0]]], [[1.0], [-1.0]])),
    ("cat-empty-grad", case(["t0 = lib.cat((x0, x1), dim=1)"], [np.zeros((2, 0)), [[1.0], [2.0]]], [[1.0], [-1.0]])),
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


@pytest.mark.parametrize("program", [p for _, p in FIXED_CASES], ids=[f"{k}-{n}" for n, (k, _) in enumerate(FIXED_CASES)])
def test_fixed_difference(program: Program) -> None:
    """A difference the fuzzer found, fixed: every path agrees (with torch, when installed)."""
    assert check(program) == "compared"


def test_index_put_of_another_dtype_is_refused_like_torch() -> None:
    """torch refuses b[index tensor] = v with v of another dtype (a mask with one value is a
    masked_fill and converts it); a basic index converts v. The fuzzer treats a program that
    both refuse as agreeing, so the message is checked here."""
    message = "Index put requires the source and destination dtypes match, got Float for the destination and Double for the source."
    for lib in [sg] + ([fuzz.torch] if fuzz.torch is not None else []):
        b, v = lib.zeros((3,), dtype=lib.float32), lib.tensor([1.5, 2.5], dtype=lib.float64, requires_grad=True)
        with pytest.raises(RuntimeError) as refused:
            b[lib.tensor([2, 0])] = v * 2.0
        assert str(refused.value) == message
        b[lib.tensor([2, 0])] += v  # += converts
        b[1:] = v
        b[lib.tensor([True, False, False])] = v[0]
        assert b.dtype == lib.float32 and b.tolist() == [1.5, 1.5, 2.5]


@pytest.mark.parametrize("call,error,message", [
    (lambda lib: lib.zeros((2, 0)).amax(1), IndexError, "amax(): Expected reduction dim 1 to have non-zero size."),
    (lambda lib: lib.zeros((2, 0)).min(-1), IndexError, "min(): Expected reduction dim 1 to have non-zero size."),
    (lambda lib: lib.zeros((0,)).amin(), RuntimeError, "amin(): Expected reduction dim to be specified for input.numel() == 0."),
    (lambda lib: lib.ones((1, 1, 2)).norm(dim=(0, 1, 2)), RuntimeError, "linalg.matrix_norm: dim must be a 2-tuple. Got 0 1 2"),
])  # fmt: skip
def test_refused_like_torch(call, error, message) -> None:
    """The generator leaves these out (torch refuses them: extremes over no elements, a
    Frobenius norm over 3 dims): the errors are checked here; the softmax family over an
    empty dim is fine (FIXED_CASES)."""
    for lib in [sg] + ([fuzz.torch] if fuzz.torch is not None else []):
        with pytest.raises(error) as refused:
            call(lib)
        assert str(refused.value).startswith(message)
    assert sg.zeros((2, 0)).amax(0).shape == (0,)


@pytest.mark.parametrize("x", [[0.0, 2.0, 3.0, -1.5], [0.0, 0.0, 3.0, 0.5], [0.0, 0.0, 0.0, 2.0], [1.0, 2.0, 3.0, 0.5]])
def test_prod_second_derivative_at_zeros(x: list[float]) -> None:
    """The Hessian of prod: H_ij = the product of the elements other than i and j (0 on the
    diagonal), also where one or two elements are 0; compiled and eager (create_graph)."""
    a = np.asarray(x)
    want = np.array([[0.0 if i == j else np.prod(np.delete(a, [i, j])) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(sg.hessian(lambda t: t.prod())(a), want, rtol=1e-12)
    t = sg.tensor(a, requires_grad=True)
    (g,) = sg.autograd.grad(t.prod(), t, create_graph=True)
    g.backward(sg.tensor([1.0, -1.0, 0.5, 2.0], dtype=sg.float64))
    np.testing.assert_allclose(t.grad.numpy(), want @ [1.0, -1.0, 0.5, 2.0], rtol=1e-12)


def test_every_known_difference_has_a_case() -> None:
    assert {key for key, *_ in KNOWN_CASES} == set(KNOWN_DIFFERENCES)
