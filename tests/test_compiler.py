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
    Store,
)

# ---------------------------------------------------------------- oracle

UNARY = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "floor": np.floor,
    "ceil": np.ceil,
}  # fmt: skip
BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "max": np.maximum, "min": np.minimum,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal,
}  # fmt: skip
LIBM = {"pow", "exp", "log", "sin", "cos", "tan", "tanh"}  # results may differ by an ulp or two


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
    """Run a KernelProgram element by element with numpy scalars."""
    feed = iter(inputs)
    bufs = [
        np.array(next(feed), b.dtype).ravel() if b.kind == "input" else np.zeros(b.size, b.dtype)
        for b in program.buffers
    ]
    with np.errstate(all="ignore"):
        for step in program.steps:
            if isinstance(step, Fill):
                bufs[step.buffer][:] = step.value
            else:
                run_loop(step, bufs)
    return [bufs[k] for k in program.of_kind("output")]


def element(a: Access, idx: tuple[int, ...]) -> int:
    return a.offset + sum(s * i for s, i in zip(a.strides, idx))


def run_loop(loop: Loop, bufs: list[np.ndarray]) -> None:
    ty = np.dtype(loop.dtype).type
    for idx in np.ndindex(*loop.shape):
        vals: list = []
        for ins in loop.body:
            if ins.op == "load":
                a = loop.loads[ins.load]
                vals.append(ty(bufs[a.buffer][element(a, idx)]))
            elif ins.op == "const":
                vals.append(ty(ins.value))
            else:
                vals.append(scalar_op(ins.op, ty, [vals[k] for k in ins.args]))
        for st in loop.stores:
            buf, k = bufs[st.access.buffer], element(st.access, idx)
            value = vals[st.value]
            buf[k] = ty(buf[k]) + value if st.mode == "sum" else value


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def session() -> JitSession:
    return JitSession()


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
def test_opcode(session: JitSession, op: str, dtype: str) -> None:
    inputs = operands(op, dtype, np.random.default_rng(len(op)))
    got, want = run_both(session, elementwise(op, dtype, inputs[0].size), inputs)
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
@pytest.mark.parametrize(
    "strides, size, axis", [((1, 0), 5, 1), ((0, 1), 7, 0), ((0, 0), 1, None)]
)
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


# ---------------------------------------------------------------- code quality and lifetime


def test_elementwise_add_is_vectorised(session: JitSession) -> None:
    compiled = session.compile(elementwise("add", "float64", 1000), name="vadd")
    assert "<4 x double>" in compiled.optimized_ir or "<8 x double>" in compiled.optimized_ir
    assert "fadd double" in compiled.llvm_ir and "vadd" in compiled.asm
    assert compiled.compile_seconds > 0


def test_only_inner_reductions_accumulate_in_a_register(session: JitSession) -> None:
    # The running sum is a loop-carried phi only when the innermost stride is 0.
    carried = re.compile(r"phi\s+double")
    assert carried.search(session.compile(reduction("float64", (1, 0), 5)).llvm_ir)
    assert not carried.search(session.compile(reduction("float64", (0, 1), 7)).llvm_ir)


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
