"""sympy in and out: user-defined elementwise ops, sympy expressions compiled with their
derivatives, and formulas given back as sympy objects.

`elementwise(lambda x: ...)` registers a primitive exactly like the built-in ones (its
derivative from sympy.diff, lowered through the same translator), so it fuses and
compiles in eager, compiled and inspected code. Imports elementwise, registry, ops,
transforms, inspection.
"""

from __future__ import annotations

import inspect as pyinspect
import itertools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy

from .derive import X, Y, Z
from .elementwise import elementwise as register_elementwise
from .inspection import inspect_in_scope
from .interpret import evaluate
from .node import leaf
from .ops import float_dtype
from .record import primitive, recorded
from .symbolic import from_sympy as nodes_from_sympy
from .tensor import Tensor
from .transforms import Staged

_SYMBOLS = (X, Y, Z)
_counter = itertools.count()


class ElementwiseOp:
    """A user-defined elementwise operation: call it on tensors (or arrays, numbers)."""

    def __init__(self, name: str, expr: sympy.Expr, arity: int, prim: str) -> None:
        self.__name__, self.expr, self.arity, self.primitive = name, expr, arity, prim

    def __call__(self, *args: Any) -> Tensor:
        if len(args) != self.arity:
            raise TypeError(f"{self.__name__} takes {self.arity} arguments, got {len(args)}")
        tensors = [a if isinstance(a, Tensor) else Tensor._wrap(np.asarray(a, dtype=np.float64)) for a in args]
        dt = float_dtype(max(tensors, key=lambda t: t._value.dtype.itemsize))
        result = primitive(self.primitive, tensors, dt)
        return recorded(result, f"{self.__name__.capitalize()}Backward0", self.__name__, tensors)

    def __repr__(self) -> str:
        return f"<symgrad elementwise {self.__name__}: {self.expr}>"


def elementwise(fn: Callable | sympy.Lambda | None = None, *, name: str | None = None) -> Any:
    """Define an elementwise op from a sympy expression: `softplus = elementwise(lambda x:
    sympy.log(1 + sympy.exp(x)))`, or as a decorator. Up to three arguments."""
    if fn is None:
        return lambda f: elementwise(f, name=name)
    if isinstance(fn, sympy.Lambda):
        params, body = fn.variables, fn.expr
        expr = body.xreplace(dict(zip(params, _SYMBOLS)))
        arity = len(params)
    else:
        arity = len(pyinspect.signature(fn).parameters)
        expr = sympy.sympify(fn(*_SYMBOLS[:arity]))
    if not 1 <= arity <= 3 or not expr.free_symbols <= set(_SYMBOLS[:arity]):
        raise ValueError("elementwise: a function of 1 to 3 scalar arguments, returning a sympy expression")
    label = name or getattr(fn, "__name__", "op").replace("<lambda>", "op")
    prim = f"user_{label}_{next(_counter)}"
    _check_lowerable(expr, arity)
    numpy_fn = sympy.lambdify(_SYMBOLS[:arity], expr, "numpy")
    register_elementwise(prim, expr, lambda *a: np.asarray(numpy_fn(*a)), expansion=expr, arity=arity)
    return ElementwiseOp(label, expr, arity, prim)


def _check_lowerable(expr: sympy.Expr, arity: int) -> None:
    """Refuse, at definition time, what the compiler could not lower (value or derivative)."""
    env = {s: leaf((), "float64", None) for s in _SYMBOLS[:arity]}
    try:
        for e in [expr, *(sympy.diff(expr, s) for s in _SYMBOLS[:arity])]:
            nodes_from_sympy(e, env, "float64")
    except NotImplementedError as e:
        raise NotImplementedError(f"elementwise: {e}; use functions symgrad can compile "
                                  "(exp, log, sin, tanh, erf, Abs, Max, Piecewise, ...)") from None


def from_sympy(expr: Any, args: Sequence[sympy.Symbol]) -> Staged:
    """A compiled, vectorised function of the symbols `args` (numpy arrays broadcast like
    numpy); `.grad(*arrays)` gives every partial derivative, `.value_and_grad` both.
    A sympy Matrix gives an array with the matrix dimensions last."""
    args = tuple(args)
    matrix = isinstance(expr, sympy.MatrixBase)
    entries = list(expr) if matrix else [sympy.sympify(expr)]
    shape = tuple(expr.shape) if matrix else ()

    def values(*tensors: Tensor) -> Tensor:
        return _evaluate(entries, shape, args, tensors)

    partials = [[sympy.diff(e, a) for e in entries] for a in args]

    def gradient(*tensors: Tensor) -> tuple:
        return tuple(_evaluate(p, shape, args, tensors) for p in partials)

    def both(*tensors: Tensor) -> tuple:
        return values(*tensors), gradient(*tensors)

    from .transforms import compile as compile_fn

    staged = compile_fn(values)
    staged.name = f"from_sympy({expr})"
    staged.grad = compile_fn(gradient)  # type: ignore[attr-defined]
    staged.value_and_grad = compile_fn(both)  # type: ignore[attr-defined]
    return staged


def _evaluate(entries: list[sympy.Expr], shape: tuple, args: tuple, tensors: tuple) -> Tensor:
    dt = np.result_type(*(t._value.dtype for t in tensors), np.float32)
    env = {a: t._node for a, t in zip(args, tensors)}
    nodes = [nodes_from_sympy(e, env, dt.name) for e in entries]
    broadcast = np.broadcast_shapes(*(t.shape for t in tensors))
    if not shape:
        node = nodes[0]
    else:
        from .registry import apply
        from .structural import zeros

        node = zeros(tuple(broadcast) + shape, dt.name)
        for k, n in enumerate(nodes):
            index = tuple(int(i) for i in np.unravel_index(k, shape))
            spec = tuple((0, 1, m) for m in broadcast) + index
            node = apply("setitem", node, n, spec=spec)
    if node.shape != tuple(broadcast) + shape:
        from .registry import apply

        node = apply("broadcast_to", node, shape=tuple(broadcast) + shape)
    (value,) = evaluate([node], lambda n: n.payload.value())
    result = Tensor._wrap(np.asarray(value, dtype=dt))
    result._node = node
    return result


def to_sympy(target: Any, *example_args: Any) -> Any:
    """The formulas as sympy objects: of a result tensor, or of a function at example arguments
    (a dict: the function's value and each gradient)."""
    frame = sys._getframe(1)
    report = inspect_in_scope(target, example_args, None, {**frame.f_globals, **frame.f_locals})
    return report.formula if isinstance(target, Tensor) else report.formulas
