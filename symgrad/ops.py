"""Eager operations: torch's functions and Tensor methods, built from primitives.

Each op is evaluated and recorded by record.py (its value, its Pending, the grad_fn
record named as torch names it). Composite ops (mean, norm) are written in terms of
primitives. Imports record, registry, node, tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes
from .record import (
    FLOAT,
    Operand,
    as_number,
    binary,
    operand_array,
    operand_node,
    primitive,
    recorded,
    result_dtype,
    type_name,
)
from .registry import REGISTRY, apply
from .tensor import Tensor, grad_enabled_for


def add(a: Operand, b: Operand, alpha: float = 1) -> Tensor:
    return binary("add", "AddBackward0", a, b if alpha == 1 else mul(b, alpha))


def sub(a: Operand, b: Operand, alpha: float = 1) -> Tensor:
    return binary("sub", "SubBackward0", a, b if alpha == 1 else mul(b, alpha))


def rsub(a: Operand, b: Operand) -> Tensor:
    return binary("sub", "RsubBackward1", b, a, number_edges=False)


def mul(a: Operand, b: Operand) -> Tensor:
    return binary("mul", "MulBackward0", a, b)


def div(a: Operand, b: Operand) -> Tensor:
    return binary("div", "DivBackward0", a, b, FLOAT)


def rdiv(a: Operand, b: Operand) -> Tensor:
    """b / a for a tensor a: torch computes it as reciprocal(a) * b."""
    b = as_number(b)
    if not isinstance(b, (int, float)):
        return NotImplemented
    return binary("mul", "MulBackward0", reciprocal(a), b)


def pow(a: Operand, b: Operand) -> Tensor:  # noqa: A001 - torch.pow
    return binary("pow", "PowBackward1" if isinstance(b, Tensor) else "PowBackward0", a, b)


def rpow(a: Operand, b: Operand) -> Tensor:
    return binary("pow", "PowBackward2", b, a)


def neg(a: Tensor) -> Tensor:
    return recorded(primitive("neg", [a]), "NegBackward0", "neg", [a])


def float_dtype(a: Tensor) -> np.dtype:
    return a._value.dtype if a._value.dtype.kind == "f" else dtypes.DEFAULT_FLOAT.numpy


def _unary(name: str, grad_fn: str | None = None) -> Any:
    grad_fn = grad_fn or name.capitalize() + "Backward0"

    def op(a: Tensor) -> Tensor:
        return recorded(primitive(name, [a], float_dtype(a)), grad_fn, name, [a])

    op.__name__ = name
    return op


exp, log, sqrt, sin, cos, tan, tanh, exp2, log2, log10, expm1, asin, acos, atan, sinh, cosh, erf = (
    _unary(n) for n in ["exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "exp2", "log2", "log10",
                        "expm1", "asin", "acos", "atan", "sinh", "cosh", "erf"])  # fmt: skip
log1p = _unary("log1p", "Log1PBackward0")
def abs(a: Tensor) -> Tensor:  # noqa: A001 - torch.abs
    if a._value.dtype.kind in "iu":  # integers stay integers
        return Tensor._wrap(np.abs(a._value))
    return recorded(primitive("abs", [a], float_dtype(a)), "AbsBackward0", "abs", [a])
sigmoid, relu = _unary("sigmoid"), _unary("relu")


def _piecewise_constant(name: str) -> Any:
    def op(a: Tensor) -> Tensor:
        if a._value.dtype.kind != "f":  # integers: torch keeps the dtype
            return Tensor._wrap(np.asarray(REGISTRY[name].evaluate((), a._value)))
        return recorded(primitive(name, [a]), name.capitalize() + "Backward0", name, [a])

    op.__name__ = name
    return op


floor, ceil, round, trunc, sign = map(_piecewise_constant, ["floor", "ceil", "round", "trunc", "sign"])  # noqa: A001


def rsqrt(a: Tensor) -> Tensor:
    return recorded(primitive("div", [1.0, primitive("sqrt", [a], float_dtype(a))]), "RsqrtBackward0", "rsqrt", [a])


def reciprocal(a: Tensor) -> Tensor:
    return recorded(primitive("div", [1.0, a], float_dtype(a)), "ReciprocalBackward0", "reciprocal", [a])


def square(a: Tensor) -> Tensor:
    return recorded(primitive("pow", [a, 2]), "PowBackward0", "pow", [a, 2])


def atan2(a: Operand, b: Operand) -> Tensor:
    return binary("atan2", "Atan2Backward0", a, b, FLOAT)


def maximum(a: Tensor, b: Tensor) -> Tensor:
    return binary("maximum", "MaximumBackward0", a, b)


def minimum(a: Tensor, b: Tensor) -> Tensor:
    return binary("minimum", "MinimumBackward0", a, b)


def _where(cond: Operand, a: Operand, b: Operand) -> Tensor:
    return primitive("where", [cond, a, b], result_dtype([a, b]))


def where(cond: Tensor, a: Operand, b: Operand) -> Tensor:
    return recorded(_where(cond, a, b), "WhereBackward0", "where", [cond, a, b])


def clamp(a: Tensor, min: Operand = None, max: Operand = None) -> Tensor:  # noqa: A002
    """where(x < lo, lo, where(x > hi, hi, x)): the gradient passes at the bounds, as in torch."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    min, max = as_number(min), as_number(max)  # noqa: A001 - numpy's scalars as Python numbers
    result = a
    if max is not None:
        result = _where(gt(result, max), max, result)
    if min is not None:
        result = _where(lt(result, min), min, result)
    scalar = all(not isinstance(v, Tensor) for v in (min, max))
    return recorded(result, "ClampBackward1" if scalar else "ClampBackward0", "clamp", [a])


def lerp(start: Tensor, end: Tensor, weight: Operand) -> Tensor:
    weight = as_number(weight)
    if not isinstance(weight, (Tensor, int, float)):
        raise TypeError(f"lerp() received an invalid combination of arguments - got (Tensor, Tensor, "
                        f"{type_name(weight)}), but expected one of: (Tensor input, Tensor end, Tensor weight) "
                        "or (Tensor input, Tensor end, Number weight)")  # fmt: skip
    result = primitive("add", [start, primitive("mul", [weight, primitive("sub", [end, start])])])
    name = "LerpBackward1" if isinstance(weight, Tensor) else "LerpBackward0"
    return recorded(result, name, "lerp", [start, end, weight])


def nan_to_num(a: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    info = np.finfo(float_dtype(a))
    hi = float(info.max) if posinf is None else posinf
    lo = float(info.min) if neginf is None else neginf
    result = _where(isnan(a), nan, _where(eq(a, np.inf), hi, _where(eq(a, -np.inf), lo, a)))
    return recorded(result, "NanToNumBackward0", "nan_to_num", [a])


def isnan(a: Tensor) -> Tensor:
    return Tensor._wrap(np.isnan(a._value))


def isinf(a: Tensor) -> Tensor:
    return Tensor._wrap(np.isinf(a._value))


def isfinite(a: Tensor) -> Tensor:
    return Tensor._wrap(np.isfinite(a._value))


def _compare(name: str, fn: Any) -> Any:
    def op(a: Operand, b: Operand) -> Tensor:
        """A bool tensor; inside a graph it also carries the comparison's node (1.0 / 0.0), so a
        where() on it is computed by the compiled code from the values it compares."""
        b = as_number(b)
        if isinstance(b, np.ndarray) and name == "eq":  # as torch: == takes an array (!= and < do not)
            b = Tensor._wrap(b)  # as a tensor (elementwise; < and the others refuse it)
        if not isinstance(b, (Tensor, int, float)):
            return NotImplemented
        dt = result_dtype([a, b])
        result = Tensor._wrap(np.asarray(fn(operand_array(a, dt), operand_array(b, dt))))
        if grad_enabled_for(a, b) and dt.kind == "f":
            result._node = apply(name, operand_node(a, dt), operand_node(b, dt))
        return result

    op.__name__ = name
    return op


lt, le, gt, ge = (_compare(n, f) for n, f in [("lt", np.less), ("le", np.less_equal),
                                               ("gt", np.greater), ("ge", np.greater_equal)])  # fmt: skip
eq, ne = _compare("eq", np.equal), _compare("ne", np.not_equal)




def allclose(a: Tensor, b: Operand, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    return bool(np.allclose(a._value, _value_of(b), rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(a: Tensor, b: Operand, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    return Tensor._wrap(np.isclose(a._value, _value_of(b), rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a._value, b._value))


def _value_of(o: Operand) -> Any:
    return o._value if isinstance(o, Tensor) else o
