"""Eager operations: torch's functions and Tensor methods, built from primitives.

Each op computes its value with the primitives' numpy evaluation and, when
autograd is recording, the DAG node of the result, then attaches a grad_fn
record named as torch names it. Composite ops (mean, norm) are written in
terms of primitives. Imports registry, node, tensor, autograd, indexing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import dtypes
from .autograd import make_grad_fn
from .indexing import normalize_index
from .node import Node, const
from .registry import REGISTRY, apply
from .tensor import Tensor, grad_enabled_for

Operand = Any  # Tensor or Python number


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def result_dtype(operands: Sequence[Operand]) -> np.dtype:
    """torch's promotion: dimensioned tensors, then 0-d tensors, then Python numbers.

    A later group only changes the result when its category (bool < int < float) is higher.
    """
    tensors = [o for o in operands if isinstance(o, Tensor)]
    groups = [
        [t._value.dtype for t in tensors if t.ndim > 0],
        [t._value.dtype for t in tensors if t.ndim == 0],
        [_scalar_dtype(o) for o in operands if not isinstance(o, Tensor)],
    ]
    result: np.dtype | None = None
    for group in groups:
        if not group:
            continue
        dt = np.result_type(*group)
        if result is None or _CATEGORY[dt.kind] > _CATEGORY[result.kind]:
            result = dt
    return result if result is not None else dtypes.DEFAULT_FLOAT.numpy


def _scalar_dtype(value: Any) -> np.dtype:
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, int):
        return np.dtype(np.int64)
    return dtypes.DEFAULT_FLOAT.numpy


def _array(o: Operand, dt: np.dtype) -> np.ndarray:
    return o._value.astype(dt, copy=False) if isinstance(o, Tensor) else np.asarray(o, dtype=dt)


def _node(o: Operand, dt: np.dtype) -> Node:
    return o.graph_node() if isinstance(o, Tensor) else const(float(o), dt.name)


def primitive(name: str, operands: Sequence[Operand], dt: np.dtype | None = None, **attrs: Any) -> Tensor:
    """`name(*operands)` evaluated eagerly, with its DAG node when grad is being recorded."""
    prim = REGISTRY[name]
    dt = dt if dt is not None else result_dtype(operands)
    arrays = [_array(o, dt) for o in operands]
    value = prim.evaluate(tuple(attrs[a] for a in prim.attr_names), *arrays)
    result = Tensor._wrap(np.asarray(value, dtype=dt))
    if grad_enabled_for(*operands):
        result._node = apply(name, *(_node(o, dt) for o in operands), **attrs)
    return result


def recorded(result: Tensor, grad_fn: str, op: str, operands: Sequence[Operand]) -> Tensor:
    """Attach the user-level grad_fn record (when `result` is part of a graph)."""
    if result._node is not None:
        result._grad_fn = make_grad_fn(grad_fn, op, tuple(operands))
    return result


def _float_operands(a: Operand, b: Operand) -> np.dtype:
    dt = result_dtype([a, b])
    return dt if dt.kind == "f" else dtypes.DEFAULT_FLOAT.numpy


def _binary(name: str, grad_fn: str, a: Operand, b: Operand, dt: np.dtype | None = None) -> Tensor:
    if not isinstance(b, (Tensor, int, float)) or not isinstance(a, (Tensor, int, float)):
        return NotImplemented
    return recorded(primitive(name, [a, b], dt), grad_fn, name, [a, b])


def add(a: Operand, b: Operand, alpha: float = 1) -> Tensor:
    return _binary("add", "AddBackward0", a, b if alpha == 1 else mul(b, alpha))


def sub(a: Operand, b: Operand, alpha: float = 1) -> Tensor:
    return _binary("sub", "SubBackward0", a, b if alpha == 1 else mul(b, alpha))


def rsub(a: Operand, b: Operand) -> Tensor:
    return _binary("sub", "RsubBackward1", b, a)


def mul(a: Operand, b: Operand) -> Tensor:
    return _binary("mul", "MulBackward0", a, b)


def div(a: Operand, b: Operand) -> Tensor:
    return _binary("div", "DivBackward0", a, b, _float_operands(a, b))


def rdiv(a: Operand, b: Operand) -> Tensor:
    return _binary("div", "MulBackward0", b, a, _float_operands(a, b))  # torch: reciprocal * b


def pow(a: Operand, b: Operand) -> Tensor:  # noqa: A001 - torch.pow
    return _binary("pow", "PowBackward1" if isinstance(b, Tensor) else "PowBackward0", a, b)


def rpow(a: Operand, b: Operand) -> Tensor:
    return _binary("pow", "PowBackward2", b, a)


def neg(a: Tensor) -> Tensor:
    return recorded(primitive("neg", [a]), "NegBackward0", "neg", [a])


def _unary(name: str) -> Any:
    grad_fn = name.capitalize() + "Backward0"

    def op(a: Tensor) -> Tensor:
        dt = a._value.dtype if a._value.dtype.kind == "f" else dtypes.DEFAULT_FLOAT.numpy
        return recorded(primitive(name, [a], dt), grad_fn, name, [a])

    op.__name__ = name
    return op


exp, log, sqrt, sin, cos, tan, tanh = map(_unary, ["exp", "log", "sqrt", "sin", "cos", "tan", "tanh"])
abs = _unary("abs")  # noqa: A001 - torch.abs


def _axes(a: Tensor, dim: Any) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(a.ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    ndim = max(a.ndim, 1)
    for d in dims:
        if not -ndim <= d < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-ndim}, {ndim - 1}], but got {d})")  # fmt: skip
    return tuple(sorted({d % ndim for d in dims})) if a.ndim else ()


def _sum(a: Tensor, dim: Any, keepdim: bool) -> Tensor:
    dt = a._value.dtype if a._value.dtype.kind == "f" else np.dtype(np.int64)
    return primitive("sum", [a], dt, axes=_axes(a, dim), keepdims=bool(keepdim))


def sum(a: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:  # noqa: A001
    name = "SumBackward0" if dim is None else "SumBackward1"
    return recorded(_sum(a, dim, keepdim), name, "sum", [a])


def mean(a: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    if a._value.dtype.kind != "f":
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {a.dtype.name.capitalize()}"
        )
    count = int(np.prod([a.shape[d] for d in _axes(a, dim)], dtype=np.int64))
    result = primitive("div", [_sum(a, dim, keepdim), count])  # torch: sum / n
    return recorded(result, "MeanBackward0" if dim is None else "MeanBackward1", "mean", [a])


def norm(a: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
    if p not in ("fro", 2, 2.0):
        raise NotImplementedError(f"norm: only the 2-norm is implemented, got p={p!r}")
    squares = primitive("mul", [a, a])
    result = primitive("sqrt", [_sum(squares, dim, keepdim)])
    return recorded(result, "LinalgVectorNormBackward0", "norm", [a])


def _compare(fn: Any) -> Any:
    def op(a: Operand, b: Operand) -> Tensor:
        if not isinstance(b, (Tensor, int, float)):
            return NotImplemented
        dt = result_dtype([a, b])
        return Tensor._wrap(np.asarray(fn(_array(a, dt), _array(b, dt))))

    return op


lt, le, gt, ge = map(_compare, [np.less, np.less_equal, np.greater, np.greater_equal])
eq, ne = _compare(np.equal), _compare(np.not_equal)


# ---- indexing -------------------------------------------------------------------------


def getitem(a: Tensor, index: Any) -> Tensor:
    spec, out_shape, grad_fn = normalize_index(index, a.shape)
    value = a._value[index if not isinstance(index, Tensor) else index._value]
    result = Tensor._wrap(np.asarray(value), a._storage)
    if grad_enabled_for(a):
        node = apply("index", a.graph_node(), spec=spec)
        if node.shape != out_shape:
            node = apply("reshape", node, shape=out_shape)
        result._node = node
    return recorded(result, grad_fn, "getitem", [a, index])


def setitem(a: Tensor, index: Any, value: Operand) -> None:
    if a.requires_grad and a.is_leaf and grad_enabled_for(a):
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation."
        )
    spec, _, _ = normalize_index(index, a.shape)
    v = value if isinstance(value, Tensor) else Tensor._wrap(np.asarray(value, dtype=a._value.dtype))
    track = grad_enabled_for(a, v)
    if track:
        before = Tensor._wrap(a._value, a._storage)  # `a` as it was, for the grad_fn record
        before._node, before._grad_fn = a._node, a._grad_fn
        base = a.graph_node()
    a._value[index] = v._value
    a._storage.version += 1
    if track:
        a._node = apply("setitem", base, v.graph_node(), spec=spec)
        a._grad_fn = make_grad_fn("CopySlices", "setitem", (before, v))


def _reflected(fn: Any) -> Any:
    return lambda a, b: fn(b, a)


METHODS = {
    "__add__": add, "__radd__": _reflected(add), "__sub__": sub, "__rsub__": rsub,
    "__mul__": mul, "__rmul__": _reflected(mul), "__truediv__": div, "__rtruediv__": rdiv,
    "__pow__": pow, "__rpow__": rpow, "__neg__": neg,
    "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge, "__eq__": eq, "__ne__": ne,
    "__getitem__": getitem, "__setitem__": setitem,
    "add": add, "sub": sub, "mul": mul, "div": div, "pow": pow, "neg": neg,
    "exp": exp, "log": log, "sqrt": sqrt, "sin": sin, "cos": cos, "tan": tan, "tanh": tanh,
    "abs": abs, "sum": sum, "mean": mean, "norm": norm,
}  # fmt: skip


def install_methods() -> None:
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
