"""Tensor text exactly as PyTorch prints it: ``repr``/``str`` of an eager tensor.

A port of ``torch/_tensor_str.py`` (strided CPU tensors, real dtypes) working on
numpy arrays, plus the print options of ``torch.set_printoptions``.
Imports numpy and the standard library only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np


@dataclasses.dataclass
class PrintOptions:
    """Module-wide print settings; mirrors torch's ``PRINT_OPTS``."""

    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = PrintOptions()

_PROFILES: dict[str, dict[str, Any]] = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}

# Keyed by (numpy kind, itemsize) so byte order and platform aliases do not matter.
_TORCH_DTYPE_NAMES: dict[tuple[str, int], str] = {
    ("f", 2): "torch.float16",
    ("f", 4): "torch.float32",
    ("f", 8): "torch.float64",
    ("i", 1): "torch.int8",
    ("i", 2): "torch.int16",
    ("i", 4): "torch.int32",
    ("i", 8): "torch.int64",
    ("u", 1): "torch.uint8",
    ("u", 2): "torch.uint16",
    ("u", 4): "torch.uint32",
    ("u", 8): "torch.uint64",
    ("b", 1): "torch.bool",
}
_DEFAULT_FLOAT = "torch.float32"
# Dtypes whose suffix torch omits for non-empty tensors (the values make them evident).
_IMPLIED_DTYPES = frozenset({_DEFAULT_FLOAT, "torch.int64", "torch.bool"})


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Same semantics as ``torch.set_printoptions``: a profile first, then overrides.

    Like torch, ``sci_mode`` is always assigned, so omitting it restores automatic choice,
    and an unknown profile name is ignored.
    """
    for name, value in _PROFILES.get(profile or "", {}).items():
        setattr(PRINT_OPTS, name, value)
    overrides = {
        "precision": precision,
        "threshold": threshold,
        "edgeitems": edgeitems,
        "linewidth": linewidth,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(PRINT_OPTS, name, value)
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """The current options, as keyword arguments for :func:`set_printoptions`."""
    return dataclasses.asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs: Any) -> Iterator[None]:
    """Temporarily change the print options (``torch._tensor_str.printoptions``)."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


def torch_dtype_name(dtype: np.dtype) -> str:
    """The torch spelling of a numpy dtype, e.g. ``torch.float64``."""
    dtype = np.dtype(dtype)
    try:
        return _TORCH_DTYPE_NAMES[(dtype.kind, dtype.itemsize)]
    except KeyError:
        raise TypeError(f"cannot print tensors of numpy dtype {dtype}") from None


class _Formatter:
    """Chooses one number style and column width for every element of a tensor."""

    def __init__(self, values: np.ndarray) -> None:
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        if not self.floating:
            self.max_width = max([1, *(len(f"{v}") for v in np.unique(values).tolist())])
            return
        nonzero_finite = values[np.isfinite(values) & (values != 0)]
        if nonzero_finite.size:
            self._fit_floats(nonzero_finite)

    def _fit_floats(self, nonzero_finite: np.ndarray) -> None:
        # torch compares magnitudes in float64, whatever the tensor's float dtype.
        magnitude = np.abs(nonzero_finite).astype(np.float64)
        smallest, largest = float(magnitude.min()), float(magnitude.max())
        self.int_mode = bool(np.all(nonzero_finite == np.ceil(nonzero_finite)))
        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
        else:
            self.sci_mode = PRINT_OPTS.sci_mode
        precision = PRINT_OPTS.precision
        for value in np.unique(nonzero_finite).tolist():
            if self.sci_mode:
                width = len(f"{value:.{precision}e}")
            elif self.int_mode:
                width = len(f"{value:.0f}") + 1  # room for the trailing "."
            else:
                width = len(f"{value:.{precision}f}")
            self.max_width = max(self.max_width, width)

    def format(self, value: float) -> str:
        """One element as given by ``tolist()`` (a float, int or bool), padded to width."""
        precision = PRINT_OPTS.precision
        if not self.floating:
            text = f"{value}"
        elif self.sci_mode:
            text = f"{value:{self.max_width}.{precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            if math.isfinite(value):
                text += "."  # marks integral values as floating point
        else:
            text = f"{value:.{precision}f}"
        return text.rjust(self.max_width)


def _summarized_values(values: np.ndarray) -> np.ndarray:
    """The flat elements left visible once a large tensor is summarised with ``...``."""
    edge = PRINT_OPTS.edgeitems
    if values.ndim == 0:
        return values.reshape(-1)
    if values.ndim == 1:
        # With edge == 0 torch's ``self[-0:]`` keeps the whole row; numpy slices the same way.
        if values.shape[0] > 2 * edge:
            return np.concatenate((values[:edge], values[-edge:]))
        return values
    if not edge:
        return np.empty(0, values.dtype)
    return np.concatenate([_summarized_values(values[i]) for i in _visible_rows(len(values))])


def _visible_rows(length: int) -> list[int]:
    edge = PRINT_OPTS.edgeitems
    if length > 2 * edge:
        return [*range(edge), *range(length - edge, length)]
    return list(range(length))


def _vector_str(row: np.ndarray, indent: int, summarize: bool, formatter: _Formatter) -> str:
    element_length = formatter.max_width + 2  # ", " between elements
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / element_length))
    edge = PRINT_OPTS.edgeitems
    if summarize and not edge:
        data = ["..."]
    elif summarize and row.shape[0] > 2 * edge:
        head = [formatter.format(v) for v in row[:edge].tolist()]
        tail = [formatter.format(v) for v in row[-edge:].tolist()]
        data = [*head, " ...", *tail]
    else:
        data = [formatter.format(v) for v in row.tolist()]
    lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(values: np.ndarray, indent: int, summarize: bool, formatter: _Formatter) -> str:
    if values.ndim == 0:
        return formatter.format(values.item())
    if values.ndim == 1:
        return _vector_str(values, indent, summarize, formatter)
    edge = PRINT_OPTS.edgeitems
    if summarize and values.shape[0] > 2 * edge:
        head = [_nested_str(values[i], indent + 1, summarize, formatter) for i in range(edge)]
        tail_rows = range(len(values) - edge, len(values))
        tail = [_nested_str(values[i], indent + 1, summarize, formatter) for i in tail_rows]
        slices = [*head, "...", *tail]
    else:
        slices = [_nested_str(sub, indent + 1, summarize, formatter) for sub in values]
    # One blank line between 3-d blocks, two between 4-d blocks, and so on.
    separator = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(slices) + "]"


def _tensor_str(values: np.ndarray, indent: int) -> str:
    if values.size == 0:
        return "[]"
    summarize = values.size > PRINT_OPTS.threshold
    formatter = _Formatter(_summarized_values(values) if summarize else values.reshape(-1))
    return _nested_str(values, indent, summarize, formatter)


def _add_suffixes(tensor_str: str, suffixes: list[str], indent: int) -> str:
    """Append ``, key=value`` parts, moving one to a new line when it would pass linewidth."""
    parts = [tensor_str]
    # torch's arithmetic, off by a few characters on purpose: keep it for identical wrapping.
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def _content_suffixes(values: np.ndarray, dtype_name: str) -> list[str]:
    if values.size == 0:
        # No elements to tell an int64 from a float32, so only the default float is implied.
        show_size = values.ndim != 1
        show_dtype = dtype_name != _DEFAULT_FLOAT
    else:
        show_size = not PRINT_OPTS.edgeitems
        show_dtype = dtype_name not in _IMPLIED_DTYPES
    suffixes = []
    if show_size:
        suffixes.append(f"size={tuple(values.shape)}")
    if show_dtype:
        suffixes.append(f"dtype={dtype_name}")
    return suffixes


def tensor_repr(
    values: np.ndarray, *, requires_grad: bool = False, grad_fn_name: str | None = None
) -> str:
    """``repr(t)`` of a CPU tensor holding ``values``, byte for byte as torch prints it.

    ``grad_fn_name`` (e.g. ``"MulBackward0"``) wins over ``requires_grad``, as in torch,
    where only leaves show ``requires_grad=True``.
    """
    values = np.asarray(values)
    prefix = "tensor("
    indent = len(prefix)
    suffixes = _content_suffixes(values, torch_dtype_name(values.dtype))
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + _tensor_str(values, indent), suffixes, indent)
