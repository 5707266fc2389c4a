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


def _has_numpy_scalar(data: Any) -> bool:
    if isinstance(data, np.generic):
        return True
    return isinstance(data, (list, tuple)) and any(_has_numpy_scalar(d) for d in data)


def _infer_dtype(array: np.ndarray, data: Any) -> np.dtype:
    if isinstance(data, np.ndarray) or array.dtype.kind not in "fiub" or _has_numpy_scalar(data):
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
    _check_device(device)
    array = _to_numpy(data)
    dt = dtypes.as_dtype(dtype).numpy if dtype is not None else _infer_dtype(array, data)
    dtypes.from_numpy_dtype(dt)  # raises for unsupported dtypes
    t = Tensor._wrap(np.array(array, dtype=dt, copy=True))
    return t.requires_grad_(True) if requires_grad else t


def _check_device(dev: Any) -> None:
    if dev is not None and str(dev).split(":")[0] != "cpu":
        raise RuntimeError(f"symgrad runs on the CPU only; device {str(dev)!r} is not available")


def _shape(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(n) for n in size)


def _filled(fill: Any, size: tuple, dtype: Any, requires_grad: bool) -> Tensor:
    if requires_grad and dtype is not None and not dtypes.as_dtype(dtype).is_floating_point:
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
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


class _TypedTensorMeta(type):
    """isinstance(t, FloatTensor) is true for float32 tensors, as in torch."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor) and obj._value.dtype == cls.dtype.numpy


def _typed(name: str, dt: dtypes.dtype) -> type:
    def new(cls: type, *args: Any) -> Tensor:
        return Tensor._wrap(legacy_constructor_value(args, dt))

    return _TypedTensorMeta(name, (), {"__new__": new, "dtype": dt})


FloatTensor = _typed("FloatTensor", dtypes.float32)
DoubleTensor = _typed("DoubleTensor", dtypes.float64)
LongTensor = _typed("LongTensor", dtypes.int64)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or dtypes.as_dtype(dtype) == data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or dtypes.as_dtype(dtype).numpy == data.dtype):
        return Tensor._wrap(data)  # shares memory, as torch.as_tensor does
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    dtypes.from_numpy_dtype(array.dtype)
    return Tensor._wrap(array)


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = dtypes.bool_ if isinstance(fill_value, bool) else (
            dtypes.int64 if isinstance(fill_value, int) else dtypes.DEFAULT_FLOAT)  # fmt: skip
    return _filled(fill_value, (size,) if isinstance(size, int) else tuple(size), dtype, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(0, size, dtype, requires_grad)


def _like(fill: Any) -> Any:
    def make(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return _filled(fill, t.shape, dtype if dtype is not None else t.dtype, requires_grad)

    return make


zeros_like, ones_like, empty_like = _like(0), _like(1), _like(0)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled(fill_value, t.shape, dtype if dtype is not None else t.dtype, requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:  # fmt: skip
    if end is None:
        start, end = 0, start
    integral = all(isinstance(v, int) for v in (start, end, step))
    dt = dtypes.as_dtype(dtype) if dtype is not None else (dtypes.int64 if integral else dtypes.DEFAULT_FLOAT)
    t = Tensor._wrap(np.arange(start, end, step).astype(dt.numpy))
    return t.requires_grad_(True) if requires_grad else t


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:  # fmt: skip
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.DEFAULT_FLOAT
    t = Tensor._wrap(np.linspace(start, end, steps).astype(dt.numpy))
    return t.requires_grad_(True) if requires_grad else t


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.DEFAULT_FLOAT
    t = Tensor._wrap(np.eye(n, m, dtype=dt.numpy))
    return t.requires_grad_(True) if requires_grad else t


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, generator: Any = None) -> Tensor:
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.DEFAULT_FLOAT
    t = Tensor._wrap(_rng.random(_shape(size)).astype(dt.numpy))
    return t.requires_grad_(True) if requires_grad else t


def randint(low: int, high: Any = None, size: Any = None, dtype: Any = None, device: Any = None,
            generator: Any = None) -> Tensor:  # fmt: skip
    if size is None:
        low, high, size = 0, low, high
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.int64
    return Tensor._wrap(_rng.integers(low, high, size=tuple(size)).astype(dt.numpy))


def randn_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(*t.shape, dtype=dtype if dtype is not None else t.dtype, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return rand(*t.shape, dtype=dtype if dtype is not None else t.dtype, requires_grad=requires_grad)


class device:  # noqa: N801 - torch.device
    def __init__(self, kind: str = "cpu", index: int | None = None) -> None:
        if str(kind).split(":")[0] != "cpu":
            raise RuntimeError(f"symgrad runs on the CPU only; device {kind!r} is not available")
        self.type, self.index = "cpu", index

    def __repr__(self) -> str:
        return "device(type='cpu')"

    def __str__(self) -> str:
        return "cpu"
