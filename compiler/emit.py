"""LLVM IR emission: a KernelProgram becomes a module (`.irtext`, printed as LLVM IR
text) with `i32 @name(ptr buffers, ptr error)`.

Owns loop nests (innermost axes; reductions along them in partials, in the one fixed
order every path shares: PARTIALS), store modes, the steps (loops, fills, Matmul batches
whose gemm calls come from `.blas`) and the entry function; single values (the opcode
table, addresses, loads and stores) come from `.opcode_ir`. An optional vectoriser
(`.vecloop`) emits innermost loops with explicit vectors. Imports `.opcode_ir`,
`.program`, `.check`, `.blas` and `.irtext`; it knows nothing about targets
or the JIT.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import blas
from . import irtext as ir
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
    n: int | ir.Value,
    carried: list[ir.Value],
    body: Callable[[ir.Value, list[ir.Value]], list[ir.Value]],
    start: int = 0,
    step: int = 1,
    unroll: bool = False,
) -> list[ir.Value]:
    """`for i in range(start, n, step): carried = body(i, carried)`; returns the final
    carried values. `n` may be an i64 computed at run time. `unroll` (a constant `n`):
    straight-line code, one copy of the body per iteration."""
    if unroll and isinstance(n, int):
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
    bound = n if isinstance(n, ir.Value) else ir.Constant(I64, n)
    b.cbranch(b.icmp_signed("<", i, bound), block, done)
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
    """The buffer-typed result of `old (mode)= value`, rounded exactly as a memory round trip
    (lane by lane when `old` and `value` are vectors)."""
    compute, keep = FLOAT_TYPES[loop.dtype], FLOAT_TYPES[e.program.buffers[st.access.buffer].dtype]
    if isinstance(old.type, ir.VectorType):
        compute, keep = ir.VectorType(compute, old.type.count), ir.VectorType(keep, old.type.count)
    total = accumulator(st.mode)(e, convert(e.b, old, compute), value)
    return convert(e.b, total, keep)


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


# ---------------------------------------------------------------- register reductions

# A reduction along the innermost axis (stride 0 there) into a buffer that no other load or
# store of the loop touches runs in registers, in this fixed order, which no compile path
# changes (the IR has no fast-math flags) and which no CPU feature (vector width) enters:
#
#   partial[j], j < PARTIALS, starts as the buffer's value for j = 0 and as the mode's
#   identity (IDENTITY) for the others; iteration i folds its value into partial[i % PARTIALS];
#   each step rounds to the buffer dtype as a memory round trip would (`accumulate`). Then the
#   first min(n, PARTIALS) partials (n: the axis length) are combined pairwise
#   (`combine_partials`): [p0, p1, p2, p3, p4] -> [p0+p1, p2+p3, p4] -> [(p0+p1)+(p2+p3), p4] -> ...
#   and the result is stored.
#
# The partials are independent chains, so a long sum is not one chain of n dependent adds
# of 3-4 cycles each (a float32 sum of 1e6 values: 0.84 ns/element in order, 0.06 now); a
# vector loop keeps PARTIALS / lanes vectors of partials, each lane one partial. An identity
# partial leaves a value as it is (-0.0 + x == x, also for x = +0.0 and NaN), so n < PARTIALS
# gives the same result as all PARTIALS partials would, and n <= IN_ORDER the same as adding
# in iteration order (((p0 + p1) + p2) with p0 = start + x0, p1 = x1, p2 = x2). max and min
# round nothing, order -0 below +0 and propagate NaN, so every order gives them the same value
# (NaN payloads aside): a scalar loop of only those keeps one running value, which LLVM may
# reorder.
PARTIALS = 16
IN_ORDER = 3
ORDERED = ("sum", "prod")  # the modes whose result depends on the order
IDENTITY = {"sum": -0.0, "prod": 1.0, "max": -math.inf, "min": math.inf}


def register_reductions(loop: Loop) -> list[int]:
    """Reducing stores along the innermost axis whose partials can live in registers.

    Only when no load and no other store of the loop touches that buffer, so nothing can
    observe the buffer before the reduction ends.
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


def combine_partials(e: EmitContext, loop: Loop, st: Store, partials: list[ir.Value]) -> ir.Value:
    """Buffer-typed partials of `st`, combined pairwise (adjacent pairs; an odd last one
    moves up a level as it is)."""
    compute = FLOAT_TYPES[loop.dtype]
    while len(partials) > 1:
        left, right = partials[::2], partials[1::2]
        pairs = [accumulate(e, loop, st, a, convert(e.b, b, compute)) for a, b in zip(left, right)]
        partials = pairs + partials[2 * len(pairs) :]
    return partials[0]


def _partials_in_rows(
    e: EmitContext, loop: Loop, outer: list[ir.Value], registers: list[Store], partials: list[list[ir.Value]]
) -> list[list[ir.Value]]:
    """The innermost axis as rows of PARTIALS iterations (the last may be shorter), iteration
    r + j folding into partial j, for loops the vectoriser does not take (gathers, no vector
    unit). The partials live in stack arrays: whatever LLVM's vectoriser makes of the rows,
    partial j only ever adds iterations j, j + PARTIALS, ... in that order."""
    n, used = loop.shape[-1], min(loop.shape[-1], PARTIALS)
    in_memory = [st for st in loop.stores if not any(st is r for r in registers)]
    if e.unroll:  # straight-line code: the partials stay values, in the same order
        parts = [list(values) for values in partials]
        for i in range(n):
            idx = [*outer, ir.Constant(I64, i)]
            values = _emit_body(e, loop, idx)
            _emit_stores(e, loop, in_memory, values, idx)
            for st, p in zip(registers, parts):
                p[i % PARTIALS] = accumulate(e, loop, st, p[i % PARTIALS], values[st.value])
        return parts
    arrays = [_stack_array(e, values[:used]) for values in partials]

    def lane(r: ir.Value, j: ir.Value) -> list[ir.Value]:
        idx = [*outer, e.b.add(r, j, flags=("nuw", "nsw"))]
        values = _emit_body(e, loop, idx)
        _emit_stores(e, loop, in_memory, values, idx)
        for st, array in zip(registers, arrays):
            ptr = _element(e.b, array, j)
            e.b.store(accumulate(e, loop, st, e.b.load(ptr, typ=_element_type(array)), values[st.value]), ptr)
        return []

    def row(r: ir.Value, _: list[ir.Value]) -> list[ir.Value]:
        length: ir.Value = ir.Constant(I64, PARTIALS)
        if n % PARTIALS:  # the last row is shorter
            left = e.b.sub(ir.Constant(I64, n), r)
            length = e.b.select(e.b.icmp_signed("<", left, length), left, length)
        counted_loop(e.b, length, [], lambda j, _: lane(r, j))
        return []

    counted_loop(e.b, n, [], row, step=PARTIALS)
    ends = [[e.b.load(_element(e.b, a, ir.Constant(I64, j)), typ=_element_type(a)) for j in range(used)]
            for a in arrays]  # fmt: skip
    return [end + values[used:] for end, values in zip(ends, partials)]


def _stack_array(e: EmitContext, values: list[ir.Value]) -> ir.AllocaInstr:
    """A PARTIALS-element array on the stack (made once, in the entry block) starting with `values`."""
    entry = ir.IRBuilder(e.b.function.entry_basic_block)
    entry.position_at_start(e.b.function.entry_basic_block)
    array = entry.alloca(values[0].type, ir.Constant(I64, PARTIALS))
    for j, value in enumerate(values):
        e.b.store(value, _element(e.b, array, ir.Constant(I64, j)))
    return array


def _element_type(array: ir.AllocaInstr) -> ir.Type:
    return array.allocated_type


def _element(b: ir.IRBuilder, array: ir.AllocaInstr, j: ir.Value) -> ir.Value:
    return b.gep(array, [j], inbounds=True, source_etype=_element_type(array))


def _first_partials(e: EmitContext, st: Store, ptr: ir.Value) -> list[ir.Value]:
    """The buffer's value at `ptr`, then PARTIALS - 1 identities of `st`'s mode."""
    identity = ir.Constant(_buffer_type(e, st), IDENTITY[st.mode])
    return [load_element(e, st.access.buffer, ptr)] + [identity] * (PARTIALS - 1)


def _buffer_type(e: EmitContext, st: Store) -> ir.Type:
    return FLOAT_TYPES[e.program.buffers[st.access.buffer].dtype]


def _emit_innermost(e: EmitContext, loop: Loop, outer: list[ir.Value]) -> None:
    """The innermost axis: the vectoriser's vector loop if it takes the axis, else a scalar
    loop; register reductions as partials (see PARTIALS), combined and stored at the end."""
    chosen = register_reductions(loop)
    registers = [loop.stores[k] for k in chosen]
    in_memory = [st for k, st in enumerate(loop.stores) if k not in chosen]
    n = loop.shape[-1]
    zero = ir.Constant(I64, 0)
    ptrs = [access_ptr(e, st.access, [*outer, zero]) for st in registers]
    partials = [_first_partials(e, st, p) for st, p in zip(registers, ptrs)]
    done = 0
    if e.vectorizer is not None:
        done, partials = e.vectorizer.vector_loop(e, loop, outer, registers, partials)
    if done < n and any(st.mode in ORDERED for st in registers) and n > IN_ORDER:
        partials = _partials_in_rows(e, loop, outer, registers, partials)
    elif done < n:
        partials = [[r] for r in _in_order(e, loop, outer, in_memory, registers, [p[0] for p in partials])]
    for st, p, values in zip(registers, ptrs, partials):
        store_element(e, st.access.buffer, p, combine_partials(e, loop, st, values[: min(n, PARTIALS)]))


def _in_order(
    e: EmitContext, loop: Loop, outer: list[ir.Value], in_memory: list[Store], registers: list[Store],
    running: list[ir.Value],
) -> list[ir.Value]:
    """A scalar loop over the innermost axis carrying one running value per register
    reduction: the partials order for axes of at most IN_ORDER iterations, and for max and
    min (whose value no order changes), with less code."""

    def body(i: ir.Value, running: list[ir.Value]) -> list[ir.Value]:
        values = _emit_body(e, loop, [*outer, i])
        _emit_stores(e, loop, in_memory, values, [*outer, i])
        return [accumulate(e, loop, st, r, values[st.value]) for st, r in zip(registers, running)]

    return counted_loop(e.b, loop.shape[-1], running, body, unroll=e.unroll)


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


# Stack alignment of functions that may spill vectors: LLVM aligns spill slots only to the
# 16 bytes the ABI promises, so a 64-byte vector spilled around each libmvec call straddled
# two cache lines in 3 of 4 calling contexts (W2's float32 loop: 3.0 ns/element, 2.1 ns aligned).
STACK_ALIGN = 64


def _emit_entry(module: ir.Module, name: str, body_fn: ir.Function) -> None:
    """`i32 @name(ptr buffers, ptr error)`: unpack the pointer array and call the body (inlined
    into it, so this function's stack holds the loops' spills)."""
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, PTR]), name=name)
    fn.attributes.add("nounwind")
    fn.attributes.alignstack = STACK_ALIGN
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    buffers, error = fn.args
    buffers.name, error.name = "buffers", "error"
    bases = []
    for k in range(len(body_fn.args) - 1):
        slot = b.gep(buffers, [ir.Constant(I64, k)], inbounds=True, source_etype=PTR)
        bases.append(b.load(slot, typ=PTR, align=8))
    b.ret(b.call(body_fn, [*bases, error]))
