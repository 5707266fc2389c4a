"""Static checks: a KernelProgram that passes `check_program` never touches memory
outside its buffers, whatever the loop indices (gathers and scatters are checked at
run time against their `bound`, and statically for every index in [0, bound)). Also
which outputs the program overwrites whole before reading them (`overwritten_outputs`).

Imports only `.program`.
"""

from __future__ import annotations

import math

from .program import (
    DTYPES,
    OPCODES,
    STORE_MODES,
    Access,
    Fill,
    Instr,
    KernelProgram,
    Loop,
    Matmul,
    Store,
)

FLOAT_DTYPES = ("float32", "float64")
INDEX_DTYPE = "int64"
BUFFER_KINDS = ("input", "output", "temp")
ARITY = {"load": 0, "const": 0, "gather": 1, **OPCODES}


def check_program(program: KernelProgram) -> None:
    """Raise ValueError if the program is malformed or could touch memory outside a buffer
    (TypeError for a step that is not a Loop, Fill or Matmul)."""
    for k, buf in enumerate(program.buffers):
        if buf.dtype not in DTYPES or buf.kind not in BUFFER_KINDS or buf.size < 0:
            raise ValueError(f"buffer {k}: invalid {buf}")
    for s, step in enumerate(program.steps):
        where = f"step {s}"
        if isinstance(step, Fill):
            _check_fill(program, step, where)
        elif isinstance(step, Loop):
            _check_loop(program, step, where)
        elif isinstance(step, Matmul):
            _check_matmul(program, step, where)
        else:
            raise TypeError(f"{where}: unknown step type {type(step).__name__}")


def index_positions(program: KernelProgram, loop: Loop) -> set[int]:
    """Body positions holding an int64 index (loads from int64 buffers)."""
    return {
        pos
        for pos, ins in enumerate(loop.body)
        if ins.op == "load" and program.buffers[loop.loads[ins.load].buffer].dtype == INDEX_DTYPE
    }


def _check_writable(program: KernelProgram, buffer: int, where: str) -> None:
    if not 0 <= buffer < len(program.buffers):
        raise ValueError(f"{where}: buffer index {buffer} out of range")
    if program.buffers[buffer].kind == "input":
        raise ValueError(f"{where}: writes to input buffer {buffer}; inputs are read-only")


def _check_fill(program: KernelProgram, fill: Fill, where: str) -> None:
    _check_writable(program, fill.buffer, where)
    if program.buffers[fill.buffer].dtype == INDEX_DTYPE and not (
        float(fill.value).is_integer() and -(2**63) <= fill.value < 2**63
    ):
        raise ValueError(f"{where}: int64 buffer {fill.buffer} filled with {fill.value}")


# ---------------------------------------------------------------- loops


def _check_loop(program: KernelProgram, loop: Loop, where: str) -> None:
    if loop.dtype not in FLOAT_DTYPES or any(n < 0 for n in loop.shape):
        raise ValueError(f"{where}: invalid dtype {loop.dtype!r} or shape {loop.shape}")
    for a in loop.loads:
        if not 0 <= a.buffer < len(program.buffers):
            raise ValueError(f"{where} load: buffer index {a.buffer} out of range")
    gathered = {ins.load for ins in loop.body if ins.op == "gather"}
    for k, a in enumerate(loop.loads):
        if k not in gathered or any(i.op == "load" and i.load == k for i in loop.body):
            _check_access(program, loop.shape, a, f"{where} load {k}")
    for pos, ins in enumerate(loop.body):
        _check_instr(program, loop, pos, ins, f"{where} instr {pos}")
    indexes = index_positions(program, loop)
    for pos, ins in enumerate(loop.body):
        _check_index_uses(program, loop, ins, indexes, f"{where} instr {pos}")
    for st in loop.stores:
        _check_store(program, loop, st, indexes, f"{where} store")


def _check_instr(program: KernelProgram, loop: Loop, pos: int, ins: Instr, where: str) -> None:
    arity = ARITY.get(ins.op, -1)
    if arity != len(ins.args):
        raise ValueError(f"{where}: op {ins.op!r} with {len(ins.args)} args (arity {arity})")
    if any(not 0 <= a < pos for a in ins.args):
        raise ValueError(f"{where}: args {ins.args} must name earlier instructions")
    if ins.op in ("load", "gather") and not 0 <= ins.load < len(loop.loads):
        raise ValueError(f"{where}: load index {ins.load} out of range")
    if ins.op == "gather":
        access = loop.loads[ins.load]
        if program.buffers[access.buffer].dtype == INDEX_DTYPE:
            raise ValueError(f"{where}: gather from int64 buffer {access.buffer}")
        _check_indexed(program, loop.shape, access, ins.stride, ins.bound, where)


def _check_index_uses(
    program: KernelProgram, loop: Loop, ins: Instr, indexes: set[int], where: str
) -> None:
    """int64 values are addresses, not numbers: they only feed gathers and scatters."""
    if ins.op == "gather":
        if ins.args[0] not in indexes:
            raise ValueError(f"{where}: gather index must be a load from an int64 buffer")
    elif indexes.intersection(ins.args):
        raise ValueError(f"{where}: op {ins.op!r} on an int64 index; indices only address")


def _check_store(
    program: KernelProgram, loop: Loop, st: Store, indexes: set[int], where: str
) -> None:
    _check_writable(program, st.access.buffer, where)
    if st.mode not in STORE_MODES or not 0 <= st.value < len(loop.body):
        raise ValueError(f"{where}: invalid store {st}")
    into_index = program.buffers[st.access.buffer].dtype == INDEX_DTYPE
    if into_index != (st.value in indexes) or (into_index and st.mode != "assign"):
        raise ValueError(f"{where}: int64 buffers only take assigned int64 loads: {st}")
    if st.index == -1:
        _check_access(program, loop.shape, st.access, where)
    elif st.index in indexes:
        _check_indexed(program, loop.shape, st.access, st.index_stride, st.bound, where)
    else:
        raise ValueError(f"{where}: scatter index must be a load from an int64 buffer: {st}")


def _check_indexed(
    program: KernelProgram, shape: tuple[int, ...], a: Access, stride: int, bound: int, where: str
) -> None:
    """A gather or scatter base plus `idx * stride` stays inside for every idx in [0, bound)."""
    if bound < 0:
        raise ValueError(f"{where}: negative bound {bound}")
    if bound:  # with bound 0 every index fails at run time: nothing is ever touched
        _check_access(program, shape, a, where, stride * (bound - 1))
    elif len(a.strides) != len(shape):
        raise ValueError(f"{where}: strides {a.strides} for {shape}")


def _check_access(
    program: KernelProgram, shape: tuple[int, ...], a: Access, where: str, extra: int = 0
) -> None:
    if not 0 <= a.buffer < len(program.buffers) or len(a.strides) != len(shape):
        raise ValueError(f"{where}: bad buffer {a.buffer} or strides {a.strides} for {shape}")
    if math.prod(shape) == 0:
        return
    spans = [s * (n - 1) for s, n in zip(a.strides, shape)] + [extra]
    _check_extent(program, a.buffer, a.offset, spans, 1, where)


def _check_extent(
    program: KernelProgram, buffer: int, offset: int, spans: list[int], count: int, where: str
) -> None:
    """Elements offset + sum(spans chosen from 0 or span) + [0, count) lie inside `buffer`."""
    lo = offset + sum(min(0, d) for d in spans)
    hi = offset + sum(max(0, d) for d in spans) + count - 1
    size = program.buffers[buffer].size
    if lo < 0 or hi >= size:
        raise ValueError(f"{where}: elements {lo}..{hi} outside buffer {buffer} of size {size}")


# ---------------------------------------------------------------- matmul


def _check_matmul(program: KernelProgram, mm: Matmul, where: str) -> None:
    _check_writable(program, mm.out, where)
    if not all(0 <= k < len(program.buffers) for k in (mm.a, mm.b)):
        raise ValueError(f"{where}: buffer index out of range in {mm}")
    dtypes = {program.buffers[k].dtype for k in (mm.a, mm.b, mm.out)}
    if len(dtypes) != 1 or not dtypes <= set(FLOAT_DTYPES):
        raise ValueError(f"{where}: matmul needs one float dtype for a, b and out, got {dtypes}")
    if mm.out in (mm.a, mm.b):
        raise ValueError(f"{where}: matmul output buffer {mm.out} is also an operand")
    if min(mm.m, mm.n, mm.k, mm.batch) < 0:
        raise ValueError(f"{where}: negative extent in {mm}")
    if mm.batch == 0 or mm.m * mm.n == 0:
        return
    out_stride = mm.m * mm.n
    _check_extent(program, mm.out, mm.out_offset, [out_stride * (mm.batch - 1)], out_stride, where)
    if mm.k == 0:
        return
    for buffer, offset, rows, stride in (
        (mm.a, mm.a_offset, mm.m, mm.a_batch_stride),
        (mm.b, mm.b_offset, mm.n, mm.b_batch_stride),
    ):
        _check_extent(program, buffer, offset, [stride * (mm.batch - 1)], rows * mm.k, where)


# ---------------------------------------------------------------- coverage


def overwritten_outputs(program: KernelProgram) -> frozenset[int]:
    """Outputs whose first step writes every element without reading any: a Fill, or a
    Loop that does not load the buffer, only assigns to it (no scatter) and has a store
    that covers it. Their memory need not be zeroed before a run."""
    found = set()
    for k in program.of_kind("output"):
        first = next((step for step in program.steps if k in _touched(step)), None)
        if isinstance(first, Fill):
            found.add(k)
        elif isinstance(first, Loop) and _overwrites(program, first, k):
            found.add(k)
    return frozenset(found)


def _touched(step: Fill | Loop | Matmul) -> set[int]:
    if isinstance(step, Fill):
        return {step.buffer}
    if isinstance(step, Matmul):
        return {step.a, step.b, step.out}
    return {a.buffer for a in step.loads} | {st.access.buffer for st in step.stores}


def _overwrites(program: KernelProgram, loop: Loop, buffer: int) -> bool:
    stores = [st for st in loop.stores if st.access.buffer == buffer]
    return (
        all(a.buffer != buffer for a in loop.loads)
        and all(st.mode == "assign" and st.index < 0 for st in stores)
        and any(_covers(st.access, loop.shape, program.buffers[buffer].size) for st in stores)
    )


def _covers(access: Access, shape: tuple[int, ...], size: int) -> bool:
    """Whether the access visits every element of a `size`-element buffer: offset 0 and the
    moving axes, by increasing stride, laid out densely (stride 1, then the previous
    stride times its extent, ...) over `size` elements."""
    if size == 0:
        return True
    if math.prod(shape) == 0 or access.offset != 0:
        return False
    moving = sorted((stride, n) for stride, n in zip(access.strides, shape) if n > 1 and stride != 0)
    dense = 1
    for stride, n in moving:
        if stride != dense:
            return False
        dense *= n
    return dense == size
