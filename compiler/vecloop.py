"""Explicit vector loops: the innermost loop of a big kernel body emitted with
`<lanes x double>` values, so LLVM's loop vectoriser (superlinear in body size)
need not run.

`ExplicitVectors` plugs into `emit.emit_program` as its `vectorizer`. It takes an
innermost loop when every load and store can be done lane by lane in any order:
no gathers or scatters, no int64 buffers, and no buffer both read and written by
the loop. Then every iteration runs as vectors: a loop over whole vectors, and one
partial vector for the rest (padding lanes are computed but never stored or reduced).
Results equal the scalar loop's, bit for bit: stores and reductions happen in
iteration order, a reduction adds lane after lane, and scalar math (in loops not
taken) calls the same libmvec functions as vectors (`call_math`). A
body longer than CHUNK instructions becomes calls to functions of CHUNK instructions
each, which pass values through stack slots (code generation stays linear in size).
Imports `.emit`, `.opcode_ir`, `.program` and `.irtext`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from . import irtext as ir

from .emit import accumulate, counted_loop
from .opcode_ir import (
    EMITTERS,
    FLOAT_TYPES,
    I32,
    I64,
    ITEMSIZE,
    PTR,
    EmitContext,
    access_ptr,
    convert,
    load_element,
    store_element,
)
from .program import Access, Loop, Store


@dataclass(frozen=True)
class ExplicitVectors:
    """Lanes per loop dtype, and the vector math functions (scalar callee, lanes) -> symbol.

    One vector per instruction and iteration: interleaving two or more copies of the
    body (as LLVM's vectoriser does) hides latency in short bodies, but makes code
    generation superlinear in the body size, and only long bodies come here.
    """

    lanes: Mapping[str, int]
    functions: Mapping[tuple[str, int], str]

    def call_math(self, e: EmitContext, name: str, args: list[ir.Value], intrinsic: bool) -> ir.Value:
        """A math function on vectors: the libmvec function if there is one, else
        `llvm.<name>.v<n>f32|f64` (LLVM calls libm lane by lane) or, for libm
        functions without an intrinsic, the scalar function lane by lane.

        On scalars: the same libmvec function on a splat of the arguments (lane 0), so
        that remainder iterations and scalar loops compute exactly what vector lanes
        do (equal inputs give equal values: the ties amax's gradient looks for)."""
        ty = args[0].type
        if not isinstance(ty, ir.VectorType):
            lanes = self.lanes.get("float32" if ty == FLOAT_TYPES["float32"] else "float64", 0)
            if lanes < 2 or not self._variant(name, ir.VectorType(ty, lanes), intrinsic):
                return e.call_scalar_math(name, args, intrinsic)
            vectors = [_splat(e.b, a, lanes) for a in args]
            return e.b.extract_element(self.call_math(e, name, vectors, intrinsic), ir.Constant(I32, 0))
        symbol = self._variant(name, ty, intrinsic)
        if symbol is not None:
            return e.b.call(e.declare(symbol, ty, len(args), pure=True), args)
        suffix = "f32" if ty.element == FLOAT_TYPES["float32"] else "f64"
        if intrinsic:
            fn = e.declare(f"llvm.{name}.v{ty.count}{suffix}", ty, len(args), pure=False)
            return e.b.call(fn, args)
        scalar = name + ("f" if suffix == "f32" else "")
        return _lane_by_lane(e, e.declare(scalar, ty.element, len(args), pure=True), args)

    def _variant(self, name: str, ty: ir.VectorType, intrinsic: bool) -> str | None:
        """The libmvec symbol computing `name` on vectors of type `ty`, if any."""
        suffix = "f32" if ty.element == FLOAT_TYPES["float32"] else "f64"
        scalar = f"llvm.{name}.{suffix}" if intrinsic else name + ("f" if suffix == "f32" else "")
        return self.functions.get((scalar, ty.count))

    def vector_loop(
        self,
        e: EmitContext,
        loop: Loop,
        outer: list[ir.Value],
        registers: list[Store],
        running: list[ir.Value],
    ) -> tuple[int, list[ir.Value]]:
        """Emit the innermost axis as vectors, carrying the running values of the register
        reductions `registers`: a loop over whole vectors, then one partial vector for the
        remaining iterations (its padding lanes are computed, never stored). Return the
        number of iterations done (0 when the loop is not taken, else all of them) and
        the running values after them."""
        lanes, n = self.lanes.get(loop.dtype, 0), loop.shape[-1]
        if lanes < 2 or not vectorizable(e, loop):
            return 0, running
        in_memory = [st for st in loop.stores if not any(st is r for r in registers)]

        def iteration(it: _Iteration, running: list[ir.Value]) -> list[ir.Value]:
            values = _vector_body(e, loop, it)
            _vector_stores(e, loop, in_memory, values, it)
            return [_reduce(e, loop, st, r, values[st.value], it.valid) for st, r in zip(registers, running)]

        def whole(i: ir.Value, running: list[ir.Value]) -> list[ir.Value]:
            return iteration(_Iteration(outer, i, lanes, lanes), running)

        count = n // lanes * lanes
        if count:
            running = counted_loop(e.b, count, running, whole, step=lanes)
        if count < n:
            running = iteration(_Iteration(outer, ir.Constant(I64, count), lanes, n - count), running)
        return n, running


@dataclass(frozen=True)
class _Iteration:
    """Iterations i .. i + lanes - 1 of the innermost axis (at `outer` indices), of which
    the first `valid` exist."""

    outer: list[ir.Value]
    i: ir.Value
    lanes: int
    valid: int


def vectorizable(e: EmitContext, loop: Loop) -> bool:
    """Whether the iterations of `loop`'s innermost axis may run as vectors."""
    buffers = e.program.buffers
    loaded = {a.buffer for a in loop.loads}
    return (
        all(ins.op != "gather" for ins in loop.body)
        and all(st.index < 0 for st in loop.stores)
        and all(buffers[a.buffer].dtype in FLOAT_TYPES for a in loop.loads)
        and all(buffers[st.access.buffer].dtype in FLOAT_TYPES for st in loop.stores)
        and not loaded.intersection(st.access.buffer for st in loop.stores)
    )


def _lane_by_lane(e: EmitContext, fn: ir.Function, args: list[ir.Value]) -> ir.Value:
    b, ty = e.b, args[0].type
    result: ir.Value = ir.Constant(ty, ir.Undefined)
    for lane in range(ty.count):
        k = ir.Constant(I32, lane)
        result = b.insert_element(result, b.call(fn, [b.extract_element(a, k) for a in args]), k)
    return result


def _splat(b: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    ty = ir.VectorType(value.type, lanes)
    one = b.insert_element(ir.Constant(ty, ir.Undefined), value, ir.Constant(I32, 0))
    return b.shuffle_vector(
        one, ir.Constant(ty, ir.Undefined), ir.Constant(ir.VectorType(I32, lanes), [0] * lanes)
    )


def _vector_body(e: EmitContext, loop: Loop, it: _Iteration) -> list[ir.Value]:
    """The SSA body for the iterations `it`, one vector per instruction (a body longer
    than CHUNK as calls to pieces: `_chunked_body`)."""
    if len(loop.body) > CHUNK:
        return _chunked_body(e, loop, it)
    values: list[ir.Value] = []
    for k in range(len(loop.body)):
        values.append(_vector_instr(e, loop, k, [values[a] for a in loop.body[k].args], it))
    return values


def _vector_instr(e: EmitContext, loop: Loop, k: int, args: list[ir.Value], it: _Iteration) -> ir.Value:
    ins, ty = loop.body[k], ir.VectorType(FLOAT_TYPES[loop.dtype], it.lanes)
    if ins.op == "load":
        return convert(e.b, _vector_load(e, loop.loads[ins.load], it), ty)
    if ins.op == "const":
        return ir.Constant(ty, [ins.value] * it.lanes)
    return EMITTERS[ins.op](e, args)


# Instructions per piece of a long body. LLVM's code generator is superlinear in the size
# of a basic block with many values live across calls (register allocation: a body of
# 27 000 instructions took 4.3 s, 9 000 took 0.9 s); pieces of this size keep it linear.
# Pieces are `optnone`: the optimiser's memory passes (DSE, GVN) cost more on their slot
# traffic than they gain, and the body was already simplified and vectorised by us.
CHUNK = 512


def _chunked_body(e: EmitContext, loop: Loop, it: _Iteration) -> list[ir.Value]:
    """The body as calls to never-inlined functions of CHUNK instructions each; a value
    that another piece (or a store) reads goes through a stack slot whose address the
    pieces share. Returns the values the stores need (None for the others)."""
    body = loop.body
    stored = {st.value for st in loop.stores}
    crossing = set(stored)
    for k, ins in enumerate(body):
        crossing.update(a for a in ins.args if a // CHUNK != k // CHUNK)
    crossing = {k for k in crossing if body[k].op != "const"}  # constants are made where used
    slot = {k: n for n, k in enumerate(sorted(crossing))}
    ty = ir.VectorType(FLOAT_TYPES[loop.dtype], it.lanes)
    entry = ir.IRBuilder(e.b.function.entry_basic_block)
    entry.position_at_start(e.b.function.entry_basic_block)
    slots = entry.alloca(ty, ir.Constant(I64, max(len(slot), 1)))
    for start in range(0, len(body), CHUNK):
        piece = _piece(e, loop, range(start, min(start + CHUNK, len(body))), slot, ty, it)
        e.b.call(piece, [slots, *it.outer, it.i, *e.bases])
    values: list = []
    for k, ins in enumerate(body):
        if k in stored and k in slot:  # (loading the others too would leave dead loads)
            values.append(_slot(e.b, slots, slot[k], ty))
        else:  # a constant, or a value no store reads (never asked for)
            values.append(_vector_instr(e, loop, k, [], it) if ins.op == "const" else None)
    return values


def _slot(b: ir.IRBuilder, slots: ir.Value, n: int, ty: ir.Type) -> ir.Value:
    return b.load(_slot_ptr(b, slots, n, ty), typ=ty)


def _slot_ptr(b: ir.IRBuilder, slots: ir.Value, n: int, ty: ir.Type) -> ir.Value:
    return b.gep(slots, [ir.Constant(I64, n)], inbounds=True, source_etype=ty)


def _piece(e: EmitContext, loop: Loop, ks: range, slot: dict[int, int], ty: ir.VectorType, it: _Iteration) -> ir.Function:
    """`void piece(ptr slots, i64 outer..., i64 i, ptr buffers...)`: instructions `ks` of
    the body, reading values of other pieces from their slots and writing theirs."""
    module = e.b.module
    depth = len(it.outer)
    args = [PTR] + [I64] * (depth + 1) + [PTR] * len(e.bases)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), args), name=module.get_unique_name("piece"))
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    fn.attributes.add("nounwind")
    fn.attributes.add("optnone")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    slots, bases = fn.args[0], fn.args[depth + 2 :]
    here = _Iteration(list(fn.args[1 : depth + 1]), fn.args[depth + 1], it.lanes, it.valid)
    pe = EmitContext(e.program, b, bases, ir.Constant(PTR, None), e.vectorizer)
    values: dict[int, ir.Value] = {}

    def read(a: int) -> ir.Value:
        if a not in values:
            values[a] = _slot(b, slots, slot[a], ty) if a in slot else _vector_instr(pe, loop, a, [], here)
        return values[a]

    for k in ks:
        values[k] = _vector_instr(pe, loop, k, [read(a) for a in loop.body[k].args], here)
        if k in slot:
            b.store(values[k], _slot_ptr(b, slots, slot[k], ty))
    b.ret_void()
    return fn


def _vector_load(e: EmitContext, access: Access, it: _Iteration) -> ir.Value:
    """The elements of an access at the iterations `it`: one load (stride 1), a broadcast
    (stride 0), or one load per lane; the padding lanes of a partial vector repeat the
    first element (so that math on them stays in the data's domain)."""
    b, stride, lanes = e.b, access.strides[-1], it.lanes
    dtype = e.program.buffers[access.buffer].dtype
    first = access_ptr(e, access, [*it.outer, it.i])
    if stride == 1 and it.valid == lanes:
        return b.load(first, typ=ir.VectorType(FLOAT_TYPES[dtype], lanes), align=ITEMSIZE[dtype])
    vector = _splat(b, load_element(e, access.buffer, first), lanes)
    for lane in range(1, it.valid if stride else 1):
        ptr = b.gep(first, [ir.Constant(I64, lane * stride)], inbounds=True, source_etype=FLOAT_TYPES[dtype])
        vector = b.insert_element(vector, load_element(e, access.buffer, ptr), ir.Constant(I32, lane))
    return vector


def _vector_stores(e: EmitContext, loop: Loop, stores: list[Store], values: list[ir.Value], it: _Iteration) -> None:
    """Plain contiguous stores of whole vectors to a buffer nothing else in the loop
    writes become one vector store; every other store runs lane by lane (valid lanes
    only), in iteration order."""
    b = e.b
    writers = Counter(st.access.buffer for st in loop.stores)
    whole = [st for st in stores if _contiguous(st) and writers[st.access.buffer] == 1 and it.valid == it.lanes]
    for st in whole:
        dtype = e.program.buffers[st.access.buffer].dtype
        vector = convert(b, values[st.value], ir.VectorType(FLOAT_TYPES[dtype], it.lanes))
        b.store(vector, access_ptr(e, st.access, [*it.outer, it.i]), align=ITEMSIZE[dtype])
    rest = [st for st in stores if not any(st is w for w in whole)]
    for lane in range(it.valid):
        index = b.add(it.i, ir.Constant(I64, lane))
        for st in rest:
            ptr = access_ptr(e, st.access, [*it.outer, index])
            value = b.extract_element(values[st.value], ir.Constant(I32, lane))
            if st.mode != "assign":
                value = accumulate(e, loop, st, load_element(e, st.access.buffer, ptr), value)
            store_element(e, st.access.buffer, ptr, value)


def _contiguous(st: Store) -> bool:
    return st.mode == "assign" and st.access.strides[-1] == 1


def _reduce(e: EmitContext, loop: Loop, st: Store, running: ir.Value, vector: ir.Value, valid: int) -> ir.Value:
    """Fold the valid lanes into a register reduction one after another, as the scalar loop would."""
    for lane in range(valid):
        running = accumulate(e, loop, st, running, e.b.extract_element(vector, ir.Constant(I32, lane)))
    return running
