"""SGD with momentum, dampening, weight decay and Nesterov momentum (torch's formulas).

Imports optim.optimizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..creation import from_numpy
from ..tensor import Tensor
from .optimizer import Optimizer, assign, value_of


class SGD(Optimizer):
    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:  # fmt: skip
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if differentiable:
            raise NotImplementedError("symgrad's optimizers do not support differentiable=True")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)  # fmt: skip
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        param, momentum = value_of(p), group["momentum"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param  # g + λθ
        if momentum != 0:
            state = self.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = from_numpy(grad.copy())  # b_1 = g_1
            else:
                buf = state["momentum_buffer"]
                assign(buf, value_of(buf) * momentum + (1 - group["dampening"]) * grad)  # b = μb + (1-τ)g
            buf_value = value_of(state["momentum_buffer"])
            grad = grad + momentum * buf_value if group["nesterov"] else buf_value  # g + μb, or b
        assign(p, param + (-group["lr"]) * grad)  # θ - γg
