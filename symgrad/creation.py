"""Tensor creation: `tensor`, `zeros`, `ones`, `randn`, the legacy typed constructors.

Imports dtypes and tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes
from .tensor import Tensor

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    global _rng
    _rng = np.random.default_rng(seed)


def _infer_dtype(array: np.ndarray, data: Any) -> np.dtype:
    if isinstance(data, np.ndarray) or array.dtype.kind not in "fiub":
        return array.dtype
    if array.dtype.kind == "f":
        return dtypes.DEFAULT_FLOAT.numpy
    return np.dtype(np.int64) if array.dtype.kind in "iu" else array.dtype


def _to_numpy(data: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        return data._value
    if isinstance(data, (list, tuple)):
        return np.array([_to_numpy(d) if isinstance(d, (Tensor, list, tuple)) else d for d in data])
    return np.asarray(data)


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    array = _to_numpy(data)
    dt = dtypes.as_dtype(dtype).numpy if dtype is not None else _infer_dtype(array, data)
    dtypes.from_numpy_dtype(dt)  # raises for unsupported dtypes
    t = Tensor._wrap(np.array(array, dtype=dt, copy=True))
    return t.requires_grad_(True) if requires_grad else t


def _shape(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(n) for n in size)


def _filled(fill: Any, size: tuple, dtype: Any, requires_grad: bool) -> Tensor:
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.DEFAULT_FLOAT
    t = Tensor._wrap(np.full(_shape(size), fill, dtype=dt.numpy))
    return t.requires_grad_(True) if requires_grad else t


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(0, size, dtype, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(1, size, dtype, requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
          generator: Any = None) -> Tensor:  # fmt: skip
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.DEFAULT_FLOAT
    t = Tensor._wrap(_rng.standard_normal(_shape(size)).astype(dt.numpy))
    return t.requires_grad_(True) if requires_grad else t


def legacy_constructor_value(args: tuple, dt: dtypes.dtype) -> np.ndarray:
    """`Tensor(2, 3)` is uninitialised of that size; `Tensor([..])` holds the data."""
    if len(args) == 1 and not isinstance(args[0], int):
        return np.array(_to_numpy(args[0]), dtype=dt.numpy)
    return np.zeros(_shape(args), dtype=dt.numpy)


def _typed(name: str, dt: dtypes.dtype) -> type:
    def new(cls: type, *args: Any) -> Tensor:
        return Tensor._wrap(legacy_constructor_value(args, dt))

    return type(name, (), {"__new__": new})


FloatTensor = _typed("FloatTensor", dtypes.float32)
DoubleTensor = _typed("DoubleTensor", dtypes.float64)
LongTensor = _typed("LongTensor", dtypes.int64)
