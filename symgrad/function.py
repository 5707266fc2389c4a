"""Custom autograd Functions: torch.autograd.Function with forward(ctx, ...) / backward(ctx, ...).

The forward runs eagerly; the backward is traced into the DAG (called on placeholder
cotangents, with grad recording on), so a Function is a `custom` node whose vjp is
that traced expression: it simplifies, compiles and differentiates again like any
other. Traced expressions are keyed by structure, so a training loop compiles once.
Imports ops, tensor, node, registry, gradient, gradfn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .gradfn import enable_grad, grad_fn_class, is_grad_enabled, no_grad
from .gradient import ValueSlot, rebind
from .node import Node, leaf, structure_key
from .registry import Primitive, forms, register
from .tensor import Tensor, tracing

TEMPLATES: dict[tuple, tuple[list[Node | None], list[Node]]] = {}  # key -> (grads, template leaves)


class FunctionCtx:
    def __init__(self, inputs: tuple) -> None:
        self.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in inputs)
        self.saved_tensors: tuple = ()
        self.non_differentiable: set[int] = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        self.non_differentiable |= {id(t) for t in tensors}

    def mark_dirty(self, *tensors: Tensor) -> None:
        pass

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value


class Function:
    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: Any) -> Any:
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")  # fmt: skip

    @classmethod
    def apply(cls, *args: Any) -> Any:
        ctx = FunctionCtx(args)
        with enable_grad() if tracing() else no_grad():  # traced: the forward is part of the graph
            outputs = cls.forward(ctx, *args)
        many = isinstance(outputs, tuple)
        raw = list(outputs if many else (outputs,))
        outs = [_own(o) for o in raw]
        tensors = [a for a in args if isinstance(a, Tensor)]
        if (is_grad_enabled() or tracing()) and any(t._node is not None for t in tensors):
            for k, out in enumerate(outs):
                if id(raw[k]) not in ctx.non_differentiable and out._value.dtype.kind == "f":
                    _connect(cls, ctx, args, outs, k, raw)
        return tuple(outs) if many else outs[0]


def _own(o: Any) -> Any:
    return Tensor._wrap(o._value, o._storage) if isinstance(o, Tensor) else o


def _connect(cls: type, ctx: FunctionCtx, args: tuple, outs: list, k: int, raw: list) -> None:
    """Make outs[k] a `custom` node: its value a runtime input, its vjp the traced backward.

    In the traced backward, the cotangent is the placeholder leaf `g` and a saved output
    k is the placeholder `me`, which the vjp binds to the node itself: so the gradient
    stays differentiable (exp's backward uses exp's output, as in torch).
    """
    out = outs[k]
    g = leaf(out.shape, out._value.dtype.name, ValueSlot(np.ones(out.shape, out._value.dtype)))
    me = leaf(out.shape, out._value.dtype.name, ValueSlot(out._value))
    cotangents = [Tensor._wrap(np.zeros(o.shape, o._value.dtype)) if isinstance(o, Tensor) else None for o in outs]
    cotangents[k] = Tensor._wrap(g.payload.array)
    cotangents[k]._node = g
    saved = ctx.saved_tensors
    ctx.saved_tensors = tuple(_placeholder(out, me) if s is raw[k] else s for s in saved)
    try:
        with enable_grad():
            grads = cls.backward(ctx, *cotangents)
    finally:
        ctx.saved_tensors = saved
    grads = list(grads) if isinstance(grads, tuple) else [grads]
    inputs = [a for a in args]
    grad_nodes = [_grad_node(gr, a) for gr, a in zip(grads, inputs)]
    present = [n for n in grad_nodes if n is not None]
    key, order = structure_key([*present, g, me])
    others = [n for n in order if n.op == "leaf" and n is not g and n is not me]
    TEMPLATES.setdefault(key, (grad_nodes, [g, me, *others]))
    input_nodes = [a.graph_node() for a in inputs if isinstance(a, Tensor)]
    traced = raw[k]._node if isinstance(raw[k], Tensor) and tracing() else None
    value = traced if traced is not None else leaf(out.shape, out._value.dtype.name, ValueSlot(out._value, out._storage))
    from .registry import apply

    out._node = apply("custom", value, *input_nodes, *others, key=key, n_inputs=len(input_nodes))
    tensor_inputs = tuple(a for a in args if isinstance(a, Tensor))
    out._grad_fn = grad_fn_class(f"{cls.__name__}Backward")(cls.__name__, tensor_inputs, ())
    from .gradfn import make_grad_fn

    out._grad_fn.next_functions = make_grad_fn("x", "x", tensor_inputs).next_functions


def _placeholder(out: Tensor, me: Node) -> Tensor:
    t = Tensor._wrap(out._value, out._storage)
    t._node = me
    return t


def _grad_node(grad: Any, arg: Any) -> Node | None:
    if not isinstance(arg, Tensor) or grad is None:
        return None
    if not isinstance(grad, Tensor):
        raise TypeError(f"backward of a custom Function returned {type(grad).__name__} for a tensor input")
    if grad._node is None:  # a gradient that does not depend on the cotangent: a runtime input
        return leaf(arg.shape, arg._value.dtype.name, ValueSlot(np.broadcast_to(grad._value, arg.shape).astype(arg._value.dtype)))
    return grad._node


def _custom_vjp(g: Node, out: Node) -> tuple[Node | None, ...]:
    key, n_inputs = out.attrs
    grads, template_leaves = TEMPLATES[key]
    actual = [g, out, *out.inputs[1 + n_inputs :]]
    rebound = rebind(grads, template_leaves, actual)
    tensor_grads = iter(rebound)
    return (None, *(next(tensor_grads) for _ in range(n_inputs)), *([None] * (len(out.inputs) - 1 - n_inputs)))


register(Primitive(
    name="custom", arity=-1, kind="view", attr_names=("key", "n_inputs"),
    shape_rule=lambda a, value, *rest: value,
    dtype_rule=lambda a, value, *rest: value.dtype,
    evaluate=lambda a, value, *rest: value,
    vjp=_custom_vjp,
    to_sympy=lambda n, value, *rest: forms().CustomFunction(*rest[: n.attrs[1]]),
))  # fmt: skip


