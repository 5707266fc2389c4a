"""sympy -> nodes: turns a scalar sympy expression into DAG nodes of registered primitives.

Used by derive.py for the elementwise records' derivatives and expansions, and for
user-defined ops and sympy expressions. Imports node and registry (and derive.py, for
which sympy function is which record, on first use).
"""

from __future__ import annotations

import sympy

from .node import Node, const
from .registry import apply

FUNCTIONS: dict[type, str] = {}  # sympy function class -> record name, filled on first use

_RELATIONS = {sympy.StrictGreaterThan: "gt", sympy.StrictLessThan: "lt", sympy.GreaterThan: "ge",
              sympy.LessThan: "le", sympy.Eq: "eq", sympy.Ne: "ne"}  # fmt: skip


def from_sympy(expr: sympy.Basic, env: dict[sympy.Symbol, Node], dtype: str) -> Node:
    """Build the node computing `expr`, with symbols bound by `env`."""
    if expr in env:
        return env[expr]
    if expr.is_number and not isinstance(expr, sympy.Piecewise):
        return const(float(sympy.N(expr, 30)), dtype)
    for kind, build in _BUILDERS:
        if isinstance(expr, kind):
            return build(expr, env, dtype)
    if not FUNCTIONS:
        from .derive import function_names

        FUNCTIONS.update(function_names())
    name = FUNCTIONS.get(type(expr))
    if name is None:
        raise NotImplementedError(f"no primitive for sympy {type(expr).__name__}")
    return apply(name, *(from_sympy(a, env, dtype) for a in expr.args))


def _sum_terms(expr: sympy.Add, env: dict, dtype: str) -> Node:
    terms = sorted(expr.args, key=lambda t: bool(t.as_coeff_Mul()[0].is_negative))  # positives first
    acc = from_sympy(terms[0], env, dtype)
    for term in terms[1:]:
        if term.as_coeff_Mul()[0].is_negative:
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
    if exponent == sympy.Rational(1, 2):
        return apply("sqrt", from_sympy(base, env, dtype))
    if exponent.is_Number and exponent.is_negative:
        return apply("div", const(1, dtype), from_sympy(base ** (-exponent), env, dtype))
    return apply("pow", from_sympy(base, env, dtype), from_sympy(exponent, env, dtype))


def _relation(expr: sympy.Rel, env: dict, dtype: str) -> Node:
    lhs, rhs = (from_sympy(a, env, dtype) for a in expr.args)
    return apply(_RELATIONS[type(expr)], lhs, rhs)


def _and(expr: sympy.And, env: dict, dtype: str) -> Node:
    acc, *rest = (from_sympy(a, env, dtype) for a in expr.args)  # conditions are 1.0 / 0.0
    for a in rest:
        acc = apply("mul", acc, a)
    return acc


def _piecewise(expr: sympy.Piecewise, env: dict, dtype: str) -> Node:
    (value, cond), *rest = expr.args
    otherwise = from_sympy(sympy.Piecewise(*rest), env, dtype) if rest[0][1] != True else (  # noqa: E712
        from_sympy(rest[0][0], env, dtype))  # fmt: skip
    return apply("where", from_sympy(cond, env, dtype), from_sympy(value, env, dtype), otherwise)


def _heaviside(expr: sympy.Heaviside, env: dict, dtype: str) -> Node:
    """step(a) with the value at 0 that the expression asks for (torch: 0 for relu, 1/2 for max)."""
    a = from_sympy(expr.args[0], env, dtype)
    at_zero = expr.args[1] if len(expr.args) > 1 else sympy.S.Half
    zero = const(0, dtype)
    if at_zero == 0:
        return apply("gt", a, zero)
    if at_zero == 1:
        return apply("ge", a, zero)
    return apply("mul", const(0.5, dtype), apply("add", apply("gt", a, zero), apply("ge", a, zero)))


def _sign(expr: sympy.sign, env: dict, dtype: str) -> Node:
    a, zero = from_sympy(expr.args[0], env, dtype), const(0, dtype)
    return apply("sub", apply("gt", a, zero), apply("lt", a, zero))  # (a > 0) - (a < 0)


def _minmax(expr: sympy.Basic, env: dict, dtype: str) -> Node:
    name = "maximum" if isinstance(expr, sympy.Max) else "minimum"
    args = [from_sympy(a, env, dtype) for a in expr.args]
    acc = args[0]
    for a in args[1:]:
        acc = apply(name, acc, a)
    return acc


_BUILDERS = [
    (sympy.Add, _sum_terms), (sympy.Mul, _product), (sympy.Pow, _power),
    (sympy.Rel, _relation), (sympy.And, _and), (sympy.Piecewise, _piecewise), (sympy.Heaviside, _heaviside),
    (sympy.sign, _sign), (sympy.Max, _minmax), (sympy.Min, _minmax),
]  # fmt: skip
