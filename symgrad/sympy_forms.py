"""How the non-elementwise primitives print in formulas: sympy function classes.

The records' `to_sympy` printers build these; this module (and sympy with it) is
imported only when a formula is printed, through `registry.forms()`. Imports sympy.
"""

from __future__ import annotations

import sympy


class Reduce(sympy.Function):  # subclasses name the reduction: sum, prod, amax, ...
    """`sum(x)` / `sum(x, dim=(0,))` in printed formulas."""

    def _sympystr(self, printer) -> str:
        arg, dims = self.args
        name = self.__class__.__name__.lower()
        extra = "" if dims == sympy.S.true else f", dim={dims}"
        return f"{name}({printer.doprint(arg)}{extra})"


class Sum(Reduce):
    pass


class Prod(Reduce):
    pass


class Amax(Reduce):
    pass


class Amin(Reduce):
    pass


REDUCTIONS = {"sum": Sum, "prod": Prod, "amax": Amax, "amin": Amin}


def reduction(name: str, x: sympy.Expr, axes: tuple[int, ...], ndim: int) -> sympy.Expr:
    return REDUCTIONS[name](x, sympy.S.true if len(axes) == ndim else sympy.Tuple(*axes))


class Subscript(sympy.Function):
    """`x[0, 1:3]` in printed formulas; the index is carried as a symbol's name."""

    def _sympystr(self, printer) -> str:
        arg, index = self.args
        text = printer.parenthesize(arg, 1000) if not arg.is_Atom else printer.doprint(arg)
        return f"{text}[{index.name}]"


class Permute(sympy.Function):
    def _sympystr(self, printer) -> str:
        arg, perm = self.args
        if tuple(perm)[-2:] == (len(perm) - 1, len(perm) - 2):
            text = printer.doprint(arg) if arg.is_Atom else f"({printer.doprint(arg)})"
            return f"{text}.T"
        return f"permute({printer.doprint(arg)}, {tuple(perm)})"


class Setitem(sympy.Function):
    def _sympystr(self, printer) -> str:
        base, value, index = self.args
        return f"setitem({printer.doprint(base)}, [{index.name}], {printer.doprint(value)})"


class MatMul(sympy.Function):
    def _sympystr(self, printer) -> str:
        a, b = (printer.doprint(x) if x.is_Atom or isinstance(x, sympy.Function) else
                f"({printer.doprint(x)})" for x in self.args)  # fmt: skip
        return f"{a} @ {b}"


class Gather(sympy.Function):
    pass


class ScatterAdd(sympy.Function):
    pass


class CustomFunction(sympy.Function):
    pass


def index_symbol(text: str) -> sympy.Symbol:
    return sympy.Symbol(text)


def dims_tuple(perm: tuple[int, ...]) -> sympy.Tuple:
    return sympy.Tuple(*perm)
