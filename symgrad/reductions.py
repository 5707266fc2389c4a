"""Eager reductions: sum, mean, prod, amax/amin, max/min, argmax/argmin, var, std, norm,
logsumexp, softmax, log_softmax, cumsum.

Composites are built from the reduction primitives; a max(dim) hands its gradient to
the index it returns through a gather whose indices are a runtime input.
Imports ops, tensor, node, registry.
"""

from __future__ import annotations

import builtins
import math
import operator
import warnings
from typing import Any

import numpy as np

from .ops import float_dtype, maximum, minimum
from .record import Operand, primitive, recorded, then
from .tensor import Tensor, _refuse_traced


def _return_type(name: str) -> type:
    from .discrete import return_type

    return return_type(name)


def axes_of(a: Tensor, dim: Any) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(a.ndim))
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if not dims:
        return tuple(range(a.ndim))
    for d in dims:  # (operator.index takes a 0-d array and a bool)
        if isinstance(d, (np.ndarray, bool)):
            raise TypeError(f"dim must be an int or a sequence of ints, not {type(d).__name__}")
    dims = tuple([operator.index(d) for d in dims])  # ints, numpy's integers, 0-d integer tensors
    ndim = builtins.max(a.ndim, 1)
    for d in dims:
        if not -ndim <= d < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-ndim}, {ndim - 1}], but got {d})")  # fmt: skip
    axes = sorted({d % ndim for d in dims})
    if len(axes) < len(dims):
        twice = next(d % ndim for k, d in enumerate(dims) if d % ndim in [e % ndim for e in dims[:k]])
        raise RuntimeError(f"dim {twice} appears multiple times in the list of dims")
    return tuple(axes) if a.ndim else ()


def _reduce(name: str, a: Operand, dim: Any, keepdim: bool, dt: Any = None) -> Tensor:
    return primitive(name, [a], dt, axes=axes_of(a, dim), keepdims=bool(keepdim))


def _count(a: Tensor, dim: Any) -> int:
    return _elements(a, axes_of(a, dim))


def _elements(a: Tensor, axes: tuple[int, ...]) -> int:
    shape = a._value.shape
    return math.prod([shape[d] for d in axes])


ALL: Any = object()  # sum's and mean's dim when none is given (torch names an explicit None's record ...Backward1)


def sum(a: Tensor, dim: Any = ALL, keepdim: bool = False, dtype: Any = None) -> Tensor:  # noqa: A001
    dt = a._value.dtype if a._value.dtype.kind == "f" else np.dtype(np.int64)
    name = "SumBackward0" if dim is ALL else "SumBackward1"
    return recorded(_reduce("sum", a, None if dim is ALL else dim, keepdim, dt), name, "sum", [a])


def mean(a: Tensor, dim: Any = ALL, keepdim: bool = False, dtype: Any = None) -> Tensor:
    name = "MeanBackward0" if dim is ALL else "MeanBackward1"
    dim = None if dim is ALL else dim
    if a._value.dtype.kind != "f":
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {a.dtype.name.capitalize()}"
        )
    axes = axes_of(a, dim)
    total = primitive("sum", [a], axes=axes, keepdims=bool(keepdim))
    result = then(total, "div", a._value.size if dim is None else _elements(a, axes))  # torch: sum / n
    return recorded(result, name, "mean", [a])


def prod(a: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    name = "ProdBackward0" if dim is None else "ProdBackward1"
    return recorded(_reduce("prod", a, dim, keepdim), name, "prod", [a])


def _nonempty(which: str, a: Tensor, dim: Any) -> None:
    """torch's errors for an extreme over no elements (there is no identity to return)."""
    if dim is None or (isinstance(dim, (tuple, list)) and not dim):
        if a.numel() == 0:
            raise RuntimeError(f"{which}(): Expected reduction dim to be specified for input.numel() == 0. "
                               "Specify the reduction dim with the 'dim' argument.")  # fmt: skip
        return
    for d in axes_of(a, dim):
        if a.shape[d] == 0:
            raise IndexError(f"{which}(): Expected reduction dim {d} to have non-zero size.")


def amax(a: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    _nonempty("amax", a, dim)
    return recorded(_reduce("amax", a, dim, keepdim), "AmaxBackward0", "amax", [a])


def amin(a: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    _nonempty("amin", a, dim)
    return recorded(_reduce("amin", a, dim, keepdim), "AminBackward0", "amin", [a])


def _extreme(which: str, a: Tensor, dim: Any, keepdim: bool) -> Any:
    if isinstance(dim, Tensor):  # torch.max(a, other)
        return (maximum if which == "max" else minimum)(a, dim)
    name = which.capitalize()
    _nonempty(which, a, dim)
    if dim is None:
        prim = "amax" if which == "max" else "amin"
        return recorded(_reduce(prim, a, None, False), f"{name}Backward1", which, [a])
    if a.ndim == 0:  # torch: dim 0 or -1 of a 0-d tensor is the tensor itself
        axes_of(a, dim)
        values = primitive("reshape", [a], shape=())
        return _return_type(which)(recorded(values, f"{name}Backward0", which, [a]),
                                   Tensor._wrap(np.asarray(0, dtype=np.int64)))  # fmt: skip
    (axis,) = axes_of(a, dim)
    _refuse_traced(a, f"{which}(dim) (its indices)")  # use amax/amin inside compiled functions
    pick = np.argmax if which == "max" else np.argmin
    index = pick(a._value, axis=axis, keepdims=True)
    values = take_along(a, index, axis)
    if not keepdim:
        values = primitive("reshape", [values], shape=tuple(np.delete(a.shape, axis)))
        index = np.squeeze(index, axis=axis)
    return _return_type(which)(recorded(values, f"{name}Backward0", which, [a]), Tensor._wrap(index))


def take_along(a: Tensor, index: np.ndarray, axis: int) -> Tensor:
    """a gathered along `axis` at int64 `index` (a runtime input of the gradient)."""
    return primitive("gather", [a, Tensor._wrap(index.astype(np.int64))], a._value.dtype, axis=axis)


def max(a: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    return _extreme("max", a, dim, keepdim)


def min(a: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    return _extreme("min", a, dim, keepdim)


def argmax(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return Tensor._wrap(np.asarray(np.argmax(a._value), dtype=np.int64))
    return Tensor._wrap(np.argmax(a._value, axis=dim, keepdims=keepdim).astype(np.int64))


def argmin(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return Tensor._wrap(np.asarray(np.argmin(a._value), dtype=np.int64))
    return Tensor._wrap(np.argmin(a._value, axis=dim, keepdims=keepdim).astype(np.int64))


def _correction(unbiased: Any, correction: Any) -> float:
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def _var(a: Tensor, dim: Any, unbiased: Any, keepdim: bool, correction: Any) -> tuple[Tensor, bool]:
    """(sum((x - m)**2) / max(0, N - correction), is N - correction > 0), m = mean(x)."""
    if isinstance(dim, bool):  # var(unbiased) positional form
        dim, unbiased = None, dim
    dof = _count(a, dim) - _correction(unbiased, correction)
    mean = primitive("div", [_reduce("sum", a, dim, True), _count(a, dim)])
    centered = primitive("sub", [a, mean])
    squares = _reduce("sum", primitive("mul", [centered, centered]), dim, keepdim)
    if dof > 0:
        return primitive("div", [squares, dof]), True
    warnings.warn("var(): degrees of freedom is <= 0. Correction should be strictly less than the "
                  "reduction factor (input numel divided by output numel).", UserWarning, stacklevel=3)  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        return _degenerate_var(a, dim, keepdim, mean, squares, dof), False


def _degenerate_var(a: Tensor, dim: Any, keepdim: bool, mean: Tensor, squares: Tensor, dof: float) -> Tensor:
    """torch where N - correction <= 0: the value is squares / 0 (inf; nan where all x are equal),
    the gradient torch's formula: g * where(x == m, nan, inf) over all elements (dim None);
    along dims g * 2 (x - m) / (N - correction), which is finite for N < correction. A
    surrogate sum(x * slope) - (the same, held constant), which is 0, carries that gradient."""
    infinite = dim is None or a.ndim == 0 or dof == 0  # the gradient is slope * inf
    centered = primitive("sub", [a, mean])
    if dim is None or a.ndim == 0:
        slope = primitive("ne", [a, mean])  # not x - m != 0: x = m = inf is "equal" (nan)
    else:
        slope = centered if dof == 0 else primitive("mul", [centered, 2.0 / dof])
    surrogate = _reduce("sum", primitive("mul", [a, primitive("stop_gradient", [slope])]), dim, keepdim)
    zero = primitive("sub", [surrogate, primitive("stop_gradient", [surrogate])])
    held = primitive("stop_gradient", [squares])
    if infinite:
        return primitive("div", [primitive("add", [held, zero]), 0.0])
    return primitive("add", [primitive("div", [held, 0.0]), zero])


def var(a: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *, correction: Any = None) -> Tensor:
    return recorded(_var(a, dim, unbiased, keepdim, correction)[0], "VarBackward0", "var", [a])


def std(a: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *, correction: Any = None) -> Tensor:
    """sqrt(var); where std is 0 its gradient is 0, as in torch (norm_sqrt: sqrt with 0 slope at 0)."""
    variance, regular = _var(a, dim, unbiased, keepdim, correction)
    result = primitive("norm_sqrt" if regular else "sqrt", [variance])
    return recorded(result, "StdBackward0", "std", [a])


def norm(a: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    if p == "fro" and isinstance(dim, (tuple, list)) and len(dim) > 2:  # torch: a matrix norm then
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(map(str, dim))}")
    absolute = primitive("abs", [a], float_dtype(a))
    if p in ("fro", 2, 2.0):
        result = primitive("norm_sqrt", [_reduce("sum", primitive("mul", [a, a], float_dtype(a)), dim, keepdim)])
    elif p in (float("inf"), "inf"):
        result = _reduce("amax", absolute, dim, keepdim)
    elif p == 1:
        result = _reduce("sum", absolute, dim, keepdim)
    else:
        powered = _reduce("sum", primitive("pow", [absolute, float(p)]), dim, keepdim)
        result = primitive("pow", [powered, 1.0 / float(p)])
    return recorded(result, "LinalgVectorNormBackward0", "norm", [a])


def _shifted_exp(a: Tensor, dim: Any) -> tuple[Tensor, Any]:
    """(exp(x - m), m) with m = amax(x) held constant (results do not depend on it), finite:
    0 where every element is -inf (avoids inf - inf) or where `dim` is empty (torch: an
    empty softmax, a logsumexp of -inf)."""
    if _count(a, dim) == 0:
        return primitive("exp", [a]), 0.0
    m = primitive("stop_gradient", [_reduce("amax", a, dim, True)])
    m = primitive("where", [primitive("isinf", [m]), 0.0, m])
    return primitive("exp", [primitive("sub", [a, m])]), m


def _logsumexp(a: Tensor, dim: Any, keepdim: bool) -> Tensor:
    """m + log(sum(exp(x - m)))."""
    e, m = _shifted_exp(a, dim)
    result = primitive("add", [primitive("log", [_reduce("sum", e, dim, True)]), m])
    if not keepdim:
        result = primitive("reshape", [result], shape=tuple(n for d, n in enumerate(a.shape) if d not in axes_of(a, dim)))
    return result


def logsumexp(a: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    return recorded(_logsumexp(a, dim, keepdim), "LogsumexpBackward0", "logsumexp", [a])


def softmax(a: Tensor, dim: int, dtype: Any = None) -> Tensor:
    e, _ = _shifted_exp(a, dim)
    return recorded(primitive("div", [e, _reduce("sum", e, dim, True)]), "SoftmaxBackward0", "softmax", [a])


def log_softmax(a: Tensor, dim: int, dtype: Any = None) -> Tensor:
    result = primitive("sub", [a, _logsumexp(a, dim, True)])
    return recorded(result, "LogSoftmaxBackward0", "log_softmax", [a])


def cumsum(a: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """A scan along `dim` in ceil(log2 n) steps (x[k:] += x[:-k] for k = 1, 2, 4, ...): every
    output sums exactly its prefix, so an inf or nan reaches only the outputs after it, as in
    torch (a product with triangular ones would add inf * 0 = nan to the earlier ones)."""
    result = primitive("reshape", [a], float_dtype(a), shape=a.shape)
    if a.ndim == 0:
        axes_of(a, dim)
        return recorded(result, "CumsumBackward0", "cumsum", [a])
    (axis,) = axes_of(a, dim)
    n, shift = a.shape[axis], 1
    while shift < n:
        def along(start: int) -> tuple:
            return tuple((start, 1, n - shift) if d == axis else (0, 1, m) for d, m in enumerate(a.shape))

        added = primitive("add", [primitive("index", [result], spec=along(shift)),
                                  primitive("index", [result], spec=along(0))])  # fmt: skip
        result = primitive("setitem", [result, added], spec=along(shift))
        shift *= 2
    return recorded(result, "CumsumBackward0", "cumsum", [a])
