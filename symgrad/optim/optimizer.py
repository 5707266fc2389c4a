"""The Optimizer base: param groups, per-parameter state, zero_grad, step, state_dict.

`step()` hands each parameter with a gradient to the subclass's `_update`: torch's
single-tensor formula in numpy (same dtype, same operation order), written back with
`copy_` under no_grad so version counters move. Imports tensor, autograd, creation, nn.state.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np

from ..autograd import enable_grad, no_grad
from ..creation import from_numpy
from ..nn.state import zero_grads
from ..tensor import Tensor


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def value_of(t: Tensor) -> np.ndarray:
    """The array behind `t` (shared, not copied)."""
    return t.detach().numpy()


def assign(t: Tensor, value: np.ndarray) -> None:
    """t[...] = value in place, unrecorded; bumps t's version counter."""
    with no_grad():
        t.copy_(from_numpy(np.asarray(value, dtype=t.dtype.numpy)))


def zeros_state(p: Tensor) -> Tensor:
    return from_numpy(np.zeros(p.shape, dtype=p.dtype.numpy))


def step_count(state: dict[str, Any]) -> float:
    """Advance state["step"] (a float32 scalar tensor, as torch keeps it) and return it."""
    step = state["step"].item() + 1
    assign(state["step"], np.asarray(step))
    return step


def lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """torch.lerp's formula, which switches form at weight 0.5 for accuracy."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


class Optimizer:
    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or "
                            f"dicts, but got {params.type()}")  # fmt: skip
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list instead.")  # fmt: skip
        params = [params] if isinstance(params, Tensor) else list(params)
        if params and all(isinstance(p, tuple) for p in params):
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}"
                )
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this "
                          "will cause an error; see github.com/pytorch/pytorch/issues/40967 for more "
                          "information", stacklevel=3)  # fmt: skip
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads((p for g in self.param_groups for p in g["params"]), set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        grad = value_of(p.grad)
                        self._update(p, -grad if group.get("maximize") else grad, group)
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        """One step for one parameter: torch's single-tensor update, in numpy (state in self.state[p])."""
        raise NotImplementedError

    # ---- state_dict --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": [index[id(p)] for p in group["params"]]})  # fmt: skip
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")  # fmt: skip
        by_id = dict(zip(chain.from_iterable(s["params"] for s in saved_groups),
                         chain.from_iterable(g["params"] for g in self.param_groups)))  # fmt: skip
        self.state = defaultdict(dict)
        for key, values in state_dict["state"].items():
            if key in by_id:
                p = by_id[key]
                self.state[p] = {k: _cast_state(k, v, p) for k, v in values.items()}
        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        self.param_groups = saved_groups

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            text += "".join(f"    {key}: {group[key]}\n" for key in sorted(group) if key != "params")
        return text + ")"


def _cast_state(key: str, value: Any, p: Tensor) -> Any:
    """A copy of a saved state entry, in the parameter's dtype (the step count is kept as is)."""
    if not isinstance(value, Tensor):
        return copy.deepcopy(value)
    value = value.detach().clone()
    return value if key == "step" or not p.is_floating_point() else value.to(p.dtype)
