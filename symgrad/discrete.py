"""Ops whose results are indices, booleans or integers: sort, topk, argsort, nonzero, any,
all, bitwise and logical ops, floor division and remainder, plus the `new_*` constructors.

Values that are differentiable (sorted values, top-k values, remainder) take their
gradient through a gather at indices computed eagerly (runtime inputs of the compiled
gradient). Imports ops, reductions, tensor.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from . import dtypes
from .record import Operand, primitive, recorded, result_dtype
from .reductions import axes_of, take_along
from .tensor import Tensor, _refuse_traced


def return_type(name: str) -> type:
    """A (values, indices) named tuple printed as torch.return_types.<name>(...)."""
    base = namedtuple(name, ["values", "indices"])

    def __repr__(self: Any) -> str:
        return f"torch.return_types.{name}(\nvalues={self.values!r},\nindices={self.indices!r})"

    return type(name, (base,), {"__repr__": __repr__, "__slots__": ()})


SortResult, TopkResult = return_type("sort"), return_type("topk")


def _value(o: Operand) -> Any:
    return o._value if isinstance(o, Tensor) else o


def sort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> SortResult:
    (axis,) = axes_of(a, dim) if a.ndim else (0,)
    _refuse_traced(a, "sort (its order)")
    order = np.argsort(-a._value if descending else a._value, axis=axis, kind="stable")
    values = take_along(a, order, axis) if a.ndim else a
    return SortResult(recorded(values, "SortBackward0", "sort", [a]), Tensor._wrap(order.astype(np.int64)))


def argsort(a: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return sort(a, dim, descending, stable).indices


def topk(a: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
    (axis,) = axes_of(a, dim)
    _refuse_traced(a, "topk (its order)")
    order = np.argsort(-a._value if largest else a._value, axis=axis, kind="stable")
    order = np.take(order, np.arange(k), axis=axis)
    values = take_along(a, order, axis)
    return TopkResult(recorded(values, "TopkBackward0", "topk", [a]), Tensor._wrap(order.astype(np.int64)))


def nonzero(a: Tensor, as_tuple: bool = False) -> Any:
    _refuse_traced(a, "nonzero")
    found = np.nonzero(a._value)
    if as_tuple:
        return tuple(Tensor._wrap(i.astype(np.int64)) for i in found)
    return Tensor._wrap(np.stack(found, axis=-1).astype(np.int64))


def where(cond: Tensor, a: Operand = None, b: Operand = None) -> Any:
    from .ops import where as where3

    if a is None and b is None:
        return nonzero(cond, as_tuple=True)
    return where3(cond, a, b)


def _eager(fn: Any) -> Any:
    def op(a: Operand, b: Operand = None) -> Any:
        if b is not None and not isinstance(b, (Tensor, int, float, bool)):
            return NotImplemented
        args = [_value(a)] if b is None else [_value(a), _value(b)]
        return Tensor._wrap(np.asarray(fn(*args)))

    return op


logical_and, logical_or, logical_xor = _eager(np.logical_and), _eager(np.logical_or), _eager(np.logical_xor)
logical_not = _eager(np.logical_not)
bitwise_and, bitwise_or, bitwise_xor = _eager(np.bitwise_and), _eager(np.bitwise_or), _eager(np.bitwise_xor)
bitwise_not = _eager(np.invert)


def any(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    _refuse_traced(a, "any()")
    return Tensor._wrap(np.asarray(np.any(a._value, axis=None if dim is None else dim, keepdims=keepdim)))


def all(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    _refuse_traced(a, "all()")
    return Tensor._wrap(np.asarray(np.all(a._value, axis=None if dim is None else dim, keepdims=keepdim)))


def floor_divide(a: Operand, b: Operand) -> Tensor:
    dt = result_dtype([a, b])
    return Tensor._wrap(np.asarray(np.floor_divide(np.asarray(_value(a), dt), np.asarray(_value(b), dt))))


def remainder(a: Operand, b: Operand) -> Tensor:
    """a - b * floor(a / b), with torch's sign convention (that of the divisor)."""
    dt = result_dtype([a, b])
    if dt.kind != "f":
        return Tensor._wrap(np.asarray(np.remainder(_value(a), _value(b))).astype(dt))
    quotient = primitive("floor", [primitive("div", [a, b], dt)], dt)
    result = primitive("sub", [a, primitive("mul", [b, quotient], dt)], dt)
    name = "RemainderBackward1" if isinstance(b, Tensor) else "RemainderBackward0"
    return recorded(result, name, "remainder", [a, b])


def _reflect(fn: Any) -> Any:
    return lambda a, b: fn(b, a)


def new_like(kind: str) -> Any:
    def make(a: Tensor, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
             fill_value: Any = None) -> Tensor:  # fmt: skip
        dt = dtypes.as_dtype(dtype) if dtype is not None else a.dtype
        if kind == "tensor":
            from .creation import tensor

            return tensor(size[0], dtype=dt, requires_grad=requires_grad)
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
        value = {"zeros": 0, "ones": 1, "empty": 0}.get(kind, fill_value)
        t = Tensor._wrap(np.full(shape, value, dtype=dt.numpy))
        return t.requires_grad_(True) if requires_grad else t

    return make


def new_full(a: Tensor, size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:  # fmt: skip
    return new_like("full")(a, size, dtype=dtype, requires_grad=requires_grad, fill_value=fill_value)


METHODS = {
    "sort": sort, "argsort": argsort, "topk": topk, "nonzero": nonzero, "any": any, "all": all,
    "logical_and": logical_and, "logical_or": logical_or, "logical_xor": logical_xor,
    "logical_not": logical_not, "bitwise_and": bitwise_and, "bitwise_or": bitwise_or,
    "bitwise_xor": bitwise_xor, "bitwise_not": bitwise_not,
    "__and__": bitwise_and, "__or__": bitwise_or, "__xor__": bitwise_xor, "__invert__": bitwise_not,
    "__rand__": _reflect(bitwise_and), "__ror__": _reflect(bitwise_or), "__rxor__": _reflect(bitwise_xor),
    "__floordiv__": floor_divide, "__rfloordiv__": _reflect(floor_divide), "floor_divide": floor_divide,
    "__mod__": remainder, "__rmod__": _reflect(remainder), "remainder": remainder, "fmod": remainder,
    "new_zeros": new_like("zeros"), "new_ones": new_like("ones"), "new_empty": new_like("empty"),
    "new_tensor": new_like("tensor"), "new_full": new_full,
    "type_as": lambda a, other: a.to(other.dtype),
}  # fmt: skip
