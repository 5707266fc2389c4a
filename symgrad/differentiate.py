"""Reverse-mode differentiation of a DAG into another DAG of the same ops.

The driver walks the graph once, calls each primitive's vjp rule, sums broadcast
dimensions back and adds fan-in contributions. The result is an expression, so
it can be simplified, inspected, compiled, or differentiated again.
Imports node.py, registry.py and the primitive modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import elementwise, gather, matmul, reduce, structural  # noqa: F401 - register primitives
from .node import Node, Shape, topo_order
from .registry import REGISTRY, apply


def unbroadcast(g: Node, shape: Shape) -> Node:
    """Sum `g` over the dimensions that broadcasting added to reach `g.shape` from `shape`."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + d for d, n in enumerate(shape) if n == 1 and g.shape[lead + d] != 1
    )
    summed = apply("sum", g, axes=axes, keepdims=False) if axes else g
    return summed if summed.shape == tuple(shape) else apply("reshape", summed, shape=tuple(shape))


def _depends_on(order: list[Node], wrt: Sequence[Node]) -> set[int]:
    """ids of the nodes from which some node of `wrt` can be reached."""
    live = {id(w) for w in wrt}
    for node in order:
        if any(id(i) in live for i in node.inputs):
            live.add(id(node))
    return live


def vjp(roots: Sequence[Node], seeds: Sequence[Node], wrt: Sequence[Node]) -> list[Node | None]:
    """The cotangent of each node of `wrt` when each seed flows back from its root.

    None means no root depends on that node.
    """
    order = topo_order(roots)
    live = _depends_on(order, wrt)
    grads: dict[int, Node] = {}
    for root, seed in zip(roots, seeds):
        if seed.shape != root.shape:
            seed = apply("broadcast_to", seed, shape=root.shape)
        previous = grads.get(id(root))
        grads[id(root)] = seed if previous is None else apply("add", previous, seed)
    for node in reversed(order):
        g = grads.get(id(node))
        if g is None or node.op in ("leaf", "const") or id(node) not in live:
            continue
        rule = REGISTRY[node.op].vjp
        if rule is None:
            continue
        for inp, contribution in zip(node.inputs, rule(g, node)):
            if contribution is None or id(inp) not in live:
                continue
            contribution = unbroadcast(contribution, inp.shape)
            previous = grads.get(id(inp))
            grads[id(inp)] = contribution if previous is None else apply("add", previous, contribution)
    return [grads.get(id(w)) for w in wrt]
