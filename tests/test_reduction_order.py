"""Register reductions (a sum, product, max or min along the innermost loop axis) add into
PARTIALS partials in one fixed order (compiler/emit.py). Every compile path and every vector
width computes that order bit for bit (checked against a numpy restatement of it); its error
against an exact float64 reference stays within the bound of that order, given in ulp.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from symgrad.compiler import Access, Buffer, Fill, Instr, JitSession, KernelProgram, Loop, Store, vecloop
from symgrad.compiler.emit import IDENTITY, PARTIALS

import symgrad as sg

FILL = {"sum": 0.0, "prod": 1.0, "max": -np.inf, "min": np.inf}
FOLD = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}
MODES = list(FILL)
# lengths around the partials and the vector widths (2 .. 16 lanes), and n <= 3 (iteration order)
LENGTHS = (1, 2, 3, 4, 5, 15, 16, 17, 31, 33, 64, 1003)


# ---------------------------------------------------------------- the order, restated


def in_order(mode: str, start: np.generic, values: np.ndarray) -> np.generic:
    """start (mode) values[0] (mode) values[1] ..., rounding every step to the dtype."""
    if not len(values):
        return start
    return FOLD[mode].accumulate(np.concatenate([[start], values]).astype(values.dtype))[-1]


def pairwise(mode: str, values: list[np.generic]) -> np.generic:
    """[a, b, c, d, e] -> [a.b, c.d, e] -> [(a.b).(c.d), e] -> ..."""
    while len(values) > 1:
        pairs = [FOLD[mode](a, b) for a, b in zip(values[::2], values[1::2])]
        values = pairs + values[2 * len(pairs) :]
    return values[0]


def partials_order(mode: str, x: np.ndarray) -> np.generic:
    """What a register reduction of the row `x` into a buffer holding FILL[mode] gives."""
    ty = x.dtype.type
    starts = [ty(FILL[mode])] + [ty(IDENTITY[mode])] * (PARTIALS - 1)
    partials = [in_order(mode, starts[j], x[j::PARTIALS]) for j in range(min(len(x), PARTIALS))]
    return pairwise(mode, partials) if partials else ty(FILL[mode])


# ---------------------------------------------------------------- programs and paths


def reductions(mode: str, dtype: str, lengths: tuple[int, ...], rows: int = 3) -> KernelProgram:
    """One loop per length n: out_n[r] (mode)= x_n[r, i] over a (rows, n) space."""
    buffers, steps = [], []
    for k, n in enumerate(lengths):
        buffers += [Buffer(dtype, rows * n, "input"), Buffer(dtype, rows, "output")]
        steps += [Fill(2 * k + 1, FILL[mode]),
                  Loop((rows, n), dtype, (Access(2 * k, 0, (n, 1)),), (Instr("load", load=0),),
                       (Store(Access(2 * k + 1, 0, (1, 0)), 0, mode),))]  # fmt: skip
    return KernelProgram(tuple(buffers), tuple(steps))


def operands(mode: str, dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if mode == "prod":
        return rng.uniform(0.9, 1.1, shape).astype(dtype)
    x = rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 3, shape)  # mixed magnitudes and signs
    if mode in ("max", "min") and shape[-1] > 40:
        x[1, shape[-1] // 2] = np.nan  # propagates as numpy.maximum does, in one row only
    return x.astype(dtype)


SESSIONS = {
    "llvm": dict(),  # LLVM's loop vectoriser takes short bodies
    "explicit": dict(explicit_vector_body=0),  # vecloop takes every loop
    "unoptimized": dict(tiny_work=10**12),  # no IR pipeline, no vectors
}


@pytest.fixture(scope="module")
def sessions() -> dict[str, JitSession]:
    return {path: JitSession(**options) for path, options in SESSIONS.items()}


def with_lanes(session: JitSession, lanes: int, monkeypatch: pytest.MonkeyPatch) -> JitSession:
    """`session` vectorising with `lanes`-lane vectors (1: none), whatever this CPU has."""
    forced = vecloop.ExplicitVectors({"float32": lanes, "float64": lanes}, session._vectors.functions)
    monkeypatch.setattr(session, "_vectors", forced)
    return session


def gathered(mode: str, dtype: str, n: int, m: int = 50, rows: int = 3) -> KernelProgram:
    """out[r] (mode)= x[r, idx[i]] for i < n: a gather, so no explicit vectors (scalar rows)."""
    return KernelProgram(
        (Buffer("int64", n, "input"), Buffer(dtype, rows * m, "input"), Buffer(dtype, rows, "output")),
        (Fill(2, FILL[mode]),
         Loop((rows, n), dtype, (Access(0, 0, (0, 1)), Access(1, 0, (m, 0))),
              (Instr("load", load=0), Instr("gather", (0,), load=1, stride=1, bound=m)),
              (Store(Access(2, 0, (1, 0)), 1, mode),))),
    )  # fmt: skip


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("path", list(SESSIONS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", MODES)
def test_every_path_adds_in_the_same_partials(sessions, path: str, dtype: str, mode: str) -> None:
    xs = [operands(mode, dtype, (3, n), seed=n) for n in LENGTHS]
    got = sessions[path].compile(reductions(mode, dtype, LENGTHS))(xs)
    for n, x, out in zip(LENGTHS, xs, got):
        want = np.array([partials_order(mode, row) for row in x])
        np.testing.assert_array_equal(out, want, err_msg=f"n = {n}")
        if n <= 3:  # the same as adding in iteration order
            np.testing.assert_array_equal(out, [in_order(mode, x.dtype.type(FILL[mode]), row) for row in x])


@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("path", ["llvm", "explicit"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_order_does_not_depend_on_the_vector_width(monkeypatch, lanes: int, path: str, dtype: str):
    """What AVX2 (8 float32 lanes) and AVX-512 (16) machines compute, here on one machine;
    without vectors (1 lane) the scalar rows of partials, which LLVM's vectoriser takes."""
    session = with_lanes(JitSession(**SESSIONS[path]), lanes, monkeypatch)
    for mode in MODES:
        xs = [operands(mode, dtype, (3, n), seed=n) for n in LENGTHS]
        compiled = session.compile(reductions(mode, dtype, LENGTHS))
        vector = f"<{lanes} x {'float' if dtype == 'float32' else 'double'}>"
        assert (vector in compiled.llvm_ir) == (lanes > 1 and (path == "explicit" or mode in ("sum", "prod")))
        for x, out in zip(xs, compiled(xs)):
            np.testing.assert_array_equal(out, [partials_order(mode, row) for row in x])


def sin_and_its_sum(dtype: str, lengths: tuple[int, ...]) -> KernelProgram:
    """Per length n: y_n = sin(x_n), and total_n += sin(x_n) (a chain of calls: interleaved)."""
    buffers, steps = [], []
    body = (Instr("load", load=0), Instr("sin", (0,)))
    for k, n in enumerate(lengths):
        buffers += [Buffer(dtype, n, "input"), Buffer(dtype, n, "output"), Buffer(dtype, 1, "output")]
        x = (Access(3 * k, 0, (1,)),)
        steps += [Loop((n,), dtype, x, body, (Store(Access(3 * k + 1, 0, (1,)), 1),)),
                  Loop((n,), dtype, x, body, (Store(Access(3 * k + 2, 0, (0,)), 1, "sum"),))]  # fmt: skip
    return KernelProgram(tuple(buffers), tuple(steps))


@pytest.mark.parametrize("path", list(SESSIONS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vectors_of_a_chain_of_calls_keep_the_order(sessions, path: str, dtype: str) -> None:
    """Two vectors per iteration (vecloop._copies) fold in the order one at a time would."""
    program = sin_and_its_sum(dtype, LENGTHS)
    assert vecloop._copies(program.steps[1]) == vecloop.INTERLEAVE
    xs = [operands("sum", dtype, (n,), seed=n) for n in LENGTHS]
    outputs = sessions[path].compile(program)(xs)
    for n, values, total in zip(LENGTHS, outputs[::2], outputs[1::2]):
        np.testing.assert_array_equal(total, [partials_order("sum", values)], err_msg=f"n = {n}")


@pytest.mark.parametrize("path", list(SESSIONS))
@pytest.mark.parametrize("mode", MODES)
def test_scalar_rows_of_partials(sessions, path: str, mode: str) -> None:
    """Loops the emitter cannot vectorise (a gather) keep their partials in scalar rows."""
    rng = np.random.default_rng(3)
    for dtype in ("float32", "float64"):
        for n in (5, 16, 37, 1000):
            x = operands(mode, dtype, (3, 50), seed=n)
            idx = rng.integers(-50, 50, n)
            (out,) = sessions[path].compile(gathered(mode, dtype, n))([idx, x])
            np.testing.assert_array_equal(out, [partials_order(mode, row[idx]) for row in x])


@pytest.mark.parametrize("path", ["llvm", "explicit"])
@pytest.mark.parametrize("mode", MODES)
def test_empty_axes_leave_the_filled_value(sessions, path: str, mode: str) -> None:
    got = sessions[path].compile(reductions(mode, "float64", (0,)))([np.zeros(0)])
    np.testing.assert_array_equal(got[0], [FILL[mode]] * 3)


def sum_bound(n: int, dtype: str) -> float:
    """|computed - exact| <= gamma(k) * sum|x| for the partials order, where k is the most
    roundings one term goes through: ceil(n / PARTIALS) - 1 in its partial (the first add
    onto the start value is exact), then log2(PARTIALS) combining levels; gamma(k) = k u / (1 - k u)
    with u the unit roundoff (half an ulp of 1). Adding in iteration order has k = n - 1."""
    u = float(np.finfo(dtype).eps) / 2
    k = math.ceil(n / PARTIALS) - 1 + math.ceil(math.log2(PARTIALS))
    return k * u / (1 - k * u)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_million_mixed_magnitudes(sessions, dtype: str) -> None:
    """Long sums, where the order matters: bit for bit the partials order, within its error
    bound of the exact sum, and (on these values) closer to it than adding in order."""
    n = 10**6
    rng = np.random.default_rng(7)
    x = (rng.normal(size=n) * 10.0 ** rng.uniform(-8, 8, n)).astype(dtype)
    program = reductions("sum", dtype, (n,), rows=1)
    (got,) = sessions["llvm"].compile(program)([x])
    assert got[0] == partials_order("sum", x)
    exact = math.fsum(x.astype(np.float64).tolist())  # x is exact in float64; fsum rounds once
    magnitude = float(np.abs(x.astype(np.float64)).sum())
    assert abs(float(got[0]) - exact) <= sum_bound(n, dtype) * magnitude + abs(exact) * 2**-52
    serial = float(np.add.accumulate(x)[-1])
    assert abs(float(got[0]) - exact) <= abs(serial - exact)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 17, 100_003])
def test_front_end_reductions_of_long_arrays(dtype: str, n: int) -> None:
    """sum, mean, prod, amax and amin through symgrad.compile, against numpy in float64,
    within the bound of the partials order (mean: one more rounding for the scaling)."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=n).astype(dtype)
    p = rng.uniform(0.999, 1.001, n).astype(dtype)
    f = sg.compile(lambda x, p: (sg.sum(x), sg.mean(x), sg.prod(p), sg.amax(x), sg.amin(x)))
    total, mean, prod, high, low = (float(v) for v in f(x, p))
    x64, p64 = x.astype(np.float64), p.astype(np.float64)
    u = float(np.finfo(dtype).eps) / 2
    assert abs(total - math.fsum(x64.tolist())) <= sum_bound(n, dtype) * np.abs(x64).sum()
    assert abs(mean - x64.mean()) <= (sum_bound(n, dtype) * np.abs(x64).sum() / n) + 2 * u * abs(x64.mean())
    # each factor is within 0.1% of 1: the product's relative error is about (roundings) * u
    assert abs(prod - np.prod(p64)) <= sum_bound(n, dtype) * 1.001 * abs(np.prod(p64))
    assert (high, low) == (x64.max(), x64.min())  # max and min round nothing
