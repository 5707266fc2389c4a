"""Affine index maps: how a loop index addresses each node of a fused expression.

A map has one row per dimension of the addressed node; a row `(base, coeffs)`
says that dimension's index is `base + coeffs . loop_index`. Views (broadcast,
slice, permute, size-1 reshapes) are maps, so they fuse without copies.
Imports node.py and the program contract.
"""

from __future__ import annotations

from .compiler.program import Access
from .node import Shape

Row = tuple[int, tuple[int, ...]]  # index along one dim = base + coeffs . loop_index
Map = tuple[Row, ...]  # one row per dimension of the node being addressed


def contiguous_strides(shape: Shape) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def identity_map(shape: Shape) -> Map:
    rank = len(shape)
    return tuple((0, tuple(int(k == d) for k in range(rank))) for d in range(rank))


def broadcast_map(amap: Map, shape: Shape, out_shape: Shape, rank: int) -> Map:
    """Rows addressing an input of `shape` that broadcasts to `out_shape` (addressed by `amap`)."""
    lead = len(out_shape) - len(shape)
    zero: Row = (0, (0,) * rank)
    return tuple(zero if n == 1 and out_shape[lead + d] != 1 else amap[lead + d]
                 for d, n in enumerate(shape))  # fmt: skip


def index_map(amap: Map, spec: tuple, rank: int) -> Map:
    rows, j = [], 0
    for entry in spec:
        if isinstance(entry, int):
            rows.append((entry, (0,) * rank))
        else:
            start, step, _ = entry
            base, coeffs = amap[j]
            rows.append((start + step * base, tuple(step * c for c in coeffs)))
            j += 1
    return tuple(rows)


def is_squeeze(shape: Shape, out_shape: Shape) -> bool:
    """Does reshaping `shape` to `out_shape` only add or remove size-1 dims?"""
    return [n for n in shape if n != 1] == [n for n in out_shape if n != 1]


def squeeze_map(amap: Map, shape: Shape, out_shape: Shape, rank: int) -> Map | None:
    """Rows for a reshape that only adds or removes size-1 dims; None for any other."""
    if not is_squeeze(shape, out_shape):
        return None
    kept = iter(row for row, n in zip(amap, out_shape) if n != 1)
    return tuple((0, (0,) * rank) if n == 1 else next(kept) for n in shape)


def permute_map(amap: Map, perm: tuple[int, ...]) -> Map:
    """Rows for the input of a permute: output dim d is input dim perm[d]."""
    rows: list[Row] = [(0, ())] * len(perm)
    for d, p in enumerate(perm):
        rows[p] = amap[d]
    return tuple(rows)


def zero_row(amap: Map, rank: int, dim: int) -> Map:
    """`amap` with dimension `dim` pinned to 0 (the gather/scatter index adds to it)."""
    return amap[:dim] + ((0, (0,) * rank),) + amap[dim + 1 :]


def access(buffer: int, shape: Shape, amap: Map, rank: int) -> Access:
    strides = contiguous_strides(shape)
    offset = sum(s * base for s, (base, _) in zip(strides, amap))
    loop = tuple(sum(s * row[1][k] for s, row in zip(strides, amap)) for k in range(rank))
    return Access(buffer, offset, loop)
