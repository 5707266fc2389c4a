"""LLVM IR for single values: the emission context (`EmitContext`), the table of one
emitter per scalar opcode and per reducing store mode, element addresses (with the
run-time index checks of gathers and scatters), loads, stores and conversions.

`emit` builds loops, steps and functions from these; `vecloop` builds vector code.
Imports `.program` and `.irtext` (LLVM IR as text, with llvmlite.ir's interface).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import irtext as ir
from .program import OPCODES, Access, KernelProgram

if TYPE_CHECKING:  # vecloop builds on this module; only its type is named here
    from .vecloop import ExplicitVectors

I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
FLOAT_TYPES: dict[str, ir.Type] = {"float32": ir.FloatType(), "float64": ir.DoubleType()}
ELEMENT_TYPES: dict[str, ir.Type] = {**FLOAT_TYPES, "int64": I64}
ITEMSIZE = {"float32": 4, "float64": 8, "int64": 8}
STATUS_OK, STATUS_INDEX_ERROR = 0, 1  # what the entry function returns (call.py reads it)


# ---------------------------------------------------------------- opcode table


class EmitContext:
    """Builder plus what opcode emitters need: buffer bases, the error record, libm,
    and the vectoriser (if any) that emits innermost loops with explicit vectors; whether
    small loops are unrolled (`straight_line`, and `unroll` for the loop being emitted)."""

    def __init__(
        self,
        program: KernelProgram,
        builder: ir.IRBuilder,
        bases: Sequence[ir.Value],
        error: ir.Value,
        vectorizer: ExplicitVectors | None = None,
        straight_line: bool = False,
    ):
        self.program = program
        self.b = builder
        self.bases = bases
        self.error = error  # ptr to {i64 bad index, i64 bound}, written before failing
        self.vectorizer = vectorizer
        self.straight_line = straight_line
        self.unroll = False

    def call_math(self, name: str, args: list[ir.Value], intrinsic: bool = True) -> ir.Value:
        """Call `llvm.<name>.f32|f64`, or the libm function `<name>` / `<name>f`
        (with a vectoriser, it picks the function)."""
        if self.vectorizer is not None:  # vectors, and scalars computed as vector lanes would be
            return self.vectorizer.call_math(self, name, args, intrinsic)
        return self.call_scalar_math(name, args, intrinsic)

    def call_scalar_math(self, name: str, args: list[ir.Value], intrinsic: bool) -> ir.Value:
        ty = args[0].type
        is_f32 = ty == FLOAT_TYPES["float32"]
        if intrinsic:
            full = f"llvm.{name}.{'f32' if is_f32 else 'f64'}"
        else:
            full = f"{name}f" if is_f32 else name
        return self.b.call(self.declare(full, ty, len(args), pure=not intrinsic), args)

    def declare(self, name: str, ty: ir.Type, arity: int, pure: bool) -> ir.Function:
        """The function `ty name(ty, ...)`, declared once; `pure` ones touch no memory."""
        module = self.b.module
        fn = module.globals.get(name)
        if fn is None:
            fn = ir.Function(module, ir.FunctionType(ty, [ty] * arity), name=name)
            if pure:  # errno aside, libm math is pure: lets loops vectorise
                fn.attributes.add("readnone")
                fn.attributes.add("nounwind")
        return fn


Emitter = Callable[[EmitContext, list[ir.Value]], ir.Value]


def _intrinsic(name: str) -> Emitter:
    return lambda e, a: e.call_math(name, a)


def _libm(name: str) -> Emitter:
    """For functions LLVM 22 has no intrinsic for; MCJIT resolves them in-process."""
    return lambda e, a: e.call_math(name, a, intrinsic=False)


def _compare(op: str, ordered: bool = True) -> Emitter:
    """Comparisons yield 1.0/0.0; ordered except `ne`, so NaN != NaN is 1."""

    def emit(e: EmitContext, a: list[ir.Value]) -> ir.Value:
        cmp = e.b.fcmp_ordered if ordered else e.b.fcmp_unordered
        return e.b.uitofp(cmp(op, a[0], a[1]), a[0].type)

    return emit


def _select(e: EmitContext, a: list[ir.Value]) -> ir.Value:
    # `a if c != 0 else b`; a NaN condition counts as true, as in Python.
    nonzero = e.b.fcmp_unordered("!=", a[0], ir.Constant(a[0].type, 0.0))
    return e.b.select(nonzero, a[1], a[2])


def _isnan(e: EmitContext, a: list[ir.Value]) -> ir.Value:
    return e.b.uitofp(e.b.fcmp_unordered("uno", a[0], a[0]), a[0].type)


def _isinf(e: EmitContext, a: list[ir.Value]) -> ir.Value:
    magnitude = e.call_math("fabs", a)
    return e.b.uitofp(
        e.b.fcmp_ordered("==", magnitude, ir.Constant(a[0].type, math.inf)), a[0].type
    )


EMITTERS: dict[str, Emitter] = {
    "add": lambda e, a: e.b.fadd(a[0], a[1]),
    "sub": lambda e, a: e.b.fsub(a[0], a[1]),
    "mul": lambda e, a: e.b.fmul(a[0], a[1]),
    "div": lambda e, a: e.b.fdiv(a[0], a[1]),
    "pow": _intrinsic("pow"),
    "max": _intrinsic("maximum"),  # NaN-propagating, like numpy.maximum
    "min": _intrinsic("minimum"),
    "atan2": _intrinsic("atan2"),
    "lt": _compare("<"),
    "le": _compare("<="),
    "gt": _compare(">"),
    "ge": _compare(">="),
    "eq": _compare("=="),
    "ne": _compare("!=", ordered=False),
    "neg": lambda e, a: e.b.fneg(a[0]),
    "abs": _intrinsic("fabs"),
    **{
        name: _intrinsic(name)
        for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "floor", "ceil")
    },
    **{name: _intrinsic(name) for name in ("asin", "acos", "atan", "sinh", "cosh")},
    **{name: _intrinsic(name) for name in ("exp2", "log2", "log10", "trunc")},
    **{name: _libm(name) for name in ("erf", "log1p", "expm1")},
    "round": _intrinsic("roundeven"),  # half to even
    "isnan": _isnan,
    "isinf": _isinf,
    "select": _select,
}
assert EMITTERS.keys() == OPCODES.keys(), "every opcode needs exactly one emitter"


def accumulator(mode: str) -> Callable[[EmitContext, ir.Value, ir.Value], ir.Value]:
    """`old (mode)= value` in the loop dtype; max/min propagate NaN like numpy."""
    return {
        "sum": lambda e, old, v: e.b.fadd(old, v),
        "prod": lambda e, old, v: e.b.fmul(old, v),
        "max": lambda e, old, v: e.call_math("maximum", [old, v]),
        "min": lambda e, old, v: e.call_math("minimum", [old, v]),
    }[mode]


# ---------------------------------------------------------------- memory


def convert(b: ir.IRBuilder, value: ir.Value, ty: ir.Type) -> ir.Value:
    """`value` (a float or a vector of floats) converted to `ty` of the same shape."""
    if value.type == ty:
        return value
    element = ty.element if isinstance(ty, ir.VectorType) else ty
    widen = element == FLOAT_TYPES["float64"]
    return b.fpext(value, ty) if widen else b.fptrunc(value, ty)


def access_ptr(
    e: EmitContext, access: Access, idx: Sequence[ir.Value], shift: ir.Value | None = None
) -> ir.Value:
    """Address of element `offset + sum(stride_k * i_k) (+ shift)` of the access's buffer."""
    b = e.b
    terms: list[ir.Value] = [ir.Constant(I64, access.offset)] if access.offset else []
    for stride, i in zip(access.strides, idx):
        if stride:
            terms.append(i if stride == 1 else b.mul(i, ir.Constant(I64, stride)))
    terms += [shift] if shift is not None else []
    offset = terms[0] if terms else ir.Constant(I64, 0)
    for term in terms[1:]:
        offset = b.add(offset, term)
    ety = ELEMENT_TYPES[e.program.buffers[access.buffer].dtype]
    return b.gep(e.bases[access.buffer], [offset], inbounds=True, source_etype=ety)


def _checked_index(e: EmitContext, index: ir.Value, bound: int) -> ir.Value:
    """`index` (+ bound if negative); outside [-bound, bound) record it and fail the call."""
    b = e.b
    size = ir.Constant(I64, bound)
    negative = b.icmp_signed("<", index, ir.Constant(I64, 0))
    wrapped = b.select(negative, b.add(index, size), index)
    in_range = b.icmp_unsigned("<", wrapped, size)  # a still negative index is huge unsigned
    bad, good = b.append_basic_block("index_error"), b.append_basic_block("index_ok")
    b.cbranch(in_range, good, bad).set_weights([1 << 20, 1])
    b.position_at_end(bad)
    b.store(index, e.error, align=8)
    b.store(size, b.gep(e.error, [ir.Constant(I64, 1)], source_etype=I64), align=8)
    b.ret(ir.Constant(I32, STATUS_INDEX_ERROR))
    b.position_at_end(good)
    return wrapped


def indexed_ptr(
    e: EmitContext,
    access: Access,
    idx: Sequence[ir.Value],
    index: ir.Value | None,
    stride: int,
    bound: int,
) -> ir.Value:
    """Address of a plain access, or of a gather/scatter moved by `index * stride`."""
    if index is None:
        return access_ptr(e, access, idx)
    wrapped = _checked_index(e, index, bound)
    shift = wrapped if stride == 1 else e.b.mul(wrapped, ir.Constant(I64, stride))
    return access_ptr(e, access, idx, shift)


def load_element(e: EmitContext, buffer: int, ptr: ir.Value) -> ir.Value:
    dtype = e.program.buffers[buffer].dtype
    return e.b.load(ptr, typ=ELEMENT_TYPES[dtype], align=ITEMSIZE[dtype])


def store_element(e: EmitContext, buffer: int, ptr: ir.Value, value: ir.Value) -> None:
    dtype = e.program.buffers[buffer].dtype
    e.b.store(convert(e.b, value, ELEMENT_TYPES[dtype]), ptr, align=ITEMSIZE[dtype])
