"""Elementwise primitives, each defined once by a sympy expression.

The derivative of every record comes from `sympy.diff` (computed once, when the
registry is built) and is turned into nodes of the op vocabulary by
`from_sympy`. Broadcasting follows numpy; summing broadcast dimensions back is
the differentiation driver's job. Imports registry.py and node.py.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy

from .node import Node, Shape, const
from .registry import REGISTRY, Primitive, apply, register

X, Y = sympy.symbols("x y", real=True)


def broadcast_shapes(*shapes: Shape) -> Shape:
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


# ---- sympy -> nodes -------------------------------------------------------------------

# sympy function class -> primitive name; filled from the records' expressions.
_FUNCTIONS: dict[type, str] = {}


def from_sympy(expr: sympy.Expr, env: dict[sympy.Symbol, Node], dtype: str) -> Node:
    """Build the node computing `expr`, with symbols bound by `env`."""
    if expr in env:
        return env[expr]
    if expr.is_Number:
        return const(float(expr), dtype)
    if expr.is_Add:
        return _sum_terms(expr, env, dtype)
    if expr.is_Mul:
        return _product(expr, env, dtype)
    if expr.is_Pow:
        return _power(expr, env, dtype)
    args = [from_sympy(a, env, dtype) for a in expr.args]
    if isinstance(expr, sympy.Heaviside):  # step(0) = 0, torch's convention for relu/abs
        return apply("gt", args[0], const(0, dtype))
    if isinstance(expr, sympy.sign):  # sign(a) = (a > 0) - (a < 0)
        zero = const(0, dtype)
        return apply("sub", apply("gt", args[0], zero), apply("lt", args[0], zero))
    name = _FUNCTIONS.get(type(expr))
    if name is None:
        raise NotImplementedError(f"no primitive for sympy {type(expr).__name__}")
    return apply(name, *args)


def _sum_terms(expr: sympy.Add, env: dict, dtype: str) -> Node:
    terms = sorted(expr.args, key=lambda t: bool(t.as_coeff_Mul()[0].is_negative))  # positive terms first
    acc = from_sympy(terms[0], env, dtype)
    for term in terms[1:]:
        coeff, _ = term.as_coeff_Mul()
        if coeff.is_negative:
            acc = apply("sub", acc, from_sympy(-term, env, dtype))
        else:
            acc = apply("add", acc, from_sympy(term, env, dtype))
    return acc


def _product(expr: sympy.Mul, env: dict, dtype: str) -> Node:
    coeff, rest = expr.as_coeff_Mul()
    if coeff == -1:
        return apply("neg", from_sympy(rest, env, dtype))
    num, den = sympy.fraction(expr)
    if den != 1:
        return apply("div", from_sympy(num, env, dtype), from_sympy(den, env, dtype))
    factors = [from_sympy(f, env, dtype) for f in expr.args]
    acc = factors[0]
    for f in factors[1:]:
        acc = apply("mul", acc, f)
    return acc


def _power(expr: sympy.Pow, env: dict, dtype: str) -> Node:
    base, exponent = expr.args
    b = from_sympy(base, env, dtype)
    if exponent == sympy.Rational(1, 2):
        return apply("sqrt", b)
    if exponent.is_Number and exponent.is_negative:
        positive = from_sympy(base ** (-exponent), env, dtype)
        return apply("div", const(1, dtype), positive)
    return apply("pow", b, from_sympy(exponent, env, dtype))


# ---- the records ----------------------------------------------------------------------


def _vjp_from_partials(partials: tuple[sympy.Expr, ...], symbols: tuple[sympy.Symbol, ...]):
    def vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
        env = dict(zip(symbols, out.inputs))
        return tuple(
            None if p == 0 else apply("mul", g, from_sympy(p, env, out.dtype)) for p in partials
        )

    return vjp


def _partials(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...]) -> tuple[sympy.Expr, ...]:
    # DiracDelta is the derivative of a step: zero almost everywhere, as torch takes it.
    return tuple(sympy.diff(expr, s).replace(sympy.DiracDelta, lambda *a: 0) for s in symbols)


def elementwise(
    name: str, expr: sympy.Expr, fn: Callable, *, opcode: str | None = None, diff: bool = True,
    domain: tuple[float, float] = (-2.0, 2.0),
) -> Primitive:
    symbols = tuple(s for s in (X, Y) if s in expr.free_symbols) or (X,)
    partials = _partials(expr, symbols)
    vjp = _vjp_from_partials(partials, symbols) if diff else None
    prim = Primitive(
        name=name,
        arity=len(symbols),
        kind="elementwise",
        shape_rule=lambda attrs, *shapes: broadcast_shapes(*shapes),
        evaluate=_numpy(fn),
        vjp=vjp,
        to_sympy=lambda node, *args: expr.xreplace(dict(zip(symbols, args))),
        expr=expr,
        opcode=opcode,
        domain=domain,
    )
    if isinstance(expr, sympy.Function) and expr.args == symbols:
        _FUNCTIONS[type(expr)] = name
    return register(prim)


def _compare(name: str, relation: type, fn: Callable) -> Primitive:
    # Comparisons yield 1.0 / 0.0 in the float dtype; their gradient is zero.
    expr = sympy.Piecewise((1, relation(X, Y)), (0, True))
    return elementwise(name, expr, fn, opcode=name, diff=False)


def _define() -> None:
    positive = {"log", "sqrt", "pow"}
    for name, expr, fn in [
        ("add", X + Y, np.add),
        ("sub", X - Y, np.subtract),
        ("mul", X * Y, np.multiply),
        ("div", X / Y, np.divide),
        ("pow", X**Y, np.power),
        ("neg", -X, np.negative),
        ("exp", sympy.exp(X), np.exp),
        ("log", sympy.log(X), np.log),
        ("sqrt", sympy.sqrt(X), np.sqrt),
        ("sin", sympy.sin(X), np.sin),
        ("cos", sympy.cos(X), np.cos),
        ("tan", sympy.tan(X), np.tan),  # sampled where it is smooth: see domain below
        ("tanh", sympy.tanh(X), np.tanh),
        ("abs", sympy.Abs(X), np.abs),
    ]:
        domain = (0.2, 2.0) if name in positive else (-1.2, 1.2) if name == "tan" else (-2.0, 2.0)
        elementwise(name, expr, fn, opcode=name, domain=domain)
    for name, relation, fn in [
        ("gt", sympy.StrictGreaterThan, np.greater),
        ("lt", sympy.StrictLessThan, np.less),
        ("ge", sympy.GreaterThan, np.greater_equal),
        ("le", sympy.LessThan, np.less_equal),
    ]:
        _compare(name, relation, lambda a, b, fn=fn: fn(a, b).astype(np.result_type(a, b)))


_define()
ELEMENTWISE = tuple(p for p in REGISTRY.values() if p.kind == "elementwise")
