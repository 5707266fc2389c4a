"""Data-dependent indexing primitives: gather and scatter_add along one axis.

Indices are int64 runtime inputs computed eagerly (argmax, masks, index tensors),
so a compiled gradient serves every index value of the same shape. Semantics are
torch.gather / torch.scatter_add; negative indices count from the end.
Imports registry.
"""

from __future__ import annotations

import numpy as np

from .elementwise import zeros
from .node import Node, Shape
from .registry import Primitive, apply, forms, register


def _gather_eval(attrs: tuple, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    (axis,) = attrs
    return np.take_along_axis(x, _checked(idx, x.shape[axis]), axis=axis)


def _scatter_add_eval(attrs: tuple, base: np.ndarray, idx: np.ndarray, src: np.ndarray) -> np.ndarray:
    (axis,) = attrs
    out = base.copy()
    idx = _checked(idx, base.shape[axis])
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = idx
    np.add.at(out, tuple(grid), src[tuple(slice(0, n) for n in idx.shape)])
    return out


def _checked(idx: np.ndarray, bound: int) -> np.ndarray:
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -bound or idx.max() >= bound):
        bad = idx[(idx < -bound) | (idx >= bound)].flat[0]
        raise IndexError(f"index {bad} is out of bounds for dimension with size {bound}")
    return np.where(idx < 0, idx + bound, idx)


def _gather_shape(attrs: tuple, x: Shape, idx: Shape) -> Shape:
    (axis,) = attrs
    if len(x) != len(idx) or any(i > n for d, (i, n) in enumerate(zip(idx, x)) if d != axis):
        raise ValueError(f"gather: index shape {list(idx)} does not fit input shape {list(x)}")
    return tuple(idx)


def _gather_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    x, idx = out.inputs  # d gather -> scatter-add the cotangent into zeros of x's shape
    base = zeros(x.shape, g.dtype)
    return (apply("scatter_add", base, idx, g, axis=out.attrs[0]), None)


def _scatter_add_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    _, idx, src = out.inputs
    return (g, None, apply("gather", g, idx, axis=out.attrs[0]))


register(Primitive(
    name="gather", arity=2, kind="gather", attr_names=("axis",),
    shape_rule=_gather_shape, dtype_rule=lambda a, x, idx: x.dtype,
    evaluate=_gather_eval, vjp=_gather_vjp,
    to_sympy=lambda n, x, idx: forms().Gather(x, idx),
    examples=({"shapes": [(3, 4), (3, 5)], "axis": 1, "index_of": 1},
              {"shapes": [(4, 3), (2, 3)], "axis": 0, "index_of": 1}),
))  # fmt: skip

register(Primitive(
    name="scatter_add", arity=3, kind="scatter", attr_names=("axis",),
    shape_rule=lambda a, base, idx, src: base, dtype_rule=lambda a, base, idx, src: base.dtype,
    evaluate=_scatter_add_eval, vjp=_scatter_add_vjp,
    to_sympy=lambda n, base, idx, src: forms().ScatterAdd(base, idx, src),
    examples=({"shapes": [(3, 4), (3, 5), (3, 5)], "axis": 1, "index_of": 1},),
))  # fmt: skip
