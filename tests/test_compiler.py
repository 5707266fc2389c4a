"""The back end against a pure-numpy interpreter of KernelProgram (the oracle)."""

from __future__ import annotations

import gc
import math
import re

import numpy as np
import pytest
from symgrad.compiler import (
    OPCODES,
    Access,
    Buffer,
    CompiledProgram,
    Fill,
    Instr,
    JitSession,
    KernelProgram,
    Loop,
    Matmul,
    Store,
)

# ---------------------------------------------------------------- oracle

UNARY = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "floor": np.floor,
    "ceil": np.ceil, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "erf": lambda x: math.erf(x), "log1p": np.log1p,
    "expm1": np.expm1, "exp2": np.exp2, "log2": np.log2, "log10": np.log10,
    "round": np.round, "trunc": np.trunc, "isnan": np.isnan, "isinf": np.isinf,
}  # fmt: skip
BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "max": np.maximum, "min": np.minimum, "atan2": np.arctan2,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal,
}  # fmt: skip
# Results may differ from numpy's by an ulp or two (libm or numpy's own SIMD code).
LIBM = {
    "pow", "exp", "log", "sin", "cos", "tan", "tanh", "atan2", "asin", "acos", "atan",
    "sinh", "cosh", "erf", "log1p", "expm1", "exp2", "log2", "log10",
}  # fmt: skip
ACCUMULATE = {
    "sum": lambda old, v: old + v, "prod": lambda old, v: old * v,
    "max": np.maximum, "min": np.minimum,
}  # fmt: skip


def c_pow(x, y):
    """C99/IEEE pow, which LLVM calls; numpy 2.4 says nan for pow(-inf, non-integer)."""
    if np.isneginf(x) and np.isfinite(y) and y != np.floor(y):
        return np.inf if y > 0 else 0.0
    return np.power(x, y)


def scalar_op(op: str, ty: type, args: list) -> object:
    if op == "pow":
        return ty(c_pow(args[0], args[1]))
    if op in UNARY:
        return ty(UNARY[op](args[0]))
    if op in BINARY:
        return ty(BINARY[op](args[0], args[1]))
    assert op == "select"
    return args[1] if args[0] != 0 else args[2]


def interpret(program: KernelProgram, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run a KernelProgram element by element with numpy scalars (Matmul with np.matmul)."""
    feed = iter(inputs)
    bufs = [
        np.array(next(feed), b.dtype).ravel() if b.kind == "input" else np.zeros(b.size, b.dtype)
        for b in program.buffers
    ]
    with np.errstate(all="ignore"):
        for step in program.steps:
            if isinstance(step, Fill):
                bufs[step.buffer][:] = step.value
            elif isinstance(step, Matmul):
                run_matmul(step, bufs)
            else:
                run_loop(step, bufs)
    return [bufs[k] for k in program.of_kind("output")]


def element(a: Access, idx: tuple[int, ...]) -> int:
    return a.offset + sum(s * i for s, i in zip(a.strides, idx))


def checked(index: int, bound: int) -> int:
    if not -bound <= index < bound:
        raise IndexError(f"index {index} is out of bounds for dimension with size {bound}")
    return index + bound if index < 0 else index


def run_instr(loop: Loop, ins: Instr, idx, vals: list, bufs: list[np.ndarray]) -> object:
    ty = np.dtype(loop.dtype).type
    if ins.op in ("load", "gather"):
        a = loop.loads[ins.load]
        shift = checked(int(vals[ins.args[0]]), ins.bound) * ins.stride if ins.args else 0
        raw = bufs[a.buffer][element(a, idx) + shift]
        return int(raw) if raw.dtype == np.int64 else ty(raw)
    if ins.op == "const":
        return ty(ins.value)
    return scalar_op(ins.op, ty, [vals[k] for k in ins.args])


PARTIALS = 16  # the register reduction order (compiler/emit.py), restated here as the spec
IDENTITY = {"sum": -0.0, "prod": 1.0, "max": -np.inf, "min": np.inf}


def in_partials(loop: Loop, st: Store) -> bool:
    """Whether `st` reduces along the innermost axis into a buffer nothing else in the loop
    touches: then the compiled code sums into PARTIALS partials, combined pairwise."""
    others = [a.buffer for a in loop.loads] + [s.access.buffer for s in loop.stores if s is not st]
    return st.mode != "assign" and st.index < 0 and st.access.strides[-1] == 0 and st.access.buffer not in others


def pairwise(values: list, fold) -> object:
    """[a, b, c, d, e] -> [a.b, c.d, e] -> [(a.b).(c.d), e] -> ..."""
    while len(values) > 1:
        pairs = [fold(a, b) for a, b in zip(values[::2], values[1::2])]
        values = pairs + values[2 * len(pairs) :]
    return values[0]


def run_loop(loop: Loop, bufs: list[np.ndarray]) -> None:
    ty = np.dtype(loop.dtype).type
    partials: dict[tuple[int, int], list] = {}  # (store, buffer element) -> partial values
    n = loop.shape[-1] if loop.shape else 1
    for idx in np.ndindex(*loop.shape):
        vals: list = []
        for ins in loop.body:
            vals.append(run_instr(loop, ins, idx, vals, bufs))
        for s, st in enumerate(loop.stores):
            buf, k = bufs[st.access.buffer], element(st.access, idx)
            if st.index >= 0:
                k += checked(vals[st.index], st.bound) * st.index_stride
            value = vals[st.value]
            if st.mode == "assign":
                buf[k] = value
            elif loop.shape and in_partials(loop, st):
                parts = partials.setdefault((s, k), [buf[k]] + [buf.dtype.type(IDENTITY[st.mode])] * (PARTIALS - 1))
                j = idx[-1] % PARTIALS
                parts[j] = buf.dtype.type(ACCUMULATE[st.mode](ty(parts[j]), value))
                if idx[-1] == n - 1:  # the row is done
                    fold = lambda a, b: buf.dtype.type(ACCUMULATE[st.mode](ty(a), ty(b)))  # noqa: E731
                    buf[k] = pairwise(parts[: min(n, PARTIALS)], fold)
                    del partials[(s, k)]
            else:
                buf[k] = ACCUMULATE[st.mode](ty(buf[k]), value)


def matrix(buf: np.ndarray, offset: int, rows: int, cols: int, trans: bool) -> np.ndarray:
    """The rows x cols matrix op(M) where M is stored row-major at `offset`."""
    stored = buf[offset : offset + rows * cols].reshape((cols, rows) if trans else (rows, cols))
    return stored.T if trans else stored


def run_matmul(mm: Matmul, bufs: list[np.ndarray]) -> None:
    for b in range(mm.batch):
        a = matrix(bufs[mm.a], mm.a_offset + b * mm.a_batch_stride, mm.m, mm.k, mm.trans_a)
        x = matrix(bufs[mm.b], mm.b_offset + b * mm.b_batch_stride, mm.k, mm.n, mm.trans_b)
        out = matrix(bufs[mm.out], mm.out_offset + b * mm.m * mm.n, mm.m, mm.n, False)
        out[...] = out + a @ x if mm.accumulate else a @ x


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def session() -> JitSession:
    return JitSession()


@pytest.fixture(scope="module")
def explicit() -> JitSession:
    """Every loop vectorised by the emitter (`vecloop`), as long loop bodies are."""
    return JitSession(explicit_vector_body=0)


@pytest.fixture(scope="module")
def unoptimized() -> JitSession:
    """No LLVM IR pipeline at all, as for tiny programs (JitSession.tiny_work)."""
    return JitSession(tiny_work=10**12)


# who vectorises loops: LLVM's loop vectoriser, vecloop, or nobody (tiny programs)
PATHS = ["llvm", "explicit", "unoptimized"]


@pytest.fixture(params=PATHS)
def any_session(request: pytest.FixtureRequest) -> JitSession:
    return request.getfixturevalue({"llvm": "session"}.get(request.param, request.param))


def run_both(session: JitSession, program: KernelProgram, inputs: list[np.ndarray]):
    compiled = session.compile(program)
    got = compiled(inputs)
    want = interpret(program, inputs)
    assert [g.dtype for g in got] == [w.dtype for w in want]
    assert all(g.ndim == 1 for g in got)
    return got, want


def assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def loop(shape, dtype, loads, body, stores) -> Loop:
    return Loop(tuple(shape), dtype, tuple(loads), tuple(body), tuple(stores))


def elementwise(op: str, dtype: str, n: int, loop_dtype: str | None = None) -> KernelProgram:
    """out = op(in_0, ..., in_{k-1}) over n elements."""
    arity = OPCODES[op]
    access = [Access(k, 0, (1,)) for k in range(arity + 1)]
    body = [Instr("load", load=k) for k in range(arity)] + [Instr(op, tuple(range(arity)))]
    buffers = [Buffer(dtype, n, "input") for _ in range(arity)] + [Buffer(dtype, n, "output")]
    store = Store(access[arity], arity)
    steps = (loop((n,), loop_dtype or dtype, access[:arity], body, [store]),)
    return KernelProgram(tuple(buffers), steps)


SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, np.inf, -np.inf, np.nan]


def operands(op: str, dtype: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Random values, then every pair (or triple) drawn from the special values."""
    arity = OPCODES[op]
    random = [rng.uniform(-3, 3, 37) for _ in range(arity)]
    grid = np.meshgrid(*[SPECIALS] * arity, indexing="ij")
    return [np.concatenate([r, g.ravel()]).astype(dtype) for r, g in zip(random, grid)]


# ---------------------------------------------------------------- every opcode


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", sorted(OPCODES))
def test_opcode(any_session: JitSession, op: str, dtype: str) -> None:
    inputs = operands(op, dtype, np.random.default_rng(len(op)))
    got, want = run_both(any_session, elementwise(op, dtype, inputs[0].size), inputs)
    if op in LIBM:
        rtol = 1e-5 if dtype == "float32" else 1e-13
        np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=0, equal_nan=True)
    else:
        assert_same(got, want)


def test_max_min_propagate_nan(session: JitSession) -> None:
    x = np.array([np.nan, 1.0, np.nan, -np.inf])
    y = np.array([1.0, np.nan, np.nan, np.nan])
    for op in ("max", "min"):
        (got,) = session.compile(elementwise(op, "float64", 4))([x, y])
        assert np.isnan(got).all()


def test_comparisons_on_nan(session: JitSession) -> None:
    x, y = np.array([np.nan, np.nan, 1.0]), np.array([np.nan, 1.0, 1.0])
    results = {op: session.compile(elementwise(op, "float64", 3))([x, y])[0].tolist()
               for op in ("eq", "ne", "lt", "ge")}  # fmt: skip
    assert results == {
        "eq": [0, 0, 1], "ne": [1, 1, 0], "lt": [0, 0, 0], "ge": [0, 0, 1],
    }  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_is_half_to_even_and_predicates_are_exact(session: JitSession, dtype) -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 1e30, np.nan, -np.inf], dtype)
    results = {op: session.compile(elementwise(op, dtype, x.size))([x])[0]
               for op in ("round", "trunc", "isnan", "isinf")}  # fmt: skip
    np.testing.assert_array_equal(results["round"], np.round(x))
    assert results["round"][:6].tolist() == [0, 2, 2, -0, -2, -2]
    np.testing.assert_array_equal(results["trunc"], np.trunc(x))
    assert results["isnan"].tolist() == [0] * 8 + [1, 0]
    assert results["isinf"].tolist() == [0] * 9 + [1]


def test_libm_opcodes_call_libm_and_intrinsics_stay_intrinsics(session: JitSession) -> None:
    callees = {"erf": "erff", "log1p": "log1pf", "expm1": "expm1f",
               "atan2": "llvm.atan2.f32", "round": "llvm.roundeven.f32"}  # fmt: skip
    for op, callee in callees.items():
        assert f'@"{callee}"(' in session.compile(elementwise(op, "float32", 3)).llvm_ir


# ---------------------------------------------------------------- access patterns


def test_broadcasting_loads(session: JitSession) -> None:
    # out[i, j] = x[i, j] * y[j] + z[i]
    prog = KernelProgram(
        (Buffer("float64", 12, "input"), Buffer("float64", 4, "input"),
         Buffer("float64", 3, "input"), Buffer("float64", 12, "output")),
        (loop((3, 4), "float64",
              [Access(0, 0, (4, 1)), Access(1, 0, (0, 1)), Access(2, 0, (1, 0))],
              [Instr("load", load=0), Instr("load", load=1), Instr("load", load=2),
               Instr("mul", (0, 1)), Instr("add", (3, 2))],
              [Store(Access(3, 0, (4, 1)), 4)]),),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    got, want = run_both(session, prog, [x, y, z])
    assert_same(got, want)
    np.testing.assert_allclose(got[0], (x * y + z[:, None]).ravel())


def reduction(dtype: str, out_strides: tuple[int, int], out_size: int, loop_dtype: str = ""):
    """out[...] += x[i, j]**2 over a (5, 7) space, after Fill(0)."""
    return KernelProgram(
        (Buffer(dtype, 35, "input"), Buffer(dtype, out_size, "output")),
        (Fill(1, 0.0),
         loop((5, 7), loop_dtype or dtype, [Access(0, 0, (7, 1))],
              [Instr("load", load=0), Instr("mul", (0, 0))],
              [Store(Access(1, 0, out_strides), 1, "sum")])),
    )  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("strides, size, axis", [((1, 0), 5, 1), ((0, 1), 7, 0), ((0, 0), 1, None)])
def test_reductions(session: JitSession, dtype, strides, size, axis) -> None:
    x = np.random.default_rng(1).normal(size=(5, 7)).astype(dtype)
    got, want = run_both(session, reduction(dtype, strides, size), [x])
    assert_same(got, want)  # same summation order, so bit-identical
    np.testing.assert_allclose(got[0], np.atleast_1d((x * x).sum(axis=axis)), rtol=1e-5)


MIXED = [("float32", "float64"), ("float64", "float32")]


@pytest.mark.parametrize("buffer_dtype, loop_dtype", MIXED)
def test_reduction_mixed_dtypes_rounds_like_memory(session, buffer_dtype, loop_dtype) -> None:
    x = np.random.default_rng(2).normal(size=35).astype(buffer_dtype)
    for strides, size in [((1, 0), 5), ((0, 1), 7)]:
        got, want = run_both(session, reduction(buffer_dtype, strides, size, loop_dtype), [x])
        assert_same(got, want)


FILL_FOR = {"sum": 0.0, "prod": 1.0, "max": -np.inf, "min": np.inf}
NUMPY_REDUCE = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}


def reduce_program(mode: str, dtype: str, strides, size: int, loop_dtype: str = ""):
    """out[...] (mode)= x[i, j] over a (5, 7) space, after the mode's Fill."""
    return KernelProgram(
        (Buffer(dtype, 35, "input"), Buffer(dtype, size, "output")),
        (Fill(1, FILL_FOR[mode]),
         loop((5, 7), loop_dtype or dtype, [Access(0, 0, (7, 1))], [Instr("load", load=0)],
              [Store(Access(1, 0, strides), 0, mode)])),
    )  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["prod", "max", "min"])
@pytest.mark.parametrize("strides, size, axis", [((1, 0), 5, 1), ((0, 1), 7, 0), ((0, 0), 1, None)])
def test_store_modes(session: JitSession, mode, dtype, strides, size, axis) -> None:
    x = np.random.default_rng(4).uniform(0.5, 1.5, size=(5, 7)).astype(dtype)
    x[2, 3] = np.nan  # propagates through max/min like numpy.maximum, not fmax
    got, want = run_both(session, reduce_program(mode, dtype, strides, size), [x])
    assert_same(got, want)
    expected = np.atleast_1d(NUMPY_REDUCE[mode](x, axis=axis))
    np.testing.assert_allclose(got[0], expected, rtol=1e-5, equal_nan=True)
    assert np.isnan(got[0]).sum() == 1


@pytest.mark.parametrize("buffer_dtype, loop_dtype", MIXED)
def test_product_mixed_dtypes_rounds_like_memory(session, buffer_dtype, loop_dtype) -> None:
    x = np.random.default_rng(5).uniform(0.9, 1.1, 35).astype(buffer_dtype)
    for strides, size in [((1, 0), 5), ((0, 1), 7)]:
        prog = reduce_program("prod", buffer_dtype, strides, size, loop_dtype)
        assert_same(*run_both(session, prog, [x]))


def test_reduction_into_a_buffer_also_read_or_written_twice(session: JitSession) -> None:
    # out[i] += x[i, j]; out[i] += out[i] * 0.5: register accumulation must not apply.
    prog = KernelProgram(
        (Buffer("float64", 12, "input"), Buffer("float64", 3, "output")),
        (Fill(1, 1.5),
         loop((3, 4), "float64", [Access(0, 0, (4, 1)), Access(1, 0, (1, 0))],
              [Instr("load", load=0), Instr("load", load=1), Instr("const", value=0.5),
               Instr("mul", (1, 2))],
              [Store(Access(1, 0, (1, 0)), 0, "sum"), Store(Access(1, 0, (1, 0)), 3, "sum")])),
    )  # fmt: skip
    got, want = run_both(session, prog, [np.arange(12.0)])
    assert_same(got, want)


def test_strided_offset_reversed_and_transposed_access(session: JitSession) -> None:
    # a[i] = x[1 + 3 i] (x[1::3]), b[i] = x[11 - i] (x[::-1]), t[j, i] = y[i, j]
    prog = KernelProgram(
        (Buffer("float32", 12, "input"), Buffer("float32", 12, "input"),
         Buffer("float32", 4, "output"), Buffer("float32", 12, "output"),
         Buffer("float32", 12, "output")),
        (loop((4,), "float32", [Access(0, 1, (3,))], [Instr("load", load=0)],
              [Store(Access(2, 0, (1,)), 0)]),
         loop((12,), "float32", [Access(0, 11, (-1,))], [Instr("load", load=0)],
              [Store(Access(3, 0, (1,)), 0)]),
         loop((3, 4), "float32", [Access(1, 0, (4, 1))], [Instr("load", load=0)],
              [Store(Access(4, 0, (1, 3)), 0)])),
    )  # fmt: skip
    x = np.arange(12, dtype=np.float32)
    y = np.arange(12, dtype=np.float32).reshape(3, 4) * 10
    got, want = run_both(session, prog, [x, y])
    assert_same(got, want)
    assert_same(got, [x[1::3], x[::-1], y.T.ravel()])


def test_multiple_stores_and_mixed_dtypes(session: JitSession) -> None:
    # float32 in, float64 arithmetic, one float64 and one float32 output.
    prog = KernelProgram(
        (Buffer("float32", 9, "input"), Buffer("float64", 9, "output"),
         Buffer("float32", 9, "output")),
        (loop((9,), "float64", [Access(0, 0, (1,))],
              [Instr("load", load=0), Instr("const", value=1 / 3), Instr("mul", (0, 1)),
               Instr("exp", (2,))],
              [Store(Access(1, 0, (1,)), 2), Store(Access(2, 0, (1,)), 3)]),),
    )  # fmt: skip
    x = np.linspace(-2, 2, 9, dtype=np.float32)
    got, want = run_both(session, prog, [x])
    assert_same(got[:1], want[:1])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_constants_round_to_the_loop_dtype(session: JitSession, dtype: str) -> None:
    consts = [0.1, 1 / 3, 1e300, -0.0, np.inf, np.nan]
    body = [Instr("load", load=0)]
    for c in consts:
        body += [Instr("const", value=c), Instr("add", (0, len(body)))]
    prog = KernelProgram(
        (Buffer(dtype, 2, "input"),) + tuple(Buffer("float64", 2, "output") for _ in consts),
        (loop((2,), dtype, [Access(0, 0, (1,))], body,
              [Store(Access(k + 1, 0, (1,)), 2 * k + 2) for k in range(len(consts))]),),
    )  # fmt: skip
    got, want = run_both(session, prog, [np.array([0.0, 1.0], dtype)])
    assert_same(got, want)


def test_temp_between_loops(session: JitSession) -> None:
    # t = 2 x (float32 temp); out = t + x
    prog = KernelProgram(
        (Buffer("float64", 6, "input"), Buffer("float32", 6, "temp"),
         Buffer("float64", 6, "output")),
        (loop((6,), "float64", [Access(0, 0, (1,))],
              [Instr("load", load=0), Instr("const", value=2.0), Instr("mul", (0, 1))],
              [Store(Access(1, 0, (1,)), 2)]),
         loop((6,), "float64", [Access(1, 0, (1,)), Access(0, 0, (1,))],
              [Instr("load", load=0), Instr("load", load=1), Instr("add", (0, 1))],
              [Store(Access(2, 0, (1,)), 2)])),
    )  # fmt: skip
    x = np.random.default_rng(3).normal(size=6)
    got, want = run_both(session, prog, [x])
    assert_same(got, want)
    assert len(got) == 1


def test_zero_dimensional_loop(session: JitSession) -> None:
    prog = KernelProgram(
        (Buffer("float64", 1, "input"), Buffer("float64", 1, "output")),
        (loop((), "float64", [Access(0, 0, ())], [Instr("load", load=0), Instr("sqrt", (0,))],
              [Store(Access(1, 0, ()), 1)]),),
    )  # fmt: skip
    got, want = run_both(session, prog, [np.array(9.0)])
    assert_same(got, want)
    assert got[0].tolist() == [3.0]


def test_empty_iteration_spaces(session: JitSession) -> None:
    # (3, 0) reduction leaves the filled output untouched; a size-0 loop writes nothing.
    prog = KernelProgram(
        (Buffer("float32", 0, "input"), Buffer("float32", 3, "output"),
         Buffer("float32", 0, "output")),
        (Fill(1, 7.0), Fill(2, 1.0),
         loop((3, 0), "float32", [Access(0, 0, (0, 1))], [Instr("load", load=0)],
              [Store(Access(1, 0, (1, 0)), 0, "sum")]),
         loop((0,), "float32", [Access(0, 0, (1,))], [Instr("load", load=0)],
              [Store(Access(2, 0, (1,)), 0)])),
    )  # fmt: skip
    got, want = run_both(session, prog, [np.zeros(0, np.float32)])
    assert_same(got, want)
    assert got[0].tolist() == [7.0] * 3 and got[1].shape == (0,)


# ---------------------------------------------------------------- gather and scatter


def take_rows(n_idx: int, rows: int, cols: int, dtype: str = "float64", loop_dtype: str = ""):
    """out[i, j] = x[idx[i], j]: x is rows x cols, idx holds n_idx int64 indices."""
    return KernelProgram(
        (Buffer("int64", n_idx, "input"), Buffer(dtype, rows * cols, "input"),
         Buffer(dtype, n_idx * cols, "output")),
        (loop((n_idx, cols), loop_dtype or dtype, [Access(0, 0, (1, 0)), Access(1, 0, (0, 1))],
              [Instr("load", load=0), Instr("gather", (0,), load=1, stride=cols, bound=rows)],
              [Store(Access(2, 0, (cols, 1)), 1)]),),
    )  # fmt: skip


@pytest.mark.parametrize("dtype, loop_dtype", [("float32", ""), ("float64", ""), *MIXED])
def test_gather_rows_with_negative_indices(session: JitSession, dtype, loop_dtype) -> None:
    x = np.arange(15, dtype=dtype).reshape(5, 3) / 7
    idx = np.array([0, -1, 4, 2, -5, 4], np.int64)
    got, want = run_both(session, take_rows(6, 5, 3, dtype, loop_dtype), [idx, x])
    assert_same(got, want)
    np.testing.assert_allclose(got[0], x[idx].ravel(), rtol=1e-7)


def test_gather_along_the_last_axis(session: JitSession) -> None:
    # out[i, j] = x[i, idx[i, j]] (take_along_axis), index stride 1, with arithmetic after
    prog = KernelProgram(
        (Buffer("int64", 8, "input"), Buffer("float32", 12, "input"),
         Buffer("float32", 8, "output")),
        (loop((4, 2), "float32", [Access(0, 0, (2, 1)), Access(1, 0, (3, 0))],
              [Instr("load", load=0), Instr("gather", (0,), load=1, stride=1, bound=3),
               Instr("exp", (1,))],
              [Store(Access(2, 0, (2, 1)), 2)]),),
    )  # fmt: skip
    x = np.random.default_rng(6).normal(size=(4, 3)).astype(np.float32)
    idx = np.array([[0, 2], [1, 1], [-1, -3], [2, 0]], np.int64)
    got, want = run_both(session, prog, [idx, x])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[0], np.exp(np.take_along_axis(x, idx, 1)).ravel(), rtol=1e-6)


def scatter_rows(mode: str, n_idx: int, rows: int, cols: int, dtype: str = "float64"):
    """out[idx[i], j] (mode)= u[i, j] after the mode's Fill: a scatter into rows x cols."""
    return KernelProgram(
        (Buffer("int64", n_idx, "input"), Buffer(dtype, n_idx * cols, "input"),
         Buffer(dtype, rows * cols, "output")),
        (Fill(2, FILL_FOR.get(mode, 0.0)),
         loop((n_idx, cols), dtype, [Access(0, 0, (1, 0)), Access(1, 0, (cols, 1))],
              [Instr("load", load=0), Instr("load", load=1)],
              [Store(Access(2, 0, (0, 1)), 1, mode, index=0, index_stride=cols, bound=rows)]),),
    )  # fmt: skip


NUMPY_AT = {"sum": np.add.at, "prod": np.multiply.at, "max": np.maximum.at, "min": np.minimum.at}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["assign", "sum", "prod", "max", "min"])
def test_scatter_with_duplicate_indices(session: JitSession, mode: str, dtype: str) -> None:
    idx = np.array([1, 3, 1, -1, 0, 1], np.int64)  # rows 1 and 4 (= -1) are hit repeatedly
    u = np.random.default_rng(7).uniform(0.5, 2, size=(6, 3)).astype(dtype)
    got, want = run_both(session, scatter_rows(mode, 6, 5, 3, dtype), [idx, u])
    assert_same(got, want)
    expected = np.full((5, 3), FILL_FOR.get(mode, 0.0), dtype)
    if mode == "assign":
        expected[idx] = u  # numpy, like the loop, keeps the last write of a duplicate
    else:
        NUMPY_AT[mode](expected, idx, u)
    np.testing.assert_allclose(got[0], expected.ravel(), rtol=1e-6)


def test_int64_buffers_copy_and_fill(session: JitSession) -> None:
    # out = idx[::-1] through an int64 temp; f = 7 (int64 Fill); values above 2**53 survive
    prog = KernelProgram(
        (Buffer("int64", 4, "input"), Buffer("int64", 4, "temp"), Buffer("int64", 4, "output"),
         Buffer("int64", 2, "output")),
        (Fill(3, 7.0),
         loop((4,), "float64", [Access(0, 3, (-1,))], [Instr("load", load=0)],
              [Store(Access(1, 0, (1,)), 0)]),
         loop((4,), "float64", [Access(1, 0, (1,))], [Instr("load", load=0)],
              [Store(Access(2, 0, (1,)), 0)])),
    )  # fmt: skip
    idx = np.array([2**62 + 1, -3, 0, 2**53 + 1], np.int64)
    got, want = run_both(session, prog, [idx])
    assert_same(got, want)
    assert got[0].tolist() == idx[::-1].tolist() and got[1].tolist() == [7, 7]


# ---------------------------------------------------------------- index errors


BAD_INDICES = [5, -6, 2**62, -(2**63), 2**63 - 1]


@pytest.mark.parametrize("bad", BAD_INDICES)
def test_gather_index_out_of_bounds_raises(session: JitSession, bad: int) -> None:
    idx = np.array([0, 4, bad, 1], np.int64)
    message = f"index {bad} is out of bounds for dimension with size 5"
    with pytest.raises(IndexError, match=re.escape(message)):
        interpret(take_rows(4, 5, 3), [idx, np.zeros(15)])
    with pytest.raises(IndexError, match=re.escape(message)):
        session.compile(take_rows(4, 5, 3))([idx, np.zeros(15)])


@pytest.mark.parametrize("bad", BAD_INDICES)
def test_scatter_index_out_of_bounds_raises(session: JitSession, bad: int) -> None:
    compiled = session.compile(scatter_rows("sum", 3, 5, 2))
    message = f"index {bad} is out of bounds for dimension with size 5"
    with pytest.raises(IndexError, match=re.escape(message)):
        compiled([np.array([1, bad, 2], np.int64), np.ones(6)])
    (good,) = compiled([np.array([1, -5, 1], np.int64), np.ones(6)])  # still usable
    assert good.tolist() == [1, 1, 2, 2, 0, 0, 0, 0, 0, 0]


def test_status_codes_agree_between_emitter_and_caller() -> None:
    from symgrad.compiler import call, opcode_ir

    assert call.STATUS_INDEX_ERROR == opcode_ir.STATUS_INDEX_ERROR != opcode_ir.STATUS_OK == 0


def test_bound_not_buffer_size_limits_indices(session: JitSession) -> None:
    # Gather from the first 2 rows of a 5-row buffer: index 2 is in memory but not in bounds.
    prog = KernelProgram(
        (Buffer("int64", 1, "input"), Buffer("float64", 10, "input"),
         Buffer("float64", 1, "output")),
        (loop((1,), "float64", [Access(0, 0, (1,)), Access(1, 0, (0,))],
              [Instr("load", load=0), Instr("gather", (0,), load=1, stride=2, bound=2)],
              [Store(Access(2, 0, (1,)), 1)]),),
    )  # fmt: skip
    compiled = session.compile(prog)
    assert compiled([np.array([-1]), np.arange(10.0)])[0].tolist() == [2.0]
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension with size 2"):
        compiled([np.array([2]), np.arange(10.0)])


def test_gather_from_an_empty_dimension(session: JitSession) -> None:
    # bound 0: the program compiles (nothing can be touched) and any index fails at run time.
    compiled = session.compile(take_rows(2, 0, 3))
    with pytest.raises(IndexError, match="index 0 is out of bounds for dimension with size 0"):
        compiled([np.zeros(2, np.int64), np.zeros(0)])
    assert session.compile(take_rows(0, 0, 3))([np.zeros(0, np.int64), np.zeros(0)])[0].size == 0


def test_int64_inputs_are_validated(session: JitSession) -> None:
    compiled = session.compile(take_rows(2, 5, 3))
    for bad in (np.zeros(2), np.zeros(2, np.int32), np.zeros(2, np.uint64)):
        with pytest.raises(TypeError, match="input 0: expected .* int64"):
            compiled([bad, np.zeros(15)])


# ---------------------------------------------------------------- matmul


def matmul_program(m, n, k, dtype="float64", batch=1, trans=(False, False), strides=None,
                   accumulate=False, offsets=(0, 0, 0)):  # fmt: skip
    """out[b] = op(A[b]) @ op(B[b]) through one Matmul step; out is pre-filled with 0.5."""
    a_stride, b_stride = strides if strides is not None else (m * k, k * n)
    a_size = offsets[0] + max(a_stride * (batch - 1), 0) + m * k
    b_size = offsets[1] + max(b_stride * (batch - 1), 0) + k * n
    mm = Matmul(0, 1, 2, m, n, k, *trans, batch, a_stride, b_stride, accumulate, *offsets)
    return KernelProgram(
        (Buffer(dtype, a_size, "input"), Buffer(dtype, b_size, "input"),
         Buffer(dtype, offsets[2] + batch * m * n + 2, "output")),
        (Fill(2, 0.5), mm),
    )  # fmt: skip


def check_matmul(session: JitSession, prog: KernelProgram) -> None:
    """Compiled vs the oracle and vs numpy.matmul of the same operands (BLAS rounding)."""
    rng = np.random.default_rng(8)
    a, b, out = prog.buffers
    inputs = [rng.normal(size=buf.size).astype(buf.dtype) for buf in (a, b)]
    got, want = run_both(session, prog, inputs)
    mm = prog.steps[1]
    bufs = [*inputs, np.full(out.size, 0.5, out.dtype)]
    run_matmul(mm, bufs)
    rtol = 1e-5 if out.dtype == "float32" else 1e-12
    atol = rtol * max(1.0, np.sqrt(mm.k))
    np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(got[0], bufs[2], rtol=rtol, atol=atol)
    start, stop = mm.out_offset, mm.out_offset + mm.batch * mm.m * mm.n
    assert (np.delete(got[0], np.s_[start:stop]) == 0.5).all()  # nothing else is written


SHAPES = [(3, 4, 5), (1, 7, 3), (4, 1, 6), (5, 3, 1), (1, 1, 1), (3, 4, 0), (0, 3, 4),
          (33, 17, 65)]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m, n, k", SHAPES)
def test_matmul_shapes(session: JitSession, m, n, k, dtype) -> None:
    check_matmul(session, matmul_program(m, n, k, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans", [(False, True), (True, False), (True, True)])
def test_matmul_transposed(session: JitSession, trans, dtype) -> None:
    for m, n, k in [(3, 4, 5), (1, 4, 2), (3, 1, 2), (2, 3, 1)]:
        check_matmul(session, matmul_program(m, n, k, dtype, trans=trans))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_batches_broadcast_accumulate_offsets(session: JitSession, dtype) -> None:
    m, n, k = 3, 2, 4
    for strides in [(m * k, k * n), (0, k * n), (m * k, 0), (0, 0), (m * k + 1, k * n + 3)]:
        check_matmul(session, matmul_program(m, n, k, dtype, batch=3, strides=strides))
    check_matmul(session, matmul_program(m, n, k, dtype, batch=2, accumulate=True))
    check_matmul(session, matmul_program(m, n, 0, dtype, batch=2, accumulate=True))
    check_matmul(session, matmul_program(m, n, k, dtype, batch=2, trans=(True, True),
                                         accumulate=True, offsets=(5, 1, 3)))  # fmt: skip
    check_matmul(session, matmul_program(m, n, k, dtype, batch=0))


def test_matmul_between_loops_and_from_a_temp(session: JitSession) -> None:
    # t = 2 x; out = t @ y (+= onto y[0, 0] filled by a loop); z = out + 1
    prog = KernelProgram(
        (Buffer("float64", 6, "input"), Buffer("float64", 6, "input"),
         Buffer("float64", 6, "temp"), Buffer("float64", 4, "output"),
         Buffer("float64", 4, "output")),
        (loop((6,), "float64", [Access(0, 0, (1,))],
              [Instr("load", load=0), Instr("add", (0, 0))], [Store(Access(2, 0, (1,)), 1)]),
         Fill(3, 0.0),
         loop((), "float64", [Access(1, 0, ())], [Instr("load", load=0)],
              [Store(Access(3, 0, ()), 0)]),
         Matmul(2, 1, 3, 2, 2, 3, accumulate=True),
         loop((4,), "float64", [Access(3, 0, (1,))],
              [Instr("load", load=0), Instr("const", value=1.0), Instr("add", (0, 1))],
              [Store(Access(4, 0, (1,)), 2)])),
    )  # fmt: skip
    x, y = np.arange(6.0), np.arange(6.0) / 3
    got, want = run_both(session, prog, [x, y])
    out = (2 * x).reshape(2, 3) @ y.reshape(3, 2)
    out[0, 0] += y[0]
    np.testing.assert_allclose(got[0], out.ravel(), rtol=1e-12)
    np.testing.assert_allclose(got[1], out.ravel() + 1, rtol=1e-12)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)


def test_matmul_without_blas_symbol_fails_at_compile_time(monkeypatch) -> None:
    from symgrad.compiler import blas

    monkeypatch.setitem(blas.GEMM_SYMBOLS, "float64", "no_such_dgemm64_")
    with pytest.raises(RuntimeError, match="Matmul needs the BLAS symbol 'no_such_dgemm64_'"):
        JitSession().compile(matmul_program(2, 2, 2))


# ---------------------------------------------------------------- checks and errors


@pytest.fixture(scope="module")
def add32(session: JitSession) -> CompiledProgram:
    return session.compile(elementwise("add", "float32", 6), name="add32")


@pytest.mark.parametrize(
    "inputs, error, words",
    [
        ([np.zeros(6, np.float32)], TypeError, "expected 2 inputs"),
        ([np.zeros(6), np.zeros(6, np.float32)], TypeError, "input 0"),
        ([np.zeros(6, np.float32), np.zeros(7, np.float32)], ValueError, "input 1"),
        ([np.zeros(12, np.float32)[::2], np.zeros(6, np.float32)], ValueError, "non-contiguous"),
        ([np.zeros(6, np.float32), [0.0] * 6], TypeError, "got list"),
        ([np.zeros(6, ">f4"), np.zeros(6, np.float32)], TypeError, "dtype"),
    ],
)
def test_input_validation(add32: CompiledProgram, inputs, error, words) -> None:
    with pytest.raises(error, match=words):
        add32(inputs)


def test_unaligned_input_is_refused(add32: CompiledProgram) -> None:
    raw = np.zeros(4 * 6 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, np.float32, count=6, offset=1)
    assert not unaligned.flags.aligned
    with pytest.raises(ValueError, match="unaligned"):
        add32([unaligned, np.zeros(6, np.float32)])


def test_shape_is_free_size_is_not(add32: CompiledProgram) -> None:
    (got,) = add32([np.ones((2, 3), np.float32), np.ones(6, np.float32)])
    assert got.shape == (6,) and (got == 2).all()


def test_bad_kernel_name_is_refused(session: JitSession) -> None:
    with pytest.raises(ValueError, match="kernel name"):
        session.compile(elementwise("neg", "float64", 2), name="bad name")


@pytest.mark.parametrize(
    "steps, words",
    [
        ((Loop((7,), "float64", (Access(0, 0, (1,)),), (Instr("load", load=0),),
               (Store(Access(1, 0, (1,)), 0),)),), "outside buffer 0"),
        ((Loop((6,), "float64", (Access(0, 0, (1,)),), (Instr("load", load=0),),
               (Store(Access(1, 4, (-1,)), 0),)),), "outside buffer 1"),
        ((Fill(0, 0.0),), "input buffer"),
        ((Loop((6,), "float64", (), (Instr("neg", ()),), ()),), "arity"),
        ((Loop((6,), "float64", (), (Instr("neg", (0,)),), ()),), "earlier"),
        ((Loop((6,), "float64", (Access(0, 0, (1, 1)),), (), ()),), "strides"),
    ],
)  # fmt: skip
def test_malformed_programs_are_refused(session: JitSession, steps, words) -> None:
    prog = KernelProgram((Buffer("float64", 6, "input"), Buffer("float64", 6, "output")), steps)
    with pytest.raises(ValueError, match=words):
        session.compile(prog)


IDX, X = Instr("load", load=0), Instr("load", load=1)  # an int64 index, a float64 value
INDEX_LOADS = (Access(0, 0, (1,)), Access(1, 0, (1,)))  # idx[i], x[i]


def index_loop(body, stores, loads=INDEX_LOADS, dtype="float64") -> Loop:
    return Loop((4,), dtype, loads, tuple(body), tuple(stores))


def gather(stride: int, bound: int, index: int = 0) -> Instr:
    return Instr("gather", (index,), load=1, stride=stride, bound=bound)


def scatter(offset: int, stride: int, bound: int, mode: str = "sum", value: int = 1) -> Store:
    return Store(Access(2, offset, (0,)), value, mode, index=0, index_stride=stride, bound=bound)


@pytest.mark.parametrize(
    "steps, words",
    [
        ((index_loop([IDX, Instr("neg", (0,))], []),), "int64 index"),
        ((index_loop([IDX, X, Instr("add", (0, 1))], []),), "int64 index"),
        ((index_loop([IDX, X, gather(1, 2, index=1)], []),), "gather index must be"),
        ((index_loop([IDX, Instr("gather", (0,), load=0, bound=4)], []),), "from int64"),
        ((index_loop([IDX, X], [Store(Access(2, 0, (1,)), 0)]),), "int64 buffers only"),
        ((index_loop([IDX, X], [Store(Access(3, 0, (1,)), 1)]),), "int64 buffers only"),
        ((index_loop([IDX], [Store(Access(3, 0, (1,)), 0, "sum")]),), "int64 buffers only"),
        ((index_loop([IDX, X], [], dtype="int64"),), "invalid dtype"),
        ((Fill(3, 0.5),), "int64 buffer 3 filled"),
        ((Fill(3, float("inf")),), "int64 buffer 3 filled"),
        # x[i + 2 * idx] reaches element 3 + 2 * 1 = 5 (ok) or, with bound 3, 7 (too far)
        ((index_loop([IDX, gather(2, 3)], []),), "elements 0..7 outside buffer 1"),
        ((index_loop([IDX, gather(-1, 2)], []),), "elements -1..3 outside buffer 1"),
        ((index_loop([IDX, gather(1, -1)], []),), "negative bound"),
        ((index_loop([IDX, X], [scatter(0, 2, 4)]),), "elements 0..6 outside buffer 2"),
        ((index_loop([IDX, X], [scatter(0, 1, 2, value=0)]),), "int64 buffers only"),
        ((index_loop([IDX, X], [Store(Access(2, 0, (0,)), 1, index=1, bound=2)]),),
         "scatter index must be"),
        ((index_loop([IDX, X], [Store(Access(2, 0, (0,)), 1, "mean")]),), "invalid store"),
    ],
)  # fmt: skip
def test_malformed_index_programs_are_refused(session: JitSession, steps, words) -> None:
    prog = KernelProgram(
        (Buffer("int64", 4, "input"), Buffer("float64", 6, "input"),
         Buffer("float64", 6, "output"), Buffer("int64", 4, "output")),
        steps,
    )  # fmt: skip
    with pytest.raises(ValueError, match=words):
        session.compile(prog)


def test_valid_index_programs_at_the_edge_are_accepted(session: JitSession) -> None:
    steps = (index_loop([IDX, gather(1, 3), gather(-1, 1)], [scatter(2, 3, 2)]),)
    prog = KernelProgram(
        (Buffer("int64", 4, "input"), Buffer("float64", 6, "input"),
         Buffer("float64", 6, "output")),
        steps,
    )  # fmt: skip
    session.compile(prog)


@pytest.mark.parametrize(
    "step, words",
    [
        (Matmul(0, 1, 2, 2, 5, 1), "outside buffer 2"),  # out needs 10, has 9
        (Matmul(0, 1, 2, 2, 2, 4, batch=2, b_batch_stride=1), "outside buffer 1"),
        (Matmul(0, 1, 2, 2, 2, 4, batch=2, a_batch_stride=1, a_offset=1), "outside buffer 0"),
        (Matmul(0, 1, 2, 1, 1, 2, batch=2, a_batch_stride=-1), "outside buffer 0"),
        (Matmul(0, 1, 0, 1, 1, 1), "input buffer"),
        (Matmul(0, 1, 1, 1, 1, 1), "input buffer"),
        (Matmul(0, 2, 2, 1, 1, 1), "also an operand"),
        (Matmul(0, 3, 2, 1, 1, 1), "one float dtype"),
        (Matmul(0, 1, 4, 1, 1, 1), "one float dtype"),
        (Matmul(0, 1, 2, -1, 1, 1), "negative extent"),
        (Matmul(0, 9, 2, 1, 1, 1), "out of range"),
    ],
)  # fmt: skip
def test_malformed_matmuls_are_refused(session: JitSession, step, words) -> None:
    prog = KernelProgram(
        (Buffer("float64", 8, "input"), Buffer("float64", 8, "input"),
         Buffer("float64", 9, "output"), Buffer("float32", 8, "input"),
         Buffer("int64", 8, "output")),
        (step,),
    )  # fmt: skip
    with pytest.raises(ValueError, match=words):
        session.compile(prog)


# ---------------------------------------------------------------- vector loops

LONG = (3, 203)  # 203 = 25 vectors of 8 and a remainder of 3


def long_reduce(mode: str, dtype: str, strides, size: int, loop_dtype: str = ""):
    """out[...] (mode)= x[i, j] * 1.25 over a LONG space, after the mode's Fill."""
    return KernelProgram(
        (Buffer(dtype, math.prod(LONG), "input"), Buffer(dtype, size, "output")),
        (Fill(1, FILL_FOR[mode]),
         loop(LONG, loop_dtype or dtype, [Access(0, 0, (LONG[1], 1))],
              [Instr("load", load=0), Instr("const", value=1.25), Instr("mul", (0, 1))],
              [Store(Access(1, 0, strides), 2, mode)])),
    )  # fmt: skip


@pytest.mark.parametrize("dtype, loop_dtype", [("float32", ""), ("float64", ""), *MIXED])
@pytest.mark.parametrize("mode", ["sum", "prod", "max", "min"])
@pytest.mark.parametrize("strides, size", [((1, 0), 3), ((0, 1), 203), ((0, 0), 1)])
def test_vectorised_reductions_keep_the_order(any_session, mode, dtype, loop_dtype, strides, size):
    # Every path sums in the same partials (no fast-math), so results are bit-identical.
    rng = np.random.default_rng(9)
    x = rng.uniform(0.99, 1.01, LONG) if mode == "prod" else rng.normal(size=LONG)
    x[1, 100] = np.nan if mode in ("max", "min") else x[1, 100]
    prog = long_reduce(mode, dtype, strides, size, loop_dtype)
    assert_same(*run_both(any_session, prog, [x.astype(dtype)]))


def test_vectorised_access_patterns(any_session: JitSession) -> None:
    # a[i, j] = x[i, j] * y[j] + z[i] + x[i, 202 - j] + w[3 j] (float32 loop, mixed buffers);
    # t[j, i] = a (a transposed store); o[i, j] = x and then o[i, j + 1] = 2 x: the
    # second store to o overwrites the first in iteration order.
    n, m = LONG
    prog = KernelProgram(
        (Buffer("float64", n * m, "input"), Buffer("float32", m, "input"),
         Buffer("float64", n, "input"), Buffer("float32", 3 * m, "input"),
         Buffer("float64", n * m, "output"), Buffer("float32", n * m, "output"),
         Buffer("float64", n * (m + 1), "output")),
        (loop(LONG, "float32",
              [Access(0, 0, (m, 1)), Access(1, 0, (0, 1)), Access(2, 0, (1, 0)),
               Access(0, m - 1, (m, -1)), Access(3, 0, (0, 3))],
              [Instr("load", load=0), Instr("load", load=1), Instr("mul", (0, 1)),
               Instr("load", load=2), Instr("add", (2, 3)), Instr("load", load=3),
               Instr("add", (4, 5)), Instr("load", load=4), Instr("add", (6, 7)),
               Instr("add", (0, 0))],
              [Store(Access(4, 0, (m, 1)), 8), Store(Access(5, 0, (1, n)), 8),
               Store(Access(6, 0, (m + 1, 1)), 0), Store(Access(6, 1, (m + 1, 1)), 9)]),),
    )  # fmt: skip
    rng = np.random.default_rng(10)
    inputs = [rng.normal(size=b.size).astype(b.dtype) for b in prog.buffers if b.kind == "input"]
    got, want = run_both(any_session, prog, inputs)
    assert_same(got, want)


def test_explicit_vector_loops(explicit: JitSession) -> None:
    compiled = explicit.compile(elementwise("sin", "float64", 100))
    assert re.search(r"<(4|8) x double>", compiled.llvm_ir)  # vectors before any optimisation
    # Gathers stay scalar loops; tails shorter than a vector too.
    x = np.arange(15.0).reshape(5, 3) / 7
    got, want = run_both(explicit, take_rows(6, 5, 3), [np.array([0, -1, 4, 2, -5, 4]), x])
    assert_same(got, want)
    assert "x double>" not in explicit.compile(take_rows(6, 5, 3)).llvm_ir
    got, want = run_both(explicit, elementwise("mul", "float32", 5), [np.ones(5, np.float32)] * 2)
    assert_same(got, want)
    # The iterations after the last whole vector are one partial vector: the same function
    # per lane, nothing read or written past the end.
    x = np.linspace(-3, 3, 24)
    (whole,) = explicit.compile(elementwise("sin", "float64", 24))([x])
    partial = explicit.compile(elementwise("sin", "float64", 13))
    assert_same(partial([x[:13]]), [whole[:13]])
    assert len(re.findall(r"= phi\s+i64", partial.llvm_ir)) == 1  # one loop: no scalar remainder loop


def tangled(n_instr: int, seed: int) -> KernelProgram:
    """A float64 loop over LONG whose body reads values from anywhere before (near and far),
    with stores of early and late values and a register reduction."""
    rng = np.random.default_rng(seed)
    n, m = LONG
    body = [Instr("load", load=0), Instr("load", load=1), Instr("const", value=0.5), Instr("const", value=-1.25)]
    while len(body) < n_instr:
        a, b = (int(rng.integers(0, len(body))) for _ in range(2))
        op = str(rng.choice(["add", "mul", "sin", "tanh", "maximum", "sub"]))
        op = "max" if op == "maximum" else op
        body.append(Instr(op, (a,) if OPCODES[op] == 1 else (a, b)))
        if op == "mul":  # keep magnitudes bounded
            body.append(Instr("tanh", (len(body) - 1,)))
    return KernelProgram(
        (Buffer("float64", n * m, "input"), Buffer("float64", m, "input"), Buffer("float64", n * m, "output"),
         Buffer("float64", n * m, "output"), Buffer("float64", n, "output")),
        (Fill(4, 0.0),
         loop(LONG, "float64", [Access(0, 0, (m, 1)), Access(1, 0, (0, 1))], body,
              [Store(Access(2, 0, (m, 1)), 5), Store(Access(3, 0, (m, 1)), len(body) - 1),
               Store(Access(4, 0, (1, 0)), len(body) // 2, "sum")])),
    )  # fmt: skip


def test_long_bodies_in_pieces_compute_the_same(explicit: JitSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body longer than vecloop.CHUNK is emitted as calls to pieces sharing stack slots:
    the results are bit-identical to one straight body (same operations, same order)."""
    from symgrad.compiler import vecloop

    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=LONG[0] * LONG[1]), rng.normal(size=LONG[1])]
    for seed in range(3):
        program = tangled(60, seed)
        whole = explicit.compile(program)
        monkeypatch.setattr(vecloop, "CHUNK", 7)
        pieces = explicit.compile(program)
        monkeypatch.undo()
        assert "piece" in pieces.llvm_ir and "piece" not in whole.llvm_ir
        assert_same(pieces(inputs), whole(inputs))
        np.testing.assert_allclose(whole(inputs)[1], interpret(program, inputs)[1], rtol=1e-12, atol=1e-14)


def chain(k: int, n: int = 1000) -> KernelProgram:
    """About k body instructions: x = sin(x) * 0.5001 + x * 0.5 repeated; out = sum(x), y = x."""
    body = [Instr("load", load=0), Instr("const", value=0.5001), Instr("const", value=0.5)]
    x = 0
    while len(body) + 4 <= k:
        p = len(body)
        body += [Instr("sin", (x,)), Instr("mul", (p, 1)), Instr("mul", (x, 2)),
                 Instr("add", (p + 1, p + 2))]  # fmt: skip
        x = p + 3
    return KernelProgram(
        (Buffer("float64", n, "input"), Buffer("float64", 1, "output"),
         Buffer("float64", n, "output")),
        (Fill(1, 0.0),
         loop((n,), "float64", [Access(0, 0, (1,))], body,
              [Store(Access(1, 0, (0,)), x, "sum"), Store(Access(2, 0, (1,)), x)])),
    )  # fmt: skip


def test_long_loop_bodies_are_vectorised_and_emitted_in_bounded_pieces() -> None:
    """What keeps compile time linear in body size (measured by benchmarks/w4_compile.py, not
    here): explicit vectors, and no emitted function longer than a piece of vecloop.CHUNK."""
    from symgrad.compiler import vecloop

    compiled = JitSession().compile(chain(3200))
    assert re.search(r"<(4|8) x double>", compiled.llvm_ir)  # vectorised by the emitter
    bodies = re.split(r"\ndefine ", compiled.llvm_ir)[1:]
    assert len(bodies) > 3200 // vecloop.CHUNK  # the body was cut into pieces
    longest = max(body.count("\n  %") for body in bodies)
    assert longest <= vecloop.CHUNK + 64, longest


# ---------------------------------------------------------------- code quality and lifetime


COVERED = [  # (loop shape, store access, buffer size) -> is every element written?
    ((10,), Access(0, 0, (1,)), 10, True),
    ((5, 7), Access(0, 0, (1, 5)), 35, True),  # a transposed store
    ((3, 5), Access(0, 0, (0, 1)), 5, True),  # the same row, three times
    ((4, 1), Access(0, 0, (1, 99)), 4, True),  # extent 1: its stride never moves
    ((9,), Access(0, 1, (1,)), 10, False),  # offset: element 0 is missed
    ((5,), Access(0, 0, (2,)), 10, False),  # every other element
    ((10,), Access(0, 9, (-1,)), 10, False),  # reversed: not recognised (zeroed, to be safe)
    ((0, 5), Access(0, 0, (5, 1)), 5, False),  # the loop never runs
]


@pytest.mark.parametrize("shape, access, size, covered", COVERED)
def test_overwritten_outputs(shape, access, size, covered) -> None:
    from symgrad.compiler.check import overwritten_outputs

    def program(*steps, mode="assign", loads=()):
        out = Store(Access(1, access.offset, access.strides), 0, mode)
        x = Access(0, 0, (0,) * len(shape))
        body = loop(shape, "float64", [x, *loads], [Instr("load", load=0)], [out])
        buffers = (Buffer("float64", 1, "input"), Buffer("float64", size, "output"))
        return KernelProgram(buffers, (*steps, body))

    assert overwritten_outputs(program()) == ({1} if covered else set())
    assert overwritten_outputs(program(Fill(1, 0.0))) == {1}  # a Fill comes first
    assert not overwritten_outputs(program(mode="sum"))  # accumulating reads
    assert not overwritten_outputs(program(loads=[Access(1, 0, (0,) * len(shape))]))  # the loop reads it


def test_elementwise_add_is_vectorised(session: JitSession) -> None:
    compiled = session.compile(elementwise("add", "float64", 1000), name="vadd")
    assert "<4 x double>" in compiled.optimized_ir or "<8 x double>" in compiled.optimized_ir
    assert "fadd double" in compiled.llvm_ir and "vadd" in compiled.asm
    assert compiled.compile_seconds > 0


@pytest.mark.parametrize("path", ["llvm", "explicit"])
def test_vectors_spilled_around_math_calls_are_aligned(request, path: str) -> None:
    # out = sin(x) * exp(y) + tanh(x * y): values live across calls, which save no vector
    # register, so they are spilled; unaligned 64-byte spills straddle cache lines.
    session = request.getfixturevalue({"llvm": "session"}.get(path, path))
    prog = KernelProgram(
        (Buffer("float32", 1000, "input"), Buffer("float32", 1000, "input"), Buffer("float32", 1000, "output")),
        (loop((1000,), "float32", [Access(0, 0, (1,)), Access(1, 0, (1,))],
              [Instr("load", load=0), Instr("load", load=1), Instr("sin", (0,)), Instr("exp", (1,)),
               Instr("mul", (2, 3)), Instr("mul", (0, 1)), Instr("tanh", (5,)), Instr("add", (4, 6))],
              [Store(Access(2, 0, (1,)), 7)]),),
    )  # fmt: skip
    compiled = session.compile(prog)
    assert "alignstack(64)" in compiled.llvm_ir
    assert re.search(r"vmovap[sd]\s+%[yz]mm\d+, \d*\(%rsp\)", compiled.asm)  # spills happen, aligned
    assert not re.search(r"vmovup[sd]\s+[^\n]*\(%rsp\)", compiled.asm)
    x, y = np.linspace(-2, 2, 1000, dtype=np.float32), np.linspace(1, -1, 1000, dtype=np.float32)
    np.testing.assert_allclose(compiled([x, y])[0], np.sin(x) * np.exp(y) + np.tanh(x * y), rtol=1e-5, atol=1e-6)


def test_inner_sums_are_vectorised_by_the_emitter(session: JitSession) -> None:
    # A sum along the innermost axis: explicit vectors of partials before any optimisation
    # (LLVM's vectoriser would vectorise across rows); along the outer axis: scalar code.
    assert re.search(r"<(4|8) x double>", session.compile(reduction("float64", (1, 0), 5)).llvm_ir)
    assert not re.search(r"x double>", session.compile(reduction("float64", (0, 1), 7)).llvm_ir)


def test_fifty_programs_in_one_session() -> None:
    session = JitSession()
    compiled = [
        session.compile(elementwise("mul", "float64", n + 1), name="same_name") for n in range(50)
    ]
    assert len({c.name for c in compiled}) == 50
    for n, c in enumerate(compiled):
        x = np.arange(n + 1.0)
        np.testing.assert_array_equal(c([x, x])[0], x * x)


def test_compiled_program_keeps_its_session_alive() -> None:
    compiled = JitSession().compile(elementwise("sub", "float32", 3))
    gc.collect()
    (got,) = compiled([np.ones(3, np.float32), np.full(3, 0.25, np.float32)])
    assert got.tolist() == [0.75] * 3
    assert math.isfinite(compiled.compile_seconds)


def test_compiler_imports_only_itself_numpy_llvmlite_and_stdlib() -> None:
    import ast
    import pathlib
    import sys

    import symgrad.compiler

    allowed = {"numpy", "llvmlite", "__future__"} | set(sys.stdlib_module_names)
    for path in pathlib.Path(symgrad.compiler.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{path.name} reaches outside compiler/"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                plain = isinstance(node, ast.Import)
                names = [a.name for a in node.names] if plain else [node.module]
                assert all(n.split(".")[0] in allowed for n in names), f"{path.name}: {names}"


def test_tiny_programs_skip_the_ir_pipeline() -> None:
    """Below tiny_work loop-body instructions no IR optimisation runs (the optimised IR is
    the emitted IR, annotated); above it, LLVM's pipeline runs (and vectorises)."""
    session = JitSession()
    tiny, large = elementwise("add", "float64", 8), elementwise("add", "float64", 4096)
    small = session.compile(tiny, name="tiny")
    assert "<4 x double>" not in small.optimized_ir and "<8 x double>" not in small.optimized_ir
    assert re.search(r"<(4|8) x double>", session.compile(large, name="large").optimized_ir)
    x = np.arange(8.0)
    assert_same(small([x, x]), [2 * x])


def test_loops_in_pieces_skip_the_ir_pipeline() -> None:
    """A program whose work is all in loops emitted as `optnone` pieces gets no IR pipeline
    (its body function stays a function of its own: nothing inlined it); a program with
    more work besides does."""
    session = JitSession()
    pieces = session.compile(chain(1200), name="pieces")
    assert re.search(r'define internal i32 @"?pieces\.body"?\(', pieces.optimized_ir)
    busy = chain(1200)
    more = loop((1000,), "float64", [Access(0, 0, (1,))], [Instr("load", load=0), Instr("sin", (0,))],
                [Store(Access(2, 0, (1,)), 1)])  # fmt: skip
    both = session.compile(KernelProgram(busy.buffers, (*busy.steps, more)), name="both")
    assert not re.search(r'define internal i32 @"?both\.body"?\(', both.optimized_ir)
    x = np.linspace(-2, 2, 1000)
    assert_same(pieces([x]), JitSession(tiny_work=-1).compile(chain(1200), name="pieces")([x]))


def test_tiny_programs_get_quick_code_generation() -> None:
    """A tiny program is straight-line code (its loops unrolled) compiled by the -O0 code
    generator (its optimised IR says so, and its assembly listing comes from that generator
    too); a larger one is not. Both compute what the optimised loops compute."""
    from symgrad.compiler import jit

    session = JitSession()
    small = session.compile(elementwise("mul", "float64", 8), name="small")
    large = session.compile(elementwise("mul", "float64", 4096), name="large")
    assert small.optimized_ir.startswith(jit.QUICK) and not large.optimized_ir.startswith(jit.QUICK)
    assert "phi" not in small.llvm_ir and "phi" in large.llvm_ir
    assert "small" in small.asm and "large" in large.asm
    x = np.arange(8.0)
    assert_same(small([x, x]), [x * x])
    summed = reduction("float64", (1, 0), 5)  # running sums (35 iterations), unrolled in order
    tiny, looped = JitSession(tiny_work=100).compile(summed), JitSession(tiny_work=-1).compile(summed)
    assert "phi" not in tiny.llvm_ir
    inputs = [np.random.default_rng(0).normal(size=b.size) for b in summed.buffers if b.kind == "input"]
    assert_same(tiny(inputs), looped(inputs))
