"""torch.nn.functional: activations and losses, written in terms of symgrad's primitives.

Each function computes eagerly and records torch's grad_fn name; its gradient is the
symbolic derivative of the composite, compiled like any other. Imports the eager ops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import linalg, ops, reductions
from ..ops import float_dtype
from ..record import primitive, recorded
from ..tensor import Tensor

relu, sigmoid, tanh = ops.relu, ops.sigmoid, ops.tanh
softmax, log_softmax = reductions.softmax, reductions.log_softmax


def _reduce(loss: Tensor, reduction: str, weight_total: Any = None) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return reductions.sum(loss)
    if reduction == "mean":
        if weight_total is not None:
            return primitive("div", [primitive("sum", [loss], axes=tuple(range(loss.ndim)), keepdims=False), weight_total])
        return primitive("div", [primitive("sum", [loss], axes=tuple(range(loss.ndim)), keepdims=False), max(loss.numel(), 0)])
    raise ValueError(f"{reduction} is not a valid value for reduction")


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    out = linalg._matmul(x, primitive("permute", [weight], perm=(1, 0)) if weight.ndim == 2 else weight)
    if bias is None:
        return recorded(out, "MmBackward0" if x.ndim == 2 else "UnsafeViewBackward0", "linear", [x, weight])
    name = "AddmmBackward0" if x.ndim == 2 else "ViewBackward0"
    return recorded(primitive("add", [out, bias]), name, "linear", [x, weight, bias])


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    result = primitive("where", [ops.gt(x, 0), x, primitive("mul", [x, negative_slope])])
    return recorded(result, "LeakyReluBackward0", "leaky_relu", [x])


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    negative = primitive("mul", [alpha, primitive("expm1", [x])])
    return recorded(primitive("where", [ops.gt(x, 0), x, negative]), "EluBackward0", "elu", [x])


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    if approximate == "tanh":
        inner = primitive("mul", [math.sqrt(2 / math.pi), primitive("add", [x, primitive("mul", [0.044715, primitive("pow", [x, 3])])])])
        result = primitive("mul", [primitive("mul", [0.5, x]), primitive("add", [1.0, primitive("tanh", [inner])])])
    else:
        cdf = primitive("mul", [0.5, primitive("add", [1.0, primitive("erf", [primitive("mul", [x, 1 / math.sqrt(2)])])])])
        result = primitive("mul", [x, cdf])
    return recorded(result, "GeluBackward0", "gelu", [x])


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    return recorded(primitive("mul", [x, primitive("sigmoid", [x])]), "SiluBackward0", "silu", [x])


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    scaled = primitive("mul", [x, beta])
    soft = primitive("div", [primitive("log1p", [primitive("exp", [scaled])]), beta])
    result = primitive("where", [ops.gt(scaled, threshold), x, soft])
    return recorded(result, "SoftplusBackward0", "softplus", [x])


def mse_loss(x: Tensor, target: Tensor, size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> Tensor:
    diff = primitive("sub", [x, target])
    loss = _reduce(primitive("mul", [diff, diff]), reduction)
    return recorded(loss, "MseLossBackward0", "mse_loss", [x, target])


def l1_loss(x: Tensor, target: Tensor, size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> Tensor:
    loss = _reduce(primitive("abs", [primitive("sub", [x, target])]), reduction)
    return recorded(loss, "MeanBackward0" if reduction == "mean" else "SumBackward0", "l1_loss", [x, target])


def smooth_l1_loss(x: Tensor, target: Tensor, size_average: Any = None, reduce: Any = None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:  # fmt: skip
    d = primitive("abs", [primitive("sub", [x, target])])
    quadratic = primitive("div", [primitive("mul", [0.5, primitive("mul", [d, d])]), beta]) if beta > 0 else d
    linear_part = primitive("sub", [d, 0.5 * beta])
    loss = primitive("where", [ops.lt(d, beta), quadratic, linear_part])
    return recorded(_reduce(loss, reduction), "SmoothL1LossBackward0", "smooth_l1_loss", [x, target])


def nll_loss(x: Tensor, target: Tensor, weight: Tensor | None = None, size_average: Any = None,
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Tensor:  # fmt: skip
    """-w[t] * x[n, t] per sample, through a one-hot of the targets (so targets may be traced)."""
    logp = x if x.ndim > 1 else primitive("reshape", [x], shape=(1, x.shape[0]))
    n_classes, dt = logp.shape[1], logp._value.dtype
    t = target if target.ndim else target.reshape(1)
    _check_targets(t, n_classes, ignore_index)
    class_shape = (1, n_classes) + (1,) * (logp.ndim - 2)
    classes = Tensor._wrap(np.arange(n_classes, dtype=dt).reshape(class_shape))
    picked_t = primitive("reshape", [t], dt, shape=(t.shape[0], 1) + tuple(t.shape[1:]))
    onehot = primitive("eq", [picked_t, classes], dt)
    if weight is not None:
        onehot = primitive("mul", [onehot, primitive("reshape", [weight], shape=class_shape)])
    keep = primitive("ne", [picked_t, float(ignore_index)], dt)
    weights = primitive("mul", [_reduce_dim(onehot, 1), primitive("reshape", [keep], shape=tuple(t.shape))])
    picked = _reduce_dim(primitive("mul", [logp, onehot]), 1)
    loss = primitive("neg", [primitive("mul", [picked, primitive("reshape", [keep], shape=tuple(t.shape))])])
    if reduction == "mean":
        total = primitive("sum", [weights], axes=tuple(range(weights.ndim)), keepdims=False)
        result = primitive("div", [primitive("sum", [loss], axes=tuple(range(loss.ndim)), keepdims=False), total])
    else:
        result = _reduce(loss, reduction)
    if reduction == "none" and target.ndim == 0:
        result = primitive("reshape", [result], shape=())
    return recorded(result, "NllLossBackward0", "nll_loss", [x, target])


def _reduce_dim(t: Tensor, dim: int) -> Tensor:
    return primitive("sum", [t], axes=(dim,), keepdims=False)


def _check_targets(t: Tensor, n_classes: int, ignore_index: int) -> None:
    if t._node is not None:  # traced targets: checked by nothing but their values at call time
        return
    bad = (t._value != ignore_index) & ((t._value < 0) | (t._value >= n_classes))
    if bad.any():
        raise IndexError(f"Target {int(t._value[bad].flat[0])} is out of bounds.")


def cross_entropy(x: Tensor, target: Tensor, weight: Tensor | None = None, size_average: Any = None,
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:  # fmt: skip
    logp = reductions.log_softmax(x, 1 if x.ndim > 1 else 0)
    if target._value.dtype.kind == "f":  # class probabilities
        loss = primitive("neg", [primitive("sum", [primitive("mul", [logp, target])], axes=(1 if x.ndim > 1 else 0,), keepdims=False)])
        name = {"mean": "DivBackward1", "sum": "SumBackward0"}.get(reduction, "NegBackward0")
        return recorded(_reduce(loss, reduction), name, "cross_entropy", [x, target])
    if label_smoothing:
        raise NotImplementedError("cross_entropy: label_smoothing with class indices")
    result = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    return recorded(result, "NllLossBackward0", "cross_entropy", [x, target])


def binary_cross_entropy(p: Tensor, target: Tensor, weight: Tensor | None = None, size_average: Any = None,
                         reduce: Any = None, reduction: str = "mean") -> Tensor:  # fmt: skip
    if ((p._value < 0) | (p._value > 1)).any():
        raise RuntimeError("all elements of input should be between 0 and 1")
    log_p = primitive("maximum", [primitive("log", [p]), -100.0])  # torch clamps the logs at -100
    log_q = primitive("maximum", [primitive("log", [primitive("sub", [1.0, p])]), -100.0])
    loss = primitive("neg", [primitive("add", [primitive("mul", [target, log_p]),
                                               primitive("mul", [primitive("sub", [1.0, target]), log_q])])])  # fmt: skip
    if weight is not None:
        loss = primitive("mul", [loss, weight])
    return recorded(_reduce(loss, reduction), "BinaryCrossEntropyBackward0", "binary_cross_entropy", [p, target])


def binary_cross_entropy_with_logits(x: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average: Any = None, reduce: Any = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:  # fmt: skip
    # log(1 + exp(-|x|)) + max(-x, 0), the stable form of -log(sigmoid(x))
    softplus_neg = primitive("add", [primitive("log1p", [primitive("exp", [primitive("neg", [primitive("abs", [x])])])]),
                                     primitive("relu", [primitive("neg", [x])])])  # fmt: skip
    if pos_weight is None:
        loss = primitive("add", [primitive("mul", [primitive("sub", [1.0, target]), x]), softplus_neg])
    else:
        log_weight = primitive("add", [1.0, primitive("mul", [primitive("sub", [pos_weight, 1.0]), target])])
        loss = primitive("add", [primitive("mul", [primitive("sub", [1.0, target]), x]),
                                 primitive("mul", [log_weight, softplus_neg])])  # fmt: skip
    if weight is not None:
        loss = primitive("mul", [loss, weight])
    return recorded(_reduce(loss, reduction), "BinaryCrossEntropyWithLogitsBackward0",
                    "binary_cross_entropy_with_logits", [x, target])  # fmt: skip


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if not training or p == 0:
        return x
    from ..creation import _rng

    if p >= 1:
        keep = Tensor._wrap(np.zeros(x.shape, float_dtype(x)))
    else:
        keep = Tensor._wrap((_rng.random(x.shape) >= p).astype(float_dtype(x)) / (1 - p))
    return recorded(primitive("mul", [x, keep]), "MulBackward0", "dropout", [x])


