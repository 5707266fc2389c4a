"""Tracing a Python function into the DAG: argument leaves, the trace scope, trace errors.

Inside a trace the function runs on tensors whose nodes are `ArgSlot` leaves (values
are those of the first call, for shapes and eager evaluation). Values that would steer
Python control flow are refused with a TraceError. Imports tensor and node.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .node import leaf, topo_order
from .tensor import Tensor, _trace_state, tracing


class TraceError(RuntimeError):
    """A traced function used a value that is only known when it is called."""


class ArgSlot:
    """A leaf standing for (part of) an argument: bound to an array at each call."""

    is_param = False

    def __init__(self, position: int, array: np.ndarray) -> None:
        self.position, self.array = position, array

    def value(self) -> np.ndarray:
        return self.array


@contextlib.contextmanager
def trace_scope(name: str) -> Iterator[None]:
    stack = getattr(_trace_state, "names", [])
    _trace_state.names = stack + [name]
    _trace_state.depth = getattr(_trace_state, "depth", 0) + 1
    try:
        yield
    finally:
        _trace_state.depth -= 1
        _trace_state.names = stack


def as_array(x: Any) -> np.ndarray:
    """An argument leaf's value: arrays keep their dtype, Python floats are float64."""
    if isinstance(x, Tensor):
        return x._value
    array = np.asarray(x)
    if array.dtype.byteorder == (">" if np.little_endian else "<"):  # foreign byte order: convert
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        return array
    raise TypeError(f"symgrad: cannot trace an argument of type {type(x).__name__} (dtype {array.dtype})")


def argument(x: Any, position: int) -> Tensor:
    """A traced argument: a tensor whose node is a fresh argument leaf.

    Integer arguments enter the compiled code as float64 (exact up to 2**53); the tensor
    keeps its integer value for eager evaluation during the trace.
    """
    array = as_array(x)
    t = Tensor._wrap(array)
    node_dtype = array.dtype.name if array.dtype.kind == "f" else "float64"
    t._node = leaf(array.shape, node_dtype, ArgSlot(position, array))
    return t


def is_traced(t: Tensor) -> bool:
    """Does this tensor's value depend on the arguments of a trace in progress?"""
    return tracing() and t._node is not None and any(
        n.op == "leaf" and isinstance(n.payload, ArgSlot) for n in topo_order([t._node]))


def refuse(t: Tensor, what: str) -> None:
    """Raise if `what` (bool(), .item(), ...) is asked of a traced tensor."""
    if is_traced(t):
        names = getattr(_trace_state, "names", ["?"])
        raise TraceError(
            f"{what} on a traced tensor inside `{names[-1]}`: its value depends on the function's "
            "arguments, which are only known when it is called. Mark that argument static "
            "(static_argnums=...) if it should be a Python value, or replace the Python control "
            "flow by symgrad.where(condition, a, b)."
        )
