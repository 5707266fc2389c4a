"""torch.autograd.functional: jacobian, hessian, vjp, jvp, hvp, vhp.

Built on autograd.grad with create_graph, so each is a symbolic derivative (of a
derivative) compiled to native code. jvp uses the double-vjp trick. Imports engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .engine import grad
from .gradfn import enable_grad
from .tensor import Tensor


def _tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _prepare(inputs: Any) -> tuple[Tensor, ...]:
    return tuple(Tensor._wrap(t._value.copy()).requires_grad_(True) for t in _tuple(inputs))


def _grads(out: Tensor, ins: tuple[Tensor, ...], seed: Any, create_graph: bool) -> tuple[Tensor, ...]:
    found = grad(out, ins, grad_outputs=seed, create_graph=create_graph, allow_unused=True, retain_graph=True)
    return tuple(Tensor._wrap(np.zeros(t.shape, t._value.dtype)) if g is None else g for g, t in zip(found, ins))


def _single(x: tuple, was_tuple: bool) -> Any:
    return x if was_tuple else x[0]


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False) -> tuple:
    ins = _prepare(inputs)
    with enable_grad():
        out = func(*ins)
        grads = _grads(out, ins, v, create_graph)
    return out.detach(), _single(grads, isinstance(inputs, (tuple, list)))


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False) -> tuple:
    ins = _prepare(inputs)
    vs = _tuple(v) if v is not None else tuple(Tensor._wrap(np.ones(t.shape, t._value.dtype)) for t in ins)
    with enable_grad():
        out = func(*ins)
        u = Tensor._wrap(np.zeros(out.shape, out._value.dtype)).requires_grad_(True)
        g = grad(out, ins, grad_outputs=u, create_graph=True, allow_unused=True, retain_graph=True)
        total = sum(((gi * vi).sum() for gi, vi in zip(g, vs) if gi is not None), Tensor._wrap(np.zeros((), out._value.dtype)))
        (result,) = grad(total, (u,), create_graph=create_graph, allow_unused=True, retain_graph=True)
    if result is None:
        result = Tensor._wrap(np.zeros(out.shape, out._value.dtype))
    return out.detach(), result if create_graph else result.detach()


def jacobian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Any:  # fmt: skip
    ins = _prepare(inputs)
    with enable_grad():
        out = func(*ins)
        rows = []
        for k in range(max(out.numel(), 1) if out.numel() else 0):
            seed = np.zeros(out.numel(), out._value.dtype)
            seed[k] = 1
            rows.append(_grads(out, ins, Tensor._wrap(seed.reshape(out.shape)), create_graph))
    jac = []
    for j, t in enumerate(ins):
        stacked = np.stack([r[j]._value for r in rows]) if rows else np.zeros((0,) + t.shape)
        jac.append(Tensor._wrap(stacked.reshape(tuple(out.shape) + tuple(t.shape)).astype(t._value.dtype)))
    return _single(tuple(jac), isinstance(inputs, (tuple, list)))


def hessian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode") -> Any:  # fmt: skip
    def gradient(*xs: Tensor) -> Tensor:
        out = func(*xs)
        (g,) = grad(out, xs[:1], create_graph=True, retain_graph=True)
        return g

    if isinstance(inputs, (tuple, list)) and len(inputs) > 1:
        raise NotImplementedError("hessian of a function of several inputs")
    return jacobian(gradient, inputs[0] if isinstance(inputs, (tuple, list)) else inputs)


def vhp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False) -> tuple:
    ins = _prepare(inputs)
    with enable_grad():
        out = func(*ins)
        g = _grads(out, ins, None, True)
        vs = _tuple(v)
        total = sum(((gi * vi).sum() for gi, vi in zip(g, vs)), Tensor._wrap(np.zeros((), out._value.dtype)))
        hv = _grads(total, ins, None, create_graph)
    return out.detach(), _single(hv, isinstance(inputs, (tuple, list)))


hvp = vhp  # the Hessian of a scalar function is symmetric
