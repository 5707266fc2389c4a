"""Gradient plans: differentiate, simplify, lower and compile once per structure, then call.

`gradients(roots, seeds, wrt)` is what `backward()` and `autograd.grad` run: it keys
the graph by structure (which nodes are differentiated is part of the key), fetches
or builds the compiled plan, feeds it the leaves' current values, and returns one
array per node of `wrt`. With `create_graph`, the symbolic gradients come back too,
rebound to this graph's leaves, so they can be differentiated again.
Imports node, registry, differentiate, rules, lower and the cache.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cache import DEFAULT_CACHE, CodeCache
from .differentiate import vjp
from .lower import lower
from .node import Node, const, leaf, structure_key, topo_order
from .registry import rebuild
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
    """A leaf that requires grad: its tensor's current value, and where .grad goes."""

    is_param = True

    def __init__(self, tensor: Any) -> None:
        self.tensor = weakref.ref(tensor)

    def value(self) -> np.ndarray:
        t = self.tensor()
        if t is None:
            raise RuntimeError("backward: a leaf tensor of this graph no longer exists")
        return t._value


# ---- values the eager forward already computed --------------------------------------------

SAVED_KINDS = frozenset({"matmul"})  # worth reading back instead of recomputing in backward
_saved: weakref.WeakKeyDictionary[Node, tuple[np.ndarray, Any, int]] = weakref.WeakKeyDictionary()


def save_value(node: Node, array: np.ndarray, storage: Any) -> None:
    """Keep the eager value of an expensive node (a matmul), so that backward reads it
    instead of computing it again; an in-place write to it afterwards (a new storage
    version) makes backward recompute it."""
    _saved[node] = (array, storage, storage.version)


def _saved_value(node: Node) -> np.ndarray | None:
    entry = _saved.get(node)
    if entry is None or entry[1].version != entry[2]:
        return None
    return entry[0]


@dataclass
class GradientPlan:
    """What a cache entry holds: the simplified gradients and their compiled program."""

    gradients: list[Node | None]  # one per differentiated node, over `leaves`
    leaves: list[Node]  # the leaves of the graph the plan was built from, in key order
    input_positions: list[int]  # which of those leaves the program reads
    compiled: Any
    stats: RewriteStats
    saved: list[int]  # positions (in the key's node order) of saved values the program reads
    fast: Any = None  # the native entry, made on second use (False: not available)
    calls: int = 0

    @property
    def llvm_ir(self) -> str:
        return self.compiled.llvm_ir if self.compiled is not None else ""


def symbolic_gradients(roots: Sequence[Node], seeds: Sequence[Node], wrt: Sequence[Node]) -> tuple[list[Node | None], RewriteStats]:
    """The simplified cotangent of each node of `wrt` (None where nothing depends on it).

    When only leaves are differentiated, the forward graph is simplified first, so its
    numerically stable forms (log1p, softplus, ...) are what gets differentiated."""
    rewriter = simplifier()
    if all(w.op == "leaf" for w in wrt):
        roots = rewriter.run(list(roots))
    raw = vjp(roots, seeds, wrt)
    found = [g for g in raw if g is not None]
    simplified = iter(rewriter.run(found))
    return [None if g is None else next(simplified) for g in raw], rewriter.stats


def _build(roots: Sequence[Node], seeds: Sequence[Node], wrt: Sequence[Node], leaves: list[Node],
           saved: list[tuple[int, Node]], cache: CodeCache) -> GradientPlan:  # fmt: skip
    """Differentiate, simplify, compile. Saved nodes become runtime inputs of the program:
    where the simplified gradients read their values, they are not computed again."""
    grads, stats = symbolic_gradients(roots, seeds, wrt)
    present = [g for g in grads if g is not None]
    if saved:
        stand_ins = [leaf(n.shape, n.dtype, None) for _, n in saved]
        present = rebind(present, [n for _, n in saved], stand_ins)
    reached = {id(n) for n in topo_order(present)}
    inputs = [k for k, n in enumerate(leaves) if id(n) in reached]
    read = [k for k, s in enumerate(stand_ins) if id(s) in reached] if saved else []
    compiled = None
    if present:
        program_inputs = [leaves[k] for k in inputs] + [stand_ins[k] for k in read]
        compiled = cache.session.compile(lower(present, program_inputs), name="backward")
    return GradientPlan(grads, leaves, inputs, compiled, stats, [saved[k][0] for k in read])


Seed = np.ndarray | Node | None


def seed_nodes(roots: Sequence[Node], seeds: Sequence[Seed]) -> list[Node]:
    """The cotangent flowing into each root: the constant 1, a runtime input, or an expression."""
    return [s if isinstance(s, Node) else const(1.0, r.dtype) if s is None else
            leaf(r.shape, r.dtype, ValueSlot(s, describe="gradient")) for r, s in zip(roots, seeds)]  # fmt: skip


def plan_for(roots: Sequence[Node], seeds: Sequence[Seed],
             wrt: Sequence[Node] | Callable[[list[Node]], list[Node]],
             cache: CodeCache = DEFAULT_CACHE, use_saved: bool = True,
             ) -> tuple[GradientPlan, list[Node], list[Node], list[Node]]:  # fmt: skip
    """(plan, this graph's leaves, wrt, its nodes in key order): the cached or new plan for
    this graph's structure.

    `wrt` is a list of nodes, or a function choosing them from the graph's nodes. With
    `use_saved`, nodes whose eager values were saved are read, not recomputed (which of
    them is part of the key).
    """
    seed = seed_nodes(roots, seeds)
    key, order = structure_key([*roots, *(s for s in seed if s.op != "const")])
    wrt = list(wrt(order) if callable(wrt) else wrt)
    position = {id(n): k for k, n in enumerate(order)}  # a node outside the graph gets None
    leaves = [n for n in order if n.op == "leaf"]
    saved = [(k, n) for k, n in enumerate(order)
             if n.op in SAVED_KINDS and _saved_value(n) is not None] if use_saved and _saved else []  # fmt: skip
    full_key = ("gradient", key, tuple(position.get(id(w), -1) for w in wrt),
                tuple(_kind(s) for s in seeds), tuple(k for k, _ in saved))  # fmt: skip
    plan = cache.get_or_build(full_key, lambda: _build(roots, seed, wrt, leaves, saved, cache))
    return plan, leaves, wrt, order


def _kind(seed: Seed) -> str:
    return "one" if seed is None else "node" if isinstance(seed, Node) else "array"


def gradients(roots: Sequence[Node], seeds: Sequence[Seed],
              wrt: Sequence[Node] | Callable[[list[Node]], list[Node]],
              create_graph: bool = False, cache: CodeCache = DEFAULT_CACHE,
              ) -> tuple[list[Node], list[np.ndarray | None], list[Node | None]]:  # fmt: skip
    """(wrt nodes, gradient arrays, symbolic gradients if create_graph) computed natively."""
    # create_graph: the gradients are differentiated again, so nothing is frozen as a value
    plan, leaves, wrt, order = plan_for(roots, seeds, wrt, cache, use_saved=not create_graph)
    values = [leaves[k].payload.value() for k in plan.input_positions]
    values += [_saved_value(order[k]) for k in plan.saved]
    outs = iter(_run(plan, values))
    arrays = [None if g is None else next(outs).reshape(w.shape).astype(w.dtype, copy=False)
              for g, w in zip(plan.gradients, wrt)]  # fmt: skip
    symbolic = rebind(plan.gradients, plan.leaves, leaves) if create_graph else [None] * len(wrt)
    return wrt, arrays, symbolic


def _run(plan: GradientPlan, values: list[np.ndarray]) -> list[np.ndarray]:
    """The plan's outputs: through its native entry when the inputs are plain arrays."""
    if plan.compiled is None:
        return []
    plan.calls += 1
    if plan.fast is None and plan.calls > 1:  # built on the second use: one-off graphs skip it
        outputs = [g for g in plan.gradients if g is not None]
        try:
            plan.fast = plan.compiled.fast_entry([v.shape for v in values], [g.shape for g in outputs])
        except RuntimeError:
            plan.fast = False
    if plan.fast:
        try:
            result = plan.fast(*values)
            return [result] if isinstance(result, np.ndarray) else list(result)
        except (TypeError, ValueError):
            pass  # a view, another dtype: the checked Python path converts
    dtypes = [plan.leaves[k].dtype for k in plan.input_positions] + [v.dtype for v in values[len(plan.input_positions):]]
    args = [np.ascontiguousarray(v, dtype=d).reshape(-1) for v, d in zip(values, dtypes)]
    return plan.compiled(args)


def rebind(nodes: Sequence[Node | None], old: Sequence[Node], new: Sequence[Node]) -> list[Node | None]:
    """The same expressions over another graph's leaves (matched by key position)."""
    memo: dict[int, Node] = {id(o): n for o, n in zip(old, new)}
    present = [n for n in nodes if n is not None]
    for node in topo_order(present):
        if id(node) in memo or not node.inputs:
            memo.setdefault(id(node), node)
            continue
        memo[id(node)] = rebuild(node, [memo[id(i)] for i in node.inputs])
    return [None if n is None else memo[id(n)] for n in nodes]
