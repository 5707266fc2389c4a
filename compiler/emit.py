"""LLVM IR emission: a KernelProgram becomes an `llvmlite.ir.Module` with `void @name(ptr buffers)`.

Owns the static program checks (bounds, arity, SSA order), the table of one
emitter per scalar opcode, and the loop nests. Imports only `.program` and
`llvmlite.ir`; it knows nothing about targets or the JIT.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

from llvmlite import ir

from .program import DTYPES, OPCODES, STORE_MODES, Access, Fill, Instr, KernelProgram, Loop, Store

I64 = ir.IntType(64)
PTR = ir.PointerType()
FLOAT_TYPES: dict[str, ir.Type] = {"float32": ir.FloatType(), "float64": ir.DoubleType()}
ITEMSIZE = {"float32": 4, "float64": 8}
BUFFER_KINDS = ("input", "output", "temp")


# ---------------------------------------------------------------- static checks


def check_program(program: KernelProgram) -> None:
    """Raise ValueError if the program is malformed or could touch memory outside a buffer."""
    for k, buf in enumerate(program.buffers):
        if buf.dtype not in DTYPES or buf.kind not in BUFFER_KINDS or buf.size < 0:
            raise ValueError(f"buffer {k}: invalid {buf}")
    for s, step in enumerate(program.steps):
        where = f"step {s}"
        if isinstance(step, Fill):
            _check_writable(program, step.buffer, where)
        elif isinstance(step, Loop):
            _check_loop(program, step, where)
        else:
            raise ValueError(f"{where}: unknown step type {type(step).__name__}")


def _check_writable(program: KernelProgram, buffer: int, where: str) -> None:
    if not 0 <= buffer < len(program.buffers):
        raise ValueError(f"{where}: buffer index {buffer} out of range")
    if program.buffers[buffer].kind == "input":
        raise ValueError(f"{where}: writes to input buffer {buffer}; inputs are read-only")


def _check_loop(program: KernelProgram, loop: Loop, where: str) -> None:
    if loop.dtype not in DTYPES or any(n < 0 for n in loop.shape):
        raise ValueError(f"{where}: invalid dtype {loop.dtype!r} or shape {loop.shape}")
    for a in loop.loads:
        _check_access(program, loop.shape, a, f"{where} load")
    for pos, ins in enumerate(loop.body):
        _check_instr(loop, pos, ins, f"{where} instr {pos}")
    for st in loop.stores:
        _check_writable(program, st.access.buffer, f"{where} store")
        _check_access(program, loop.shape, st.access, f"{where} store")
        if st.mode not in STORE_MODES or not 0 <= st.value < len(loop.body):
            raise ValueError(f"{where}: invalid store {st}")


def _check_instr(loop: Loop, pos: int, ins: Instr, where: str) -> None:
    arity = {"load": 0, "const": 0}.get(ins.op, OPCODES.get(ins.op, -1))
    if arity != len(ins.args):
        raise ValueError(f"{where}: op {ins.op!r} with {len(ins.args)} args (arity {arity})")
    if any(not 0 <= a < pos for a in ins.args):
        raise ValueError(f"{where}: args {ins.args} must name earlier instructions")
    if ins.op == "load" and not 0 <= ins.load < len(loop.loads):
        raise ValueError(f"{where}: load index {ins.load} out of range")


def _check_access(program: KernelProgram, shape: tuple[int, ...], a: Access, where: str) -> None:
    if not 0 <= a.buffer < len(program.buffers) or len(a.strides) != len(shape):
        raise ValueError(f"{where}: bad buffer {a.buffer} or strides {a.strides} for {shape}")
    if math.prod(shape) == 0:
        return
    spans = [s * (n - 1) for s, n in zip(a.strides, shape)]
    lo = a.offset + sum(min(0, d) for d in spans)
    hi = a.offset + sum(max(0, d) for d in spans)
    size = program.buffers[a.buffer].size
    if lo < 0 or hi >= size:
        raise ValueError(f"{where}: elements {lo}..{hi} outside buffer {a.buffer} of size {size}")


# ---------------------------------------------------------------- opcode table


class _Emitter:
    """Builder plus the module, so opcode emitters can declare intrinsics and libm calls."""

    def __init__(self, program: KernelProgram, builder: ir.IRBuilder, bases: Sequence[ir.Value]):
        self.program = program
        self.b = builder
        self.bases = bases

    def intrinsic(self, name: str, args: list[ir.Value]) -> ir.Value:
        ty = args[0].type
        suffix = "f32" if ty == FLOAT_TYPES["float32"] else "f64"
        full = f"llvm.{name}.{suffix}"
        module = self.b.module
        fn = module.globals.get(full) or ir.Function(
            module, ir.FunctionType(ty, [ty] * len(args)), name=full
        )
        return self.b.call(fn, args)


Emitter = Callable[[_Emitter, list[ir.Value]], ir.Value]


def _intrinsic(name: str) -> Emitter:
    return lambda e, a: e.intrinsic(name, a)


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


EMITTERS: dict[str, Emitter] = {
    "add": lambda e, a: e.b.fadd(a[0], a[1]),
    "sub": lambda e, a: e.b.fsub(a[0], a[1]),
    "mul": lambda e, a: e.b.fmul(a[0], a[1]),
    "div": lambda e, a: e.b.fdiv(a[0], a[1]),
    "pow": _intrinsic("pow"),
    "max": _intrinsic("maximum"),  # NaN-propagating, like numpy.maximum
    "min": _intrinsic("minimum"),
    "lt": _compare("<"),
    "le": _compare("<="),
    "gt": _compare(">"),
    "ge": _compare(">="),
    "eq": _compare("=="),
    "ne": _compare("!=", ordered=False),
    "neg": lambda e, a: e.b.fneg(a[0]),
    "abs": _intrinsic("fabs"),
    **{name: _intrinsic(name) for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh")},
    "floor": _intrinsic("floor"),
    "ceil": _intrinsic("ceil"),
    "select": _select,
}
assert EMITTERS.keys() == OPCODES.keys(), "every opcode needs exactly one emitter"


# ---------------------------------------------------------------- memory and loops


def _convert(b: ir.IRBuilder, value: ir.Value, ty: ir.Type) -> ir.Value:
    if value.type == ty:
        return value
    widen = ty == FLOAT_TYPES["float64"]
    return b.fpext(value, ty) if widen else b.fptrunc(value, ty)


def _element_ptr(e: _Emitter, access: Access, idx: Sequence[ir.Value]) -> ir.Value:
    """Address of element `offset + sum(stride_k * i_k)` of the access's buffer."""
    b = e.b
    terms: list[ir.Value] = [ir.Constant(I64, access.offset)] if access.offset else []
    for stride, i in zip(access.strides, idx):
        if stride:
            terms.append(i if stride == 1 else b.mul(i, ir.Constant(I64, stride)))
    offset = terms[0] if terms else ir.Constant(I64, 0)
    for term in terms[1:]:
        offset = b.add(offset, term)
    ety = FLOAT_TYPES[e.program.buffers[access.buffer].dtype]
    return b.gep(e.bases[access.buffer], [offset], inbounds=True, source_etype=ety)


def _load(e: _Emitter, buffer: int, ptr: ir.Value) -> ir.Value:
    dtype = e.program.buffers[buffer].dtype
    return e.b.load(ptr, typ=FLOAT_TYPES[dtype], align=ITEMSIZE[dtype])


def _store(e: _Emitter, buffer: int, ptr: ir.Value, value: ir.Value) -> None:
    dtype = e.program.buffers[buffer].dtype
    e.b.store(_convert(e.b, value, FLOAT_TYPES[dtype]), ptr, align=ITEMSIZE[dtype])


def _counted_loop(
    b: ir.IRBuilder,
    n: int,
    carried: list[ir.Value],
    body: Callable[[ir.Value, list[ir.Value]], list[ir.Value]],
) -> list[ir.Value]:
    """`for i in range(n): carried = body(i, carried)`; returns the final carried values."""
    pre = b.block
    header, block, done = (b.append_basic_block(s) for s in ("loop", "body", "done"))
    b.branch(header)
    b.position_at_end(header)
    i = b.phi(I64, name="i")
    phis = [b.phi(v.type) for v in carried]
    i.add_incoming(ir.Constant(I64, 0), pre)
    for phi, v in zip(phis, carried):
        phi.add_incoming(v, pre)
    b.cbranch(b.icmp_signed("<", i, ir.Constant(I64, n)), block, done)
    b.position_at_end(block)
    updated = body(i, phis)
    latch = b.block
    i.add_incoming(b.add(i, ir.Constant(I64, 1), flags=("nuw", "nsw")), latch)
    for phi, v in zip(phis, updated):
        phi.add_incoming(v, latch)
    b.branch(header)
    b.position_at_end(done)
    return phis


def _emit_body(e: _Emitter, loop: Loop, idx: Sequence[ir.Value]) -> list[ir.Value]:
    """Evaluate the SSA body at loop index `idx`; returns one value per instruction."""
    ty = FLOAT_TYPES[loop.dtype]
    values: list[ir.Value] = []
    for ins in loop.body:
        if ins.op == "load":
            access = loop.loads[ins.load]
            raw = _load(e, access.buffer, _element_ptr(e, access, idx))
            values.append(_convert(e.b, raw, ty))
        elif ins.op == "const":
            values.append(ir.Constant(ty, ins.value))
        else:
            values.append(EMITTERS[ins.op](e, [values[a] for a in ins.args]))
    return values


def _accumulate(
    e: _Emitter, loop: Loop, st: Store, old: ir.Value, values: list[ir.Value]
) -> ir.Value:
    """The buffer-typed result of `old += value`, rounded exactly as a memory round trip."""
    ty = FLOAT_TYPES[loop.dtype]
    total = e.b.fadd(_convert(e.b, old, ty), values[st.value])
    return _convert(e.b, total, FLOAT_TYPES[e.program.buffers[st.access.buffer].dtype])


def _emit_stores(
    e: _Emitter, loop: Loop, stores: list[Store], values: list[ir.Value], idx: Sequence[ir.Value]
) -> None:
    for st in stores:
        ptr = _element_ptr(e, st.access, idx)
        value = values[st.value]
        if st.mode == "sum":
            value = _accumulate(e, loop, st, _load(e, st.access.buffer, ptr), values)
        _store(e, st.access.buffer, ptr, value)


def _register_sums(loop: Loop) -> list[int]:
    """Sum-stores reducing along the innermost axis that can live in a register.

    Only when no load and no other store of the loop touches that buffer, so the
    result is bit-identical to accumulating through memory.
    """
    loaded = {a.buffer for a in loop.loads}
    writers = Counter(st.access.buffer for st in loop.stores)
    return [
        k
        for k, st in enumerate(loop.stores)
        if st.mode == "sum"
        and st.access.strides[-1] == 0
        and st.access.buffer not in loaded
        and writers[st.access.buffer] == 1
    ]


def _emit_innermost(e: _Emitter, loop: Loop, outer: list[ir.Value]) -> None:
    chosen = _register_sums(loop)
    registers = [loop.stores[k] for k in chosen]
    in_memory = [st for k, st in enumerate(loop.stores) if k not in chosen]
    zero = ir.Constant(I64, 0)
    ptrs = [_element_ptr(e, st.access, [*outer, zero]) for st in registers]
    initial = [_load(e, st.access.buffer, p) for st, p in zip(registers, ptrs)]

    def body(i: ir.Value, sums: list[ir.Value]) -> list[ir.Value]:
        values = _emit_body(e, loop, [*outer, i])
        _emit_stores(e, loop, in_memory, values, [*outer, i])
        return [_accumulate(e, loop, st, s, values) for st, s in zip(registers, sums)]

    final = _counted_loop(e.b, loop.shape[-1], initial, body)
    for st, p, value in zip(registers, ptrs, final):
        _store(e, st.access.buffer, p, value)


def _emit_axes(e: _Emitter, loop: Loop, axis: int, outer: list[ir.Value]) -> None:
    if axis == len(loop.shape) - 1:
        _emit_innermost(e, loop, outer)
        return

    def body(i: ir.Value, _: list[ir.Value]) -> list[ir.Value]:
        _emit_axes(e, loop, axis + 1, [*outer, i])
        return []

    _counted_loop(e.b, loop.shape[axis], [], body)


def _emit_loop(e: _Emitter, loop: Loop) -> None:
    if math.prod(loop.shape) == 0:
        return
    if not loop.shape:
        _emit_stores(e, loop, list(loop.stores), _emit_body(e, loop, []), [])
        return
    _emit_axes(e, loop, 0, [])


def _emit_fill(e: _Emitter, fill: Fill) -> None:
    buf = e.program.buffers[fill.buffer]
    value = ir.Constant(FLOAT_TYPES[buf.dtype], fill.value)
    whole = Access(fill.buffer, 0, (1,))

    def body(i: ir.Value, _: list[ir.Value]) -> list[ir.Value]:
        _store(e, fill.buffer, _element_ptr(e, whole, [i]), value)
        return []

    if buf.size:
        _counted_loop(e.b, buf.size, [], body)


# ---------------------------------------------------------------- functions


def emit_program(program: KernelProgram, name: str = "kernel") -> ir.Module:
    """Check `program` and emit a module whose `void @name(ptr buffers)` runs it.

    `buffers` points to one data pointer per buffer, in program order. The steps
    live in an internal always-inline function whose buffer arguments are
    `noalias`, which lets LLVM vectorise without runtime overlap checks: callers
    must pass memory for every output and temp that overlaps no other buffer
    (inputs are never written, so they may share memory with each other).
    """
    check_program(program)
    module = ir.Module(name=name)
    n = len(program.buffers)
    body_fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * n), name=f"{name}.body")
    body_fn.linkage = "internal"
    body_fn.attributes.add("alwaysinline")
    body_fn.attributes.add("nounwind")
    for k, (arg, buf) in enumerate(zip(body_fn.args, program.buffers)):
        arg.name = f"{buf.kind}{k}"
        arg.add_attribute("noalias")
        arg.attributes.align = ITEMSIZE[buf.dtype]
    builder = ir.IRBuilder(body_fn.append_basic_block("entry"))
    e = _Emitter(program, builder, body_fn.args)
    for step in program.steps:
        if isinstance(step, Fill):
            _emit_fill(e, step)
        else:
            _emit_loop(e, step)
    builder.ret_void()
    _emit_entry(module, name, body_fn)
    return module


def _emit_entry(module: ir.Module, name: str, body_fn: ir.Function) -> None:
    """`void @name(ptr buffers)`: unpack the pointer array and call the body."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR]), name=name)
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    (buffers,) = fn.args
    buffers.name = "buffers"
    bases = []
    for k in range(len(body_fn.args)):
        slot = b.gep(buffers, [ir.Constant(I64, k)], inbounds=True, source_etype=PTR)
        bases.append(b.load(slot, typ=PTR, align=8))
    b.call(body_fn, bases)
    b.ret_void()
