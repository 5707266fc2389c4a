"""LLVM IR emission: a KernelProgram becomes a module (`.irtext`, printed as LLVM IR
text) with `i32 @name(ptr buffers, ptr error)`.

Owns loop nests (innermost axes with reductions in registers), store modes, the
steps (loops, fills, Matmul batches whose gemm calls come from `.blas`) and the
entry function; single values (the opcode table, addresses, loads and stores)
come from `.opcode_ir`. An optional vectoriser (`.vecloop`) emits the leading
iterations of innermost loops with explicit vectors. Imports `.opcode_ir`,
`.program`, `.check`, `.blas` and `.irtext`; it knows nothing about targets
or the JIT.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import irtext as ir

from . import blas
from .check import check_program
from .opcode_ir import (
    ELEMENT_TYPES,
    EMITTERS,
    FLOAT_TYPES,
    I32,
    I64,
    ITEMSIZE,
    PTR,
    STATUS_OK,
    EmitContext,
    access_ptr,
    accumulator,
    convert,
    indexed_ptr,
    load_element,
    store_element,
)
from .program import Access, Fill, Instr, KernelProgram, Loop, Matmul, Store

if TYPE_CHECKING:  # vecloop builds on this module; only its type is named here
    from .vecloop import ExplicitVectors


# ---------------------------------------------------------------- loops


# Tiny programs (`emit_program(straight_line=True)`) emit loop nests of at most this many
# iterations unrolled: -O0 code generation keeps the values of one block in registers, but
# spills a loop's across its blocks (a 2x2 value-and-grad call: ~30 ns more as a loop).
UNROLLED_ITERATIONS = 64


def counted_loop(
    b: ir.IRBuilder,
    n: int,
    carried: list[ir.Value],
    body: Callable[[ir.Value, list[ir.Value]], list[ir.Value]],
    start: int = 0,
    step: int = 1,
    unroll: bool = False,
) -> list[ir.Value]:
    """`for i in range(start, n, step): carried = body(i, carried)`; returns the final
    carried values. `unroll`: straight-line code, one copy of the body per iteration."""
    if unroll:
        for k in range(start, n, step):
            carried = body(ir.Constant(I64, k), carried)
        return carried
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


def _emit_body(e: EmitContext, loop: Loop, idx: Sequence[ir.Value]) -> list[ir.Value]:
    """Evaluate the SSA body at loop index `idx`; returns one value per instruction."""
    values: list[ir.Value] = []
    for ins in loop.body:
        values.append(_emit_instr(e, loop, ins, idx, values))
    return values


def _emit_instr(
    e: EmitContext, loop: Loop, ins: Instr, idx: Sequence[ir.Value], values: list[ir.Value]
) -> ir.Value:
    ty = FLOAT_TYPES[loop.dtype]
    if ins.op in ("load", "gather"):
        access = loop.loads[ins.load]
        index = values[ins.args[0]] if ins.op == "gather" else None
        raw = load_element(e, access.buffer, indexed_ptr(e, access, idx, index, ins.stride, ins.bound))
        return raw if raw.type == I64 else convert(e.b, raw, ty)  # indices stay integers
    if ins.op == "const":
        return ir.Constant(ty, ins.value)
    return EMITTERS[ins.op](e, [values[a] for a in ins.args])


def accumulate(e: EmitContext, loop: Loop, st: Store, old: ir.Value, value: ir.Value) -> ir.Value:
    """The buffer-typed result of `old (mode)= value`, rounded exactly as a memory round trip."""
    total = accumulator(st.mode)(e, convert(e.b, old, FLOAT_TYPES[loop.dtype]), value)
    return convert(e.b, total, FLOAT_TYPES[e.program.buffers[st.access.buffer].dtype])


def _emit_stores(
    e: EmitContext, loop: Loop, stores: list[Store], values: list[ir.Value], idx: Sequence[ir.Value]
) -> None:
    for st in stores:
        index = values[st.index] if st.index >= 0 else None
        ptr = indexed_ptr(e, st.access, idx, index, st.index_stride, st.bound)
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


def _emit_innermost(e: EmitContext, loop: Loop, outer: list[ir.Value]) -> None:
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

    n = loop.shape[-1]
    final = counted_loop(e.b, n, running, body, start=start, unroll=e.unroll) if start < n else running
    for st, p, value in zip(registers, ptrs, final):
        store_element(e, st.access.buffer, p, value)


def _emit_axes(e: EmitContext, loop: Loop, axis: int, outer: list[ir.Value]) -> None:
    if axis == len(loop.shape) - 1:
        _emit_innermost(e, loop, outer)
        return

    def body(i: ir.Value, _: list[ir.Value]) -> list[ir.Value]:
        _emit_axes(e, loop, axis + 1, [*outer, i])
        return []

    counted_loop(e.b, loop.shape[axis], [], body, unroll=e.unroll)


# ---------------------------------------------------------------- steps


def _emit_loop(e: EmitContext, loop: Loop) -> None:
    if math.prod(loop.shape) == 0:
        return
    if not loop.shape:
        _emit_stores(e, loop, list(loop.stores), _emit_body(e, loop, []), [])
        return
    e.unroll = e.straight_line and math.prod(loop.shape) <= UNROLLED_ITERATIONS
    _emit_axes(e, loop, 0, [])
    e.unroll = False


def _emit_fill(e: EmitContext, fill: Fill) -> None:
    buf = e.program.buffers[fill.buffer]
    integral = buf.dtype == "int64"
    value = ir.Constant(ELEMENT_TYPES[buf.dtype], int(fill.value) if integral else fill.value)
    whole = Access(fill.buffer, 0, (1,))

    def body(i: ir.Value, _: list[ir.Value]) -> list[ir.Value]:
        store_element(e, fill.buffer, access_ptr(e, whole, [i]), value)
        return []

    if buf.size:
        counted_loop(e.b, buf.size, [], body, unroll=e.straight_line and buf.size <= UNROLLED_ITERATIONS)


def _emit_matmul(e: EmitContext, mm: Matmul) -> None:
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
    program: KernelProgram, name: str = "kernel", vectorizer: ExplicitVectors | None = None,
    checked: bool = False, straight_line: bool = False,
) -> ir.Module:
    """Check `program` (unless the caller just did: `checked`) and emit a module whose `i32 @name(ptr buffers, ptr error)` runs it.

    `buffers` points to one data pointer per buffer, in program order. The result
    is 0, or 1 after an index outside [-bound, bound) of a gather or scatter; then
    `error` (two int64, may be null for programs without gathers or scatters) holds
    that index and its bound, and the run stopped part way. The steps live in an
    internal always-inline function whose buffer arguments are `noalias`, which
    lets LLVM vectorise without runtime overlap checks: callers must pass memory
    for every output and temp that overlaps no other buffer (inputs are never
    written, so they may share memory with each other). With a `vectorizer`, an
    innermost loop may start with its explicit vector loop (see `vecloop`). With
    `straight_line` (a tiny program), loops of at most UNROLLED_ITERATIONS iterations in all
    are unrolled.
    """
    if not checked:
        check_program(program)
    module = ir.Module(name=name)
    body_fn = _body_function(module, program, name)
    builder = ir.IRBuilder(body_fn.append_basic_block("entry"))
    e = EmitContext(program, builder, body_fn.args[:-1], body_fn.args[-1], vectorizer, straight_line)
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
