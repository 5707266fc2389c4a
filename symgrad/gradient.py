"""Gradient plans: differentiate, simplify, lower and compile once per structure, then call.

`gradients(root, seed)` is what `Tensor.backward` runs: it keys the graph by
structure, fetches or builds the compiled plan, feeds it the leaves' current
values, and returns one gradient array per leaf that requires grad.
Imports node, differentiate, rules, lower and the cache.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cache import DEFAULT_CACHE, CodeCache
from .differentiate import vjp
from .lower import lower
from .node import Node, const, leaf, structure_key, topo_order
from .rules import simplifier
from .simplify import RewriteStats


class ValueSlot:
    """A leaf bound to an array that does not require grad: a runtime input."""

    is_param = False

    def __init__(self, array: np.ndarray, storage: Any = None, describe: str = "") -> None:
        self.array, self.storage, self.describe = array, storage, describe
        self.version = storage.version if storage is not None else 0

    def value(self) -> np.ndarray:
        if self.storage is not None and self.storage.version != self.version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{self.describe}] is at version {self.storage.version}; "
                f"expected version {self.version} instead. Hint: clone the tensor before "
                "modifying it in place, or compute the gradient before the modification."
            )
        return self.array


class ParamSlot:
    """A leaf that requires grad: the gradient is accumulated into its tensor."""

    is_param = True

    def __init__(self, tensor: Any) -> None:
        self.tensor = weakref.ref(tensor)

    def value(self) -> np.ndarray:
        t = self.tensor()
        if t is None:
            raise RuntimeError("backward: a leaf tensor of this graph no longer exists")
        return t._value


@dataclass
class GradientPlan:
    """What a cache entry holds: the simplified gradients and their compiled program."""

    gradients: list[Node]
    input_positions: list[int]  # leaf positions (in key order) that the program reads
    output_positions: list[int]  # leaf positions that receive each program output
    compiled: Any
    stats: RewriteStats

    @property
    def llvm_ir(self) -> str:
        return self.compiled.llvm_ir if self.compiled is not None else ""


def _role(node: Node) -> str:
    return "param" if node.payload.is_param else "input"


def symbolic_gradients(root: Node, seed: Node, leaves: Sequence[Node]) -> tuple[list[tuple[int, Node]], RewriteStats]:
    """(leaf position, simplified gradient) for each param leaf that `root` depends on."""
    params = [(k, n) for k, n in enumerate(leaves) if n.payload.is_param]
    raw = vjp(root, seed, [n for _, n in params])
    found = [(k, g) for (k, _), g in zip(params, raw) if g is not None]
    rewriter = simplifier()
    simplified = rewriter.run([g for _, g in found])
    return [(k, g) for (k, _), g in zip(found, simplified)], rewriter.stats


def build_plan(root: Node, seed: Node, leaves: Sequence[Node], cache: CodeCache) -> GradientPlan:
    pairs, stats = symbolic_gradients(root, seed, leaves)
    grads = [g for _, g in pairs]
    reached = {id(n) for n in topo_order(grads)}
    inputs = [k for k, n in enumerate(leaves) if id(n) in reached]
    program = lower(grads, [leaves[k] for k in inputs])
    compiled = cache.session.compile(program, name="backward") if grads else None
    return GradientPlan(grads, inputs, [k for k, _ in pairs], compiled, stats)


def seed_node(root: Node, seed: np.ndarray | None) -> tuple[Node, list[Node]]:
    """The cotangent flowing into `root`: the constant 1, or a runtime input."""
    if seed is None:
        return const(1.0, root.dtype), []
    g = leaf(root.shape, root.dtype, ValueSlot(seed, describe="gradient"))
    return g, [g]


def plan_for(root: Node, seed: np.ndarray | None, cache: CodeCache = DEFAULT_CACHE):
    """(plan, leaves): the cached or new plan for this graph's structure."""
    g, extra_roots = seed_node(root, seed)
    key, leaves = structure_key([root, *extra_roots], _role)
    key = ("backward", key, seed is None)
    plan = cache.get_or_build(key, lambda: build_plan(root, g, leaves, cache))
    return plan, leaves


def gradients(root: Node, seed: np.ndarray | None, cache: CodeCache = DEFAULT_CACHE) -> list[tuple[Node, np.ndarray]]:
    """(param leaf, gradient array) pairs for backward from `root`, computed natively."""
    plan, leaves = plan_for(root, seed, cache)
    if plan.compiled is None:
        return []
    args = [np.ascontiguousarray(leaves[k].payload.value(), dtype=leaves[k].dtype).reshape(-1)
            for k in plan.input_positions]  # fmt: skip
    outs = plan.compiled(args)
    return [(leaves[k], out.reshape(leaves[k].shape)) for k, out in zip(plan.output_positions, outs)]
