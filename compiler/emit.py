"""LLVM IR emission: a KernelProgram becomes an `llvmlite.ir.Module` with
`i32 @name(ptr buffers, ptr error)`.

Owns the table of one emitter per scalar opcode, gathers and scatters with their
run-time index checks, store modes, loop nests and Matmul batches (gemm calls come
from `.blas`); an optional vectoriser (`.vecloop`, which builds on this module)
emits the leading iterations of innermost loops with explicit vectors. Imports
`.program`, `.check`, `.blas` and `llvmlite.ir`; it knows nothing about targets
or the JIT.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from llvmlite import ir

from . import blas
from .check import check_program
from .program import OPCODES, Access, Fill, Instr, KernelProgram, Loop, Matmul, Store

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


class _Emitter:
    """Builder plus what opcode emitters need: buffer bases, the error record, libm,
    and the vectoriser (if any) that emits innermost loops with explicit vectors."""

    def __init__(
        self,
        program: KernelProgram,
        builder: ir.IRBuilder,
        bases: Sequence[ir.Value],
        error: ir.Value,
        vectorizer: ExplicitVectors | None = None,
    ):
        self.program = program
        self.b = builder
        self.bases = bases
        self.error = error  # ptr to {i64 bad index, i64 bound}, written before failing
        self.vectorizer = vectorizer

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


Emitter = Callable[[_Emitter, list[ir.Value]], ir.Value]


def _intrinsic(name: str) -> Emitter:
    return lambda e, a: e.call_math(name, a)


def _libm(name: str) -> Emitter:
    """For functions LLVM 22 has no intrinsic for; MCJIT resolves them in-process."""
    return lambda e, a: e.call_math(name, a, intrinsic=False)


def _compare(op: str, ordered: bool = True) -> Emitter:
    """Comparisons yield 1.0/0.0; ordered except `ne`, so NaN != NaN is 1."""

    def emit(e: _Emitter, a: list[ir.Value]) -> ir.Value:
        cmp = e.b.fcmp_ordered if ordered else e.b.fcmp_unordered
        return e.b.uitofp(cmp(op, a[0], a[1]), a[0].type)

    return emit


def _select(e: _Emitter, a: list[ir.Value]) -> ir.Value:
    # `a if c != 0 else b`; a NaN condition counts as true, as in Python.
    nonzero = e.b.fcmp_unordered("!=", a[0], ir.Constant(a[0].type, 0.0))
    return e.b.select(nonzero, a[1], a[2])


def _isnan(e: _Emitter, a: list[ir.Value]) -> ir.Value:
    return e.b.uitofp(e.b.fcmp_unordered("uno", a[0], a[0]), a[0].type)


def _isinf(e: _Emitter, a: list[ir.Value]) -> ir.Value:
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


def _accumulator(mode: str) -> Callable[[_Emitter, ir.Value, ir.Value], ir.Value]:
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
    e: _Emitter, access: Access, idx: Sequence[ir.Value], shift: ir.Value | None = None
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


def _checked_index(e: _Emitter, index: ir.Value, bound: int) -> ir.Value:
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


def _indexed_ptr(
    e: _Emitter,
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


def load_element(e: _Emitter, buffer: int, ptr: ir.Value) -> ir.Value:
    dtype = e.program.buffers[buffer].dtype
    return e.b.load(ptr, typ=ELEMENT_TYPES[dtype], align=ITEMSIZE[dtype])


def store_element(e: _Emitter, buffer: int, ptr: ir.Value, value: ir.Value) -> None:
    dtype = e.program.buffers[buffer].dtype
    e.b.store(convert(e.b, value, ELEMENT_TYPES[dtype]), ptr, align=ITEMSIZE[dtype])


# ---------------------------------------------------------------- loops


def counted_loop(
    b: ir.IRBuilder,
    n: int,
    carried: list[ir.Value],
    body: Callable[[ir.Value, list[ir.Value]], list[ir.Value]],
    start: int = 0,
    step: int = 1,
) -> list[ir.Value]:
    """`for i in range(start, n, step): carried = body(i, carried)`; returns the final
    carried values."""
    pre = b.block
    header, block, done = (b.append_basic_block(s) for s in ("loop", "body", "done"))
    b.branch(header)
    b.position_at_end(header)
    i = b.phi(I64, name="i")
    phis = [b.phi(v.type) for v in carried]
    i.add_incoming(ir.Constant(I64, start), pre)
    for phi, v in zip(phis, carried):
        phi.add_incoming(v, pre)
    b.cbranch(b.icmp_signed("<", i, ir.Constant(I64, n)), block, done)
    b.position_at_end(block)
    updated = body(i, phis)
    latch = b.block
    i.add_incoming(b.add(i, ir.Constant(I64, step), flags=("nuw", "nsw")), latch)
    for phi, v in zip(phis, updated):
        phi.add_incoming(v, latch)
    b.branch(header)
    b.position_at_end(done)
    return phis


def _emit_body(e: _Emitter, loop: Loop, idx: Sequence[ir.Value]) -> list[ir.Value]:
    """Evaluate the SSA body at loop index `idx`; returns one value per instruction."""
    values: list[ir.Value] = []
    for ins in loop.body:
        values.append(_emit_instr(e, loop, ins, idx, values))
    return values


def _emit_instr(
    e: _Emitter, loop: Loop, ins: Instr, idx: Sequence[ir.Value], values: list[ir.Value]
) -> ir.Value:
    ty = FLOAT_TYPES[loop.dtype]
    if ins.op in ("load", "gather"):
        access = loop.loads[ins.load]
        index = values[ins.args[0]] if ins.op == "gather" else None
        raw = load_element(e, access.buffer, _indexed_ptr(e, access, idx, index, ins.stride, ins.bound))
        return raw if raw.type == I64 else convert(e.b, raw, ty)  # indices stay integers
    if ins.op == "const":
        return ir.Constant(ty, ins.value)
    return EMITTERS[ins.op](e, [values[a] for a in ins.args])


def accumulate(e: _Emitter, loop: Loop, st: Store, old: ir.Value, value: ir.Value) -> ir.Value:
    """The buffer-typed result of `old (mode)= value`, rounded exactly as a memory round trip."""
    total = _accumulator(st.mode)(e, convert(e.b, old, FLOAT_TYPES[loop.dtype]), value)
    return convert(e.b, total, FLOAT_TYPES[e.program.buffers[st.access.buffer].dtype])


def _emit_stores(
    e: _Emitter, loop: Loop, stores: list[Store], values: list[ir.Value], idx: Sequence[ir.Value]
) -> None:
    for st in stores:
        index = values[st.index] if st.index >= 0 else None
        ptr = _indexed_ptr(e, st.access, idx, index, st.index_stride, st.bound)
        value = values[st.value]
        if st.mode != "assign":
            value = accumulate(e, loop, st, load_element(e, st.access.buffer, ptr), value)
        store_element(e, st.access.buffer, ptr, value)


def _register_reductions(loop: Loop) -> list[int]:
    """Reducing stores along the innermost axis whose running value can live in a register.

    Only when no load and no other store of the loop touches that buffer, so the
    result is bit-identical to accumulating through memory.
    """
    loaded = {a.buffer for a in loop.loads}
    writers = Counter(st.access.buffer for st in loop.stores)
    return [
        k
        for k, st in enumerate(loop.stores)
        if st.mode != "assign"
        and st.index < 0
        and st.access.strides[-1] == 0
        and st.access.buffer not in loaded
        and writers[st.access.buffer] == 1
    ]


def _emit_innermost(e: _Emitter, loop: Loop, outer: list[ir.Value]) -> None:
    """The innermost axis: a vector loop over its first iterations if the vectoriser
    takes it, then a scalar loop over the rest; reductions run in a register."""
    chosen = _register_reductions(loop)
    registers = [loop.stores[k] for k in chosen]
    in_memory = [st for k, st in enumerate(loop.stores) if k not in chosen]
    zero = ir.Constant(I64, 0)
    ptrs = [access_ptr(e, st.access, [*outer, zero]) for st in registers]
    running = [load_element(e, st.access.buffer, p) for st, p in zip(registers, ptrs)]
    start = 0
    if e.vectorizer is not None:
        start, running = e.vectorizer.vector_loop(e, loop, outer, registers, running)

    def body(i: ir.Value, running: list[ir.Value]) -> list[ir.Value]:
        values = _emit_body(e, loop, [*outer, i])
        _emit_stores(e, loop, in_memory, values, [*outer, i])
        return [accumulate(e, loop, st, r, values[st.value]) for st, r in zip(registers, running)]

    final = counted_loop(e.b, loop.shape[-1], running, body, start=start)
    for st, p, value in zip(registers, ptrs, final):
        store_element(e, st.access.buffer, p, value)


def _emit_axes(e: _Emitter, loop: Loop, axis: int, outer: list[ir.Value]) -> None:
    if axis == len(loop.shape) - 1:
        _emit_innermost(e, loop, outer)
        return

    def body(i: ir.Value, _: list[ir.Value]) -> list[ir.Value]:
        _emit_axes(e, loop, axis + 1, [*outer, i])
        return []

    counted_loop(e.b, loop.shape[axis], [], body)


# ---------------------------------------------------------------- steps


def _emit_loop(e: _Emitter, loop: Loop) -> None:
    if math.prod(loop.shape) == 0:
        return
    if not loop.shape:
        _emit_stores(e, loop, list(loop.stores), _emit_body(e, loop, []), [])
        return
    _emit_axes(e, loop, 0, [])


def _emit_fill(e: _Emitter, fill: Fill) -> None:
    buf = e.program.buffers[fill.buffer]
    integral = buf.dtype == "int64"
    value = ir.Constant(ELEMENT_TYPES[buf.dtype], int(fill.value) if integral else fill.value)
    whole = Access(fill.buffer, 0, (1,))

    def body(i: ir.Value, _: list[ir.Value]) -> list[ir.Value]:
        store_element(e, fill.buffer, access_ptr(e, whole, [i]), value)
        return []

    if buf.size:
        counted_loop(e.b, buf.size, [], body)


def _emit_matmul(e: _Emitter, mm: Matmul) -> None:
    """One gemm call per batch; BLAS itself zeroes (or keeps) C when k = 0."""
    if mm.batch == 0 or mm.m * mm.n == 0:
        return
    dtype = e.program.buffers[mm.out].dtype

    def body(i: ir.Value, _: list[ir.Value]) -> list[ir.Value]:
        c = access_ptr(e, Access(mm.out, mm.out_offset, (mm.m * mm.n,)), [i])
        a, b = e.bases[mm.a], e.bases[mm.b]  # never read when k = 0 (nor bounds-checked)
        if mm.k:
            a = access_ptr(e, Access(mm.a, mm.a_offset, (mm.a_batch_stride,)), [i])
            b = access_ptr(e, Access(mm.b, mm.b_offset, (mm.b_batch_stride,)), [i])
        blas.emit_gemm(e.b, dtype, mm, a, b, c)
        return []

    counted_loop(e.b, mm.batch, [], body)


STEP_EMITTERS: dict[type, Callable] = {Fill: _emit_fill, Loop: _emit_loop, Matmul: _emit_matmul}


# ---------------------------------------------------------------- functions


def emit_program(
    program: KernelProgram, name: str = "kernel", vectorizer: ExplicitVectors | None = None
) -> ir.Module:
    """Check `program` and emit a module whose `i32 @name(ptr buffers, ptr error)` runs it.

    `buffers` points to one data pointer per buffer, in program order. The result
    is 0, or 1 after an index outside [-bound, bound) of a gather or scatter; then
    `error` (two int64, may be null for programs without gathers or scatters) holds
    that index and its bound, and the run stopped part way. The steps live in an
    internal always-inline function whose buffer arguments are `noalias`, which
    lets LLVM vectorise without runtime overlap checks: callers must pass memory
    for every output and temp that overlaps no other buffer (inputs are never
    written, so they may share memory with each other). With a `vectorizer`, an
    innermost loop may start with its explicit vector loop (see `vecloop`).
    """
    check_program(program)
    module = ir.Module(name=name)
    body_fn = _body_function(module, program, name)
    builder = ir.IRBuilder(body_fn.append_basic_block("entry"))
    e = _Emitter(program, builder, body_fn.args[:-1], body_fn.args[-1], vectorizer)
    for step in program.steps:
        STEP_EMITTERS[type(step)](e, step)
    builder.ret(ir.Constant(I32, STATUS_OK))
    _emit_entry(module, name, body_fn)
    return module


def _body_function(module: ir.Module, program: KernelProgram, name: str) -> ir.Function:
    n = len(program.buffers)
    fn = ir.Function(module, ir.FunctionType(I32, [PTR] * (n + 1)), name=f"{name}.body")
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    for k, (arg, buf) in enumerate(zip(fn.args, program.buffers)):
        arg.name = f"{buf.kind}{k}"
        arg.add_attribute("noalias")
        arg.attributes.align = ITEMSIZE[buf.dtype]
    fn.args[-1].name = "error"
    fn.args[-1].add_attribute("noalias")
    return fn


def _emit_entry(module: ir.Module, name: str, body_fn: ir.Function) -> None:
    """`i32 @name(ptr buffers, ptr error)`: unpack the pointer array and call the body."""
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, PTR]), name=name)
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    buffers, error = fn.args
    buffers.name, error.name = "buffers", "error"
    bases = []
    for k in range(len(body_fn.args) - 1):
        slot = b.gep(buffers, [ir.Constant(I64, k)], inbounds=True, source_etype=PTR)
        bases.append(b.load(slot, typ=PTR, align=8))
    b.ret(b.call(body_fn, [*bases, error]))
