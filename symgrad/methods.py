"""The Tensor's operator and method table: every eager op installed on Tensor in one place.

In-place variants (`add_`, `+=`, `zero_`, ...) compute the out-of-place result and
write it back, so they differentiate like the ops they mirror (or raise torch's
errors for leaves). Imports every eager op module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import discrete, dtypes, index_ops, linalg, ops, reductions, shape_ops
from .gradfn import make_grad_fn
from .index_ops import cast_like, snapshot, write
from .node import const
from .record import cast, primitive, recorded
from .registry import apply
from .tensor import Tensor, grad_enabled_for


def _reflected(fn: Any) -> Any:
    return lambda a, b: fn(b, a)


def to_dtype(a: Tensor, dtype: Any, copy: bool = False) -> Tensor:
    dt = dtypes.as_dtype(dtype)
    if a._value.dtype == dt.numpy and not copy:
        return a
    result = Tensor._wrap(cast(a._value, dt.numpy, copy=True))
    if a._node is not None and dt.is_floating_point:  # also traced tensors: the cast is in the graph
        result = primitive("cast", [a], dt.numpy, dtype=dt.numpy.name)
    return recorded(result, "ToCopyBackward0", "cast", [a])


def to(a: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    dtype = kwargs.get("dtype")
    for arg in args:
        if isinstance(arg, dtypes.dtype):
            dtype = arg
        elif isinstance(arg, Tensor):
            dtype = arg.dtype
    return a if dtype is None else to_dtype(a, dtype, kwargs.get("copy", False))


def type_(a: Tensor, dtype: Any = None) -> Any:
    if dtype is None:
        return f"torch.{a.dtype.name.capitalize().replace('Float32', 'Float').replace('Float64', 'Double').replace('Int64', 'Long')}Tensor"
    names = {"torch.FloatTensor": dtypes.float32, "torch.DoubleTensor": dtypes.float64,
             "torch.LongTensor": dtypes.int64}  # fmt: skip
    return to_dtype(a, names.get(dtype, dtype) if isinstance(dtype, str) else dtype)


def _in_place(fn: Any) -> Any:
    def method(a: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        # The result's graph reads a's values from before the write (a copy, if a has no node):
        # later uses of a read the result, as in torch, not the overwritten runtime input.
        source = snapshot(a) if a._node is None and grad_enabled_for(*args) else a
        result = fn(source, *args, **kwargs)
        grad_fn = result._grad_fn if result._node is not None else None
        node = cast_like(result, a)._node
        value = np.broadcast_to(result._value, a.shape)
        write(a, lambda arr: np.copyto(arr, value, casting="unsafe"), node, grad_fn)
        return a

    return method


def zero_(a: Tensor) -> Tensor:
    return fill_(a, 0)


def fill_(a: Tensor, value: Any) -> Tensor:
    node = grad_fn = None
    if grad_enabled_for(a):  # a no longer depends on what it was computed from
        node = apply("broadcast_to", const(float(value), a._value.dtype.name), shape=a.shape)
        grad_fn = make_grad_fn("FillBackward0", "fill", (snapshot(a),))
    write(a, lambda arr: arr.fill(value), node, grad_fn)
    return a


def copy_(a: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
    src = src if isinstance(src, Tensor) else Tensor._wrap(np.asarray(src, dtype=a._value.dtype))
    node = grad_fn = None
    if grad_enabled_for(a, src):
        node = primitive("broadcast_to", [src], a._value.dtype, shape=a.shape)._node
        grad_fn = make_grad_fn("CopyBackwards", "copy", (snapshot(a), src))
    write(a, lambda arr: np.copyto(arr, np.broadcast_to(src._value, a.shape), casting="unsafe"), node, grad_fn)
    return a


OUT_OF_PLACE = {
    "add": ops.add, "sub": ops.sub, "mul": ops.mul, "div": ops.div, "pow": ops.pow,
    "clamp": ops.clamp, "clip": ops.clamp, "neg": ops.neg, "abs": ops.abs, "exp": ops.exp,
    "log": ops.log, "sqrt": ops.sqrt, "sigmoid": ops.sigmoid, "relu": ops.relu, "tanh": ops.tanh,
    "masked_fill": index_ops.masked_fill, "scatter": index_ops.scatter,
    "scatter_add": index_ops.scatter_add, "index_add": index_ops.index_add, "lerp": ops.lerp,
    "floor": ops.floor, "ceil": ops.ceil, "round": ops.round, "sin": ops.sin, "cos": ops.cos,
    "reciprocal": ops.reciprocal, "square": ops.square, "nan_to_num": ops.nan_to_num,
}  # fmt: skip

METHODS: dict[str, Any] = {
    "__add__": ops.add, "__radd__": ops.add, "__sub__": ops.sub, "__rsub__": ops.rsub,
    "__mul__": ops.mul, "__rmul__": ops.mul, "__truediv__": ops.div,
    "__rtruediv__": ops.rdiv, "__pow__": ops.pow, "__rpow__": ops.rpow, "__neg__": ops.neg,
    "__abs__": ops.abs, "__matmul__": linalg.matmul, "__rmatmul__": _reflected(linalg.matmul),
    "__lt__": ops.lt, "__le__": ops.le, "__gt__": ops.gt, "__ge__": ops.ge, "__eq__": ops.eq,
    "__ne__": ops.ne, "__getitem__": index_ops.getitem, "__setitem__": index_ops.setitem,
    "__iadd__": _in_place(ops.add), "__isub__": _in_place(ops.sub),
    "__imul__": _in_place(ops.mul), "__itruediv__": _in_place(ops.div),
    "rsqrt": ops.rsqrt, "exp2": ops.exp2, "log2": ops.log2, "log10": ops.log10,
    "log1p": ops.log1p, "expm1": ops.expm1, "asin": ops.asin, "acos": ops.acos, "atan": ops.atan,
    "sinh": ops.sinh, "cosh": ops.cosh, "erf": ops.erf, "atan2": ops.atan2, "tan": ops.tan,
    "trunc": ops.trunc, "sign": ops.sign, "maximum": ops.maximum, "minimum": ops.minimum,
    "allclose": ops.allclose, "isclose": ops.isclose, "equal": ops.equal, "isnan": ops.isnan, "isinf": ops.isinf, "isfinite": ops.isfinite,
    "lt": ops.lt, "le": ops.le, "gt": ops.gt, "ge": ops.ge, "eq": ops.eq, "ne": ops.ne,
    "true_divide": ops.div, "multiply": ops.mul, "subtract": ops.sub, "divide": ops.div,
    "sum": reductions.sum, "mean": reductions.mean, "prod": reductions.prod,
    "amax": reductions.amax, "amin": reductions.amin, "max": reductions.max,
    "min": reductions.min, "argmax": reductions.argmax, "argmin": reductions.argmin,
    "var": reductions.var, "std": reductions.std, "norm": reductions.norm,
    "logsumexp": reductions.logsumexp, "softmax": reductions.softmax,
    "log_softmax": reductions.log_softmax, "cumsum": reductions.cumsum,
    "matmul": linalg.matmul, "mm": linalg.mm, "bmm": linalg.bmm, "mv": linalg.mv,
    "dot": linalg.dot, "outer": linalg.outer,
    "reshape": shape_ops.reshape, "view": shape_ops.view, "view_as": shape_ops.view_as,
    "flatten": shape_ops.flatten, "unflatten": shape_ops.unflatten,
    "squeeze": shape_ops.squeeze, "unsqueeze": shape_ops.unsqueeze,
    "permute": shape_ops.permute, "transpose": shape_ops.transpose, "t": shape_ops.t,
    "expand": shape_ops.expand, "expand_as": shape_ops.expand_as, "repeat": shape_ops.repeat,
    "narrow": shape_ops.narrow, "flip": shape_ops.flip, "split": shape_ops.split,
    "chunk": shape_ops.chunk, "clone": shape_ops.clone, "contiguous": shape_ops.contiguous,
    "index_select": index_ops.index_select, "gather": index_ops.gather,
    "masked_select": index_ops.masked_select,
    "float": lambda a, memory_format=None: to_dtype(a, dtypes.float32),
    "double": lambda a, memory_format=None: to_dtype(a, dtypes.float64),
    "long": lambda a, memory_format=None: to_dtype(a, dtypes.int64),
    "int": lambda a, memory_format=None: to_dtype(a, dtypes.int32),
    "bool": lambda a, memory_format=None: to_dtype(a, dtypes.bool_),
    "to": to, "type": type_, "zero_": zero_, "fill_": fill_, "copy_": copy_,
    "cpu": lambda a: a, "is_floating_point": lambda a: a.dtype.is_floating_point,
    "element_size": lambda a: a._value.itemsize, "stride": lambda a, dim=None: _strides(a, dim),
    "is_contiguous": lambda a, memory_format=None: a._value.flags.c_contiguous,
}  # fmt: skip
METHODS.update(discrete.METHODS)
METHODS.update(OUT_OF_PLACE)
METHODS.update({name + "_": _in_place(fn) for name, fn in OUT_OF_PLACE.items()})

PROPERTIES = {"T": shape_ops.T, "mT": shape_ops.mT, "device": lambda a: "cpu", "is_cuda": lambda a: False}


def _strides(a: Tensor, dim: Any) -> Any:
    strides = tuple(s // a._value.itemsize for s in a._value.strides)
    return strides if dim is None else strides[dim]


def install() -> None:
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in PROPERTIES.items():
        setattr(Tensor, name, property(fn))
