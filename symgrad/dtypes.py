"""Tensor dtypes as torch names them (`symgrad.float32` prints `torch.float32`).

Owns the dtype objects and their numpy equivalents. Imports numpy only.
"""

from __future__ import annotations

import numpy as np


class dtype:  # noqa: N801 - torch's spelling, since users write `torch.dtype`
    __slots__ = ("name", "numpy", "is_floating_point", "itemsize")

    def __init__(self, name: str, numpy_dtype: type) -> None:
        self.name = name
        self.numpy = np.dtype(numpy_dtype)
        self.is_floating_point = self.numpy.kind == "f"
        self.itemsize = self.numpy.itemsize

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self) -> str:
        return self.name


float32 = dtype("float32", np.float32)
float64 = dtype("float64", np.float64)
int64 = dtype("int64", np.int64)
int32 = dtype("int32", np.int32)
bool_ = dtype("bool", np.bool_)
float = float32  # noqa: A001 - torch.float is float32
double = float64
long = int64

_BY_NUMPY = {d.numpy: d for d in (float32, float64, int64, int32, bool_)}

DEFAULT_FLOAT = float32


def from_numpy_dtype(np_dtype: np.dtype) -> dtype:
    try:
        return _BY_NUMPY[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(f"symgrad: unsupported dtype {np.dtype(np_dtype)}") from None


def as_dtype(d: object) -> dtype:
    """Accept a symgrad dtype, a numpy dtype or type, or a Python type."""
    if isinstance(d, dtype):
        return d
    if d is builtins_float:
        return float64  # torch: the Python type float is double
    if d is builtins_int:
        return int64
    if d is builtins_bool:
        return bool_
    return from_numpy_dtype(np.dtype(d))  # type: ignore[call-overload]


builtins_float, builtins_int, builtins_bool = type(0.0), int, bool
