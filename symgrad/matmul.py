"""The matmul primitive: numpy's batched matrix product of operands with ndim >= 2.

Batch dims are equal or absent on one side (the eager layer broadcasts the rest
explicitly, and the differentiation driver sums them back). Lowers to
a BLAS gemm call from the generated code. Imports registry and structural.
"""

from __future__ import annotations

import numpy as np

from .node import Node, Shape
from .registry import Primitive, apply, forms, register


def transpose_last(x: Node) -> Node:
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return apply("permute", x, perm=perm)


def _shape(attrs: tuple, a: Shape, b: Shape) -> Shape:
    if len(a) < 2 or len(b) < 2:
        raise ValueError("matmul primitive: both operands need at least 2 dimensions")
    if a[-1] != b[-2]:
        raise ValueError(f"mat1 and mat2 shapes cannot be multiplied ({a[-2]}x{a[-1]} and {b[-2]}x{b[-1]})")
    if a[:-2] and b[:-2] and a[:-2] != b[:-2]:
        raise ValueError("matmul primitive: batch dims must match or be absent (broadcast first)")
    return (a[:-2] or b[:-2]) + (a[-2], b[-1])


def _vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    a, b = out.inputs  # dA = g B^T, dB = A^T g (batch broadcasting is summed by the driver)
    return (apply("matmul", g, transpose_last(b)), apply("matmul", transpose_last(a), g))


register(Primitive(
    name="matmul", arity=2, kind="matmul",
    shape_rule=_shape, evaluate=lambda a, x, y: np.matmul(x, y), vjp=_vjp,
    to_sympy=lambda n, x, y: forms().MatMul(x, y),
    examples=({"shapes": [(3, 4), (4, 5)]}, {"shapes": [(2, 3, 4), (4, 2)]},
              {"shapes": [(2, 3, 4), (2, 4, 5)]}, {"shapes": [(1, 4), (4, 1)]}),
))  # fmt: skip
