"""Elementwise primitives, each defined once by a sympy expression.

The derivative of every record comes from `sympy.diff` (computed once, when the
registry is built) and is turned into nodes of the op vocabulary by
`from_sympy`. Broadcasting follows numpy; summing broadcast dimensions back is
the differentiation driver's job. Imports registry.py and node.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import sympy
from sympy.codegen import cfunctions as cf

from .node import Node, Shape, const
from .registry import Primitive, apply, register
from .symbolic import FUNCTIONS, from_sympy

X, Y, Z = sympy.symbols("x y z", real=True)


def broadcast_shapes(*shapes: Shape) -> Shape:
    first = shapes[0]
    if all(s == first or s == () for s in shapes[1:]):  # the common cases, without numpy
        return tuple(first) if first != () else tuple(max(shapes, key=len))
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        dims = " and ".join(str(list(s)) for s in shapes)
        raise ValueError(f"shapes {dims} cannot be broadcast together") from None


def _numpy(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def evaluate(attrs: tuple, *arrays: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):  # IEEE results, as torch gives them, no warnings
            return np.asarray(fn(*arrays))

    return evaluate


# ---- the records ----------------------------------------------------------------------


def _vjp_from_partials(partials: tuple[sympy.Expr, ...], symbols: tuple[sympy.Symbol, ...]):
    def vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
        env = dict(zip(symbols, out.inputs))
        return tuple(
            None if p == 0 else apply("mul", g, from_sympy(p, env, out.dtype)) for p in partials
        )

    return vjp


def zeros(shape: Shape, dtype: str) -> Node:
    """A constant 0 of this shape (a broadcast scalar: no memory, folds away)."""
    return apply("broadcast_to", const(0, dtype), shape=tuple(shape))


def _zero_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    """Piecewise-constant ops: the gradient is zero, but it exists (torch gives zeros)."""
    return tuple(zeros(i.shape, i.dtype) for i in out.inputs)


def _partials(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...]) -> tuple[sympy.Expr, ...]:
    # DiracDelta is the derivative of a step: zero almost everywhere, as torch takes it.
    # powsimp turns x**y*y/x into y*x**(y - 1), which is finite at x = 0 (as in torch).
    return tuple(sympy.powsimp(sympy.diff(expr, s)).replace(sympy.DiracDelta, lambda *a: 0) for s in symbols)


def elementwise(name: str, expr: sympy.Expr, fn: Callable, *, opcode: str | None = None,
                expansion: sympy.Expr | None = None, grad: str | None = "sympy",
                domain: tuple[float, float] = (-2.0, 2.0), mask: dict | None = None,
                arity: int | None = None) -> Primitive:  # fmt: skip
    """Register `name`, defined by `expr` over x, y, z; `grad` is "sympy", "zero" or None.

    `mask` maps a symbol to a condition under which its partial is taken as 0 (torch's
    convention where the formula would give 0 * inf).
    """
    symbols = (X, Y, Z)[:arity] if arity else tuple(s for s in (X, Y, Z) if s in expr.free_symbols) or (X,)
    partials = _partials(expr, symbols)
    if mask:
        partials = tuple(sympy.Piecewise((0, mask[s]), (p, True)) if s in mask else p
                         for s, p in zip(symbols, partials))  # fmt: skip
    vjp = {"sympy": lambda: _vjp_from_partials(partials, symbols),
           "zero": lambda: _zero_vjp, None: lambda: None}[grad]()  # fmt: skip
    prim = Primitive(
        name=name, arity=len(symbols), kind="elementwise",
        shape_rule=lambda attrs, *shapes: broadcast_shapes(*shapes),
        evaluate=_numpy(fn), vjp=vjp,
        to_sympy=lambda node, *args: expr.xreplace(dict(zip(symbols, args))),
        expr=expr, opcode=opcode, domain=domain,
        expansion=expansion if expansion is not None else (None if opcode else expr),
    )  # fmt: skip
    if isinstance(expr, sympy.Function) and expr.args == symbols:
        FUNCTIONS[type(expr)] = name
    return register(prim)


class sigmoid(sympy.Function):  # noqa: N801 - prints as sigmoid(x)
    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sigmoid(self.args[0]) * (1 - sigmoid(self.args[0]))

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        return (1 / (1 + sympy.exp(-self.args[0])))._eval_evalf(prec)


class relu(sympy.Function):  # noqa: N801
    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Heaviside(self.args[0], 0)  # torch: relu'(0) = 0

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        return sympy.Max(self.args[0], 0)._eval_evalf(prec)


class norm_sqrt(sympy.Function):  # noqa: N801
    """sqrt whose derivative at 0 is 0, not inf: a zero vector's norm has gradient 0 (torch)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        x = self.args[0]
        return sympy.Piecewise((1 / (2 * sympy.sqrt(x)), x > 0), (0, True))

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        return sympy.sqrt(self.args[0])._eval_evalf(prec)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=np.result_type(x, np.float32))


def _define() -> None:
    positive = {"log", "sqrt", "pow", "log2", "log10"}
    for name, expr, fn in [
        ("add", X + Y, np.add), ("sub", X - Y, np.subtract), ("mul", X * Y, np.multiply),
        ("div", X / Y, np.divide), ("pow", X**Y, np.power), ("neg", -X, np.negative),
        ("exp", sympy.exp(X), np.exp), ("log", sympy.log(X), np.log),
        ("sqrt", sympy.sqrt(X), np.sqrt), ("sin", sympy.sin(X), np.sin),
        ("cos", sympy.cos(X), np.cos), ("tan", sympy.tan(X), np.tan),
        ("tanh", sympy.tanh(X), np.tanh), ("abs", sympy.Abs(X), np.abs),
        ("exp2", cf.exp2(X), np.exp2), ("log2", cf.log2(X), np.log2),
        ("log10", cf.log10(X), np.log10), ("log1p", cf.log1p(X), np.log1p),
        ("expm1", cf.expm1(X), np.expm1), ("asin", sympy.asin(X), np.arcsin),
        ("acos", sympy.acos(X), np.arccos), ("atan", sympy.atan(X), np.arctan),
        ("sinh", sympy.sinh(X), np.sinh), ("cosh", sympy.cosh(X), np.cosh),
        ("erf", sympy.erf(X), _erf), ("atan2", sympy.atan2(X, Y), np.arctan2),
        ("maximum", sympy.Max(X, Y), np.maximum), ("minimum", sympy.Min(X, Y), np.minimum),
    ]:
        domain = (0.2, 2.0) if name in positive else (-0.9, 0.9) if name in ("asin", "acos") else (
            (-1.2, 1.2) if name == "tan" else (-0.5, 2.0) if name == "log1p" else (-2.0, 2.0))
        opcode = {"maximum": "max", "minimum": "min"}.get(name, name)
        # torch's pow: d/dx is 0 where y == 0, d/dy is 0 where x == 0 and y >= 0 (not 0 * inf)
        mask = {X: sympy.Eq(Y, 0), Y: sympy.And(sympy.Eq(X, 0), Y >= 0)} if name == "pow" else None
        elementwise(name, expr, fn, opcode=opcode, domain=domain, mask=mask)
    elementwise("sigmoid", sigmoid(X), lambda x: 1 / (1 + np.exp(-x)), expansion=1 / (1 + sympy.exp(-X)))
    elementwise("norm_sqrt", norm_sqrt(X), np.sqrt, expansion=sympy.sqrt(X), domain=(0.2, 2.0))
    elementwise("relu", relu(X), lambda x: np.maximum(x, 0), expansion=sympy.Max(X, 0))
    elementwise("where", sympy.Piecewise((Y, sympy.Ne(X, 0)), (Z, True)),
                lambda c, a, b: np.where(c != 0, a, b), opcode="select")
    for name, fn in [("floor", np.floor), ("ceil", np.ceil), ("round", np.round), ("trunc", np.trunc)]:
        elementwise(name, sympy.Function(name)(X), fn, opcode=name, grad="zero")
    elementwise("sign", sympy.sign(X), np.sign, grad="zero")
    for name, fn in [("isnan", np.isnan), ("isinf", np.isinf)]:
        elementwise(name, sympy.Function(name)(X), lambda x, fn=fn: fn(x).astype(x.dtype),
                    opcode=name, grad=None)  # fmt: skip
    for name, relation, fn in [
        ("gt", sympy.StrictGreaterThan, np.greater), ("lt", sympy.StrictLessThan, np.less),
        ("ge", sympy.GreaterThan, np.greater_equal), ("le", sympy.LessThan, np.less_equal),
        ("eq", sympy.Eq, np.equal), ("ne", sympy.Ne, np.not_equal),
    ]:
        # Comparisons yield 1.0 / 0.0 in the float dtype; they are not differentiable.
        expr = sympy.Piecewise((1, relation(X, Y)), (0, True))
        elementwise(name, expr, lambda a, b, fn=fn: fn(a, b).astype(np.result_type(a, b)),
                    opcode=name, grad=None)  # fmt: skip


_define()
