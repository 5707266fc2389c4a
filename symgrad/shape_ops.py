"""Eager shape operations: views (reshape, permute, expand, narrow, flip, ...) and joins.

Views share storage with their input, as in torch; in the DAG they are affine maps
that fuse into their consumers. cat/stack write each part into its region of a new
tensor (setitem), so the gradient of each part is a slice. Imports ops and tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .index_ops import remember_view
from .record import primitive, recorded, result_dtype
from .reductions import axes_of
from .structural import spec_to_numpy
from .tensor import Size, Tensor


def _shape_arg(shape: tuple) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list, Size)) else tuple(shape)


def infer_shape(shape: tuple, numel: int) -> tuple[int, ...]:
    shape = tuple(int(n) for n in shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = int(np.prod([n for n in shape if n != -1], dtype=np.int64))
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if n == -1 else n for n in shape)
    if int(np.prod(shape, dtype=np.int64)) != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _view(a: Tensor, value: np.ndarray, prim: str, grad_fn: str, **attrs: Any) -> Tensor:
    result = primitive(prim, [a], a._value.dtype, **attrs)
    result._value, result._storage = value, a._storage
    remember_view(result, a, lambda base: _view(base, value, prim, grad_fn, **attrs))
    return recorded(result, grad_fn, prim, [a])


def reshape(a: Tensor, *shape: Any) -> Tensor:
    new = infer_shape(_shape_arg(shape), a.numel())
    return _view(a, a._value.reshape(new), "reshape", "ViewBackward0", shape=new)


view = reshape


def view_as(a: Tensor, other: Tensor) -> Tensor:
    return reshape(a, other.shape)


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if a.ndim == 0:
        return reshape(a, 1)
    s, e = start_dim % a.ndim, end_dim % a.ndim
    return reshape(a, a.shape[:s] + (-1,) + a.shape[e + 1 :])


def unflatten(a: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    d = dim % a.ndim
    return reshape(a, a.shape[:d] + tuple(sizes) + a.shape[d + 1 :])


def squeeze(a: Tensor, dim: Any = None) -> Tensor:
    dims = range(a.ndim) if dim is None else axes_of(a, dim)
    new = tuple(n for d, n in enumerate(a.shape) if not (d in dims and n == 1))
    name = "SqueezeBackward0" if dim is None else "SqueezeBackward1"
    return _view(a, a._value.reshape(new), "reshape", name, shape=new)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    if not -a.ndim - 1 <= dim <= a.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-a.ndim - 1}, {a.ndim}], but got {dim})")
    d = dim % (a.ndim + 1)
    new = a.shape[:d] + (1,) + a.shape[d:]
    return _view(a, a._value.reshape(new), "reshape", "UnsqueezeBackward0", shape=new)


def permute(a: Tensor, *dims: Any) -> Tensor:
    perm = tuple(d % a.ndim for d in _shape_arg(dims))
    if sorted(perm) != list(range(a.ndim)):
        raise RuntimeError(f"permute(): dims {list(perm)} are not a permutation of {a.ndim} dimensions")
    return _view(a, np.transpose(a._value, perm), "permute", "PermuteBackward0", perm=perm)


def transpose(a: Tensor, dim0: int, dim1: int, grad_fn: str = "TransposeBackward0") -> Tensor:
    if a.ndim == 0:
        axes_of(a, dim0), axes_of(a, dim1)
        return _view(a, a._value, "reshape", grad_fn, shape=())
    perm = list(range(a.ndim))
    d0, d1 = axes_of(a, dim0)[0] if a.ndim else 0, axes_of(a, dim1)[0] if a.ndim else 0
    perm[d0], perm[d1] = perm[d1], perm[d0]
    if a.ndim < 2:
        return _view(a, a._value, "reshape", grad_fn, shape=a.shape)
    return _view(a, np.transpose(a._value, perm), "permute", grad_fn, perm=tuple(perm))


def t(a: Tensor) -> Tensor:
    if a.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {a.ndim}D")
    return transpose(a, 0, -1, "TBackward0") if a.ndim == 2 else _view(a, a._value, "reshape", "TBackward0", shape=a.shape)


def T(a: Tensor) -> Tensor:  # noqa: N802 - torch's property name
    perm = tuple(reversed(range(a.ndim)))
    return _view(a, np.transpose(a._value), "permute", "PermuteBackward0", perm=perm)


def mT(a: Tensor) -> Tensor:  # noqa: N802
    return transpose(a, -2, -1)


def expand(a: Tensor, *sizes: Any) -> Tensor:
    sizes = _shape_arg(sizes)
    lead = len(sizes) - a.ndim
    new = tuple(a.shape[d - lead] if n == -1 else int(n) for d, n in enumerate(sizes))
    try:
        value = np.broadcast_to(a._value, new)
    except ValueError:
        raise RuntimeError(f"The expanded size of the tensor must match the existing size "
                           f"at non-singleton dimensions. Target sizes: {list(sizes)}. "
                           f"Tensor sizes: {list(a.shape)}") from None  # fmt: skip
    return _view(a, value, "broadcast_to", "ExpandBackward0", shape=new)


def expand_as(a: Tensor, other: Tensor) -> Tensor:
    return expand(a, other.shape)


def repeat(a: Tensor, *repeats: Any) -> Tensor:
    reps = _shape_arg(repeats)
    if len(reps) < a.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    shape = (1,) * (len(reps) - a.ndim) + tuple(a.shape)
    spread = tuple(v for n in shape for v in (1, n))  # (1, n) per dim, then broadcast the 1s
    tiled = tuple(v for r, n in zip(reps, shape) for v in (r, n))
    x = primitive("reshape", [a], shape=spread)
    x = primitive("broadcast_to", [x], shape=tiled)
    final = tuple(r * n for r, n in zip(reps, shape))
    result = primitive("reshape", [x], shape=final)
    return recorded(result, "RepeatBackward0", "repeat", [a])


def narrow(a: Tensor, dim: int, start: int, length: int) -> Tensor:
    (d,) = axes_of(a, dim)
    start = start % a.shape[d] if start < 0 else start
    if start + length > a.shape[d]:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({a.shape[d]}).")
    return _slice_along(a, d, start, 1, length, "SliceBackward0")


def _slice_along(a: Tensor, d: int, start: int, step: int, length: int, grad_fn: str) -> Tensor:
    spec = tuple((start, step, length) if k == d else (0, 1, n) for k, n in enumerate(a.shape))
    return _view(a, a._value[spec_to_numpy(spec)], "index", grad_fn, spec=spec)


def flip(a: Tensor, *dims: Any) -> Tensor:
    axes = axes_of(a, _shape_arg(dims))
    if a.ndim == 0:
        result = primitive("reshape", [a], a._value.dtype, shape=())
        result._value = a._value.copy()
        return recorded(result, "FlipBackward0", "flip", [a])
    spec = tuple((n - 1, -1, n) if k in axes else (0, 1, n) for k, n in enumerate(a.shape))
    result = primitive("index", [a], a._value.dtype, spec=spec)
    result._value = np.ascontiguousarray(result._value)  # torch's flip copies
    return recorded(result, "FlipBackward0", "flip", [a])


def split(a: Tensor, split_size: Any, dim: int = 0) -> tuple[Tensor, ...]:
    (d,) = axes_of(a, dim)
    n = a.shape[d]
    sizes = list(split_size) if isinstance(split_size, (list, tuple)) else (
        [split_size] * (n // split_size) + ([n % split_size] if n % split_size else []))  # fmt: skip
    if sum(sizes) != n:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n}")
    starts = np.cumsum([0] + sizes[:-1])
    name = "SplitWithSizesBackward0" if isinstance(split_size, (list, tuple)) else "SplitBackward0"
    return tuple(_slice_along(a, d, int(s), 1, k, name) for s, k in zip(starts, sizes))


def chunk(a: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    (d,) = axes_of(a, dim)
    size = -(-a.shape[d] // chunks)
    return split(a, max(size, 1), dim)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Parts of shape (0,) fit any shape, as in torch: they join as an empty slab (their
    gradient is empty, not None)."""
    tensors = list(tensors)
    shaped = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors
    first = shaped[0]
    (d,) = axes_of(first, dim)
    for t_ in shaped:
        if t_.ndim != first.ndim or any(t_.shape[k] != first.shape[k] for k in range(first.ndim) if k != d):
            raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. "
                               f"Expected size {first.shape} but got size {t_.shape} for a tensor in the list.")  # fmt: skip
    dt = result_dtype(tensors)
    total = sum(t_.shape[d] for t_ in shaped)
    shape = tuple(total if k == d else n for k, n in enumerate(first.shape))
    result = Tensor._wrap(np.zeros(shape, dtype=dt))
    slab = tuple(0 if k == d else n for k, n in enumerate(shape))
    offset = 0
    for part in tensors:
        if part.ndim != len(shape):
            part = primitive("reshape", [part], part._value.dtype, shape=slab)
        spec = tuple((offset, 1, part.shape[d]) if k == d else (0, 1, n) for k, n in enumerate(shape))
        result = primitive("setitem", [result, part], dt, spec=spec)
        offset += part.shape[d]
    return recorded(result, "CatBackward0", "cat", list(tensors))


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    result = cat([unsqueeze(t_, dim) for t_ in tensors], dim)
    return recorded(result, "StackBackward0", "stack", list(tensors))


def clone(a: Tensor, memory_format: Any = None) -> Tensor:
    result = primitive("reshape", [a], a._value.dtype, shape=a.shape)
    result._value = a._value.copy()
    return recorded(result, "CloneBackward0", "clone", [a])


def contiguous(a: Tensor, memory_format: Any = None) -> Tensor:
    return a
