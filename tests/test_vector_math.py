"""Vector math through glibc's libmvec: accuracy in ulp against a higher-precision
numpy reference, special values, and the scalar fallback.

Measured on the project's machines (glibc 2.36, AVX-512), max error over the
inputs below: libmvec float64 3.02 ulp (cos; sin 2.55, tan 2.57, exp 2.24, others
< 2.2), float32 3.97 ulp (erf just below 1; log 3.62, others < 2.6); scalar libm
float64 1.98 ulp (tanh), float32 1.91 ulp (tanh). Special values (nan, +-inf, +-0,
huge, tiny, subnormal) give the same kind of result, and the same sign of zero, as
the reference.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest
from symgrad.compiler import (
    OPCODES,
    Access,
    Buffer,
    Instr,
    JitSession,
    KernelProgram,
    Loop,
    Store,
    jit,
    vecmath,
    vecpoly,
)

ULP_BOUND = 4.0  # glibc documents libmvec as accurate to 4 ulp
LD = np.longdouble  # 80-bit on x86-64 Linux: a reference with 11 more bits than float64
OPS = sorted(base for base, _ in vecmath.FUNCTIONS.values())
NUMPY = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "tanh": np.tanh, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "exp2": np.exp2, "log2": np.log2,
    "log10": np.log10, "log1p": np.log1p, "expm1": np.expm1, "pow": np.power,
    "atan2": np.arctan2,
}  # fmt: skip
DTYPES = ["float32", "float64"]


def erf_reference(x: np.ndarray) -> np.ndarray:
    """erf to 40 digits with mpmath (which has no -0: erf(+-0) = +-0 is kept as is)."""
    with mpmath.workdps(40):
        values = [mpmath.erf(mpmath.mpf(float(v))) if np.isfinite(v) and v != 0 else None
                  for v in x.astype(np.float64)]  # fmt: skip
        return np.array([LD(str(v)) if v is not None else LD(math.erf(float(x_)))
                         for v, x_ in zip(values, x)], LD)  # fmt: skip


def reference(op: str, args: list[np.ndarray]) -> np.ndarray:
    """The function in extended precision (float64 inputs are exact in it)."""
    if op == "erf":
        return erf_reference(args[0])
    with np.errstate(all="ignore"):
        return NUMPY[op](*[a.astype(LD) for a in args])


def special_values(dtype: str) -> np.ndarray:
    fi = np.finfo(dtype)
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, np.pi, np.pi / 2,
              float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny),
              float(fi.smallest_subnormal), -float(fi.smallest_subnormal), float(fi.eps),
              1 - float(fi.epsneg), 88.7, 89.0, -103.9, 709.7, 710.0, -745.2, 1e22, 1e300]  # fmt: skip
    with np.errstate(over="ignore"):
        return np.array(values).astype(dtype)


def random_values(dtype: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Magnitudes spread over the whole exponent range, plus the usual working ranges."""
    fi = np.finfo(dtype)
    lo, hi = math.log2(float(fi.smallest_subnormal)), math.log2(float(fi.max))
    wide = np.exp2(rng.uniform(lo, hi, n)) * rng.choice([-1.0, 1.0], n)
    ranges = [rng.uniform(-1, 1, n), rng.uniform(-10, 10, n), rng.uniform(-800, 800, n)]
    return np.concatenate([wide, *ranges]).astype(dtype)


def inputs(op: str, dtype: str, n: int = 3000) -> list[np.ndarray]:
    rng = np.random.default_rng(len(op))
    x = np.concatenate([random_values(dtype, rng, n), special_values(dtype)])
    if OPCODES[op] == 1:
        return [x]
    grid = np.meshgrid(special_values(dtype), special_values(dtype), indexing="ij")
    if op == "pow":  # mostly positive bases, and exponents where results stay finite
        y = np.concatenate([rng.uniform(-30, 30, x.size // 2), rng.integers(-9, 9, x.size - x.size // 2)])
        x = np.where(rng.random(x.size) < 0.8, np.abs(x), x)
    else:
        y = rng.permutation(x)
    return [np.concatenate([a.astype(dtype), g.ravel()]) for a, g in zip((x, y), grid)]


@functools.cache
def case(op: str, dtype: str) -> tuple[list[np.ndarray], np.ndarray]:
    args = inputs(op, dtype)
    return args, reference(op, args)


def elementwise(op: str, dtype: str, n: int) -> KernelProgram:
    arity = OPCODES[op]
    body = [Instr("load", load=k) for k in range(arity)] + [Instr(op, tuple(range(arity)))]
    loop = Loop((n,), dtype, tuple(Access(k, 0, (1,)) for k in range(arity)), tuple(body),
                (Store(Access(arity, 0, (1,)), arity),))  # fmt: skip
    buffers = [Buffer(dtype, n, "input") for _ in range(arity)] + [Buffer(dtype, n, "output")]
    return KernelProgram(tuple(buffers), (loop,))


def ulp_errors(got: np.ndarray, want: np.ndarray, dtype: str) -> np.ndarray:
    """|got - want| in units of the spacing of `dtype` at want; a NaN, infinity or zero
    of the wrong kind (or sign) counts as an infinite error."""
    with np.errstate(all="ignore"):
        rounded = want.astype(dtype)
        spacing = np.spacing(np.abs(rounded)).astype(LD)
        error = (np.abs(got.astype(LD) - want) / spacing).astype(np.float64)
    exact = (got == rounded) & (np.signbit(got) == np.signbit(rounded))
    exact |= np.isnan(got) & np.isnan(rounded)
    error[exact] = 0.0
    error[np.isnan(error) | ((got == 0) & (rounded == 0) & ~exact)] = np.inf
    return error


def uses_vector_math(compiled) -> bool:
    """Calls libmvec, or symgrad's own vector functions (called, or inlined: declared by
    the emitter)."""
    libmvec = "call <" in compiled.optimized_ir and "_ZGV" in compiled.optimized_ir
    return libmvec or vecpoly.PREFIX in compiled.optimized_ir or vecpoly.PREFIX in compiled.llvm_ir


@pytest.fixture(scope="module")
def sessions() -> dict[str, JitSession]:
    vector = JitSession(vector_math=True)
    if vector.vector_library is None:
        pytest.skip("no libmvec on this machine")
    return {
        "libmvec": vector,
        "explicit": JitSession(vector_math=True, explicit_vector_body=0),
        "libm": JitSession(vector_math=False),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("path", ["libmvec", "explicit", "libm"])
def test_ulp_error(sessions: dict[str, JitSession], path: str, op: str, dtype: str) -> None:
    args, want = case(op, dtype)
    compiled = sessions[path].compile(elementwise(op, dtype, args[0].size))
    assert uses_vector_math(compiled) == (path != "libm")
    (got,) = compiled(args)
    errors = ulp_errors(got, want, dtype)
    worst = int(np.argmax(errors))
    assert errors[worst] <= ULP_BOUND, (
        f"{op}{tuple(a[worst] for a in args)} = {got[worst]!r}: {errors[worst]:.2f} ulp"
    )


def test_every_mapped_function_is_an_opcode_with_a_reference() -> None:
    assert set(OPS) <= set(OPCODES) and set(OPS) <= set(NUMPY) | {"erf"}
    lanes = vecmath.vector_lanes("+sse2,+avx,+avx2,+avx512f")
    assert lanes == {"float32": 16, "float64": 8}
    names = {v.symbol for v in vecmath.candidate_variants({"sse2", "avx2", "avx512f"})}
    assert {"_ZGVbN2v_sin", "_ZGVdN4v_exp", "_ZGVeN8vv_pow", "_ZGVeN16v_erff"} <= names
    assert "_ZGVcN4v_sin" not in names  # AVX2's variant is preferred over AVX's


def test_annotation_marks_only_mapped_calls() -> None:
    library = vecmath.VectorLibrary({v.scalar: (v,) for v in vecmath.candidate_variants({"avx512f"})
                                     if v.symbol in ("_ZGVeN8v_sin", "_ZGVeN16v_erff")})  # fmt: skip
    text = ('define double @f(double %x, float %y) {\n  %a = call double @"llvm.sin.f64"(double %x)\n'
            '  %b = call double @"llvm.fabs.f64"(double %a)\n  %c = call float @"erff"(float %y)\n'
            "  ret double %b\n}\n")  # fmt: skip
    annotated = vecmath.annotate(text, library)
    assert '@"symgrad.vm.llvm.sin.f64"(double %x) #1' in annotated and '@"symgrad.vm.erff"(float %y) #2' in annotated
    assert '@"llvm.fabs.f64"(double %a)\n' in annotated
    assert '"_ZGV_LLVM_N8v_symgrad.vm.llvm.sin.f64(_ZGVeN8v_sin)"' in annotated
    assert "declare <16 x float> @_ZGVeN16v_erff(<16 x float>)" in annotated
    assert "call <16 x float> @_ZGVeN16v_erff(<16 x float> %s0)" in annotated  # the wrapper's body
    assert vecmath.annotate("define void @g() {\n  ret void\n}\n", library).count("#") == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path", ["libmvec", "explicit"])
def test_one_value_per_input(sessions: dict[str, JitSession], path: str, dtype: str) -> None:
    """Vector lanes, remainder iterations and scalar code compute the same function: a
    value repeated along a loop whose length is no multiple of the lanes (and a 0-d loop)
    gives one result, bit for bit (amax's gradient finds ties by equality)."""
    for op in OPS:
        args = [a[:200] for a in case(op, dtype)[0]]
        n = 37  # a vector loop of 32 or more (8 or 16 lanes) and a remainder
        program = elementwise(op, dtype, n * args[0].size)
        repeated = [np.repeat(a, n) for a in args]
        (got,) = sessions[path].compile(program)(repeated)
        got = got.reshape(args[0].size, n)
        scalar = sessions[path].compile(elementwise(op, dtype, 1))
        for k in range(0, args[0].size, 7):
            (one,) = scalar([a[k : k + 1] for a in args])
            same = (got[k] == one[0]) | (np.isnan(got[k]) & np.isnan(one[0]))
            assert same.all(), f"{op}{tuple(a[k] for a in args)}: {np.unique(got[k])} and {one[0]!r}"


def sum_in_partials(values: np.ndarray) -> np.generic:
    """A register sum's result (compiler/emit.py: 16 partials, then pairwise), from 0;
    IEEE results (inf - inf is nan) without numpy's warnings, as the compiled sum gives them."""
    with np.errstate(all="ignore"):
        partials = [np.add.accumulate(np.concatenate([[0.0], values[j::16]]).astype(values.dtype))[-1]
                    for j in range(min(len(values), 16))]  # fmt: skip
        while len(partials) > 1:
            pairs = [a + b for a, b in zip(partials[::2], partials[1::2])]
            partials = pairs + partials[2 * len(pairs) :]
        return partials[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_emitter_vectors_and_llvm_vectors_in_one_program(sessions: dict[str, JitSession], dtype: str) -> None:
    """out = f(x) (LLVM's vectoriser, through the annotated scalar call) and total += f(x)
    (a sum: the emitter's vectors call the variant directly), for every mapped function:
    the variant is declared once, and both loops compute the same values."""
    n = 203
    for op in OPS:
        args = [a[:n] for a in case(op, dtype)[0]]
        k = len(args)
        body = tuple(Instr("load", load=j) for j in range(k)) + (Instr(op, tuple(range(k))),)
        loads = tuple(Access(j, 0, (1,)) for j in range(k))
        each = Loop((n,), dtype, loads, body, (Store(Access(k, 0, (1,)), k),))
        total = Loop((n,), dtype, loads, body, (Store(Access(k + 1, 0, (0,)), k, "sum"),))
        buffers = (*[Buffer(dtype, n, "input")] * k, Buffer(dtype, n, "output"), Buffer(dtype, 1, "output"))
        compiled = sessions["libmvec"].compile(KernelProgram(buffers, (each, total)))
        assert "call <" in compiled.llvm_ir  # the sum's loop, before any optimisation
        values, got = compiled(args)
        np.testing.assert_array_equal(got, [sum_in_partials(values)], err_msg=op)


@pytest.mark.parametrize("path", ["libmvec", "explicit"])
def test_constant_argument_of_a_vector_function(sessions: dict[str, JitSession], path: str) -> None:
    """pow(x, 2.5): LLVM may not specialise the scalar entry to the constant (its variant
    would no longer match it: LLVM aborted the process); lanes and remainder still agree."""
    n = 37
    body = (Instr("load", load=0), Instr("const", value=2.5), Instr("pow", (0, 1)))
    loop = Loop((n,), "float64", (Access(0, 0, (1,)),), body, (Store(Access(1, 0, (1,)), 2),))
    program = KernelProgram((Buffer("float64", n, "input"), Buffer("float64", n, "output")), (loop,))
    compiled = sessions[path].compile(program)
    assert "call <" in compiled.optimized_ir and "_ZGV" in compiled.optimized_ir
    (got,) = compiled([np.full(n, 1.7)])
    assert np.unique(got).size == 1 and abs(got[0] - 1.7**2.5) <= 4 * np.spacing(got[0])


def test_missing_library_falls_back_to_libm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vecmath, "LIBRARY", "libmvec-that-does-not-exist.so.9")
    jit._load_vector_library.cache_clear()  # looked up once per process
    try:
        session = JitSession()
    finally:
        jit._load_vector_library.cache_clear()
    assert session.vector_library is None
    x = np.linspace(-3, 3, 101)
    compiled = session.compile(elementwise("sin", "float64", x.size))
    assert "_ZGV" not in compiled.optimized_ir
    np.testing.assert_allclose(compiled([x])[0], np.sin(x), rtol=1e-15, atol=1e-16)


def test_environment_variable_turns_libmvec_off() -> None:
    script = (
        "import numpy as np\n"
        "from symgrad.compiler import Access, Buffer, Instr, JitSession, KernelProgram, Loop, Store\n"
        "s = JitSession()\n"
        "loop = Loop((64,), 'float64', (Access(0, 0, (1,)),), (Instr('load', load=0), Instr('exp', (0,))),"
        " (Store(Access(1, 0, (1,)), 1),))\n"
        "c = s.compile(KernelProgram((Buffer('float64', 64, 'input'), Buffer('float64', 64, 'output')), (loop,)))\n"
        "x = np.linspace(-5, 5, 64)\n"
        "assert np.array_equal(c([x])[0], np.exp(x)) or np.allclose(c([x])[0], np.exp(x), rtol=1e-15)\n"
        "print(s.vector_library is None, '_ZGV' in c.optimized_ir)\n"
    )  # fmt: skip
    env = {**os.environ, "SYMGRAD_NO_LIBMVEC": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]
