"""Inspection: a result tensor's formula, its simplified gradients, graph and LLVM IR.

The forward formula is read from the grad_fn records (the user's own ops, so
`mean` stays `mean`); gradients are printed from the simplified gradient DAG
through each primitive's sympy printer. Leaves are named after the caller's
variables. Imports tensor, gradient, node, registry, structural.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from .gradient import plan_for, seed_nodes, symbolic_gradients
from .matmul import MatMul
from .node import Node, structure_key, topo_order
from .reduce import Sum
from .registry import REGISTRY
from .structural import Reduce, Setitem, Subscript
from .tensor import Tensor

_MAX_EVALUATED = 200  # records; above this sympy builds formulas unevaluated (it is slow)


class Mean(Reduce):
    pass


class Norm(Reduce):
    pass


def sympy_number(value: float, dtype: str) -> sympy.Expr:
    """The shortest decimal that rounds to `value` in `dtype`, as an exact sympy number."""
    if not np.isfinite(value):
        return sympy.nan if np.isnan(value) else (sympy.oo if value > 0 else -sympy.oo)
    if float(value).is_integer():
        return sympy.Integer(int(value))
    return sympy.Rational(np.format_float_positional(np.dtype(dtype).type(value), unique=True))


_FORWARD = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a**b, "neg": lambda a: -a,
    "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt, "sin": sympy.sin,
    "cos": sympy.cos, "tan": sympy.tan, "tanh": sympy.tanh, "abs": sympy.Abs,
    "sum": lambda a: Sum(a, sympy.S.true), "mean": lambda a: Mean(a, sympy.S.true),
    "norm": lambda a: Norm(a, sympy.S.true), "matmul": lambda a, b: MatMul(a, b),
}  # fmt: skip


class _Names:
    """Names for leaf tensors: the caller's variable names, else t0, t1, ..."""

    def __init__(self, scope: dict[str, Any]) -> None:
        self.by_id: dict[int, str] = {}
        for k, v in scope.items():  # the first name bound to a tensor wins
            if isinstance(v, Tensor) and not k.startswith("_"):
                self.by_id.setdefault(id(v), k)
        self.fresh = 0

    def __call__(self, t: Tensor) -> str:
        if id(t) not in self.by_id:
            self.by_id[id(t)] = f"t{self.fresh}"
            self.fresh += 1
        return self.by_id[id(t)]


def forward_formula(t: Tensor, names: _Names, leaf_symbols: dict[int, sympy.Symbol]) -> sympy.Expr:
    memo: dict[int, sympy.Expr] = {}

    def walk(x: Any) -> sympy.Expr:
        if not isinstance(x, Tensor):
            return sympy.nsimplify(x) if isinstance(x, (int, float)) else sympy.Symbol(str(x))
        if id(x) in memo:
            return memo[id(x)]
        fn = x.grad_fn
        if fn is None:
            sym = sympy.Symbol(names(x))
            leaf_symbols[id(x.graph_node())] = sym
            result: sympy.Expr = sym
        elif fn._op == "getitem":
            result = Subscript(walk(fn._operands[0]), sympy.Symbol(_index_text(fn._operands[1])))
        elif fn._op == "setitem":
            result = Setitem(walk(fn._operands[0]), walk(fn._operands[1]), sympy.Symbol("..."))
        elif fn._op in _FORWARD:
            result = _FORWARD[fn._op](*(walk(o) for o in fn._operands))
        else:  # ops without a formula of their own print as a function of their operands
            result = sympy.Function(fn._op)(*(walk(o) for o in fn._operands if o is not None))
        memo[id(x)] = result
        return result

    return walk(t)


def _index_text(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)
    return ", ".join(":" if i == slice(None) else "..." if i is Ellipsis else str(i) for i in items)


def gradient_formula(root: Node, symbols: dict[int, sympy.Symbol]) -> sympy.Expr:
    """The simplified gradient as printed by sympy, built unevaluated: it shows the DAG as is."""
    with sympy.evaluate(False):
        return _formula(root, symbols)


def _formula(root: Node, symbols: dict[int, sympy.Symbol]) -> sympy.Expr:
    values: dict[int, sympy.Expr] = {}
    for node in topo_order([root]):
        if id(node) in symbols:
            values[id(node)] = symbols[id(node)]
        elif node.op == "leaf":
            values[id(node)] = sympy.Symbol(f"leaf{len(values)}")
        elif node.op == "const":
            values[id(node)] = sympy_number(node.attrs[0], node.dtype)
        else:
            args = [values[id(i)] for i in node.inputs]
            values[id(node)] = REGISTRY[node.op].to_sympy(node, *args)
    return values[id(root)]


def graph_text(roots: list[Node], symbols: dict[int, sympy.Symbol]) -> str:
    """One line per node, jaxpr-style: `%3 = mul %1 %2 : float32[2, 2]`."""
    number: dict[int, str] = {}
    lines = []
    for node in topo_order(roots):
        number[id(node)] = f"%{len(number)}"
        if node.op == "leaf":
            what = f"input {symbols.get(id(node), '?')}"
        elif node.op == "const":
            what = f"const {node.attrs[0]!r}"
        else:
            attrs = "".join(f" {v}" for v in node.attrs)
            what = f"{node.op}{attrs} " + " ".join(number[id(i)] for i in node.inputs)
        lines.append(f"{number[id(node)]} = {what} : {node.dtype}{list(node.shape)}")
    return "\n".join(lines)


@dataclass
class Inspection:
    name: str
    formula: sympy.Expr
    gradients: dict[str, sympy.Expr]
    graph: str
    llvm_ir: str
    stats: dict[str, Any] = field(default_factory=dict)
    scalar: bool = True

    @property
    def formulas(self) -> dict[str, sympy.Expr]:
        return {self.name: self.formula, **{f"d {self.name}/d{k}": v for k, v in self.gradients.items()}}

    def __str__(self) -> str:
        lines = [f"{self.name} = {sympy.sstr(self.formula)}"]
        for leaf_name, g in self.gradients.items():
            lines.append(f"d {self.name}/d{leaf_name} = {sympy.sstr(g)}")
        if not self.scalar:
            lines.append(f"  (g is the gradient passed to {self.name}.backward)")
        return "\n".join(lines)

    def _repr_latex_(self) -> str:
        rows = [f"{self.name} &= {sympy.latex(self.formula)}"]
        rows += [rf"\frac{{\partial {self.name}}}{{\partial {k}}} &= {sympy.latex(v)}"
                 for k, v in self.gradients.items()]  # fmt: skip
        return r"$\begin{aligned}" + r"\\ ".join(rows) + r"\end{aligned}$"


def inspect(t: Tensor, name: str | None = None) -> Inspection:
    """Formula, simplified gradients, gradient graph and LLVM IR of a result tensor."""
    if not isinstance(t, Tensor) or t._node is None:
        raise TypeError("inspect: expected a tensor that requires grad (the result of a computation)")
    frame = sys._getframe(1)
    names = _Names({**frame.f_globals, **frame.f_locals})
    symbols: dict[int, sympy.Symbol] = {}
    with sympy.evaluate(len(topo_order([t._node])) <= _MAX_EVALUATED):
        formula = forward_formula(t, names, symbols)
    scalar = t.numel() == 1
    seed_array = None if scalar else np.ones(t.shape, dtype=t._value.dtype)
    (seed,) = seed_nodes([t._node], [seed_array])
    if seed.op == "leaf":
        symbols[id(seed)] = sympy.Symbol("g")
    _, order = structure_key([t._node] + ([seed] if seed.op == "leaf" else []))
    params = params_of(order)
    grads, stats = symbolic_gradients([t._node], [seed], params)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None]
    names_of = {str(symbols.get(id(p), "leaf")): gradient_formula(g, symbols) for p, g in pairs}
    plan, _, _ = plan_for([t._node], [seed_array], params_of)
    info = {"nodes before simplification": stats.nodes_before, "nodes after": stats.nodes_after,
            "rewrites fired": dict(stats.fired)}  # fmt: skip
    return Inspection(name or names(t), formula, names_of, graph_text([g for _, g in pairs], symbols),
                      plan.llvm_ir, info, scalar)  # fmt: skip


def params_of(order: list[Node]) -> list[Node]:
    """The leaves that require grad, in key order: what backward() differentiates."""
    return [n for n in order if n.op == "leaf" and n.payload.is_param]
