"""Basic indexing (ints, slices, None, Ellipsis) normalised into an index spec.

The spec has one entry per indexed dimension: an int selects it, a
`(start, step, length)` triple slices it. None entries only add size-1
dimensions, which the caller restores with a reshape. Imports nothing of symgrad.
"""

from __future__ import annotations

from typing import Any


def _expand_ellipsis(index: tuple, ndim: int) -> tuple:
    count = sum(1 for i in index if i is Ellipsis)
    if count > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    if used > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    if count == 0:
        return index + (slice(None),) * (ndim - used)
    k = index.index(Ellipsis)
    return index[:k] + (slice(None),) * (ndim - used) + index[k + 1 :]


def _entry(item: Any, dim: int, size: int) -> int | tuple[int, int, int]:
    if isinstance(item, bool) or not isinstance(item, (int, slice)) and not hasattr(item, "__index__"):
        raise NotImplementedError(
            f"indexing with {type(item).__name__} is not supported yet: use ints, slices, "
            "None and ... (tensor and mask indices are planned)"
        )
    if isinstance(item, slice):
        start, stop, step = item.indices(size)
        if step <= 0:
            raise ValueError("step must be greater than zero")
        return (start, step, len(range(start, stop, step)))
    k = item.__index__()
    if not -size <= k < size:
        raise IndexError(f"index {k} is out of bounds for dimension {dim} with size {size}")
    return k % size


def normalize_index(index: Any, shape: tuple[int, ...]) -> tuple[tuple, tuple[int, ...], list[str]]:
    """(spec, result shape, torch's grad_fn names) for `tensor[index]`.

    torch applies an index one part at a time, so `x[0, 1:]` is a SliceBackward0 after a
    SelectBackward0; full slices are skipped, except a lone `x[:]`.
    """
    items = _expand_ellipsis(index if isinstance(index, tuple) else (index,), len(shape))
    spec, out_shape, dim, steps = [], [], 0, []
    for item in items:
        if item is None:
            out_shape.append(1)
            steps.append("UnsqueezeBackward0")
            continue
        entry = _entry(item, dim, shape[dim])
        spec.append(entry)
        if isinstance(entry, int):
            steps.append("SelectBackward0")
        else:
            out_shape.append(entry[2])
            if entry != (0, 1, shape[dim]) or isinstance(index, slice):
                steps.append("SliceBackward0")
        dim += 1
    return tuple(spec), tuple(out_shape), steps or ["AliasBackward0"]
