"""Eager linear algebra: matmul (@), mm, bmm, mv, dot, outer, einsum.

All reduce to the batched `matmul` primitive (BLAS from the generated code);
1-D operands are reshaped to matrices as numpy.matmul does. einsum handles the
common subscripts by permuting, broadcasting and multiplying, then summing.
Imports ops, shape_ops, reductions and tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .record import primitive, recorded, result_dtype
from .tensor import Tensor


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                           f"{a.ndim}D and {b.ndim}D")  # fmt: skip
    x = primitive("reshape", [a], shape=(1, a.shape[0])) if a.ndim == 1 else a
    y = primitive("reshape", [b], shape=(b.shape[0], 1)) if b.ndim == 1 else b
    if x.shape[-1] != y.shape[-2]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({x.shape[-2]}x{x.shape[-1]} "
                           f"and {y.shape[-2]}x{y.shape[-1]})")  # fmt: skip
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    x, y = (_batched(t, batch) for t in (x, y))
    out = primitive("matmul", [x, y], result_dtype([a, b]))
    shape = tuple(batch) + ((a.shape[-2],) if a.ndim > 1 else ()) + ((b.shape[-1],) if b.ndim > 1 else ())
    return out if out.shape == shape else primitive("reshape", [out], shape=shape)


def _batched(t: Tensor, batch: tuple) -> Tensor:
    """Broadcast the batch dims explicitly unless they already match (or t has none)."""
    if t.shape[:-2] == tuple(batch) or t.ndim == 2:
        return t
    return primitive("broadcast_to", [t], shape=tuple(batch) + tuple(t.shape[-2:]))


def matmul(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim == 1 and b.ndim == 1:
        return dot(a, b)
    name = "MmBackward0" if a.ndim == 2 and b.ndim == 2 else "MvBackward0" if a.ndim == 2 and b.ndim == 1 else (
        "UnsafeViewBackward0" if a.ndim > 2 else "MmBackward0")  # fmt: skip
    return recorded(_matmul(a, b), name, "matmul", [a, b])


def mm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError("self must be a matrix")
    return recorded(_matmul(a, b), "MmBackward0", "matmul", [a, b])


def bmm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    return recorded(_matmul(a, b), "BmmBackward0", "matmul", [a, b])


def mv(a: Tensor, v: Tensor) -> Tensor:
    if a.ndim != 2 or v.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {a.ndim}, {v.ndim}")
    return recorded(_matmul(a, v), "MvBackward0", "matmul", [a, v])


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape != b.shape:
        raise RuntimeError("inconsistent tensor size, expected tensor [%d] and src [%d] to have the same "
                           "number of elements, but got %d and %d elements respectively"
                           % (a.shape[0], b.shape[0], a.shape[0], b.shape[0]))  # fmt: skip
    return recorded(_matmul(a, b), "DotBackward0", "matmul", [a, b])


def outer(a: Tensor, b: Tensor) -> Tensor:
    x = primitive("reshape", [a], shape=(a.shape[0], 1))
    return recorded(primitive("mul", [x, b]), "MulBackward0", "outer", [a, b])


def einsum(equation: str, *operands: Any) -> Tensor:
    """Any explicit or implicit einsum without repeated indices inside one operand."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    inputs, output = _parse(equation.replace(" ", ""), len(operands))
    letters = sorted(set("".join(inputs)), key=lambda c: (c not in output, output.find(c), c))
    sizes: dict[str, int] = {}
    expanded = []
    for spec, t in zip(inputs, operands):
        if len(set(spec)) != len(spec) or len(spec) != t.ndim:
            raise NotImplementedError(f"einsum: operand subscripts {spec!r} (repeated or wrong count)")
        for c, n in zip(spec, t.shape):
            sizes.setdefault(c, n)
        perm = tuple(spec.index(c) for c in letters if c in spec)
        x = primitive("permute", [t], perm=perm) if perm != tuple(range(t.ndim)) else t
        shape = tuple(t.shape[spec.index(c)] if c in spec else 1 for c in letters)
        expanded.append(primitive("reshape", [x], shape=shape))
    product = expanded[0]
    for x in expanded[1:]:
        product = primitive("mul", [product, x], result_dtype([product, x]))
    summed = tuple(k for k, c in enumerate(letters) if c not in output)
    result = primitive("sum", [product], axes=summed, keepdims=False) if summed else product
    if any(c not in output for c in letters) or result.ndim != len(output):
        result = primitive("reshape", [result], shape=tuple(sizes[c] for c in output))
    return recorded(result, "ViewBackward0", "einsum", list(operands))


def _parse(equation: str, count: int) -> tuple[list[str], str]:
    if "..." in equation:
        raise NotImplementedError("einsum: ellipsis subscripts are not supported yet")
    lhs, _, rhs = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != count:
        raise RuntimeError(f"einsum(): {len(inputs)} subscripts for {count} operands")
    if "->" not in equation:
        letters = "".join(inputs)
        rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return inputs, rhs
