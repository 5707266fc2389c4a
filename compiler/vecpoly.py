"""symgrad's own vector math: float32 sin, cos, exp and tanh, float64 tanh, as LLVM IR text
(polynomials evaluated with FMA), defined in every module that calls them, so that
LLVM inlines them into vector loops: no call, no spills around one.

`definition(scalar, lanes, fallback)` is the text of one function
`<lanes x float|double> @symbol(<lanes x float|double>)` (`vecmath` wraps it in a `Variant`, in
place of the libmvec variant `fallback`, which sin and cos still call for lanes beyond
their range reduction). Every lane's result depends on that lane alone, so any width
computes the same function. Pure text: imports only the standard library.

sin and cos reduce by pi/2 and evaluate both polynomials, then pick per quadrant: the
same instructions in both, which LLVM merges when sin(x) and cos(x) are inlined side by
side (a gradient of sin has both). Coefficients: sin and cos on [-pi/4, pi/4] from
Cephes' sinf/cosf; exp, expm1 (for tanh, float32 and float64) and the three-part pi
from Arm's optimized-routines (Apache-2.0 WITH LLVM-exception). Max errors measured:
tests/test_vecpoly.py's docstring.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

VERSION = "vp1"  # in code cache keys, with a digest of the definitions (which change with any edit)
FUNCTIONS = ("llvm.sin.f32", "llvm.cos.f32", "llvm.exp.f32", "llvm.tanh.f32", "llvm.tanh.f64")

# sin(r) = r + r^3 (S0 r^4 + S1 r^2 + S2), cos(r) = 1 - r^2/2 + r^4 (C0 r^4 + C1 r^2 + C2)
# on [-pi/4, pi/4] (Cephes' sinf and cosf)
SIN_POLY = ("-0x1.9943f2p-13", "0x1.11073cp-7", "-0x1.555546p-3")
COS_POLY = ("0x1.99eb9cp-16", "-0x1.6c0c34p-10", "0x1.55554ap-5")
HALF_PI = ("-0x1.921fb6p+0", "0x1.777a5cp-25", "0x1.ee59dap-50")  # -pi/2 = sum: x - n pi/2 in 3 FMAs
TWO_OVER_PI = "0x1.45f306p-1"
SHIFT = "0x1.8p+23"  # fma(x, c, SHIFT) rounds x c to an integer, held in the low mantissa bits
TRIG_RANGE = "0x1p+20"  # |x| from here on: libmvec's reduction (three parts of pi no longer do)
# exp(r) - 1 = C4 r + C3 r^2 + C2 r^3 + C1 r^4 + C0 r^5 on [-ln2/2, ln2/2]
EXP_POLY = ("0x1.0e4020p-7", "0x1.573e2ep-5", "0x1.555e66p-3", "0x1.fffdb6p-2", "0x1.ffffecp-1")
INV_LN2, LN2_HI, LN2_LO = "0x1.715476p+0", "0x1.62e4p-1", "0x1.7f7d1cp-20"
# expm1(r) = r + r^2 (c0 + c1 r + c2 r^2 + c3 r^3 + c4 r^4) on [-ln2/2, ln2/2]
EXPM1_POLY = ("0x1.fffffep-2", "0x1.5554aep-3", "0x1.555736p-5", "0x1.12287cp-7", "0x1.6b55a2p-10")
TANH_ONE = "0x1.205966p+3"  # tanh(x) rounds to 1 beyond this
# float64: expm1(r) = r + r^2 (c0 + c1 r + ... + c10 r^10) on [-ln2/2, ln2/2] (Arm's)
EXPM1_POLY_F64 = (
    "0x1p-1", "0x1.5555555555559p-3", "0x1.555555555554bp-5", "0x1.111111110f663p-7",
    "0x1.6c16c16c1b5f3p-10", "0x1.a01a01affa35dp-13", "0x1.a01a018b4ecbbp-16",
    "0x1.71ddf82db5bb4p-19", "0x1.27e517fc0d54bp-22", "0x1.af5eedae67435p-26",
    "0x1.1f143d060a28ap-29",
)  # fmt: skip
INV_LN2_F64, LN2_HI_F64, LN2_LO_F64 = "0x1.71547652b82fep+0", "0x1.62e42fefa39efp-1", "0x1.abc9e3b39803fp-56"
TANH_ONE_F64 = "0x1.241bf835f9d5fp+4"
SHIFT_F64 = "0x1.8p+52"
STACK_ALIGN = 64


PREFIX = "symgrad.vp."  # of every own function's symbol


def symbol(scalar: str, lanes: int) -> str:
    """The own function replacing `scalar` (llvm.sin.f32 ...) at `lanes` lanes."""
    return f"{PREFIX}{scalar.removeprefix('llvm.')}.v{lanes}"


def definition(scalar: str, lanes: int, fallback: str) -> str:
    """The IR text defining `symbol(scalar, lanes)`; `fallback` is the libmvec variant of
    the same function and width (declared here if used)."""
    f = _Function(lanes, scalar.rsplit(".", 1)[1])
    x = "%x"
    body = {"sin": _sin, "cos": _cos, "exp": _exp, "tanh": _tanh}[scalar.split(".")[1]]
    result = body(f, x)
    if scalar in ("llvm.sin.f32", "llvm.cos.f32"):  # lanes too big for the reduction: libmvec's
        wide = f.op(f"fcmp oge {f.v} {f.fabs(x)}, {f.const(TRIG_RANGE)}")
        result = f.rare(wide, result, lambda: f.op(f"call {f.v} @{fallback}({f.v} {x})"))
        declare = f"declare {f.v} @{fallback}({f.v}) nounwind willreturn memory(none)\n"
    else:
        declare = ""
    # where not inlined (calls from LLVM's vectoriser), aligned spills around the fallback
    # call, as emit.STACK_ALIGN gives the kernels
    head = (f"define internal {f.v} @{symbol(scalar, lanes)}({f.v} %x) "
            f"alwaysinline nounwind willreturn memory(none) alignstack({STACK_ALIGN}) {{")  # fmt: skip
    return declare + "\n".join([head, "entry:", *f.lines, f"  ret {f.v} {result}", "}"]) + "\n"


class _Function:
    """Lines of one function body, with fresh value names; values are vectors of `ty`
    (f32 or f64: `v`) or of integers of its width (`i`), given as text."""

    def __init__(self, lanes: int, ty: str) -> None:
        self.lanes, self.ty, self.lines, self.block = lanes, ty, [], "entry"
        self.width = 32 if ty == "f32" else 64
        self.v = f"<{lanes} x {'float' if ty == 'f32' else 'double'}>"
        self.i = f"<{lanes} x i{self.width}>"
        self.suffix = f"v{lanes}{ty}"
        self.mantissa = 23 if ty == "f32" else 52
        self.sign = 1 << (self.width - 1)

    def op(self, text: str) -> str:
        name = f"%t{len(self.lines)}"
        self.lines.append(f"  {name} = {text}")
        return name

    def const(self, hexfloat: str) -> str:
        value = _float32(hexfloat) if self.ty == "f32" else float.fromhex(hexfloat)
        (bits,) = struct.unpack("<Q", struct.pack("<d", value))
        return f"splat ({self.v[1:-1].split()[-1]} 0x{bits:016X})"

    def int(self, value: int) -> str:
        signed = value - (1 << self.width) if value >= 1 << (self.width - 1) else value
        return f"splat (i{self.width} {signed})"

    def one_bits(self) -> str:
        """The bits of 1.0: added to n << mantissa, those of 2^n."""
        return self.int(0x3F800000 if self.ty == "f32" else 0x3FF0000000000000)

    def fma(self, a: str, b: str, c: str) -> str:
        return self.op(f"call {self.v} @llvm.fma.{self.suffix}({self.v} {a}, {self.v} {b}, {self.v} {c})")

    def fabs(self, a: str) -> str:
        return self.op(f"call {self.v} @llvm.fabs.{self.suffix}({self.v} {a})")

    def binary(self, op: str, a: str, b: str, ty: str = "") -> str:
        return self.op(f"{op} {ty or self.v} {a}, {b}")

    def bits(self, a: str) -> str:
        return self.op(f"bitcast {self.v} {a} to {self.i}")

    def float(self, a: str) -> str:
        return self.op(f"bitcast {self.i} {a} to {self.v}")

    def select(self, mask: str, a: str, b: str, ty: str = "") -> str:
        ty = ty or self.v
        return self.op(f"select <{self.lanes} x i1> {mask}, {ty} {a}, {ty} {b}")

    def rare(self, mask: str, usual: str, special: Callable[[], str]) -> str:
        """`usual`, with the lanes of `mask` taken from `special()`, which runs (in a branch
        marked unlikely) only when some lane of `mask` is set."""
        n = len(self.lines)
        any_ = self.op(f"call i1 @llvm.vector.reduce.or.v{self.lanes}i1(<{self.lanes} x i1> {mask})")
        here, rare, done = self.block, f"rare{n}", f"done{n}"
        weights = '!prof !{!"branch_weights", i32 1, i32 2000}'
        self.lines.append(f"  br i1 {any_}, label %{rare}, label %{done}, {weights}")
        self.lines.append(f"{rare}:")
        mixed = self.select(mask, special(), usual)
        self.lines += [f"  br label %{done}", f"{done}:"]
        self.block = done
        return self.op(f"phi {self.v} [ {usual}, %{here} ], [ {mixed}, %{rare} ]")


def _float32(hexfloat: str) -> float:
    value = float.fromhex(hexfloat)
    (rounded,) = struct.unpack("<f", struct.pack("<f", value))
    assert rounded == value, f"{hexfloat} is not a float32"
    return value


def _quadrant(f: _Function, x: str) -> tuple[str, str, str, str]:
    """What sin and cos share (the same instructions: LLVM merges them when both are
    inlined on one x): |x| = n pi/2 + r with |r| <= pi/4, and sin(r), cos(r), n."""
    a = f.fabs(x)
    z = f.fma(a, f.const(TWO_OVER_PI), f.const(SHIFT))
    n = f.binary("fsub", z, f.const(SHIFT))
    r = a
    for part in HALF_PI:
        r = f.fma(n, f.const(part), r)
    r2 = f.binary("fmul", r, r)
    s0, s1, s2 = (f.const(c) for c in SIN_POLY)
    t = f.fma(f.fma(s0, r2, s1), r2, s2)
    sin = f.fma(f.binary("fmul", t, r2), r, r)  # r + r^3 t(r^2)
    c0, c1, c2 = (f.const(c) for c in COS_POLY)
    u = f.fma(f.fma(c0, r2, c1), r2, c2)
    head = f.fma(f.const("-0x1p-1"), r2, f.const("0x1p+0"))
    cos = f.fma(f.binary("fmul", r2, r2), u, head)  # 1 - r^2/2 + r^4 u(r^2)
    return sin, cos, f.bits(z), a  # n mod 4 in the low bits of z


def _sin(f: _Function, x: str) -> str:
    """sin(x) = sign(x) (sin r, cos r, -sin r, -cos r)[n mod 4]."""
    sin, cos, q, _ = _quadrant(f, x)
    odd = f.op(f"trunc {f.i} {q} to <{f.lanes} x i1>")
    y = f.select(odd, cos, sin)
    negative = f.binary("shl", f.binary("and", q, f.int(2), f.i), f.int(30), f.i)
    sign = f.binary("and", f.bits(x), f.int(f.sign), f.i)
    return f.float(f.binary("xor", f.bits(y), f.binary("xor", negative, sign, f.i), f.i))


def _cos(f: _Function, x: str) -> str:
    """cos(x) = (cos r, -sin r, -cos r, sin r)[n mod 4]."""
    sin, cos, q, _ = _quadrant(f, x)
    odd = f.op(f"trunc {f.i} {q} to <{f.lanes} x i1>")
    y = f.select(odd, sin, cos)
    quadrant = f.binary("add", q, f.int(1), f.i)  # cos(x) = sin(x + pi/2): its sign
    negative = f.binary("shl", f.binary("and", quadrant, f.int(2), f.i), f.int(30), f.i)
    return f.float(f.binary("xor", f.bits(y), negative, f.i))


def _exp(f: _Function, x: str) -> str:
    """exp(x) = 2^n (1 + p(r)), x = n ln2 + r; 2^n in two factors where it would leave
    the normal range (overflow to inf, underflow to subnormals and 0)."""
    z = f.fma(x, f.const(INV_LN2), f.const(SHIFT))
    n = f.binary("fsub", z, f.const(SHIFT))
    r = f.fma(n, f.const(f"-{LN2_HI}"), x)
    r = f.fma(n, f.const(f"-{LN2_LO}"), r)
    e = f.binary("shl", f.bits(z), f.int(f.mantissa), f.i)
    scale = f.float(f.binary("add", e, f.one_bits(), f.i))
    c0, c1, c2, c3, c4 = (f.const(c) for c in EXP_POLY)
    r2 = f.binary("fmul", r, r)
    q = f.fma(f.fma(c0, r, c1), r2, f.fma(c2, r, c3))
    poly = f.fma(q, r2, f.binary("fmul", c4, r))
    usual = f.fma(poly, scale, scale)
    absn = f.fabs(n)
    outside = f.op(f"fcmp ogt {f.v} {absn}, {f.const('0x1.f8p+6')}")  # |n| > 126

    def split() -> str:
        """2^n = s1 s2, s1 = 2^127 (n > 0) or 2^-125; beyond |n| = 192, s1^2 (inf or 0)."""
        low = f.op(f"fcmp ole {f.v} {n}, zeroinitializer")
        b = f.select(low, f.int(0x82000000), "zeroinitializer", f.i)
        s1 = f.float(f.binary("add", b, f.int(0x7F000000), f.i))
        s2 = f.float(f.binary("sub", e, b, f.i))
        far = f.op(f"fcmp ogt {f.v} {absn}, {f.const('0x1.8p+7')}")  # |n| > 192
        scaled = f.binary("fmul", f.fma(poly, s2, s2), s1)
        return f.select(far, f.binary("fmul", s1, s1), scaled)

    return f.rare(outside, usual, split)


def _tanh(f: _Function, x: str) -> str:
    """tanh(x) = sign(x) q / (q + 2), q = expm1(2 |x|); 1 beyond TANH_ONE (odd exactly:
    tanh(-0) = -0)."""
    f32 = f.ty == "f32"
    inv_ln2, ln2_hi, ln2_lo, shift, one = (
        (INV_LN2, LN2_HI, LN2_LO, SHIFT, TANH_ONE) if f32
        else (INV_LN2_F64, LN2_HI_F64, LN2_LO_F64, SHIFT_F64, TANH_ONE_F64))  # fmt: skip
    a = f.fabs(x)
    t = f.binary("fadd", a, a)
    z = f.fma(t, f.const(inv_ln2), f.const(shift))
    n = f.binary("fsub", z, f.const(shift))
    r = f.fma(n, f.const(f"-{ln2_hi}"), t)
    r = f.fma(n, f.const(f"-{ln2_lo}"), r)
    scale = f.float(f.binary("add", f.binary("shl", f.bits(z), f.int(f.mantissa), f.i), f.one_bits(), f.i))
    *rest, last = (f.const(c) for c in (EXPM1_POLY if f32 else EXPM1_POLY_F64))
    p = last
    for c in reversed(rest):  # Horner: c0 + r (c1 + r (...))
        p = f.fma(p, r, c)
    p = f.fma(p, f.binary("fmul", r, r), r)
    q = f.fma(p, scale, f.binary("fsub", scale, f.const("0x1p+0")))
    y = f.binary("fdiv", q, f.binary("fadd", q, f.const("0x1p+1")))
    big = f.op(f"fcmp ogt {f.v} {a}, {f.const(one)}")
    y = f.select(big, f.const("0x1p+0"), y)
    sign = f.binary("and", f.bits(x), f.int(f.sign), f.i)
    return f.float(f.binary("or", f.bits(y), sign, f.i))
