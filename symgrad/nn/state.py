"""What happens to a Module's tensors as a whole: loading a state_dict, converting the
dtype in place, zeroing gradients (shared with the optimizers).

Works on any object with Module's tables (`_parameters`, `_buffers`, `named_modules`),
so it does not import nn.module. Imports tensor, autograd and nn.parameter.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..autograd import no_grad
from ..tensor import Tensor
from .parameter import Parameter


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def local_state(module: Any) -> dict[str, Tensor]:
    """A module's own entries of its state_dict: parameters, then persistent buffers."""
    buffers = {k: v for k, v in module._buffers.items() if k not in module._non_persistent_buffers_set}
    return {k: v for k, v in {**module._parameters, **buffers}.items() if v is not None}


def _load_local(module: Any, state: Mapping[str, Any], prefix: str, assign: bool,
                missing: list[str], errors: list[str]) -> None:  # fmt: skip
    for name, current in local_state(module).items():
        key = prefix + name
        given = state.get(key)
        if key not in state:
            missing.append(key)
        elif not isinstance(given, Tensor):
            errors.append(f'While copying the parameter named "{key}", expected torch.Tensor or '
                          f"Tensor-like object from checkpoint but received {type(given)}")  # fmt: skip
        elif given.shape != current.shape:
            errors.append(f"size mismatch for {key}: copying a param with shape {given.shape} from "
                          f"checkpoint, the shape in current model is {current.shape}.")  # fmt: skip
        elif assign:  # the module takes the given tensor; a Parameter keeps its requires_grad
            is_param = isinstance(current, Parameter)
            setattr(module, name, Parameter(given.detach(), current.requires_grad) if is_param else given)
        else:
            with no_grad():
                current.copy_(given)


def _quoted(keys: list[str]) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def load_state_dict(
    module: Any, state_dict: Mapping[str, Any], strict: bool, assign: bool
) -> IncompatibleKeys:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    missing: list[str] = []
    errors: list[str] = []
    expected: set[str] = set()
    for prefix, owner in module.named_modules(remove_duplicate=False):
        prefix = prefix + "." if prefix else ""
        _load_local(owner, state_dict, prefix, assign, missing, errors)
        expected.update(prefix + name for name in local_state(owner))
    unexpected = [k for k in state_dict if k not in expected]
    if strict and unexpected:
        errors.insert(0, f"Unexpected key(s) in state_dict: {_quoted(unexpected)}. ")
    if strict and missing:
        errors.insert(0, f"Missing key(s) in state_dict: {_quoted(missing)}. ")
    if errors:
        raise RuntimeError(
            f"Error(s) in loading state_dict for {type(module).__name__}:\n\t" + "\n\t".join(errors)
        )
    return IncompatibleKeys(missing, unexpected)


def convert_parameter(param: Parameter, convert: Callable[[Tensor], Tensor]) -> None:
    """Convert in place, keeping the Parameter object (torch's `param.data = fn(param)`)."""
    converted = convert(param.detach())
    if converted.dtype == param.dtype:
        return
    param.data = converted
    if param.requires_grad:  # the leaf's node still has the old dtype: make a fresh one
        param.requires_grad_(False).requires_grad_(True)
    if param.grad is not None:
        param.grad = convert(param.grad)


def zero_grads(params: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Module.zero_grad and Optimizer.zero_grad: drop the grads, or zero them in place."""
    for param in params:
        grad = param.grad
        if grad is None:
            continue
        if set_to_none:
            param.grad = None
            continue
        param.grad = grad.detach() if grad.grad_fn is not None else grad.requires_grad_(False)
        with no_grad():
            param.grad.zero_()
