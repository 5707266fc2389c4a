"""Reduction primitives: sum, prod, amax, amin over a set of axes.

Each lowers to one loop over the input's shape that accumulates into the
output with the record's store mode, after a fill with the mode's identity.
amax/amin split the gradient evenly among ties, as torch does. Imports registry.
"""

from __future__ import annotations

import numpy as np

from .node import Node, Shape, const
from .registry import Primitive, apply, forms, register
from .structural import keepdims_shape

# primitive -> (store mode, fill value)
ACCUMULATE = {"sum": ("sum", 0.0), "prod": ("prod", 1.0),
              "amax": ("max", -np.inf), "amin": ("min", np.inf)}  # fmt: skip


def _shape(attrs: tuple, shape: Shape) -> Shape:
    axes, keepdims = attrs
    if keepdims:
        return keepdims_shape(shape, axes)
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def expand_back(y: Node, x: Node, axes: tuple[int, ...], keepdims: bool) -> Node:
    """A reduced value broadcast back over the input's shape."""
    kept = y if keepdims else apply("reshape", y, shape=keepdims_shape(x.shape, axes))
    return apply("broadcast_to", kept, shape=x.shape)


def _sum_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    (x,) = out.inputs
    return (expand_back(g, x, *out.attrs),)


def _prod_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    """d prod / d x_i = the product of the other elements, as in torch: prod / x_i where x_i != 0;
    at a lone 0, the product of the nonzero elements; 0 where another element is 0 too. The
    second derivative is exact too: at one of two zeros, the term (sum of the zeros - x_i),
    which is 0, gives d/dx_k = the product of the rest for the other zero x_k."""
    (x,) = out.inputs
    axes, keepdims = out.attrs
    zero = apply("eq", x, const(0, x.dtype))
    nonzero = apply("where", zero, const(1, x.dtype), x)  # also the divisor: no 0/0 in 2nd order
    count = apply("sum", zero, axes=axes, keepdims=keepdims)
    lone, pair = (apply("eq", count, const(k, x.dtype)) for k in (1, 2))
    zeros_sum = apply("sum", apply("where", zero, x, const(0, x.dtype)), axes=axes, keepdims=keepdims)
    others = expand_back(apply("prod", nonzero, axes=axes, keepdims=keepdims), x, axes, keepdims)
    paired = apply("mul", expand_back(pair, x, axes, keepdims),
                   apply("sub", expand_back(zeros_sum, x, axes, keepdims), x))  # fmt: skip
    at_zero = apply("mul", others, apply("add", expand_back(lone, x, axes, keepdims), paired))
    slope = apply("where", zero, at_zero, apply("div", expand_back(out, x, axes, keepdims), nonzero))
    return (apply("mul", expand_back(g, x, axes, keepdims), slope),)


def _extreme_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    (x,) = out.inputs  # the gradient is shared evenly by the elements equal to the extreme
    hit = apply("eq", x, expand_back(out, x, *out.attrs))
    count = apply("sum", hit, axes=out.attrs[0], keepdims=out.attrs[1])
    share = apply("div", g, count)
    return (apply("mul", hit, expand_back(share, x, *out.attrs)),)


def _reducer(name: str, fn, vjp) -> None:
    def to_sympy(node: Node, x: object) -> object:
        return forms().reduction(name, x, node.attrs[0], node.inputs[0].ndim)

    register(Primitive(
        name=name, arity=1, kind="reduce", attr_names=("axes", "keepdims"),
        shape_rule=_shape,
        evaluate=lambda a, x: np.asarray(fn(x, axis=a[0], keepdims=a[1])),
        vjp=vjp, to_sympy=to_sympy,
        domain=(0.5, 2.0) if name == "prod" else (-2.0, 2.0),
        examples=({"shapes": [(3, 4)], "axes": (0, 1), "keepdims": False},
                  {"shapes": [(3, 4)], "axes": (1,), "keepdims": True},
                  {"shapes": [(2, 3, 4)], "axes": (0, 2), "keepdims": False}),
    ))  # fmt: skip


_reducer("sum", np.add.reduce, _sum_vjp)  # the ufunc methods: np.sum's wrapper costs ~1 µs
_reducer("prod", np.multiply.reduce, _prod_vjp)
_reducer("amax", np.maximum.reduce, _extreme_vjp)
_reducer("amin", np.minimum.reduce, _extreme_vjp)
