"""Formulas and graph pictures: a tensor's forward expression (from its grad_fn records),
a DAG as a sympy expression (through each primitive's printer), as jaxpr-like text and
as Graphviz DOT. Imports tensor, node, registry and the primitive modules' printers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from .node import Node, topo_order
from .registry import REGISTRY
from .sympy_forms import MatMul, Reduce, Setitem, Subscript, Sum
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


class Names:
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


MAX_FORMULA_OPS = 400  # larger expressions are summarised (sympy's printers recurse)


def forward_formula(t: Tensor, names: Names, leaf_symbols: dict[int, sympy.Symbol]) -> sympy.Expr:
    """The expression of `t` in terms of its leaves, from the grad_fn records."""
    records = walk_records(t)
    if len(records) > MAX_FORMULA_OPS:
        for x in records:
            if x.grad_fn is None:
                leaf_symbols[id(x.graph_node())] = sympy.Symbol(names(x))
        return sympy.Symbol(f"<an expression of {len(records)} operations>")
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


def walk_records(t: Tensor) -> list[Tensor]:
    """The tensors reachable through grad_fn operands (an explicit stack: any depth)."""
    seen: dict[int, Tensor] = {}
    stack = [t]
    while stack:
        x = stack.pop()
        if not isinstance(x, Tensor) or id(x) in seen:
            continue
        seen[id(x)] = x
        if x.grad_fn is not None:
            stack.extend(x.grad_fn._operands)
    return list(seen.values())


def _index_text(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)
    return ", ".join(":" if i == slice(None) else "..." if i is Ellipsis else str(i) for i in items)


def gradient_formula(root: Node, symbols: dict[int, sympy.Symbol]) -> sympy.Expr:
    """The simplified gradient as printed by sympy, built unevaluated: it shows the DAG as is."""
    size = len(topo_order([root]))
    if size > MAX_FORMULA_OPS:
        return sympy.Symbol(f"<an expression of {size} nodes: see .graph>")
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


def graph_dot(roots: list[Node], symbols: dict[int, sympy.Symbol], labels: dict[int, str] | None = None) -> str:
    """The DAG as Graphviz DOT: one box per node, inputs pointing to their users."""
    labels = labels or {}
    lines = ["digraph symgrad {", "  rankdir=BT;", '  node [shape=box, fontname="monospace"];']
    number: dict[int, int] = {}
    for node in topo_order(roots):
        k = number[id(node)] = len(number)
        if node.op == "leaf":
            text = str(symbols.get(id(node), "input"))
        elif node.op == "const":
            text = f"{node.attrs[0]:g}"
        else:
            text = node.op
        shape = "x".join(map(str, node.shape)) or "scalar"
        extra = f"\\n{labels[id(node)]}" if id(node) in labels else ""
        lines.append(f'  n{k} [label="{text}\\n{node.dtype}[{shape}]{extra}"];')
        lines.extend(f"  n{number[id(i)]} -> n{k};" for i in node.inputs)
    lines.append("}")
    return "\n".join(lines)
