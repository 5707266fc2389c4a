"""Structural primitives: reductions, broadcasting, reshapes, basic indexing.

Index specs are normalised tuples with one entry per input dimension: an int
selects (and drops the dimension), `(start, step, length)` slices. Printers
show these ops at the tensor level. Imports registry.py and node.py.
"""

from __future__ import annotations

import numpy as np

from .elementwise import broadcast_shapes, zeros
from .node import Node, Shape, const
from .registry import Primitive, apply, forms, register

Spec = tuple  # tuple[int | tuple[int, int, int], ...]


def spec_to_numpy(spec: Spec) -> tuple:
    return tuple(e if isinstance(e, int) else _slice(*e) for e in spec)


def _slice(start: int, step: int, length: int) -> slice:
    stop = start + step * length
    return slice(start, stop if stop >= 0 else None, step)  # a negative step may run past 0


def spec_to_str(spec: Spec) -> str:
    parts = []
    for e in spec:
        if isinstance(e, int):
            parts.append(str(e))
        else:
            start, step, length = e
            stop = start + step * length
            parts.append(f"{start}:{stop}" + (f":{step}" if step != 1 else ""))
    return ", ".join(parts)


def spec_shape(spec: Spec) -> Shape:
    return tuple(e[2] for e in spec if not isinstance(e, int))


def keepdims_shape(shape: Shape, axes: tuple[int, ...]) -> Shape:
    return tuple(1 if d in axes else n for d, n in enumerate(shape))


def _reshape_shape(attrs: tuple, shape: Shape) -> Shape:
    (new,) = attrs
    if int(np.prod(new, dtype=np.int64)) != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"shape '{list(new)}' is invalid for input of size {np.prod(shape)}")
    return tuple(new)


def _broadcast_shape(attrs: tuple, shape: Shape) -> Shape:
    (target,) = attrs
    if broadcast_shapes(shape, target) != tuple(target):
        raise ValueError(f"cannot broadcast shape {list(shape)} to {list(target)}")
    return tuple(target)


def _setitem_shape(attrs: tuple, base: Shape, value: Shape) -> Shape:
    region = spec_shape(attrs[0])
    if broadcast_shapes(value, region) != region:
        raise ValueError(f"shape mismatch: value of shape {list(value)} cannot be "
                         f"broadcast to indexing result of shape {list(region)}")  # fmt: skip
    return base


def _setitem_eval(attrs: tuple, base: np.ndarray, value: np.ndarray) -> np.ndarray:
    out = base.copy()
    out[spec_to_numpy(attrs[0])] = value
    return out


def _index_name(spec: Spec) -> object:
    return forms().index_symbol(spec_to_str(spec))


register(Primitive(
    name="broadcast_to", arity=1, kind="view", attr_names=("shape",),
    shape_rule=_broadcast_shape,
    evaluate=lambda a, x: np.broadcast_to(x, a[0]),
    vjp=lambda g, out: (g,),  # the driver sums the broadcast dimensions back
    examples=({"shapes": [(3, 1)], "shape": (2, 3, 4)}, {"shapes": [()], "shape": (2, 2)}),
    to_sympy=lambda n, x: x,
))  # fmt: skip

register(Primitive(
    name="reshape", arity=1, kind="view", attr_names=("shape",),
    shape_rule=_reshape_shape,
    evaluate=lambda a, x: np.reshape(x, a[0]),
    vjp=lambda g, out: (apply("reshape", g, shape=out.inputs[0].shape),),
    examples=({"shapes": [(3, 4)], "shape": (2, 6)}, {"shapes": [(3, 4)], "shape": (1, 3, 1, 4)}),
    to_sympy=lambda n, x: x,
))  # fmt: skip

register(Primitive(
    name="index", arity=1, kind="view", attr_names=("spec",),
    shape_rule=lambda a, shape: spec_shape(a[0]),
    evaluate=lambda a, x: np.asarray(x[spec_to_numpy(a[0])]),
    # d x[i] -> scatter the cotangent into zeros of x's shape
    vjp=lambda g, out: (apply("setitem", zeros(out.inputs[0].shape, g.dtype), g,
                              spec=out.attrs[0]),),
    to_sympy=lambda n, x: forms().Subscript(x, _index_name(n.attrs[0])),
    examples=({"shapes": [(4, 5)], "spec": (1, (0, 2, 3))}, {"shapes": [(4, 5)], "spec": ((1, 1, 2), 3)}),
))  # fmt: skip

register(Primitive(
    name="setitem", arity=2, kind="setitem", attr_names=("spec",),
    shape_rule=_setitem_shape,
    evaluate=_setitem_eval,
    # the base loses the overwritten region; the value receives it
    vjp=lambda g, out: (apply("setitem", g, const(0, g.dtype), spec=out.attrs[0]),
                        apply("index", g, spec=out.attrs[0])),
    to_sympy=lambda n, base, value: forms().Setitem(base, value, _index_name(n.attrs[0])),
    examples=({"shapes": [(4, 5), (2,)], "spec": (1, (1, 2, 2))},
              {"shapes": [(4, 5), ()], "spec": ((0, 3, 2), (1, 1, 3))}),
))  # fmt: skip


def _permute_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    (perm,) = out.attrs
    return (apply("permute", g, perm=tuple(int(i) for i in np.argsort(perm))),)


register(Primitive(
    name="permute", arity=1, kind="view", attr_names=("perm",),
    shape_rule=lambda a, shape: tuple(shape[p] for p in a[0]),
    evaluate=lambda a, x: np.transpose(x, a[0]),
    vjp=_permute_vjp,
    to_sympy=lambda n, x: forms().Permute(x, forms().dims_tuple(n.attrs[0])),
    examples=({"shapes": [(2, 3, 4)], "perm": (2, 0, 1)}, {"shapes": [(3, 4)], "perm": (1, 0)}),
))  # fmt: skip

register(Primitive(
    name="cast", arity=1, kind="cast", attr_names=("dtype",),
    shape_rule=lambda a, shape: shape,
    dtype_rule=lambda a, x: a[0],
    evaluate=lambda a, x: x.astype(a[0]),
    vjp=lambda g, out: (apply("cast", g, dtype=out.inputs[0].dtype),),
    to_sympy=lambda n, x: x,
    examples=({"shapes": [(3, 4)], "dtype": "float32"}, {"shapes": [(3,)], "dtype": "float64"}),
))  # fmt: skip

register(Primitive(
    name="stop_gradient", arity=1, kind="view",
    shape_rule=lambda a, shape: shape,
    evaluate=lambda a, x: x,
    vjp=None,  # x is treated as a constant by differentiation (torch's detach, inside a graph)
    to_sympy=lambda n, x: x,
    examples=({"shapes": [(3, 4)]},),
))  # fmt: skip
