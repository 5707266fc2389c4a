"""Immutable, hash-consed expression nodes: the DAG every other stage works on.

A node is `(op, inputs, attrs, shape, dtype)`; building an equal node twice
returns the same object, so equality is identity and CSE is free. Leaves carry
a non-structural payload (what binds them to a value). Imports numpy only.
"""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from _weakref import _remove_dead_weakref  # type: ignore[import-not-found]
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

Shape = tuple[int, ...]

# The intern table: key -> weak reference to the node. A dead node's entry is removed by
# its reference's callback, only if the entry is still that dead reference (what
# weakref.WeakValueDictionary does, without its Python-level get and set on every make).
_table: dict[tuple, weakref.KeyedRef] = {}
_lock = threading.Lock()


def _gone(ref: weakref.KeyedRef, table: dict = _table, remove: Any = _remove_dead_weakref) -> None:
    remove(table, ref.key)  # defaults bound now: this may run while the interpreter shuts down
_uids = itertools.count()


def _attr_key(a: Any) -> Any:
    # -0.0 == 0.0 and nan != nan, so floats are interned by their bits.
    return ("f", a.hex()) if isinstance(a, float) else a


class Node:
    __slots__ = ("op", "inputs", "attrs", "shape", "dtype", "payload", "_hash", "__weakref__")

    op: str
    inputs: tuple[Node, ...]
    attrs: tuple
    shape: Shape
    dtype: str
    payload: Any

    def __hash__(self) -> int:
        return self._hash

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        args = ", ".join(f"%{id(i) & 0xFFFF:x}" for i in self.inputs)
        return f"<Node {self.op}({args}) attrs={self.attrs} {self.shape} {self.dtype}>"


def make(op: str, inputs: Sequence[Node], attrs: tuple, shape: Shape, dtype: str) -> Node:
    """The interned node with these fields (created on first request)."""
    inputs, attrs, shape = tuple(inputs), tuple(attrs), tuple(shape)
    key = (op, inputs, tuple([_attr_key(a) for a in attrs]) if attrs else (), shape, dtype)
    ref = _table.get(key)
    node = ref() if ref is not None else None
    if node is not None:
        return node
    with _lock:  # threads making the same node at once make it once
        ref = _table.get(key)
        node = ref() if ref is not None else None
        if node is None:
            node = Node.__new__(Node)
            node.op, node.inputs, node.attrs = op, inputs, attrs
            node.shape, node.dtype, node.payload = shape, dtype, None
            node._hash = hash(key)
            _table[key] = weakref.KeyedRef(node, _gone, key)
    return node


def leaf(shape: Shape, dtype: str, payload: Any) -> Node:
    """A fresh input of the graph; `payload` says where its value comes from. (Its uid makes
    it unlike any other node: it is not looked up in the table.)"""
    node = Node.__new__(Node)
    node.op, node.inputs, node.attrs = "leaf", (), (next(_uids),)
    node.shape, node.dtype, node.payload = tuple(shape), dtype, payload
    node._hash = hash(("leaf", (), node.attrs, node.shape, dtype))
    return node


def dtype_name(dt: np.dtype) -> str:
    """numpy's `dt.name` ("float64"), which is slow to compute: looked up for common dtypes."""
    return _DTYPE_NAMES.get(dt) or dt.name


_DTYPE_NAMES = {np.dtype(n): n for n in ("float32", "float64", "int64", "int32", "bool")}


def const(value: float, dtype: str) -> Node:
    """A 0-d constant, rounded to `dtype` (a Python number is weakly typed, as in torch)."""
    plain = type(value) is float or type(value) is int
    # -0.0 == 0.0 and nan != nan: those are keyed by their text
    key = ((value if value == value and value != 0 else repr(value)), dtype) if plain else None
    node = _consts.get(key) if plain else None
    if node is None:
        scalar = _SCALARS.get(dtype) or np.dtype(dtype).type
        node = make("const", (), (float(scalar(value)),), (), dtype)
        if plain:
            if len(_consts) >= 4096:  # a bounded set of strong references
                _consts.clear()
            _consts[key] = node
    return node


_SCALARS = {"float32": np.float32, "float64": np.float64}
_consts: dict[tuple, Node] = {}  # (Python number, dtype) -> node: the common constants stay


def const_value(node: Node) -> float | None:
    return node.attrs[0] if node.op == "const" else None


def topo_order(roots: Iterable[Node]) -> list[Node]:
    """Every node reachable from `roots`, inputs before their users (iterative DFS: each
    node's inputs left to right, resumed through an iterator)."""
    order: list[Node] = []
    seen: set[int] = set()
    add, append = seen.add, order.append
    for root in roots:
        if id(root) in seen:
            continue
        add(id(root))
        stack = [(root, iter(root.inputs))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if id(child) not in seen:
                    add(id(child))
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                append(node)
    return order


def structure_key(roots: Sequence[Node]) -> tuple[tuple, list[Node]]:
    """A hashable key for the graph's structure, and its nodes in the key's order.

    Nodes are numbered in a deterministic topological order; leaves appear only
    as (shape, dtype), so two graphs that differ only in which leaves they read
    (and the values behind them) get the same key.
    """
    order = topo_order(roots)
    position = {id(n): i for i, n in enumerate(order)}
    entries = []
    append = entries.append
    for n in order:
        if n.op == "leaf":
            append(("leaf", n.shape, n.dtype))
        else:
            attrs = n.attrs
            append((n.op, tuple([position[id(i)] for i in n.inputs]),
                    tuple([_attr_key(a) for a in attrs]) if attrs else (), n.shape, n.dtype))  # fmt: skip
    roots_at = tuple(position[id(r)] for r in roots)
    return (tuple(entries), roots_at), order
