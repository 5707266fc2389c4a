"""torch.autograd for symgrad: grad, backward, Function, functional, grad mode, graph.Node.

A facade over engine.py (backward/grad), function.py (custom Functions) and
gradfn.py (grad_fn records). Imports those.
"""

from __future__ import annotations

from types import SimpleNamespace

from . import functional_autograd as functional
from .engine import backward, grad
from .function import Function
from .gradfn import (
                     GradFn,
                     enable_grad,
                     inference_mode,
                     is_grad_enabled,
                     no_grad,
                     set_grad_enabled,  # fmt: skip
)

graph = SimpleNamespace(Node=GradFn)

__all__ = ["Function", "backward", "enable_grad", "functional", "grad", "graph", "inference_mode",
           "is_grad_enabled", "no_grad", "set_grad_enabled"]  # fmt: skip
