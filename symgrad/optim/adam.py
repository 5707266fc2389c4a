"""Adam (with amsgrad and L2 weight decay) and AdamW (decoupled weight decay), torch's formulas.

Imports optim.optimizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..creation import tensor
from ..tensor import Tensor
from .optimizer import Optimizer, assign, lerp, step_count, value_of, zeros_state


class Adam(Optimizer):
    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:  # fmt: skip
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise NotImplementedError("symgrad's optimizers do not support differentiable=True")
        defaults = dict(lr=lr, betas=tuple(float(b) for b in betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)  # fmt: skip
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, amsgrad: bool) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = tensor(0.0)
            state["exp_avg"], state["exp_avg_sq"] = zeros_state(p), zeros_state(p)
            if amsgrad:
                state["max_exp_avg_sq"] = zeros_state(p)
        return state

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self._init_state(p, group["amsgrad"])
        (beta1, beta2), lr, weight_decay = group["betas"], group["lr"], group["weight_decay"]
        param, step = value_of(p), step_count(state)
        if weight_decay != 0 and group["decoupled_weight_decay"]:
            param = param * (1 - lr * weight_decay)  # θ(1 - γλ)
        elif weight_decay != 0:
            grad = grad + weight_decay * param  # g + λθ
        exp_avg = lerp(value_of(state["exp_avg"]), grad, 1 - beta1)  # m = β1 m + (1-β1) g
        exp_avg_sq = value_of(state["exp_avg_sq"]) * beta2 + (1 - beta2) * grad * grad  # v = β2 v + (1-β2) g²
        assign(state["exp_avg"], exp_avg)
        assign(state["exp_avg_sq"], exp_avg_sq)
        if group["amsgrad"]:
            exp_avg_sq = np.maximum(value_of(state["max_exp_avg_sq"]), exp_avg_sq)
            assign(state["max_exp_avg_sq"], exp_avg_sq)
        step_size = lr / (1 - beta1**step)
        denom = np.sqrt(exp_avg_sq) / (1 - beta2**step) ** 0.5 + group["eps"]  # sqrt(v / (1-β2^t)) + ε
        assign(p, param + (-step_size) * exp_avg / denom)  # θ - γ m / ((1-β1^t) denom)


class AdamW(Adam):
    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:  # fmt: skip
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)  # fmt: skip
