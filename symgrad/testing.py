"""Gradient checking for users' own code: symbolic gradients against finite differences.

`gradcheck(fn, inputs)` compares the full Jacobian symgrad computes (compiled) with central
differences in float64 and raises GradcheckError naming the worst element;
`assert_grad_close` compares with gradients the user expects. The pytest plugin
(pytest_plugin.py) hands both out as a fixture. Imports transforms and pytree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .tensor import Tensor
from .transforms import compile as compile_fn
from .transforms import jacobian


class GradcheckError(AssertionError):
    """The symbolic and the numerical gradient disagree."""


def _arrays(inputs: Any) -> list[np.ndarray]:
    items = inputs if isinstance(inputs, (tuple, list)) else [inputs]
    return [np.array(x._value if isinstance(x, Tensor) else x, dtype=np.float64) for x in items]


def numerical_jacobian(fn: Callable, arrays: list[np.ndarray], k: int, eps: float) -> np.ndarray:
    """d fn / d arrays[k] by central differences, shaped output shape + input shape."""
    value = compile_fn(fn)

    def at(delta: np.ndarray) -> np.ndarray:
        moved = list(arrays)
        moved[k] = arrays[k] + delta
        return np.asarray(value(*moved), dtype=np.float64)

    out_shape = np.shape(at(np.zeros_like(arrays[k])))
    jac = np.zeros(out_shape + arrays[k].shape)
    for index in np.ndindex(arrays[k].shape):
        step = np.zeros_like(arrays[k])
        step[index] = eps
        jac[(...,) + index] = (at(step) - at(-step)) / (2 * eps)
    return jac


def gradcheck(fn: Callable, inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:  # fmt: skip
    """Check symgrad's Jacobian of `fn` at `inputs` (float64) against central differences."""
    arrays = _arrays(inputs)
    for k in range(len(arrays)):
        symbolic = np.asarray(jacobian(fn, argnums=k)(*arrays), dtype=np.float64)
        numeric = numerical_jacobian(fn, arrays, k, eps)
        problem = _worst(symbolic, numeric, atol, rtol)
        if problem is not None:
            message = f"gradcheck failed for input {k} (shape {list(arrays[k].shape)}): {problem}"
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def _worst(symbolic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float,
           reference: str = "numerical") -> str | None:  # fmt: skip
    if symbolic.shape != numeric.shape:
        return f"Jacobian shapes differ: symbolic {symbolic.shape}, numerical {numeric.shape}"
    excess = np.abs(symbolic - numeric) - (atol + rtol * np.abs(numeric))
    excess = np.where(np.isnan(symbolic) != np.isnan(numeric), np.inf, np.nan_to_num(excess, nan=0.0))
    if excess.size == 0 or excess.max() <= 0:
        return None
    index = np.unravel_index(int(np.argmax(excess)), excess.shape)
    got, want = float(symbolic[index]), float(numeric[index])
    return (f"worst element {tuple(int(i) for i in index)}: symbolic {got!r}, "
            f"{reference} {want!r} (|diff| {abs(got - want):.3g}, "
            f"allowed {atol + rtol * abs(numeric[index]):.3g}); {int((excess > 0).sum())} of "
            f"{excess.size} elements out of tolerance")  # fmt: skip


def assert_grad_close(fn: Callable, inputs: Any, expected: Sequence[Any], rtol: float = 1e-6,
                      atol: float = 1e-8) -> None:  # fmt: skip
    """The gradient of scalar `fn` with respect to each input is close to `expected`."""
    from .transforms import grad

    arrays = _arrays(inputs)
    got = grad(fn, argnums=tuple(range(len(arrays))))(*arrays)
    for k, (g, e) in enumerate(zip(got, expected)):
        problem = _worst(np.asarray(g, dtype=np.float64), np.asarray(e, dtype=np.float64), atol, rtol, "expected")
        if problem is not None:
            raise GradcheckError(f"gradient of input {k}: {problem}")
