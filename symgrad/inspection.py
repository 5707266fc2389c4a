"""Inspection: what symgrad made of a result tensor or a function.

`inspect(tensor)` or `inspect(fn, *example_args)` returns one object with the forward
formula and each simplified gradient (sympy; str() and LaTeX), the gradient graph as
text and Graphviz DOT, statistics (node counts, rewrites fired, fused kernels, time per
stage), the LLVM IR and assembly of the compiled code, and its cache key.
Imports formulas, gradient, differentiate, rules, lower, trace, transforms, tensor.
"""

from __future__ import annotations

import inspect as pyinspect
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from . import pytree
from .cache import DEFAULT_CACHE
from .compiler.program import Loop, Matmul
from .differentiate import vjp
from .formulas import _MAX_EVALUATED, Names, forward_formula, gradient_formula, graph_dot, graph_text
from .gradient import plan_for, seed_nodes
from .lower import lower
from .node import Node, const, structure_key, topo_order
from .rules import simplifier
from .tensor import Tensor
from .trace import argument, trace_scope


@dataclass
class Inspection:
    name: str
    formula: sympy.Expr
    gradients: dict[str, sympy.Expr]
    graph: str
    dot: str
    llvm_ir: str
    stats: dict[str, Any] = field(default_factory=dict)
    scalar: bool = True
    cache_key: str = ""
    compiled: Any = None

    @property
    def formulas(self) -> dict[str, sympy.Expr]:
        return {self.name: self.formula, **{f"d {self.name}/d{k}": v for k, v in self.gradients.items()}}

    @property
    def asm(self) -> str:
        return self.compiled.asm if self.compiled is not None else ""

    def __str__(self) -> str:
        lines = [f"{self.name} = {sympy.sstr(self.formula)}"]
        lines += [f"d {self.name}/d{k} = {sympy.sstr(g)}" for k, g in self.gradients.items()]
        if not self.scalar:
            lines.append(f"  (g is the gradient passed to {self.name}.backward)")
        return "\n".join(lines)

    def _repr_latex_(self) -> str:
        rows = [f"{self.name} &= {sympy.latex(self.formula)}"]
        rows += [rf"\frac{{\partial {self.name}}}{{\partial {k}}} &= {sympy.latex(v)}"
                 for k, v in self.gradients.items()]  # fmt: skip
        return r"$\begin{aligned}" + r"\\ ".join(rows) + r"\end{aligned}$"


class _Clock:
    """Seconds spent per stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


def _differentiate(root: Node, seed: Node, wrt: list[Node], clock: _Clock) -> tuple[list[Node | None], Any]:
    raw = vjp([root], [seed], wrt)
    clock.lap("differentiate")
    rewriter = simplifier()
    present = iter(rewriter.run([g for g in raw if g is not None]))
    clock.lap("simplify")
    return [None if g is None else next(present) for g in raw], rewriter.stats


def _report(name: str, formula: sympy.Expr, root: Node, seed: Node, wrt: list[Node],
            symbols: dict[int, sympy.Symbol], clock: _Clock, compiled: Any = None,
            key: str = "") -> Inspection:  # fmt: skip
    grads, rewrites = _differentiate(root, seed, wrt, clock)
    pairs = [(w, g) for w, g in zip(wrt, grads) if g is not None]
    named = {str(symbols.get(id(w), "leaf")): gradient_formula(g, symbols) for w, g in pairs}
    nodes = [g for _, g in pairs]
    if compiled is None and nodes:
        leaves = [n for n in structure_key(nodes)[1] if n.op == "leaf"]
        program = lower(nodes, leaves)
        clock.lap("lower")
        compiled = DEFAULT_CACHE.session.compile(program, name="inspect")
        clock.lap("LLVM compile")
    steps = compiled.program.steps if compiled is not None else ()
    stats = {"nodes before simplification": rewrites.nodes_before, "nodes after": rewrites.nodes_after,
             "rewrites fired": dict(rewrites.fired),
             "fused loops": sum(isinstance(s, Loop) for s in steps),
             "BLAS calls": sum(isinstance(s, Matmul) for s in steps),
             "seconds": dict(clock.seconds)}  # fmt: skip
    return Inspection(name, formula, named, graph_text(nodes, symbols), graph_dot(nodes, symbols),
                      compiled.llvm_ir if compiled is not None else "", stats, root.size == 1,
                      key, compiled)  # fmt: skip


def inspect(target: Any, *example_args: Any, name: str | None = None) -> Inspection:
    """Inspect a result tensor (`inspect(loss)`) or a function (`inspect(fn, *example_args)`).

    A tensor's leaves are named after the caller's variables."""
    frame = sys._getframe(1)
    return inspect_in_scope(target, example_args, name, {**frame.f_globals, **frame.f_locals})


def inspect_in_scope(target: Any, example_args: tuple, name: str | None, scope: dict) -> Inspection:
    if isinstance(target, Tensor):
        return _inspect_tensor(target, Names(scope), name)
    if callable(target):
        return _inspect_function(target, example_args, name)
    raise TypeError("inspect: expected a tensor or a function (with example arguments)")


def _inspect_tensor(t: Tensor, names: Names, name: str | None) -> Inspection:
    if t._node is None:
        raise TypeError("inspect: expected a tensor that requires grad (the result of a computation)")
    clock = _Clock()
    symbols: dict[int, sympy.Symbol] = {}
    with sympy.evaluate(len(topo_order([t._node])) <= _MAX_EVALUATED):
        formula = forward_formula(t, names, symbols)
    clock.lap("formula")
    seed_array = None if t.numel() == 1 else np.ones(t.shape, dtype=t._value.dtype)
    (seed,) = seed_nodes([t._node], [seed_array])
    if seed.op == "leaf":
        symbols[id(seed)] = sympy.Symbol("g")
    _, order = structure_key([t._node] + ([seed] if seed.op == "leaf" else []))
    params = params_of(order)
    plan, *_ = plan_for([t._node], [seed_array], params_of)
    clock.lap("compile (cached)")
    return _report(name or names(t), formula, t._node, seed, params, symbols, clock, plan.compiled,
                   f"structure of {len(order)} nodes")  # fmt: skip


def params_of(order: list[Node]) -> list[Node]:
    """The leaves that require grad, in key order: what backward() differentiates."""
    return [n for n in order if n.op == "leaf" and n.payload.is_param]


def _argument_names(fn: Any, args: tuple) -> list[str]:
    try:
        params = list(pyinspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    names = []
    for k, a in enumerate(args):
        base = params[k] if k < len(params) else f"arg{k}"
        _, treedef = pytree.flatten(a)
        paths = pytree.leaf_paths(treedef, "")
        names += [base + "".join(c for c in p.replace("][", "_") if c.isalnum() or c == "_") for p in paths]
    return names


def _inspect_function(fn: Any, args: tuple, name: str | None) -> Inspection:
    clock = _Clock()
    flat, treedef = pytree.flatten(list(args))
    tensors = [argument(x, k) for k, x in enumerate(flat)]
    labels = _argument_names(fn, args)
    with trace_scope(getattr(fn, "__name__", "fn")):
        out = fn(*pytree.unflatten(treedef, tensors))
    clock.lap("trace")
    if not isinstance(out, Tensor) or out._node is None:
        raise TypeError("inspect: the function must return a tensor computed from its arguments")
    names = Names({})
    names.by_id.update({id(t): n for t, n in zip(tensors, labels)})
    symbols: dict[int, sympy.Symbol] = {}
    with sympy.evaluate(len(topo_order([out._node])) <= _MAX_EVALUATED):
        formula = forward_formula(out, names, symbols)
    clock.lap("formula")
    wrt = [t._node for t in tensors if t._value.dtype.kind == "f"]
    seed = const(1.0, out._node.dtype) if out.numel() == 1 else None
    if seed is None:
        seed = argument(np.ones(out.shape, out._value.dtype), -1)._node
        symbols[id(seed)] = sympy.Symbol("g")
    root = out._node if out._node.shape == () or out.numel() != 1 else out._node
    key = ", ".join(f"{n}: {t._value.dtype.name}{list(t.shape)}" for n, t in zip(labels, tensors))
    return _report(name or getattr(fn, "__name__", "fn"), formula, root, seed, wrt, symbols, clock, key=key)
