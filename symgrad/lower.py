"""Lowering: a simplified DAG becomes a fused KernelProgram (plain data).

Fusion: every elementwise op and every view (broadcast, slice, reshape of a
buffer) is inlined into the loop of the node that consumes it; buffers exist
only for inputs, outputs, reductions, indexed assignments and values worth
sharing. A reduction is fused with its producer: the loop runs over the
input's shape and accumulates into the output. Imports node.py, registry.py,
and the program contract of symgrad.compiler.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from .compiler.program import Access, Buffer, Fill, Instr, KernelProgram, Loop, Store
from .node import Node, Shape, topo_order
from .registry import REGISTRY

Row = tuple[int, tuple[int, ...]]  # index along one dim = base + coeffs . loop_index
Map = tuple[Row, ...]  # one row per dimension of the node being addressed


def contiguous_strides(shape: Shape) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def identity_map(shape: Shape) -> Map:
    rank = len(shape)
    return tuple((0, tuple(int(k == d) for k in range(rank))) for d in range(rank))


def broadcast_map(amap: Map, shape: Shape, out_shape: Shape) -> Map:
    """Rows addressing an input of `shape` that broadcasts to `out_shape` (addressed by `amap`)."""
    lead = len(out_shape) - len(shape)
    rank = len(amap[0][1]) if amap else 0
    zero: Row = (0, (0,) * rank)
    return tuple(zero if n == 1 and out_shape[lead + d] != 1 else amap[lead + d]
                 for d, n in enumerate(shape))  # fmt: skip


def index_map(amap: Map, spec: tuple) -> Map:
    rank = len(amap[0][1]) if amap else 0
    rows, j = [], 0
    for entry in spec:
        if isinstance(entry, int):
            rows.append((entry, (0,) * rank))
        else:
            start, step, _ = entry
            base, coeffs = amap[j]
            rows.append((start + step * base, tuple(step * c for c in coeffs)))
            j += 1
    return tuple(rows)


def is_squeeze(shape: Shape, out_shape: Shape) -> bool:
    """Does reshaping `shape` to `out_shape` only add or remove size-1 dims?"""
    return [n for n in shape if n != 1] == [n for n in out_shape if n != 1]


def squeeze_map(amap: Map, shape: Shape, out_shape: Shape) -> Map | None:
    """Rows for a reshape that only adds or removes size-1 dims; None for any other."""
    if not is_squeeze(shape, out_shape):
        return None
    rank = len(amap[0][1]) if amap else 0
    kept = iter(row for row, n in zip(amap, out_shape) if n != 1)
    return tuple((0, (0,) * rank) if n == 1 else next(kept) for n in shape)


def access(buffer: int, shape: Shape, amap: Map, rank: int) -> Access:
    strides = contiguous_strides(shape)
    offset = sum(s * base for s, (base, _) in zip(strides, amap))
    loop = tuple(sum(s * row[1][k] for s, row in zip(strides, amap)) for k in range(rank))
    return Access(buffer, offset, loop)


class _Body:
    """The scalar SSA body of one loop, with loads and values deduplicated."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.loads: list[Access] = []
        self.instrs: list[Instr] = []
        self.memo: dict[object, int] = {}

    def emit(self, key: object, instr: Instr) -> int:
        if key not in self.memo:
            self.instrs.append(instr)
            self.memo[key] = len(self.instrs) - 1
        return self.memo[key]

    def load(self, acc: Access) -> int:
        if acc not in self.loads:
            self.loads.append(acc)
        return self.emit(("load", acc), Instr("load", load=self.loads.index(acc)))


class Lowering:
    def __init__(self, outputs: Sequence[Node], inputs: Sequence[Node]) -> None:
        self.buffers: list[Buffer] = []
        self.steps: list[Loop | Fill] = []
        self.buffer_of: dict[int, int] = {}
        for leaf in inputs:
            self.buffer_of[id(leaf)] = self._new_buffer(leaf, "input")
        self.outputs, self.order = list(outputs), topo_order(outputs)
        self.shared = self._shared_nodes()

    def _new_buffer(self, node: Node, kind: str) -> int:
        self.buffers.append(Buffer(node.dtype, node.size, kind))
        return len(self.buffers) - 1

    def _shared_nodes(self) -> set[int]:
        """Nodes that get a buffer of their own although nothing forces it."""
        users: Counter[int] = Counter()
        for node in self.order:
            for i in set(map(id, node.inputs)):
                users[i] += 1
        shared: set[int] = set()
        outputs = {id(n) for n in self.outputs}
        for node in self.order:
            kind = REGISTRY[node.op].kind if node.op in REGISTRY else node.op
            if kind == "elementwise" and users[id(node)] > 1 and node.size > 1:
                shared.add(id(node))
            if node.op == "reshape" and not is_squeeze(node.inputs[0].shape, node.shape):
                if not self._contiguous(node.inputs[0], shared | outputs):
                    shared.add(id(node.inputs[0]))
        return shared

    def _contiguous(self, node: Node, buffered: set[int]) -> bool:
        """Will `node` be a buffer (or a reshape of one), so that any reshape of it is a view?"""
        if node.op == "reshape":
            return self._contiguous(node.inputs[0], buffered)
        return node.op in ("leaf", "sum", "setitem") or id(node) in buffered

    def _buffer_under(self, node: Node) -> int:
        while id(node) not in self.buffer_of:
            node = node.inputs[0]  # reshapes of a contiguous buffer
        return self.buffer_of[id(node)]

    def run(self) -> KernelProgram:
        out_buffers: dict[int, int] = {}
        copies: list[tuple[Node, int]] = []  # an output repeated, or one that is a leaf
        for node in self.outputs:
            buf = self._new_buffer(node, "output")
            if id(node) in out_buffers or node.op == "leaf":
                copies.append((node, buf))
            else:
                out_buffers[id(node)] = buf
        for node in self.order:
            if node.op == "leaf" and id(node) not in self.buffer_of:
                raise ValueError("lowering: the graph reads a leaf that is not an input")
            if node.op == "leaf":
                continue
            if id(node) in out_buffers:
                self._materialize(node, out_buffers[id(node)])
            elif self._needs_buffer(node):
                self._materialize(node, self._new_buffer(node, "temp"))
        for node, buf in copies:
            self._loop(node.shape, lambda body, amap, n=node: self.gen(n, amap, body), buf)
        return KernelProgram(tuple(self.buffers), tuple(self.steps))

    def _needs_buffer(self, node: Node) -> bool:
        return node.op in ("sum", "setitem") or id(node) in self.shared

    def _materialize(self, node: Node, buf: int) -> None:
        if node.op == "sum":
            self._reduce(node, buf)
        elif node.op == "setitem":
            self._setitem(node, buf)
        else:
            self._loop(node.shape, lambda body, amap: self.expand(node, amap, body), buf)
        self.buffer_of[id(node)] = buf

    def _loop(self, shape: Shape, gen, buf: int, store_shape: Shape | None = None,
              amap: Map | None = None, mode: str = "assign") -> None:  # fmt: skip
        body = _Body(len(shape))
        value = gen(body, identity_map(shape))
        target = store_shape if store_shape is not None else shape
        acc = access(buf, target, amap if amap is not None else identity_map(shape), len(shape))
        loop = Loop(shape, self.buffers[buf].dtype, tuple(body.loads), tuple(body.instrs),
                    (Store(acc, value, mode),))  # fmt: skip
        self.steps.append(loop)

    def _reduce(self, node: Node, buf: int) -> None:
        (x,) = node.inputs
        axes, _ = node.attrs
        self.steps.append(Fill(buf, 0.0))
        ident = identity_map(x.shape)
        zero_row: Row = (0, (0,) * x.ndim)
        kept = tuple(zero_row if d in axes else ident[d] for d in range(x.ndim))
        keep_shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
        self._loop(x.shape, lambda body, amap: self.gen(x, amap, body), buf,
                   store_shape=keep_shape, amap=kept, mode="sum")  # fmt: skip

    def _setitem(self, node: Node, buf: int) -> None:
        base, value = node.inputs
        (spec,) = node.attrs
        self._loop(node.shape, lambda body, amap: self.gen(base, amap, body), buf)
        region = tuple(e[2] for e in spec if not isinstance(e, int))
        rows = index_map(identity_map(region), spec)

        def gen_value(body: _Body, amap: Map) -> int:
            return self.gen(value, broadcast_map(amap, value.shape, region), body)

        self._loop(region, gen_value, buf, store_shape=node.shape, amap=rows)

    # ---- expressions ---------------------------------------------------------------

    def gen(self, node: Node, amap: Map, body: _Body) -> int:
        """The body instruction computing `node` at the loop index mapped by `amap`."""
        buf = self.buffer_of.get(id(node))
        if buf is not None:
            return body.load(access(buf, node.shape, amap, body.rank))
        return self.expand(node, amap, body)

    def expand(self, node: Node, amap: Map, body: _Body) -> int:
        key = (id(node), amap)
        if key in body.memo:
            return body.memo[key]
        if node.op == "const":
            return body.emit(key, Instr("const", value=node.attrs[0]))
        prim = REGISTRY[node.op]
        if prim.kind == "elementwise":
            args = tuple(self.gen(i, broadcast_map(amap, i.shape, node.shape), body)
                         for i in node.inputs)  # fmt: skip
            return body.emit(key, Instr(prim.opcode, args))
        (x,) = node.inputs
        if node.op == "broadcast_to":
            return self.gen(x, broadcast_map(amap, x.shape, node.shape), body)
        if node.op == "index":
            return self.gen(x, index_map(amap, node.attrs[0]), body)
        if node.op == "reshape":
            rows = squeeze_map(amap, x.shape, node.shape)
            if rows is not None:
                return self.gen(x, rows, body)
            # a reshape of a contiguous buffer is the same memory with other strides
            return body.load(access(self._buffer_under(x), node.shape, amap, body.rank))
        raise NotImplementedError(f"lowering: no rule for {node.op}")


def lower(outputs: Sequence[Node], inputs: Sequence[Node]) -> KernelProgram:
    """The program computing `outputs` from the buffers bound to `inputs`, in that order."""
    return Lowering(outputs, inputs).run()


def input_order_check(program: KernelProgram, arrays: Sequence[np.ndarray]) -> None:
    sizes = [program.buffers[i].size for i in program.of_kind("input")]
    if [a.size for a in arrays] != sizes:
        raise ValueError(f"lowering: input sizes {[a.size for a in arrays]} != {sizes}")
