"""Explicit vector loops: the innermost loop of a big kernel body emitted with
`<lanes x double>` values, so LLVM's loop vectoriser (superlinear in body size)
need not run; and, in any program, loops with a sum or product along their innermost
axis, whose partials LLVM's vectoriser handled badly.

`ExplicitVectors` plugs into `emit.emit_program` as its `vectorizer`. It takes an
innermost loop when every load and store can be done lane by lane in any order:
no gathers or scatters, no int64 buffers, and no buffer both read and written by
the loop. Then every iteration runs as vectors: a loop over whole vectors, and one
partial vector for the rest (padding lanes are computed but never stored or reduced).
Results equal the scalar loop's, bit for bit: stores happen in iteration order, a
register reduction keeps its partials (`emit.PARTIALS`, the order every path shares) as
PARTIALS / lanes vectors, lane k of the t-th vector being partial t * lanes + k, and scalar
math (in loops not taken) calls the same libmvec functions as vectors (`call_math`). A
body longer than CHUNK instructions becomes calls to functions of CHUNK instructions
each, which pass values through stack slots (code generation stays linear in size).
Imports `.emit`, `.opcode_ir`, `.program`, `.vecmath` and `.irtext`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from . import irtext as ir
from .emit import IN_ORDER, ORDERED, PARTIALS, STACK_ALIGN, accumulate, counted_loop
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
from .vecmath import FUNCTIONS


@dataclass(frozen=True)
class ExplicitVectors:
    """Lanes per loop dtype, and the vector math functions (scalar callee, lanes) -> symbol.

    With `every_loop` it takes every loop it can (programs with long bodies); else only
    loops with a sum or product along their innermost axis (`reductions_only`), whose
    other loops LLVM's vectoriser takes: given rows of partials it vectorised across
    rows, with gathers (sum of 10^4 rows of 100 float64: 0.87 ns/element, 0.13 here).
    One vector per instruction and iteration: interleaving two or more copies of the
    body (as LLVM's vectoriser does) hides latency in short bodies, but makes code
    generation superlinear in the body size.
    """

    lanes: Mapping[str, int]
    functions: Mapping[tuple[str, int], str]
    every_loop: bool = True

    def reductions_only(self) -> ExplicitVectors:
        return replace(self, every_loop=False)

    def call_math(self, e: EmitContext, name: str, args: list[ir.Value], intrinsic: bool) -> ir.Value:
        """A math function on vectors: the libmvec function if there is one, else
        `llvm.<name>.v<n>f32|f64` (LLVM calls libm lane by lane) or, for libm
        functions without an intrinsic, the scalar function lane by lane.

        On scalars: the same libmvec function on a splat of the arguments (lane 0), so
        that remainder iterations and scalar loops compute exactly what vector lanes
        do (equal inputs give equal values: the ties amax's gradient looks for). Not
        `every_loop`: the scalar call, which `vecmath.annotate` routes to the same
        function, and LLVM's vectoriser can take."""
        ty = args[0].type
        if not isinstance(ty, ir.VectorType):
            lanes = self.lanes.get("float32" if ty == FLOAT_TYPES["float32"] else "float64", 0)
            variant = lanes >= 2 and self._variant(name, ir.VectorType(ty, lanes), intrinsic)
            if not (self.every_loop and variant):
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
        partials: list[list[ir.Value]],
    ) -> tuple[int, list[list[ir.Value]]]:
        """Emit the innermost axis as vectors, folding into the PARTIALS partials of each
        register reduction in `registers`: a loop over whole vectors (`_copies` at a time
        when only reductions come here), then the vectors left, the last one partial (its
        padding lanes are computed, never stored or reduced). Return the number of
        iterations done (0 when the loop is not taken, else all of them) and the partials
        after them."""
        lanes, n = self.lanes.get(loop.dtype, 0), loop.shape[-1]
        ordered = any(st.mode in ORDERED for st in registers) and n > IN_ORDER
        if lanes < 2 or PARTIALS % lanes or not (self.every_loop or ordered) or not vectorizable(e, loop):
            return 0, partials
        in_memory = [st for st in loop.stores if not any(st is r for r in registers)]
        rows = PARTIALS // lanes  # vectors of partials per reduction
        copies = 1 if self.every_loop else _copies(loop)

        def iterations(its: list[_Iteration], carried: list[ir.Value]) -> list[ir.Value]:
            """Bodies for `its` (instruction by instruction), then per vector in order its
            stores and its folds into the first vector of partials of each reduction, which
            moves last: the next vector of iterations folds into the next vector of partials."""
            for it, values in zip(its, _vector_bodies(e, loop, its)):
                _vector_stores(e, loop, in_memory, values, it)
                out = []
                for k, st in enumerate(registers):
                    first, *rest = carried[k * rows : (k + 1) * rows]
                    out += [*rest, _fold(e, loop, st, first, values[st.value], it.valid)]
                carried = out
            return carried

        def whole(i: ir.Value, carried: list[ir.Value]) -> list[ir.Value]:
            at = [i if c == 0 else e.b.add(i, ir.Constant(I64, c * lanes)) for c in range(copies)]
            return iterations([_Iteration(outer, j, lanes, lanes) for j in at], carried)

        carried = [_pack(e.b, p[t * lanes : (t + 1) * lanes]) for p in partials for t in range(rows)]
        count = n // (lanes * copies) * lanes * copies
        if count:
            carried = counted_loop(e.b, count, carried, whole, step=lanes * copies)
        if count < n:  # the vectors after the last loop iteration, the last one partial
            starts = range(count, n, lanes)
            left = [_Iteration(outer, ir.Constant(I64, i), lanes, min(lanes, n - i)) for i in starts]
            carried = iterations(left, carried)
        turns = (n // -lanes) % rows  # after ceil(n / lanes) moves, partials 0 .. lanes - 1 are here
        return n, [_unpack(e.b, carried[k * rows : (k + 1) * rows], turns) for k in range(len(registers))]


def _pack(b: ir.IRBuilder, scalars: list[ir.Value]) -> ir.Value:
    """A vector of `scalars`."""
    vector: ir.Value = ir.Constant(ir.VectorType(scalars[0].type, len(scalars)), ir.Undefined)
    for lane, value in enumerate(scalars):
        vector = b.insert_element(vector, value, ir.Constant(I32, lane))
    return vector


def _unpack(b: ir.IRBuilder, vectors: list[ir.Value], turns: int) -> list[ir.Value]:
    """The lanes of `vectors`, after rotating the list back by `turns` (partial 0 first)."""
    ordered = vectors[turns:] + vectors[:turns]
    return [b.extract_element(v, ir.Constant(I32, lane)) for v in ordered for lane in range(v.type.count)]


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


def _vector_bodies(e: EmitContext, loop: Loop, its: list[_Iteration]) -> list[list[ir.Value]]:
    """The SSA body for each of `its`, one vector per instruction, emitted instruction by
    instruction (so that the copies' chains run side by side); a body longer than CHUNK as
    calls to pieces (`_chunked_body`), one iteration after the other."""
    if len(loop.body) > CHUNK:
        return [_chunked_body(e, loop, it) for it in its]
    values: list[list[ir.Value]] = [[] for _ in its]
    for k in range(len(loop.body)):
        for it, vs in zip(its, values):
            vs.append(_vector_instr(e, loop, k, [vs[a] for a in loop.body[k].args], it))
    return values


def _vector_instr(e: EmitContext, loop: Loop, k: int, args: list[ir.Value], it: _Iteration) -> ir.Value:
    ins, ty = loop.body[k], ir.VectorType(FLOAT_TYPES[loop.dtype], it.lanes)
    if ins.op == "load":
        return convert(e.b, _vector_load(e, loop.loads[ins.load], it), ty)
    if ins.op == "const":
        return ir.Constant(ty, [ins.value] * it.lanes)
    return EMITTERS[ins.op](e, args)


# Vectors per loop iteration, when only reductions come here (short bodies, which LLVM's own
# vectoriser interleaved), for a body whose math calls mostly depend on one another: two
# chains of calls in flight at once (the W4 chain, K = 10: 36 ns/element with one vector,
# 29 with two). Independent calls overlap anyway, and two copies spill more (W2: 1.72 ns/element
# with one, 1.82 with two).
INTERLEAVE = 2
CALLS = frozenset(base for base, _ in FUNCTIONS.values())


def _copies(loop: Loop) -> int:
    """INTERLEAVE if the longest chain of dependent math calls in the body holds at least
    half of its calls, else 1."""
    depth: list[int] = []
    for ins in loop.body:
        depth.append(max((depth[a] for a in ins.args), default=0) + (ins.op in CALLS))
    calls = sum(ins.op in CALLS for ins in loop.body)
    return INTERLEAVE if calls and 2 * max(depth, default=0) >= calls else 1

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
    fn.attributes.alignstack = STACK_ALIGN  # its vectors live in stack slots
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


def _fold(
    e: EmitContext, loop: Loop, st: Store, partials: ir.Value, values: ir.Value, valid: int
) -> ir.Value:
    """Fold the first `valid` lanes of `values` into a vector of `st`'s partials, lane k into lane k."""
    folded = accumulate(e, loop, st, partials, values)
    lanes = values.type.count
    if valid == lanes:
        return folded
    mask = ir.Constant(ir.VectorType(ir.IntType(1), lanes), [1] * valid + [0] * (lanes - valid))
    return e.b.select(mask, folded, partials)
