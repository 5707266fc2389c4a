"""RMSprop (optionally centered, with momentum and weight decay), torch's formulas.

Imports optim.optimizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..creation import tensor
from ..tensor import Tensor
from .optimizer import Optimizer, assign, lerp, step_count, value_of, zeros_state


class RMSprop(Optimizer):
    def __init__(self, params: Any, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:  # fmt: skip
        for name, value in (("learning rate", lr), ("epsilon value", eps), ("momentum value", momentum),
                            ("weight_decay value", weight_decay), ("alpha value", alpha)):  # fmt: skip
            if not 0.0 <= value:
                raise ValueError(f"Invalid {name}: {value}")
        if differentiable:
            raise NotImplementedError("symgrad's optimizers do not support differentiable=True")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)  # fmt: skip
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"], state["square_avg"] = tensor(0.0), zeros_state(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_state(p)
            if group["centered"]:
                state["grad_avg"] = zeros_state(p)
        return state

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self._init_state(p, group)
        alpha, param = group["alpha"], value_of(p)
        step_count(state)
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param  # g + λθ
        square_avg = value_of(state["square_avg"]) * alpha + (1 - alpha) * grad * grad  # v = αv + (1-α)g²
        assign(state["square_avg"], square_avg)
        if group["centered"]:
            grad_avg = lerp(value_of(state["grad_avg"]), grad, 1 - alpha)  # ḡ = αḡ + (1-α)g
            assign(state["grad_avg"], grad_avg)
            avg = np.sqrt(square_avg + (-1) * grad_avg * grad_avg) + group["eps"]  # sqrt(v - ḡ²) + ε
        else:
            avg = np.sqrt(square_avg) + group["eps"]
        if group["momentum"] > 0:
            buf = value_of(state["momentum_buffer"]) * group["momentum"] + grad / avg  # b = μb + g/avg
            assign(state["momentum_buffer"], buf)
            assign(p, param + (-group["lr"]) * buf)
        else:
            assign(p, param + (-group["lr"]) * grad / avg)
