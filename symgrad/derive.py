"""The sympy side of the elementwise records: definitions parsed, differentiated with
`sympy.diff`, and turned into node templates by `symbolic.from_sympy`.

Templates are nested tuples: `("arg", k)` is the record's k-th input, `("const", v)` a
constant, anything else `(primitive, *templates)`. `python -m symgrad.derive` writes
the built-in records' templates to derived.py, so that derivatives need no sympy at
run time; `--check` exits 1 if the file is out of date (a test runs it).
Imports sympy, elementwise, node and symbolic.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import sympy
from sympy.codegen import cfunctions as cf

from .elementwise import Definition, definitions
from .node import Node, leaf
from .registry import REGISTRY
from .symbolic import from_sympy

X, Y, Z = sympy.symbols("x y z", real=True)


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


# What definitions may name besides sympy's own functions. floor, round, isnan, ... are
# undefined functions: their records are piecewise constant or not differentiated.
NAMESPACE: dict[str, Any] = {
    "x": X, "y": Y, "z": Z, "sigmoid": sigmoid, "relu": relu, "norm_sqrt": norm_sqrt,
    "exp2": cf.exp2, "log2": cf.log2, "log10": cf.log10, "log1p": cf.log1p, "expm1": cf.expm1,
    **{n: sympy.Function(n) for n in ("floor", "ceil", "round", "trunc", "isnan", "isinf")},
}  # fmt: skip


def parse(expr: Any) -> sympy.Expr:
    """A definition's sympy expression (source text is parsed; expressions pass through)."""
    return expr if isinstance(expr, sympy.Basic) else sympy.parse_expr(expr, local_dict=dict(NAMESPACE))


@functools.cache
def _parsed(name: str, key: str) -> sympy.Expr:
    return parse(REGISTRY[name].definition.expr)


def definition(name: str) -> sympy.Expr:
    """The sympy expression defining elementwise record `name`, over x, y, z."""
    return _parsed(name, REGISTRY[name].definition.key())


def partials(d: Definition) -> list[sympy.Expr]:
    """d expr / d symbol for each input, with the definition's masks applied."""
    symbols = (X, Y, Z)[: d.arity]
    expr = parse(d.expr)
    # DiracDelta is the derivative of a step: zero almost everywhere, as torch takes it.
    # powsimp turns x**y*y/x into y*x**(y - 1), which is finite at x = 0 (as in torch).
    found = [sympy.powsimp(sympy.diff(expr, s)).replace(sympy.DiracDelta, lambda *a: 0) for s in symbols]
    masks = {NAMESPACE[k]: parse(condition) for k, condition in d.mask}
    return [sympy.Piecewise((0, masks[s]), (p, True)) if s in masks else p for s, p in zip(symbols, found)]


def derive(d: Definition) -> tuple[tuple, tuple | None]:
    """(a template or None per input's partial, the expansion's template or None)."""
    symbols = (X, Y, Z)[: d.arity]
    found: tuple = ()
    if d.grad == "sympy":
        found = tuple(None if p == 0 else template(p, symbols) for p in partials(d))
    expansion = template(parse(d.expansion), symbols) if d.expansion is not None else None
    return found, expansion


def template(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...]) -> tuple:
    """The nodes `from_sympy` builds for `expr`, as a template over the symbols' positions."""
    placeholders = [leaf((), "float64", None) for _ in symbols]
    node = from_sympy(expr, dict(zip(symbols, placeholders)), "float64")
    arguments = {id(p): k for k, p in enumerate(placeholders)}

    def walk(n: Node) -> tuple:
        if id(n) in arguments:
            return ("arg", arguments[id(n)])
        if n.op == "const":
            return ("const", n.attrs[0])
        assert n.inputs and not n.attrs, f"template: unexpected node {n}"
        return (n.op, *(walk(i) for i in n.inputs))

    return walk(node)


def function_names() -> dict[type, str]:
    """sympy function class -> record name, for records defined as one function of x (, y)."""
    names = {}
    for name, d in definitions().items():
        expr = definition(name)
        if isinstance(expr, sympy.Function) and expr.args == (X, Y, Z)[: d.arity]:
            names[type(expr)] = name
    return names


# ---- the generated table ----------------------------------------------------------------

TABLE_FILE = Path(__file__).with_name("derived.py")
_HEADER = '''"""Generated by `python -m symgrad.derive` from elementwise.py's definitions: do not edit.

name -> (the definition's key, a template or None per input's partial, the expansion's
template or None). A record whose key differs is derived with sympy instead.
"""

TABLE = {
'''


def table_source(names: list[str]) -> str:
    lines = [_HEADER]
    for name in names:
        d = REGISTRY[name].definition
        found, expansion = derive(d)
        lines.append(f"    {name!r}: ({d.key()!r}, {found!r}, {expansion!r}),\n")
    lines.append("}\n")
    text = "".join(lines)
    if "inf" in text.replace("isinf", "") or "nan" in text.replace("isnan", ""):
        raise ValueError("derive: a template holds inf or nan, which repr cannot write")
    return text


def builtin_names() -> list[str]:
    return [name for name in definitions() if not name.startswith("user_")]


def main(argv: list[str]) -> int:
    text = table_source(builtin_names())
    if "--check" in argv:
        current = TABLE_FILE.read_text() == text
        print("derived.py is current" if current else "derived.py is out of date: run python -m symgrad.derive")
        return 0 if current else 1
    TABLE_FILE.write_text(text)
    print(f"wrote {TABLE_FILE} ({len(builtin_names())} records)")
    return 0


if __name__ == "__main__":  # run as symgrad.derive, so that its classes are the ones used
    from symgrad import derive as module

    sys.exit(module.main(sys.argv[1:]))
