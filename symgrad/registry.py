"""The primitive registry: one record per primitive, and `apply` to build its node.

A `Primitive` holds everything about an op in one place: shape rule, numpy
evaluation, derivative (vjp), printer, and what the lowering needs. Records are
added by `elementwise.py` and `structural.py`. Imports node.py only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .node import Node, Shape, make

# vjp(g, out) -> one cotangent per input of `out`, or None for "no dependency".
Vjp = Callable[[Node, Node], tuple["Node | None", ...]]


@dataclass(frozen=True)
class Primitive:
    name: str
    arity: int  # -1 for a variable number of inputs
    kind: str  # "elementwise" | "reduce" | "view" | "setitem"
    shape_rule: Callable[..., Shape]  # (attrs, *input shapes) -> shape
    evaluate: Callable[..., np.ndarray]  # (attrs, *input arrays) -> array
    vjp: Vjp | None  # None: not differentiable (gradient zero almost everywhere)
    to_sympy: Callable[..., Any]  # (node, *sympy args) -> sympy expression
    attr_names: tuple[str, ...] = ()
    definition: Any = None  # elementwise: its Definition (sympy source, expansion, masks)
    opcode: str | None = None  # elementwise: the kernel opcode, if it is one
    dtype_rule: Callable[..., str] | None = None  # (attrs, *input nodes) -> dtype; default below
    domain: tuple[float, float] = (-2.0, 2.0)  # where tests sample inputs (smooth there)
    examples: tuple[dict, ...] = field(default=())  # {"shapes": [...], **attrs} for tests


REGISTRY: dict[str, Primitive] = {}


def forms() -> Any:
    """The sympy classes printers build (sympy_forms.py: imported when a formula is printed)."""
    from . import sympy_forms

    return sympy_forms


def register(prim: Primitive) -> Primitive:
    """Add `prim`; its numpy evaluation runs with numpy's floating-point errors ignored."""
    if prim.name in REGISTRY:
        raise ValueError(f"primitive {prim.name!r} registered twice")
    if not getattr(prim.evaluate, "quiet", False):
        prim = replace(prim, evaluate=quietly(prim.evaluate))
    REGISTRY[prim.name] = prim
    return prim


def quietly(evaluate: Callable[..., Any]) -> Callable[..., Any]:
    """`evaluate(attrs, *arrays)` giving IEEE results, as torch does, without numpy's warnings
    (inf - inf is nan, silently)."""

    def quiet(attrs: tuple, *arrays: Any) -> Any:
        if ERRORS is None:
            with np.errstate(all="ignore"):
                return evaluate(attrs, *arrays)
        token = ERRORS.set(IGNORE)  # what np.errstate(all="ignore") sets, without its ~1.5 µs
        try:
            return evaluate(attrs, *arrays)
        finally:
            ERRORS.reset(token)

    quiet.quiet = True  # type: ignore[attr-defined]
    return quiet


def _error_state() -> tuple[Any, Any]:
    """numpy's error-state context variable and its value under errstate(all="ignore"), or
    (None, None) when this numpy keeps its state elsewhere (then np.errstate is used)."""
    try:
        from numpy._core._ufunc_config import _extobj_contextvar as state
    except ImportError:
        return None, None
    with np.errstate(all="ignore"):
        return state, state.get()


ERRORS, IGNORE = _error_state()


def result_dtype(inputs: tuple[Node, ...]) -> str:
    """Constants are weakly typed; otherwise the widest float among the inputs."""
    typed = [i.dtype for i in inputs if i.op != "const" and i.dtype != "int64"]
    typed = typed or [i.dtype for i in inputs]
    return "float64" if "float64" in typed else typed[0]


def apply(name: str, *inputs: Node, **attrs: Any) -> Node:
    """The node `name(*inputs, **attrs)`, with its shape and dtype inferred."""
    return apply_tuple(name, inputs, tuple([attrs[a] for a in REGISTRY[name].attr_names]))


def apply_tuple(name: str, inputs: tuple[Node, ...], attr_tuple: tuple) -> Node:
    """`apply` with the attributes in the record's `attr_names` order."""
    prim = REGISTRY[name]
    if prim.arity >= 0 and len(inputs) != prim.arity:  # arity -1: any number
        raise TypeError(f"{name} takes {prim.arity} inputs, got {len(inputs)}")
    shape = prim.shape_rule(attr_tuple, *(i.shape for i in inputs))
    dtype = prim.dtype_rule(attr_tuple, *inputs) if prim.dtype_rule else result_dtype(inputs)
    return make(name, inputs, attr_tuple, shape, dtype)


def rebuild(node: Node, inputs: Sequence[Node]) -> Node:
    """The node with the same op and attributes as `node`, over other inputs."""
    return apply(node.op, *inputs, **dict(zip(REGISTRY[node.op].attr_names, node.attrs)))
