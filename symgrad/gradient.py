"""Gradient plans: differentiate, simplify, lower and compile once per structure, then call.

`gradients(roots, seeds, wrt)` is what `backward()` and `autograd.grad` run: it keys
the graph by structure (which nodes are differentiated is part of the key), fetches
or builds the compiled plan, feeds it the leaves' current values, and returns one
array per node of `wrt`. With `create_graph`, the symbolic gradients come back too,
rebound to this graph's leaves, so they can be differentiated again.
Imports node, registry, differentiate, rules, lower and the cache.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .cache import DEFAULT_CACHE, CodeCache, Key
from .differentiate import vjp
from .interpret import evaluate
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
            raise _modified(self.describe, self.storage.version, self.version)
        return self.array


def _modified(describe: str, version: int, expected: int) -> RuntimeError:
    """torch's error for a value read by backward after an in-place write."""
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [{describe}] is at version {version}; expected version {expected} "
        "instead. Hint: clone the tensor before modifying it in place, or compute the gradient "
        "before the modification."
    )


class ParamSlot:
    """A leaf that requires grad: its tensor's current value, and where .grad goes.

    Every op that reads the leaf calls `use()`, which notes the tensor's storage and version
    then. A backward that needs the value after an in-place write since (under no_grad, say)
    raises torch's error instead of differentiating at the new value. The last use is what
    is noted: a graph that read the leaf before a write, differentiated after another graph
    read it again, is not caught."""

    is_param = True
    used: tuple[Any, int] | None = None

    def __init__(self, tensor: Any) -> None:
        self.tensor = weakref.ref(tensor)

    def use(self) -> None:
        t = self.tensor()
        if t is not None:
            self.used = (t._storage, t._storage.version)

    def value(self) -> np.ndarray:
        t = self.tensor()
        if t is None:
            raise RuntimeError("backward: a leaf tensor of this graph no longer exists")
        used = self.used
        if used is not None and used[0] is t._storage and used[1] != t._storage.version:
            raise _modified(t._describe(), t._storage.version, used[1])
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
    program_inputs: list[Node]  # what the program reads, in order: leaves, then saved stand-ins
    outputs: list[Node]  # the gradients present, over program_inputs: what the program computes
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


def _symbolic_plan(roots: Sequence[Node], seeds: Sequence[Node], wrt: Sequence[Node], leaves: list[Node],
                   saved: list[tuple[int, Node]]) -> GradientPlan:  # fmt: skip
    """Differentiate and simplify (nothing compiled yet). Saved nodes become runtime inputs:
    where the simplified gradients read their values, they are not computed again."""
    grads, stats = symbolic_gradients(roots, seeds, wrt)
    present = [g for g in grads if g is not None]
    stand_ins = [leaf(n.shape, n.dtype, None) for _, n in saved]
    if saved:
        present = rebind(present, [n for _, n in saved], stand_ins)
    reached = {id(n) for n in topo_order(present)}
    inputs = [k for k, n in enumerate(leaves) if id(n) in reached]
    read = [k for k, s in enumerate(stand_ins) if id(s) in reached]
    program_inputs = [leaves[k] for k in inputs] + [stand_ins[k] for k in read]
    return GradientPlan(grads, leaves, inputs, None, stats, [saved[k][0] for k in read], program_inputs, present)


def _compiled(plan: GradientPlan, cache: CodeCache) -> GradientPlan:
    """The plan with its program compiled (a new record: an interpreted plan stays as it was)."""
    if not plan.outputs:
        return plan
    return replace(plan, compiled=cache.session.compile(lower(plan.outputs, plan.program_inputs), name="backward"))


# ---- when to compile ---------------------------------------------------------------------

COMPILE_AT_SIGHTING = [2]  # eager backward: interpret a structure's first pass, compile at its 2nd
# Structures not compiled yet: how often each was seen, and the symbolic plans of the most
# recent few (a plan keeps its graph's leaves, and with them their arrays, alive).
_seen: OrderedDict[Hashable, int] = OrderedDict()
_plans: OrderedDict[Hashable, GradientPlan] = OrderedDict()
_SEEN_LIMIT, _PLANS_LIMIT = 4096, 16
_sightings_lock = threading.Lock()  # eager backward may run in several threads
INTERPRETED = [0]  # eager backward passes run by the interpreter


def set_eager_compile_threshold(sighting: int) -> None:
    """Compile an eager backward structure at its `sighting`-th pass. 2, the default: a
    structure seen once (a loop whose graph changes every iteration) runs in the numpy
    interpreter and never pays for LLVM; 1: compile at once; 0: never compile (every
    backward through the interpreter, for debugging)."""
    if not isinstance(sighting, int) or isinstance(sighting, bool) or sighting < 0:
        raise ValueError(f"set_eager_compile_threshold: sighting must be an int >= 0, got {sighting!r}")
    COMPILE_AT_SIGHTING[0] = sighting
    with _sightings_lock:
        _seen.clear()
        _plans.clear()


def _remember(table: OrderedDict, key: Hashable, value: Any, limit: int) -> None:
    """Under _sightings_lock: store the newest entry, dropping the oldest beyond `limit`."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


Seed = np.ndarray | Node | None


def seed_nodes(roots: Sequence[Node], seeds: Sequence[Seed]) -> list[Node]:
    """The cotangent flowing into each root: the constant 1, a runtime input, or an expression."""
    return [s if isinstance(s, Node) else const(1.0, r.dtype) if s is None else
            leaf(r.shape, r.dtype, ValueSlot(s, describe="gradient")) for r, s in zip(roots, seeds)]  # fmt: skip


def plan_for(roots: Sequence[Node], seeds: Sequence[Seed],
             wrt: Sequence[Node] | Callable[[list[Node]], list[Node]],
             cache: CodeCache = DEFAULT_CACHE, use_saved: bool = True, compile_now: bool = True,
             seed: list[Node] | None = None,
             ) -> tuple[GradientPlan, list[Node], list[Node], list[Node], Hashable]:  # fmt: skip
    """(plan, this graph's leaves, wrt, its nodes in key order, the plan's cache key): the
    cached or new plan for this graph's structure (`seed`: the seeds' nodes, if made already).

    `wrt` is a list of nodes, or a function choosing them from the graph's nodes. With
    `use_saved`, nodes whose eager values were saved are read, not recomputed (which of
    them is part of the key). Without `compile_now`, a structure not compiled yet gets an
    interpreted plan on its first sighting (see COMPILE_AT_SIGHTING).
    """
    seed = seed if seed is not None else seed_nodes(roots, seeds)
    key, order = structure_key([*roots, *(s for s in seed if s.op != "const")])
    wrt = list(wrt(order) if callable(wrt) else wrt)
    position = {id(n): k for k, n in enumerate(order)}  # a node outside the graph gets None
    leaves = [n for n in order if n.op == "leaf"]
    saved = [(k, n) for k, n in enumerate(order)
             if n.op in SAVED_KINDS and _saved_value(n) is not None] if use_saved and _saved else []  # fmt: skip
    full_key = Key(("gradient", key, tuple(position.get(id(w), -1) for w in wrt),
                    tuple(seed_kind(s) for s in seeds), tuple(k for k, _ in saved)))  # fmt: skip
    threshold, symbolic = COMPILE_AT_SIGHTING[0], None
    if not compile_now and threshold != 1 and full_key not in cache.entries:
        with _sightings_lock:
            sightings = _seen.pop(full_key, 0) + 1
            symbolic = _plans.pop(full_key, None)
        symbolic = symbolic or _symbolic_plan(roots, seed, wrt, leaves, saved)
        if threshold == 0 or sightings < threshold:  # interpret this pass
            with _sightings_lock:
                _remember(_seen, full_key, sightings, _SEEN_LIMIT)
                _remember(_plans, full_key, symbolic, _PLANS_LIMIT)
            return symbolic, leaves, wrt, order, full_key
    # compile: what an earlier sighting derived, or derive it now
    plan = cache.get_or_build(full_key, lambda: _compiled(symbolic or _symbolic_plan(roots, seed, wrt, leaves, saved), cache))
    return plan, leaves, wrt, order, full_key


def seed_kind(seed: Seed) -> str:
    return "one" if seed is None else "node" if isinstance(seed, Node) else "array"


def gradients(roots: Sequence[Node], seeds: Sequence[Seed],
              wrt: Sequence[Node] | Callable[[list[Node]], list[Node]],
              create_graph: bool = False, cache: CodeCache = DEFAULT_CACHE, release_saved: bool = False,
              tape: tuple[Hashable, list[Node]] | None = None,
              ) -> tuple[list[Node], list[np.ndarray | None], list[Node | None]]:  # fmt: skip
    """(wrt nodes, gradient arrays, symbolic gradients if create_graph) computed natively.
    With `release_saved` (a backward that does not retain its graph), the saved values it
    read are dropped afterwards, as torch frees saved tensors. With `tape` (the graph's
    tape key and leaves, see pending.py), a compiled plan is remembered under that key."""
    # create_graph: the gradients are differentiated again, so nothing is frozen as a value
    seed = seed_nodes(roots, seeds)
    plan, leaves, wrt, order, full_key = plan_for(roots, seeds, wrt, cache, use_saved=not create_graph,
                                                  compile_now=False, seed=seed)  # fmt: skip
    if tape is not None and plan.compiled is not None and not plan.saved and not create_graph:
        _remember_tape(tape, seed, full_key, plan, leaves, wrt)
    values = [leaves[k].payload.value() for k in plan.input_positions]
    values += [_saved_value(order[k]) for k in plan.saved]
    outs = iter(_run(plan, values))
    if release_saved:
        for k in plan.saved:
            _saved.pop(order[k], None)
    arrays = [None if g is None else next(outs).reshape(w.shape).astype(w.dtype, copy=False)
              for g, w in zip(plan.gradients, wrt)]  # fmt: skip
    symbolic = rebind(plan.gradients, plan.leaves, leaves) if create_graph else [None] * len(wrt)
    return wrt, arrays, symbolic


# ---- eager backward by tape key (pending.py) ------------------------------------------------

# tape key -> (the plan's cache key, the plan (weakly: the cache owns it), where each program
# input comes from, where each differentiated leaf is, whether every output already has its
# leaf's shape and dtype): a source k >= 0 is the tape's leaf k, k < 0 seed -1 - k.
_by_tape: dict[Hashable, tuple[Hashable, weakref.ref, tuple[int, ...], tuple[int, ...], bool]] = {}
_TAPE_LIMIT = 4096
BY_TAPE = [0]  # eager backward passes that found their plan by tape key


def _remember_tape(tape: tuple[Hashable, list[Node]], seed: list[Node], full_key: Hashable,
                   plan: GradientPlan, leaves: list[Node], wrt: list[Node]) -> None:  # fmt: skip
    key, tape_leaves = tape
    where = {id(n): k for k, n in enumerate(tape_leaves)}
    where.update({id(s): -1 - k for k, s in enumerate(seed) if s.op == "leaf"})
    sources = [where.get(id(leaves[k])) for k in plan.input_positions]
    wrt_at = [where.get(id(w)) for w in wrt]
    if None in sources or any(k is None or k < 0 for k in wrt_at):
        return  # not a graph of the tape's leaves and seeds alone
    if len(_by_tape) >= _TAPE_LIMIT:
        _by_tape.clear()
    present = [w for g, w in zip(plan.gradients, wrt) if g is not None]
    exact = all(o.shape == w.shape and o.dtype == w.dtype for o, w in zip(plan.outputs, present))
    _by_tape[key] = (full_key, weakref.ref(plan), tuple(sources), tuple(wrt_at), exact)  # type: ignore[arg-type]


def tape_gradients(tape: tuple[Hashable, list[Node]], seeds: Sequence[Seed],
                   cache: CodeCache = DEFAULT_CACHE) -> tuple[list[Node], list[np.ndarray | None]] | None:  # fmt: skip
    """(differentiated leaves, gradient arrays) of an eager backward whose structure was
    compiled before, found by its tape key without building a node; None if not found."""
    key, tape_leaves = tape
    entry = _by_tape.get(key)
    if entry is None:
        return None
    full_key, plan_ref, sources, wrt_at, exact = entry
    plan = plan_ref()
    if plan is None or cache.lookup(full_key) is not plan:  # evicted or cleared: the full path rebuilds it
        _by_tape.pop(key, None)
        return None
    values = [tape_leaves[k].payload.value() if k >= 0 else seeds[-1 - k] for k in sources]
    BY_TAPE[0] += 1
    outs = iter(_run(plan, values))
    wrt = [tape_leaves[k] for k in wrt_at]
    if exact:  # every output has its leaf's shape and dtype (flat from the checked Python path)
        arrays = [None if g is None else next(outs) for g in plan.gradients]
        arrays = [a if a is None or a.shape == w.shape else a.reshape(w.shape) for a, w in zip(arrays, wrt)]
    else:
        arrays = [None if g is None else next(outs).reshape(w.shape).astype(w.dtype, copy=False)
                  for g, w in zip(plan.gradients, wrt)]  # fmt: skip
    return wrt, arrays


def _run(plan: GradientPlan, values: list[np.ndarray]) -> list[np.ndarray]:
    """The plan's outputs: through its native entry when the inputs are plain arrays (or
    the interpreter, for a structure seen for the first time)."""
    if not plan.outputs:
        return []
    if plan.compiled is None:
        INTERPRETED[0] += 1
        table = {id(n): np.reshape(v, n.shape) for n, v in zip(plan.program_inputs, values)}
        # fresh, writable arrays, as the compiled program returns (never views of inputs)
        return [np.array(v) for v in evaluate(plan.outputs, lambda n: table[id(n)])]
    fast = plan.fast
    if fast is None and plan.calls > 0:  # built on the second use: one-off graphs skip it
        try:
            fast = plan.fast = plan.compiled.fast_entry([v.shape for v in values], [g.shape for g in plan.outputs])
        except RuntimeError:
            fast = plan.fast = False
    plan.calls += 1
    if fast:
        try:
            result = fast(*values)
            return [result] if type(result) is np.ndarray else list(result)
        except (TypeError, ValueError):
            pass  # a view, another dtype: the checked Python path converts
    args = [np.ascontiguousarray(v, dtype=n.dtype).reshape(-1) for v, n in zip(values, plan.program_inputs)]
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
