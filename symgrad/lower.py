"""Lowering: a simplified DAG becomes a fused KernelProgram (plain data).

Fusion: every elementwise op and every view (broadcast, slice, permute, reshape
of a buffer) is inlined into the loop of the node that consumes it; buffers
exist only for inputs, outputs, reductions, indexed writes, matmuls, casts and
values worth sharing. A reduction is fused with its producer: the loop runs
over the input's shape and accumulates into the output. Imports node,
registry, symbolic, maps and the program contract of symgrad.compiler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .compiler.program import Buffer, Fill, Instr, KernelProgram, Loop, Matmul, Store
from .elementwise import expand
from .maps import (
    Map,
    access,
    broadcast_map,
    contiguous_strides,
    identity_map,
    index_map,
    is_squeeze,  # fmt: skip
    permute_map,
    squeeze_map,
    zero_row,
)
from .node import Node, Shape, topo_order
from .reduce import ACCUMULATE
from .registry import REGISTRY

# Kinds whose nodes always get a buffer, and the inputs that must be buffers too.
BUFFERED_KINDS = ("reduce", "setitem", "scatter", "matmul", "cast")


def kind_of(node: Node) -> str:
    return REGISTRY[node.op].kind if node.op in REGISTRY else node.op


class _Body:
    """The scalar SSA body of one loop, with loads and values deduplicated. What a trial
    generation adds can be taken back (`mark`, `rollback`)."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.loads: list = []
        self.load_at: dict = {}  # access -> its position in loads
        self.instrs: list[Instr] = []
        self.memo: dict[object, int] = {}

    def emit(self, key: object, instr: Instr) -> int:
        found = self.memo.get(key)
        if found is None:
            self.instrs.append(instr)
            found = self.memo[key] = len(self.instrs) - 1
        return found

    def load_index(self, acc) -> int:
        found = self.load_at.get(acc)
        if found is None:
            self.loads.append(acc)
            found = self.load_at[acc] = len(self.loads) - 1
        return found

    def load(self, acc) -> int:
        key = ("load", acc)
        found = self.memo.get(key)
        return found if found is not None else self.emit(key, Instr("load", load=self.load_index(acc)))

    def mark(self) -> tuple[int, int, int]:
        return len(self.loads), len(self.instrs), len(self.memo)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        """Forget everything added since `mark` (memo keys are only ever added: a dict
        keeps insertion order, so they are the last ones)."""
        loads, instrs, memo = mark
        for acc in self.loads[loads:]:
            del self.load_at[acc]
        del self.loads[loads:], self.instrs[instrs:]
        for _ in range(len(self.memo) - memo):
            self.memo.popitem()


@dataclass
class _OpenLoop:
    """A loop still taking stores: nodes with the same iteration space share it (and its CSE)."""

    shape: Shape
    dtype: str
    body: _Body
    stores: list[Store] = field(default_factory=list)
    writes: set[int] = field(default_factory=set)


Gen = Callable[[_Body, Map], int]


class Lowering:
    def __init__(self, outputs: Sequence[Node], inputs: Sequence[Node]) -> None:
        self.buffers: list[Buffer] = []
        self.steps: list = []
        self.buffer_of: dict[int, int] = {}
        for leaf in inputs:
            self.buffer_of[id(leaf)] = self._new_buffer(leaf, "input")
        self.outputs, self.order = list(outputs), topo_order(outputs)
        self.shared = self._shared_nodes()
        self.open: dict[tuple, _OpenLoop] = {}
        self.expanded: dict[int, Node] = {}

    def _new_buffer(self, node: Node, kind: str) -> int:
        self.buffers.append(Buffer(node.dtype, node.size, kind))
        return len(self.buffers) - 1

    # ---- which nodes get buffers --------------------------------------------------

    def _shared_nodes(self) -> set[int]:
        """Nodes that get a buffer of their own although their kind does not force it."""
        kinds = [kind_of(node) for node in self.order]
        users, elsewhere = self._uses(kinds)
        shared: set[int] = set()
        for node, kind in zip(self.order, kinds):
            if kind == "elementwise":  # (needs no operand in a buffer)
                if id(node) in elsewhere and users.get(id(node), 0) > 1 and node.size > 1:
                    shared.add(id(node))
                continue
            for operand in self._operands_needing_buffers(node):
                if not self._contiguous(operand, shared):
                    shared.add(id(operand))
        return shared

    def _uses(self, kinds: list[str]) -> tuple[dict[int, int], set[int]]:
        """How many nodes use each node, and the nodes read by a consumer that does not compute
        them at its own loop index (a broadcast, a matmul, ...): sharing those through a buffer
        saves recomputation. Consumers at the same index share one loop, where CSE computes
        them once."""
        users: dict[int, int] = {}
        elsewhere: set[int] = set()
        for node, kind in zip(self.order, kinds):
            inputs = node.inputs
            for i in inputs if len(inputs) < 2 else {id(i): i for i in inputs}.values():
                users[id(i)] = users.get(id(i), 0) + 1
                if not (kind == "reduce" or kind == "elementwise" and i.shape == node.shape):
                    elsewhere.add(id(i))
        return users, elsewhere

    def _operands_needing_buffers(self, node: Node) -> list[Node]:
        kind = kind_of(node)
        if node.op in ("amax", "amin"):
            # the gradient finds the extreme by equality: reduction and comparison must read the
            # same stored values (vector and scalar math may round one element differently)
            return [node.inputs[0]]
        if kind == "cast" or kind == "gather":
            return [node.inputs[0]]
        if kind == "matmul":
            return [self._untransposed(x)[0] for x in node.inputs]
        if node.op == "reshape" and not is_squeeze(node.inputs[0].shape, node.shape):
            return [node.inputs[0]]
        return []

    def _contiguous(self, node: Node, buffered: set[int]) -> bool:
        """Will `node` be a buffer (or a reshape of one), so that any reshape of it is a view?"""
        if node.op == "reshape":
            return self._contiguous(node.inputs[0], buffered)
        outputs = any(node is n for n in self.outputs)
        return node.op == "leaf" or kind_of(node) in BUFFERED_KINDS or id(node) in buffered or outputs

    def _buffer_under(self, node: Node) -> int:
        while id(node) not in self.buffer_of:
            node = node.inputs[0]  # reshapes of a contiguous buffer
        return self.buffer_of[id(node)]

    @staticmethod
    def _untransposed(x: Node) -> tuple[Node, bool]:
        """(operand, transposed): a swap of the last two dims becomes a BLAS flag."""
        swap = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
        if x.op == "permute" and x.attrs[0] == swap:
            return x.inputs[0], True
        return x, False

    # ---- steps -------------------------------------------------------------------------

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
            if node.op == "leaf":
                if id(node) not in self.buffer_of:
                    raise ValueError("lowering: the graph reads a leaf that is not an input")
            elif id(node) in out_buffers:
                self._materialize(node, out_buffers[id(node)])
            elif kind_of(node) in BUFFERED_KINDS or id(node) in self.shared:
                self._materialize(node, self._new_buffer(node, "temp"))
        for node, buf in copies:
            self._loop(node.shape, lambda body, amap, n=node: self.gen(n, amap, body), buf)
        for key in list(self.open):
            self._flush(key)
        return KernelProgram(tuple(self.buffers), tuple(self.steps))

    def _flush(self, key: tuple) -> None:
        loop = self.open.pop(key)
        self.steps.append(Loop(loop.shape, loop.dtype, tuple(loop.body.loads), tuple(loop.body.instrs),
                               tuple(loop.stores)))  # fmt: skip

    def _flush_writers(self, buffers: set[int]) -> None:
        for key in [k for k, loop in self.open.items() if loop.writes & buffers]:
            self._flush(key)

    def _materialize(self, node: Node, buf: int) -> None:
        kind = kind_of(node)
        if kind == "reduce":
            self._reduce(node, buf)
        elif kind == "setitem":
            self._setitem(node, buf)
        elif kind == "scatter":
            self._scatter_add(node, buf)
        elif kind == "matmul":
            self._matmul(node, buf)
        else:
            self._loop(node.shape, lambda body, amap: self.expand(node, amap, body), buf)
        self.buffer_of[id(node)] = buf

    def _loop(self, shape: Shape, gen: Gen, buf: int, store_shape: Shape | None = None,
              amap: Map | None = None, mode: str = "assign", index: Gen | None = None,
              axis: int = 0) -> None:  # fmt: skip
        """Add `buf[amap(i)] (mode)= gen(i)` to the open loop over `shape`, flushing first any
        open loop whose writes this one would read, or that writes `buf` too (a second write
        must see the first one complete: setitem, scatter)."""
        key, ident = (tuple(shape), self.buffers[buf].dtype), identity_map(shape)
        while True:  # each retry closes at least one open loop
            loop = self.open.get(key)
            body = loop.body if loop is not None else _Body(len(shape))
            mark = body.mark()
            value = gen(body, ident)
            index_at = index(body, ident) if index is not None else -1
            reads = {a.buffer for a in body.loads[mark[0]:]}
            clashes = [k for k, lp in self.open.items() if lp.writes & reads or buf in lp.writes]
            if not clashes:
                break
            body.rollback(mark)  # the loops it clashes with may include this one
            for k in clashes:
                self._flush(k)
        if loop is None or key not in self.open:
            loop = self.open[key] = _OpenLoop(tuple(shape), self.buffers[buf].dtype, body)
        target = store_shape if store_shape is not None else shape
        acc = access(buf, target, amap if amap is not None else ident, len(shape))
        if index is None:
            loop.stores.append(Store(acc, value, mode))
        else:
            loop.stores.append(Store(acc, value, mode, index=index_at,
                                     index_stride=contiguous_strides(target)[axis], bound=target[axis]))  # fmt: skip
        loop.writes.add(buf)

    def _reduce(self, node: Node, buf: int) -> None:
        (x,) = node.inputs
        axes, _ = node.attrs
        mode, fill = ACCUMULATE[node.op]
        self.steps.append(Fill(buf, fill))
        ident, pinned = identity_map(x.shape), (0, (0,) * x.ndim)
        kept = tuple(pinned if d in axes else ident[d] for d in range(x.ndim))
        keep_shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
        self._loop(x.shape, lambda body, amap: self.gen(x, amap, body), buf,
                   store_shape=keep_shape, amap=kept, mode=mode)  # fmt: skip

    def _setitem(self, node: Node, buf: int) -> None:
        base, value = node.inputs
        (spec,) = node.attrs
        self._loop(node.shape, lambda body, amap: self.gen(base, amap, body), buf)
        region = tuple(e[2] for e in spec if not isinstance(e, int))
        rows = index_map(identity_map(region), spec, len(region))

        def gen_value(body: _Body, amap: Map) -> int:
            return self.gen(value, broadcast_map(amap, value.shape, region, body.rank), body)

        self._loop(region, gen_value, buf, store_shape=node.shape, amap=rows)

    def _scatter_add(self, node: Node, buf: int) -> None:
        base, idx, src = node.inputs
        (axis,) = node.attrs
        self._loop(node.shape, lambda body, amap: self.gen(base, amap, body), buf)
        rows = zero_row(identity_map(idx.shape), idx.ndim, axis)
        self._loop(idx.shape, lambda body, amap: self.gen(src, amap, body), buf,
                   store_shape=node.shape, amap=rows, mode="sum",
                   index=lambda body, amap: self.gen(idx, amap, body), axis=axis)  # fmt: skip

    def _matmul(self, node: Node, buf: int) -> None:
        (a, trans_a), (b, trans_b) = (self._untransposed(x) for x in node.inputs)
        m, n = node.shape[-2:]
        k = node.inputs[0].shape[-1]
        batch = node.size // max(m * n, 1)

        def batch_stride(x: Node) -> int:
            return 0 if x.size == x.shape[-1] * x.shape[-2] else x.shape[-1] * x.shape[-2]

        self._flush_writers({self._buffer_under(a), self._buffer_under(b), buf})
        self.steps.append(Matmul(self._buffer_under(a), self._buffer_under(b), buf, m, n, k,
                                 trans_a, trans_b, batch, batch_stride(a), batch_stride(b)))  # fmt: skip

    # ---- expressions ---------------------------------------------------------------

    def gen(self, node: Node, amap: Map, body: _Body) -> int:
        """The body instruction computing `node` at the loop index mapped by `amap`."""
        return self._generate(node, amap, body, own=False)

    def expand(self, node: Node, amap: Map, body: _Body) -> int:
        """Like gen(), but computing `node` from its inputs even if it has a buffer (its own)."""
        return self._generate(node, amap, body, own=True)

    def _generate(self, node: Node, amap: Map, body: _Body, own: bool) -> int:
        """Post-order over (node, map) pairs with an explicit stack: chains of any depth.
        A pair's inputs are all done when the stack comes back to it."""
        memo = body.memo
        found = memo.get((id(node), amap))
        if found is not None:
            return found
        pending: list[list] = [[node, amap, own, None, None]]
        while pending:
            entry = pending[-1]
            n, m, ignore_buffer, children, finish = entry
            if children is None:
                if (id(n), m) in memo:
                    pending.pop()
                    continue
                children, finish = entry[3], entry[4] = self._step(n, m, body, ignore_buffer)
                missing = [[c, cm, False, None, None] for c, cm in children if (id(c), cm) not in memo]
                if missing:
                    pending.extend(missing)
                    continue
            memo[(id(n), m)] = finish([memo[(id(c), cm)] for c, cm in children])
            pending.pop()
        return memo[(id(node), amap)]

    def _step(self, node: Node, amap: Map, body: _Body, own: bool) -> tuple[list, Callable[[list[int]], int]]:
        """(inputs needed as (node, map) pairs, how to combine their instructions)."""
        key, rank = (id(node), amap), body.rank
        buf = None if own else self.buffer_of.get(id(node))
        if buf is not None:
            return [], lambda _: body.load(access(buf, node.shape, amap, rank))
        if node.op == "const":
            return [], lambda _: body.emit(key, Instr("const", value=node.attrs[0]))
        prim = REGISTRY[node.op]
        if prim.kind == "elementwise" and prim.opcode is None:
            # kept alive (and reused): memo keys hold node ids, which must not be recycled
            expanded = self.expanded.get(id(node))
            if expanded is None:
                expanded = self.expanded[id(node)] = expand(node)
            return [(expanded, amap)], lambda v: v[0]
        if prim.kind == "elementwise":
            shape = node.shape  # an input of the node's shape shares its map; a scalar needs none
            args = [(i, amap if i.shape == shape else broadcast_map(amap, i.shape, shape, rank) if i.shape
                     else ()) for i in node.inputs]  # fmt: skip
            return args, lambda v: body.emit(key, Instr(prim.opcode, tuple(v)))
        if prim.kind == "gather":
            return [(node.inputs[1], amap)], lambda v: body.emit(key, self._gather(node, amap, body, v[0]))
        if prim.kind == "cast":  # the input is a buffer; loading converts to the loop dtype
            return [(node.inputs[0], amap)], lambda v: v[0]
        return self._view(node, amap, body)

    def _view(self, node: Node, amap: Map, body: _Body) -> tuple[list, Callable[[list[int]], int]]:
        x, rank = node.inputs[0], body.rank
        if node.op in ("stop_gradient", "custom"):  # the value is the first input's
            rows: Map | None = amap
        elif node.op == "broadcast_to":
            rows = broadcast_map(amap, x.shape, node.shape, rank)
        elif node.op == "index":
            rows = index_map(amap, node.attrs[0], rank)
        elif node.op == "permute":
            rows = permute_map(amap, node.attrs[0])
        elif node.op == "reshape":
            rows = squeeze_map(amap, x.shape, node.shape, rank)
            if rows is None:  # a reshape of a contiguous buffer: the same memory, other strides
                return [], lambda _: body.load(access(self._buffer_under(x), node.shape, amap, rank))
        else:
            raise NotImplementedError(f"lowering: no rule for {node.op}")
        return [(x, rows)], lambda v: v[0]

    def _gather(self, node: Node, amap: Map, body: _Body, index: int) -> Instr:
        x, _ = node.inputs
        (axis,) = node.attrs
        base = access(self._buffer_under(x), x.shape, zero_row(amap, body.rank, axis), body.rank)
        return Instr("gather", (index,), load=body.load_index(base),
                     stride=contiguous_strides(x.shape)[axis], bound=x.shape[axis])  # fmt: skip


def lower(outputs: Sequence[Node], inputs: Sequence[Node]) -> KernelProgram:
    """The program computing `outputs` from the buffers bound to `inputs`, in that order."""
    return Lowering(outputs, inputs).run()
