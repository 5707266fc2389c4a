"""Elementwise primitives, each defined once by a sympy expression.

A definition is sympy source text over x, y, z (so that importing symgrad does not
import sympy). Its derivatives come from `sympy.diff`, turned into nodes of the op
vocabulary by `symbolic.from_sympy`: derive.py does that once and writes the result
to derived.py as node templates, which the vjps here instantiate; a definition that
the table does not match (edited, or user-defined) is derived with sympy on first
use. Broadcasting follows numpy; summing broadcast dimensions back is the
differentiation driver's job. Imports registry.py and node.py.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import derived
from .node import Node, Shape, const
from .registry import ERRORS, IGNORE, REGISTRY, Primitive, apply, quietly, register

SYMBOLS = ("x", "y", "z")


def broadcast_shapes(*shapes: Shape) -> Shape:
    full = [s for s in shapes if s != ()]  # the common cases (equal shapes and 0-d ones), without numpy
    if not full or all(s == full[0] for s in full):
        return tuple(full[0]) if full else ()
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        dims = " and ".join(str(list(s)) for s in shapes)
        raise ValueError(f"shapes {dims} cannot be broadcast together") from None


def _numpy(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """The record's evaluation: IEEE results, as torch gives them, without numpy's warnings
    (registry.quietly for an elementwise fn, written out: no call layer on the hot path)."""
    if ERRORS is None:
        return quietly(lambda attrs, *arrays: np.asarray(fn(*arrays)))

    def quiet(attrs: tuple, *arrays: np.ndarray) -> np.ndarray:
        token = ERRORS.set(IGNORE)  # what np.errstate(all="ignore") sets, without its ~1.5 µs
        try:
            return np.asarray(fn(*arrays))
        finally:
            ERRORS.reset(token)

    quiet.quiet = True  # type: ignore[attr-defined]
    return quiet


# ---- definitions and their derived templates ---------------------------------------------


@dataclass(frozen=True)
class Definition:
    """What derive.py needs to derive a record: `expr` is sympy source text (built-in
    records) or a sympy expression (user-defined ones); `mask` pairs a symbol with a
    condition under which its partial is taken as 0 (torch's convention where the
    formula would give 0 * inf); `grad` is "sympy", "zero" or None."""

    expr: Any
    arity: int
    expansion: Any = None  # what to lower instead, for records without an opcode
    mask: tuple[tuple[str, str], ...] = ()
    grad: str | None = "sympy"

    def key(self) -> str:
        """Names everything the derived templates depend on (derived.py is checked against it)."""
        return f"{self.expr}|{self.arity}|{self.expansion}|{self.mask}|{self.grad}"


def definitions() -> dict[str, Definition]:
    """Every elementwise record's definition, in registration order."""
    return {name: p.definition for name, p in REGISTRY.items() if p.definition is not None}


_templates: dict[str, tuple] = {}  # name -> (partials, expansion), from derived.py or sympy
_lock = threading.Lock()


def templates(name: str) -> tuple:
    """(one template or None per input, the expansion's template or None) for `name`."""
    found = _templates.get(name)
    if found is None:
        definition = REGISTRY[name].definition
        stored = derived.TABLE.get(name)
        if stored is not None and stored[0] == definition.key():
            found = stored[1:]
        else:  # not in the generated table: derive it now (this imports sympy)
            from .derive import derive

            found = derive(definition)
        with _lock:
            found = _templates.setdefault(name, found)
    return found


def instantiate(template: tuple, inputs: tuple[Node, ...], dtype: str) -> Node:
    """The nodes a template describes, over `inputs`, with constants in `dtype`."""
    head = template[0]
    if head == "arg":
        return inputs[template[1]]
    if head == "const":
        return const(template[1], dtype)
    return apply(head, *(instantiate(t, inputs, dtype) for t in template[1:]))


def _derived_vjp(name: str):
    def vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
        partials = templates(name)[0]
        return tuple(None if p is None else apply("mul", g, instantiate(p, out.inputs, out.dtype))
                     for p in partials)  # fmt: skip

    return vjp


def expand(node: Node) -> Node:
    """An elementwise node without an opcode, written with primitives that have one."""
    return instantiate(templates(node.op)[1], node.inputs, node.dtype)


def zeros(shape: Shape, dtype: str) -> Node:
    """A constant 0 of this shape (a broadcast scalar: no memory, folds away)."""
    return apply("broadcast_to", const(0, dtype), shape=tuple(shape))


def _zero_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    """Piecewise-constant ops: the gradient is zero, but it exists (torch gives zeros)."""
    return tuple(zeros(i.shape, i.dtype) for i in out.inputs)


def _arity(expr: Any) -> int:
    text = str(expr)
    return max((k + 1 for k, s in enumerate(SYMBOLS) if _mentions(text, s)), default=1)


def _mentions(text: str, symbol: str) -> bool:
    return re.search(rf"\b{symbol}\b", text) is not None


def elementwise(name: str, expr: Any, fn: Callable, *, opcode: str | None = None,
                expansion: Any = None, grad: str | None = "sympy",
                domain: tuple[float, float] = (-2.0, 2.0), mask: dict[str, str] | None = None,
                arity: int | None = None) -> Primitive:  # fmt: skip
    """Register `name`, defined by `expr` over x, y, z (sympy source text, or a sympy
    expression); `grad` is "sympy", "zero" or None; `mask` maps a symbol's name to a
    condition under which its partial is taken as 0."""
    definition = Definition(expr, arity or _arity(expr),
                            expansion if expansion is not None else (None if opcode else expr),
                            tuple(sorted((mask or {}).items())), grad)  # fmt: skip
    vjp = {"sympy": lambda: _derived_vjp(name), "zero": lambda: _zero_vjp, None: lambda: None}[grad]()
    prim = Primitive(
        name=name, arity=definition.arity, kind="elementwise",
        shape_rule=lambda attrs, *shapes: broadcast_shapes(*shapes),
        evaluate=_numpy(fn), vjp=vjp, to_sympy=_printer(name),
        definition=definition, opcode=opcode, domain=domain,
    )  # fmt: skip
    return register(prim)


def _printer(name: str) -> Callable[..., Any]:
    def to_sympy(node: Node, *args: Any) -> Any:
        from .derive import X, Y, Z, definition

        return definition(name).xreplace(dict(zip((X, Y, Z), args)))

    return to_sympy


def _erf(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=np.result_type(x, np.float32))


def _define() -> None:
    positive = {"log", "sqrt", "pow", "log2", "log10"}
    for name, expr, fn in [
        ("add", "x + y", np.add), ("sub", "x - y", np.subtract), ("mul", "x*y", np.multiply),
        ("div", "x/y", np.divide), ("pow", "x**y", np.power), ("neg", "-x", np.negative),
        ("exp", "exp(x)", np.exp), ("log", "log(x)", np.log),
        ("sqrt", "sqrt(x)", np.sqrt), ("sin", "sin(x)", np.sin),
        ("cos", "cos(x)", np.cos), ("tan", "tan(x)", np.tan),
        ("tanh", "tanh(x)", np.tanh), ("abs", "Abs(x)", np.abs),
        ("exp2", "exp2(x)", np.exp2), ("log2", "log2(x)", np.log2),
        ("log10", "log10(x)", np.log10), ("log1p", "log1p(x)", np.log1p),
        ("expm1", "expm1(x)", np.expm1), ("asin", "asin(x)", np.arcsin),
        ("acos", "acos(x)", np.arccos), ("atan", "atan(x)", np.arctan),
        ("sinh", "sinh(x)", np.sinh), ("cosh", "cosh(x)", np.cosh),
        ("erf", "erf(x)", _erf), ("atan2", "atan2(x, y)", np.arctan2),
        ("maximum", "Max(x, y)", np.maximum), ("minimum", "Min(x, y)", np.minimum),
    ]:
        domain = (0.2, 2.0) if name in positive else (-0.9, 0.9) if name in ("asin", "acos") else (
            (-1.2, 1.2) if name == "tan" else (-0.5, 2.0) if name == "log1p" else (-2.0, 2.0))
        opcode = {"maximum": "max", "minimum": "min"}.get(name, name)
        # torch's pow: d/dx is 0 where y == 0, d/dy is 0 where x == 0 and y >= 0 (not 0 * inf)
        mask = {"x": "Eq(y, 0)", "y": "And(Eq(x, 0), y >= 0)"} if name == "pow" else None
        if name == "atan2":  # torch's atan2: both partials are 0 where x**2 + y**2 == 0 (not 0/0)
            mask = dict.fromkeys(("x", "y"), "Eq(x*x + y*y, 0)")
        elementwise(name, expr, fn, opcode=opcode, domain=domain, mask=mask)
    elementwise("sigmoid", "sigmoid(x)", lambda x: 1 / (1 + np.exp(-x)), expansion="1/(1 + exp(-x))")
    elementwise("norm_sqrt", "norm_sqrt(x)", np.sqrt, expansion="sqrt(x)", domain=(0.2, 2.0))
    elementwise("relu", "relu(x)", lambda x: np.maximum(x, 0), expansion="Max(x, 0)")
    elementwise("where", "Piecewise((y, Ne(x, 0)), (z, True))", lambda c, a, b: np.where(c != 0, a, b),
                opcode="select")  # fmt: skip
    for name, fn in [("floor", np.floor), ("ceil", np.ceil), ("round", np.round), ("trunc", np.trunc)]:
        elementwise(name, f"{name}(x)", fn, opcode=name, grad="zero")  # undefined sympy functions
    elementwise("sign", "sign(x)", np.sign, grad="zero")
    for name, fn in [("isnan", np.isnan), ("isinf", np.isinf)]:
        elementwise(name, f"{name}(x)", lambda x, fn=fn: fn(x).astype(x.dtype), opcode=name, grad=None)
    for name, relation, fn in [
        ("gt", "x > y", np.greater), ("lt", "x < y", np.less), ("ge", "x >= y", np.greater_equal),
        ("le", "x <= y", np.less_equal), ("eq", "Eq(x, y)", np.equal), ("ne", "Ne(x, y)", np.not_equal),
    ]:
        # Comparisons yield 1.0 / 0.0 in the float dtype; they are not differentiable.
        elementwise(name, f"Piecewise((1, {relation}), (0, True))",
                    lambda a, b, fn=fn: fn(a, b).astype(np.result_type(a, b)), opcode=name, grad=None)  # fmt: skip


_define()
