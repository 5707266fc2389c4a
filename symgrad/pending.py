"""Deferred nodes of the eager API, and the tape key that backward looks plans up by.

An eager op computes its value at once but only records how to build its DAG node: a
`Pending` holds the primitive, its operands (leaf nodes, other Pendings, Python
numbers) and attributes. The node is built when something asks for it (the first
backward of a structure, inspection, an op that needs nodes). A later backward over
the same structure finds its compiled plan by `tape_key`, computed from the Pendings
alone, and never builds a node. Imports node and registry.

A Pending also carries its structure's signature, made when it is recorded: a number
naming (op, attributes, dtype, the operands' signatures) and the distinct leaves under it
in first-use order, each operand saying where its own leaves fall in that order. A
backward over Pendings with signatures keys its plan by the roots' signatures alone (no
walk). Past MAX_LEAVES leaves, or over a built non-leaf node, there is no signature and
`tape_key` walks the graph instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from .node import Node, _attr_key, const
from .registry import apply_tuple

Operand = Any  # Node, Pending, or a Python number


class Pending:
    """`op(*operands, attrs)` in node dtype `dtype`, built into a node on first request.

    Operands are as the node will see them, except for dtype: a Node or Pending of
    another dtype is cast, a Python number becomes a constant of `dtype`."""

    __slots__ = ("op", "operands", "attrs", "dtype", "shape", "node", "sig", "leaves")

    def __init__(self, op: str, operands: tuple, attrs: tuple, dtype: str, shape: tuple) -> None:
        self.op = op
        self.operands = operands
        self.attrs = attrs
        self.dtype = dtype
        self.shape = shape
        self.node: Node | None = None
        # The signature, made here (not in a function: this is the hot path of every op).
        # Each operand's part names its structure and where its leaves fall among this op's:
        # a Pending's signature alone when they come first and in its own order, else with
        # their positions; a leaf node by _leaf_key and position; a number by value.
        self.sig = None
        self.leaves: tuple[Node, ...] = ()
        leaves: tuple[Node, ...] = ()
        parts = [op, tuple([_attr_key(a) for a in attrs]) if attrs else (), dtype]  # then the operands' parts
        for o in operands:
            kind = type(o)
            if kind is Pending:
                sig, own = o.sig, o.leaves
                if sig is None:
                    return _use(operands)
                if own is leaves or not leaves:
                    leaves = own
                    parts.append(sig)
                else:
                    at, leaves = _merged(leaves, own)
                    parts.append(sig if at == tuple(range(len(at))) else (sig, at))
            elif kind is float or kind is int:  # as _number_key, inlined
                parts.append(("n", o) if o == o and o != 0 else ("n", repr(float(o))))
            elif kind is Node:
                if o.op != "leaf":
                    return _use(operands)
                if o.payload.is_param:  # read now: an in-place write before backward is caught
                    o.payload.use()
                if leaves:
                    (k,), leaves = _merged(leaves, (o,))
                else:
                    k, leaves = 0, (o,)
                parts.append((_leaf_key(o), k))
            else:
                try:
                    parts.append(_number_key(o))
                except (TypeError, ValueError):  # not a number: building the node will say so
                    return _use(operands)
        if len(leaves) > MAX_LEAVES:
            return
        key = tuple(parts)
        sig = _SIGS.get(key)
        if sig is None:
            if len(_SIGS) >= _SIGS_LIMIT:
                _SIGS.clear()
            sig = _SIGS[key] = next(_numbers)
        self.sig = sig
        self.leaves = leaves

    def build(self) -> Node:
        """This op's node (and those of the Pendings it reads), built once, without recursion."""
        todo = [self]
        while todo:
            p = todo[-1]
            if p.node is not None:
                todo.pop()
                continue
            waiting = [o for o in p.operands if type(o) is Pending and o.node is None]
            if waiting:
                todo.extend(waiting)
                continue
            todo.pop()
            node = apply_tuple(p.op, tuple([_operand(o, p.dtype) for o in p.operands]), p.attrs)
            if node.shape != p.shape:  # the shape rule and numpy's evaluation disagree
                raise RuntimeError(f"symgrad internal error: {p.op}'s node has shape {node.shape}, "
                                   f"its eager value {p.shape}")  # fmt: skip
            p.node = node
        return self.node  # type: ignore[return-value]


def _operand(o: Operand, dtype: str) -> Node:
    if type(o) is Pending:
        o = o.node
    elif type(o) is not Node:
        return const(float(o), dtype)
    return o if o.dtype == dtype else apply_tuple("cast", (o,), (dtype,))


# ---- signatures: structure numbered as it is recorded ------------------------------------

MAX_LEAVES = 16  # merging leaf lists costs up to this much per op
_SIGS: dict[tuple, int] = {}  # (op, attrs, dtype, operand parts) -> signature
_SIGS_LIMIT = 1 << 16
_numbers = itertools.count()  # never reused: a cleared table only costs new numbers


def _use(operands: tuple) -> None:
    """Note the reads of the parameter leaves among `operands` (see gradient.ParamSlot.use)."""
    for o in operands:
        if type(o) is Node and o.op == "leaf" and o.payload.is_param:
            o.payload.use()


def _merged(leaves: tuple[Node, ...], more: tuple[Node, ...]) -> tuple[tuple[int, ...], tuple[Node, ...]]:
    """(where each of `more` is, `leaves` with those not in it appended): by identity."""
    at = []
    for leaf in more:
        k = next((k for k, other in enumerate(leaves) if other is leaf), len(leaves))
        if k == len(leaves):
            leaves = (*leaves, leaf)
        at.append(k)
    return tuple(at), leaves


def tape_key(roots: Sequence[Node | Pending], extra: tuple = ()) -> tuple[tuple, list[Node]]:
    """A key for the structure under `roots` (Pendings as recorded, built nodes as they
    are), and its leaves in key order. Two graphs with one key build structurally equal
    nodes; `extra` is appended to the key.

    Roots that are Pendings with signatures are keyed by them (see Pending.__init__). Otherwise
    the graph is walked: entries in post-order, operands left to right (a recursive walk
    for shallow graphs, the same order without recursion for deep ones)."""
    if len(roots) == 1:
        root = roots[0]
        if type(root) is Pending and root.sig is not None:
            return ("sig", root.sig, extra), list(root.leaves)
    elif all(type(r) is Pending and r.sig is not None for r in roots):
        return _signed_key(roots, extra)
    return walked_key(roots, extra)


def walked_key(roots: Sequence[Node | Pending], extra: tuple = ()) -> tuple[tuple, list[Node]]:
    """tape_key by walking the graph (for roots without signatures)."""
    walk = _Walk()
    try:
        at = tuple([walk.visit(r, 0) for r in roots])
    except _Deep:
        walk = _Walk()
        at = tuple([walk.visit_deep(r) for r in roots])
    return (tuple(walk.entries), at, extra), walk.leaves


def _signed_key(roots: Sequence[Pending], extra: tuple) -> tuple[tuple, list[Node]]:
    """The key of several signed roots: each root's signature and its leaves' positions."""
    leaves: tuple[Node, ...] = ()
    parts = []
    for r in roots:
        at, leaves = _merged(leaves, r.leaves)
        parts.append((r.sig, at))
    return ("sigs", tuple(parts), extra), list(leaves)


class _Deep(Exception):
    """A graph deeper than _Walk.DEPTH: walked without recursion."""


class _Walk:
    DEPTH = 200

    def __init__(self) -> None:
        self.position: dict[int, int] = {}
        self.entries: list[tuple] = []
        self.leaves: list[Node] = []

    def visit(self, p: Node | Pending, depth: int) -> int:
        k = self.position.get(id(p))
        if k is not None:
            return k
        if depth > self.DEPTH:
            raise _Deep
        args = []  # a loop, not a comprehension: this is the hot path of a repeated backward
        for o in p.operands if type(p) is Pending else p.inputs:
            args.append(self.visit(o, depth + 1) if type(o) is Pending or type(o) is Node else _number_key(o))
        return self._enter(p, tuple(args))

    def visit_deep(self, root: Node | Pending) -> int:
        todo = [root]
        while todo:
            p = todo[-1]
            if id(p) in self.position:
                todo.pop()
                continue
            inputs = p.operands if type(p) is Pending else p.inputs
            waiting = [o for o in inputs if (type(o) is Pending or type(o) is Node) and id(o) not in self.position]
            if waiting:
                todo.extend(reversed(waiting))
                continue
            todo.pop()
            self._enter(p, tuple([self.position[id(o)] if type(o) is Pending or type(o) is Node else _number_key(o)
                                  for o in inputs]))  # fmt: skip
        return self.position[id(root)]

    def _enter(self, p: Node | Pending, args: tuple) -> int:
        attrs = tuple([_attr_key(a) for a in p.attrs]) if p.attrs else ()
        if type(p) is Pending:
            entry: tuple = (p.op, args, attrs, p.dtype)
        elif p.op == "leaf":
            entry = _leaf_key(p)
            self.leaves.append(p)
        else:
            entry = ("node", p.op, args, attrs, p.shape, p.dtype)
        k = self.position[id(p)] = len(self.entries)
        self.entries.append(entry)
        return k


def _leaf_key(leaf: Node) -> tuple:
    """What a key says of a leaf (besides where it is): shape, dtype, and whether it is a parameter."""
    return ("leaf", leaf.shape, leaf.dtype, leaf.payload is not None and leaf.payload.is_param)


def _number_key(o: Any) -> tuple:
    """A Python number operand as its constant will be: float(o), with -0.0 and nan told apart."""
    v = float(o)
    return ("n", v if v == v and v != 0 else repr(v))

