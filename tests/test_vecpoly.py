"""symgrad's own float32 sin, cos, exp and tanh and float64 tanh (compiler/vecpoly.py): accuracy in ulp
against an extended-precision reference over wide and dense ranges, special values and
the edges of each function, every vector width the host has (all widths compute the
same function, bit for bit), a host without AVX-512, lanes that take a rare branch next
to lanes that do not, and the IR plumbing (definitions, cache key).

Measured max error (AVX-512 host), own (libmvec's): over the ~1.05e6 inputs of `case`,
float32 sin 1.51 (1.77), cos 1.54 (1.88), exp 1.90 (2.53), tanh 2.48 (1.37); float64 tanh
2.52 (1.18). Over every float32 of a range (sin, cos and tanh work on |x|, so positive x
covers them): sin on [0, 2^20] 1.67, cos on [0, 2^20] 1.81, exp on [-104, 89] 1.95 (its
subnormal results included), tanh on [0, 9.1] 2.57.
"""

from __future__ import annotations

import ctypes
import functools
import re

import numpy as np
import pytest
from symgrad.compiler import JitSession, jit, vecmath, vecpoly

from tests.test_vector_math import elementwise, reference, special_values, ulp_errors

ULP_BOUND = 4.0
# scalar callee -> (op, dtype)
OWN = {"llvm.sin.f32": ("sin", "float32"), "llvm.cos.f32": ("cos", "float32"),
       "llvm.exp.f32": ("exp", "float32"), "llvm.tanh.f32": ("tanh", "float32"),
       "llvm.tanh.f64": ("tanh", "float64")}  # fmt: skip
F32 = np.float32
UINT = {"float32": np.uint32, "float64": np.uint64}
# Values at the edges: exp's overflow (88.72284) and underflow (normal below -87.33654,
# subnormal to -103.97208, 0 after), tanh's saturation (TANH_ONE), the trigonometric
# reduction's range (2^20), multiples of pi/2 and large arguments.
EDGES = np.array(
    [88.72283, 88.72284, 88.722844, 88.7229, 89.0, 100.0, 1e10, -87.33654, -87.3366, -100.0,
     -103.9720, -103.97208, -103.9721, -104.0, -150.0, -1e10, 9.0, 9.010913, 9.011, 8.5, 20.0,
     -9.011, -20.0, 2.0**20 - 1, 2.0**20, 2.0**20 + 2, 1e6, 1e7, 1e20, 3.4e38, -3.4e38,
     np.pi / 2, np.pi, 3 * np.pi / 2, 2 * np.pi, 1e-20, -1e-20, 1e-40, -1e-40, 2.0**-126, 2.0**-149,
     0.3465736, 0.3465737, -0.3465736, 1.0397, 1e-4, -1e-4],
    F32,
)  # fmt: skip


def wide_inputs(seed: int, dtype: str, n: int = 200_000) -> np.ndarray:
    """Magnitudes over the dtype's whole range, dense working ranges, and the edges."""
    rng = np.random.default_rng(seed)
    sign = rng.choice([-1.0, 1.0], n)
    lo, hi = (-149, 128) if dtype == "float32" else (-1074, 1024)
    wide = np.exp2(rng.uniform(lo, hi, n)) * sign
    dense = [rng.uniform(-1, 1, n), rng.uniform(-12, 12, n), rng.uniform(-110, 90, n),
             rng.uniform(-2.0**20, 2.0**20, n // 4), np.exp2(rng.uniform(-30, 0, n)) * sign]  # fmt: skip
    edges = [EDGES, special_values(dtype)] + ([] if dtype == "float32" else [EDGES_F64])
    with np.errstate(over="ignore"):
        return np.concatenate([wide, *dense, *edges]).astype(dtype)


# float64 tanh: saturation (TANH_ONE_F64 ~ 18.26), the smallest values, where expm1's
# reduction starts (ln2/4 for 2|x|)
EDGES_F64 = np.array([18.0, 18.26, 18.2636, 18.27, 19.0, 1e-300, -1e-300, 5e-324, -5e-324,
                      0.1732867951399863, 0.17328679513998633, 1e-8, -1e-8, 0.55, 3.0])  # fmt: skip


@functools.cache
def case(op: str, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    x = wide_inputs(len(op), dtype)
    return x, reference(op, [x])


@pytest.fixture(scope="module")
def session() -> JitSession:
    s = JitSession(vector_math=True)
    if s.vector_library is None or not s.vector_library.own():
        pytest.skip("no libmvec on this machine (own functions fall back to it)")
    return s


def own_variants(session: JitSession) -> list[vecmath.Variant]:
    assert session.vector_library is not None
    return sorted(session.vector_library.own().values(), key=lambda v: (v.scalar, v.lanes))


def run_variant(session: JitSession, v: vecmath.Variant, x: np.ndarray) -> np.ndarray:
    """`v` on x (padded to whole vectors) through a loop that calls it directly."""
    lanes, ty = v.lanes, vecmath.LLVM_TYPES[v.ty]
    padded = np.concatenate([x, np.zeros(-x.size % lanes, x.dtype)])
    vec = f"<{lanes} x {ty}>"
    text = (
        f"declare {vec} @{v.symbol}({vec})\n"
        "define void @run(ptr %in, ptr %out, i64 %n) {\nentry:\n  br label %loop\nloop:\n"
        "  %i = phi i64 [ 0, %entry ], [ %next, %loop ]\n"
        f"  %p = getelementptr {ty}, ptr %in, i64 %i\n"
        f"  %v = load {vec}, ptr %p, align 4\n  %r = call {vec} @{v.symbol}({vec} %v)\n"
        f"  %q = getelementptr {ty}, ptr %out, i64 %i\n  store {vec} %r, ptr %q, align 4\n"
        f"  %next = add i64 %i, {lanes}\n  %more = icmp ult i64 %next, %n\n"
        "  br i1 %more, label %loop, label %exit\nexit:\n  ret void\n}\n"
    )
    native = session.add_ir(text, "run")
    out = np.empty_like(padded)
    run = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(native.address)
    run(padded.ctypes.data, out.ctypes.data, padded.size)
    return out[: x.size]


def assert_within_bound(op: str, x: np.ndarray, got: np.ndarray, want: np.ndarray) -> float:
    errors = ulp_errors(got, want, x.dtype.name)
    worst = int(np.argmax(errors))
    assert errors[worst] <= ULP_BOUND, f"{op}({x[worst]!r}) = {got[worst]!r}: {errors[worst]:.2f} ulp"
    return float(errors[worst])


def test_every_width_within_bound_and_equal(session: JitSession) -> None:
    """Each own variant (every width the host has) within ULP_BOUND of the reference,
    and every width of one function gives the same bits."""
    results: dict[str, np.ndarray] = {}
    for v in own_variants(session):
        op, dtype = OWN[v.scalar]
        x, want = case(op, dtype)
        got = run_variant(session, v, x)
        assert_within_bound(op, x, got, want)
        if v.scalar in results:
            same = results[v.scalar].view(UINT[dtype])
            np.testing.assert_array_equal(got.view(UINT[dtype]), same, err_msg=v.symbol)
        results[v.scalar] = got
    assert set(results) == set(OWN)


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("scalar", sorted(OWN))
def test_kernels_use_own_functions(session: JitSession, scalar: str, explicit: bool) -> None:
    """Compiled kernels (LLVM's vectoriser, or the emitter's explicit vectors) compute
    the very same values as the host-width variant, remainder iterations included."""
    op, dtype = OWN[scalar]
    x, _ = case(op, dtype)
    x = x[: 100_003]  # no multiple of the lanes: a remainder
    s = JitSession(vector_math=True, explicit_vector_body=0) if explicit else session
    compiled = s.compile(elementwise(op, dtype, x.size))
    v = [v for v in own_variants(session) if v.scalar == scalar][-1]
    assert v.symbol in compiled.llvm_ir or v.symbol in compiled.optimized_ir or explicit
    # the emitter's vector loops inline them; LLVM's vectoriser calls them after the inliner ran
    assert not explicit or not re.search(r"call <\d+ x \w+> @symgrad\.vp\.", compiled.optimized_ir)
    assert not re.search(r"@_ZGV\w+\(", compiled.optimized_ir) or op in ("sin", "cos")  # (their fallback)
    (got,) = compiled([x])
    np.testing.assert_array_equal(got.view(UINT[dtype]), run_variant(session, v, x).view(UINT[dtype]))


@pytest.mark.parametrize("scalar", sorted(OWN))
def test_special_values(session: JitSession, scalar: str) -> None:
    """nan, +-inf, +-0 (with the sign of zero), huge, tiny and subnormal inputs."""
    op, dtype = OWN[scalar]
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-45, -1e-45,
                  1e-38, -1e-38, 1e-30, -1e-30], F32).astype(dtype)  # fmt: skip
    (got,) = session.compile(elementwise(op, dtype, x.size))([x])
    nan, inf = np.nan, np.inf
    expected = {
        "sin": [nan, nan, nan, nan, 0.0, -0.0, None, None, 1e-45, -1e-45, 1e-38, -1e-38, 1e-30, -1e-30],
        "cos": [nan, nan, nan, nan, 1.0, 1.0, None, None, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "exp": [nan, nan, inf, 0.0, 1.0, 1.0, inf, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "tanh": [nan, nan, 1.0, -1.0, 0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1e-38, -1e-38, 1e-30, -1e-30],
    }[op]
    for k, value in enumerate(expected):
        if value is None:  # sin, cos of +-3.4e38: libmvec's reduction, checked by the ulp tests
            continue
        want = np.array(value, F32).astype(dtype)[()]  # (the inputs are float32 values)
        same = got[k] == want and np.signbit(got[k]) == np.signbit(want)
        assert same or (np.isnan(want) and np.isnan(got[k])), f"{op}({x[k]!r}) = {got[k]!r}, want {want!r}"
    assert_within_bound(op, x, got, reference(op, [x]))


@pytest.mark.parametrize("scalar", sorted(OWN))
def test_rare_lanes_do_not_change_their_neighbours(session: JitSession, scalar: str) -> None:
    """A lane that takes a rare branch (sin and cos beyond 2^20: libmvec; exp beyond
    |n| = 126) leaves the other lanes of its vector as they were alone (ties stay ties)."""
    op, dtype = OWN[scalar]
    rng = np.random.default_rng(7)
    x = rng.uniform(-80, 80, 4099).astype(dtype)
    rare = {"sin": 1e7, "cos": -3e9, "exp": 100.0, "tanh": 50.0}[op]
    mixed = x.copy()
    mixed[::5] = rare
    compiled = session.compile(elementwise(op, dtype, x.size))
    (alone,), (together,) = compiled([x]), compiled([mixed])
    keep = np.ones(x.size, bool)
    keep[::5] = False
    np.testing.assert_array_equal(together[keep].view(UINT[dtype]), alone[keep].view(UINT[dtype]))
    assert_within_bound(op, mixed, together, reference(op, [mixed]))


def test_host_without_avx512(monkeypatch: pytest.MonkeyPatch) -> None:
    """With AVX-512 switched off (features and code generation), the own functions come
    at 8 lanes (AVX2) and give the same bits as at 16."""
    features = jit.llvm.get_host_cpu_features().flatten()
    if "+avx2" not in features or "+avx512f" not in features:
        pytest.skip("needs a host with AVX-512 and AVX2")
    narrow = ",".join("-" + f[1:] if f.startswith("+avx512") or f.startswith("+avx10") else f
                      for f in features.split(","))  # fmt: skip

    class Features:
        def flatten(self) -> str:
            return narrow

    wide_session = JitSession()
    monkeypatch.setattr(jit.llvm, "get_host_cpu_features", Features)
    jit._load_vector_library.cache_clear()
    try:
        sessions = [JitSession(), JitSession(explicit_vector_body=0)]  # LLVM's vectoriser; the emitter's
    finally:
        monkeypatch.undo()
        jit._load_vector_library.cache_clear()
    for session in sessions:
        assert session.vector_library is not None
        assert max(v.lanes for v in session.vector_library.own().values()) == 8
        for op, dtype in OWN.values():
            x, want = case(op, dtype)
            x, want = x[:50_001], want[:50_001]
            compiled = session.compile(elementwise(op, dtype, x.size))
            assert "zmm" not in compiled.asm and "ymm" in compiled.asm
            (got,) = compiled([x])
            assert_within_bound(op, x, got, want)
            (wide,) = wide_session.compile(elementwise(op, dtype, x.size))([x])
            np.testing.assert_array_equal(got.view(UINT[dtype]), wide.view(UINT[dtype]), err_msg=op)


def test_definitions_are_linked_once() -> None:
    """`define` replaces the declarations of own functions by their definitions, once,
    and declares a fallback only where the module does not already."""
    libmvec = [v for v in vecmath.candidate_variants({"avx512f"}) if v.scalar in OWN and v.lanes == 16]
    own = [vecmath.own_variant(v) for v in libmvec]
    library = vecmath.VectorLibrary({v.scalar: (v,) for v in own})
    sin = next(v for v in own if v.scalar == "llvm.sin.f32")
    vec = "<16 x float>"
    text = (f'declare {vec} @"{sin.symbol}"({vec}) readnone nounwind\n'
            f"declare {vec} @_ZGVeN16v_sinf({vec}) readnone nounwind\n"
            f"define {vec} @f({vec} %x) {{\n"
            f'  %a = call {vec} @"{sin.symbol}"({vec} %x)\n  ret {vec} %a\n}}\n')  # fmt: skip
    linked = vecmath.define(text, library)
    assert linked.count(f"define internal <16 x float> @{sin.symbol}(") == 1
    assert f'declare <16 x float> @"{sin.symbol}"' not in linked
    assert linked.count("@_ZGVeN16v_sinf(<16 x float>)") == 1  # declared once
    assert vecmath.define(linked, library) == linked
    assert vecmath.define("define void @g() {\n  ret void\n}\n", library).count("define") == 1
    jit.llvm.parse_assembly(linked).verify()


def test_own_functions_need_fma() -> None:
    """Without FMA (an AVX-only CPU), LLVM would call fmaf lane by lane: libmvec stays."""
    with_fma = vecmath.host_library("+sse2,+avx,+avx2,+fma", lambda symbol: 1)
    without = vecmath.host_library("+sse2,+avx,-avx2,-fma", lambda symbol: 1)
    assert with_fma is not None and without is not None
    assert {v.scalar for v in with_fma.own().values()} == set(OWN)
    assert not without.own() and without.variants["llvm.sin.f32"][-1].symbol == "_ZGVcN8v_sinf"


def test_cache_key_names_the_own_functions() -> None:
    own, plain = JitSession(own_math=True).vector_library, JitSession(own_math=False).vector_library
    if own is None or plain is None:
        pytest.skip("no libmvec on this machine")
    assert vecpoly.VERSION in own.describe() and vecpoly.VERSION not in plain.describe()
    assert own.describe() != plain.describe()
    assert not plain.own() and {v.scalar for v in own.own().values()} == set(OWN)
