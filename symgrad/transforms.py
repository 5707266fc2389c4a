"""Compile-and-call: compile, grad, value_and_grad, jacobian, hessian, vjp, jvp.

Each transform traces the user's function once per input signature (tree structure,
shapes, dtypes, static arguments), builds the nodes of what it returns (values,
symbolic gradients), compiles them into one program and from then on only calls
native code. Called on traced tensors (inside another transform) a transform returns
tensors with nodes instead, so transforms compose: grad(grad(f)), jacobian(grad(f)),
compile(value_and_grad(f)). Imports staged (which compiles and calls), differentiate, node, pytree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import pytree
from .differentiate import vjp as symbolic_vjp
from .node import Node, const
from .registry import apply
from .staged import LIVE, Staged  # noqa: F401 - LIVE: symgrad.cache_info reads it here
from .structural import zeros
from .tensor import Tensor


def _node_of(x: Any) -> Node | None:
    if isinstance(x, Tensor):
        return x.graph_node() if x._node is None else x._node
    return None


def _grads(out: Node, seed: Node, wrt: list[Node]) -> list[Node]:
    found = symbolic_vjp([out], [seed], wrt)
    return [zeros(w.shape, w.dtype) if g is None else g for g, w in zip(found, wrt)]


# ---- the transforms ---------------------------------------------------------------------


def _outputs(out: Any) -> Any:
    return pytree.tree_map(lambda x: _node_of(x) if isinstance(x, Tensor) else x, out)


def _scalar_output(out: Any, who: str) -> Node:
    node = _node_of(out) if isinstance(out, Tensor) else None
    if node is None or node.size != 1:
        shape = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise TypeError(f"{who}: the function must return a scalar tensor (one element), got {shape}")
    return node if node.shape == () else apply("reshape", node, shape=())


def _selected(args: list[Any], argnums: Any) -> tuple[list[Any], bool]:
    many = isinstance(argnums, (tuple, list))
    nums = list(argnums) if many else [argnums]
    return [args[i] for i in nums], many


def _grad_tree(loss: Node, args: list[Any], argnums: Any) -> Any:
    chosen, many = _selected(args, argnums)
    flat, treedef = pytree.flatten(chosen)
    wrt = [t._node for t in flat]
    seed = const(1.0, loss.dtype)
    grads = pytree.unflatten(treedef, _grads(loss, seed, wrt))
    return tuple(grads) if many else grads[0]


def compile(fn: Callable, static_argnums: Sequence[int] | int = ()) -> Staged:  # noqa: A001
    """`fn` compiled per input signature; results are numpy arrays in fn's output structure."""
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    return Staged(fn, lambda out, args, extra: _outputs(out), nums)


def grad(fn: Callable, argnums: Any = 0, has_aux: bool = False, static_argnums: Sequence[int] = ()) -> Staged:
    """The gradient of a scalar function with respect to argument(s) `argnums` (any tree)."""

    def build(out: Any, args: list[Any], extra: list[Node]) -> Any:
        value, aux = out if has_aux else (out, None)
        g = _grad_tree(_scalar_output(value, "grad"), args, argnums)
        return (g, _outputs(aux)) if has_aux else g

    return Staged(fn, build, tuple(static_argnums), f"grad({getattr(fn, '__name__', 'fn')})")


def value_and_grad(fn: Callable, argnums: Any = 0, has_aux: bool = False,
                   static_argnums: Sequence[int] = ()) -> Staged:  # fmt: skip
    """(value, gradient), or ((value, aux), gradient) with has_aux."""

    def build(out: Any, args: list[Any], extra: list[Node]) -> Any:
        value, aux = out if has_aux else (out, None)
        loss = _scalar_output(value, "value_and_grad")
        g = _grad_tree(loss, args, argnums)
        return ((_node_of(value), _outputs(aux)), g) if has_aux else (_node_of(value), g)

    return Staged(fn, build, tuple(static_argnums), f"value_and_grad({getattr(fn, '__name__', 'fn')})")


def _one_hot(shape: tuple, k: int, dtype: str) -> Node:
    index = np.unravel_index(k, shape)
    spec = tuple(int(i) for i in index)
    return apply("setitem", zeros(shape, dtype), const(1.0, dtype), spec=spec)


def _stack(rows: list[Node], out_shape: tuple, arg_shape: tuple, dtype: str) -> Node:
    """rows[k] (shape arg_shape) placed at out index k: the jacobian out_shape + arg_shape."""
    result = zeros(tuple(out_shape) + tuple(arg_shape), dtype)
    for k, row in enumerate(rows):
        index = tuple(int(i) for i in np.unravel_index(k, out_shape)) if out_shape else ()
        spec = index + tuple((0, 1, n) for n in arg_shape)
        result = apply("setitem", result, row, spec=spec)
    return result


def jacobian(fn: Callable, argnums: Any = 0, static_argnums: Sequence[int] = ()) -> Staged:
    """d fn / d args[argnums], shaped output shape + argument shape (reverse mode, one vjp
    per output element, each symbolic and all compiled into one program)."""

    def build(out: Any, args: list[Any], extra: list[Node]) -> Any:
        y = _node_of(out)
        chosen, many = _selected(args, argnums)
        flat, treedef = pytree.flatten(chosen)
        wrt = [t._node for t in flat]
        rows = [_grads(y, _one_hot(y.shape, k, y.dtype), wrt) for k in range(y.size)]
        jacs = [_stack([r[j] for r in rows], y.shape, w.shape, y.dtype) for j, w in enumerate(wrt)]
        tree = pytree.unflatten(treedef, jacs)
        return tuple(tree) if many else tree[0]

    return Staged(fn, build, tuple(static_argnums), f"jacobian({getattr(fn, '__name__', 'fn')})")


def hessian(fn: Callable, argnums: Any = 0, static_argnums: Sequence[int] = ()) -> Staged:
    """The matrix of second derivatives: jacobian(grad(fn))."""
    return jacobian(grad(fn, argnums, static_argnums=static_argnums), argnums, static_argnums)


def vjp(fn: Callable, *primals: Any) -> tuple[Any, Callable]:
    """(fn(*primals), vjp_fn): vjp_fn(cotangent) pulls the cotangent back to each primal."""
    n = len(primals)
    value = compile(fn)(*primals)
    pulled = grad(lambda *ys: (fn(*ys[:n]) * ys[n]).sum(), argnums=tuple(range(n)))
    pulled.name = f"vjp({getattr(fn, '__name__', 'fn')})"
    return value, lambda cotangent: pulled(*primals, cotangent)


def jvp(fn: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """(fn(*primals), J @ tangents), by differentiating the (linear) vjp once more."""
    n = len(primals)

    def directional(*args: Any) -> Any:
        xs, ts, u = args[:n], args[n : 2 * n], args[2 * n]
        pulled = grad(lambda *ys: (fn(*ys[:n]) * ys[n]).sum(), argnums=tuple(range(n)))(*xs, u)
        return sum(((g * t).sum() for g, t in zip(pulled, ts)), start=Tensor._wrap(np.zeros(())))

    value = compile(fn)(*primals)
    u0 = np.zeros(np.shape(value), dtype=np.asarray(value).dtype)
    tangent = grad(directional, argnums=2 * n)(*primals, *tangents, u0)
    return value, tangent
