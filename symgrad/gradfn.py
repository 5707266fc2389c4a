"""grad_fn records and grad mode: the bookkeeping of the eager API.

`grad_fn` objects are what users see (`<MulBackward0 object at 0x...>`, their
`next_functions`); the math lives in the DAG node of each tensor. A record also
keeps the user-level op and its operands, which inspection prints as the
forward formula. Imports the standard library only.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any


class _GradState(threading.local):
    enabled = True  # a class default: no failed attribute lookup per op in a new thread


_state = _GradState()


def is_grad_enabled() -> bool:
    return _state.enabled


def set_grad_enabled_flag(mode: bool) -> None:
    _state.enabled = bool(mode)


class _GradMode:
    """Context manager and decorator that sets grad mode, restoring it afterwards.

    Used as `@no_grad()` or bare `@no_grad`."""

    mode = True

    def __new__(cls, *args: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and cls in (no_grad, enable_grad):
            return cls()(args[0])  # the bare decorator form
        return super().__new__(cls)

    def __enter__(self) -> None:
        self._previous = is_grad_enabled()
        set_grad_enabled_flag(self.mode)

    def __exit__(self, *exc: object) -> None:
        set_grad_enabled_flag(self._previous)

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801 - torch's name
    mode = False


class enable_grad(_GradMode):  # noqa: N801
    mode = True


class inference_mode(_GradMode):  # noqa: N801 - in symgrad the same as no_grad
    mode = False

    def __init__(self, mode: bool = True) -> None:
        self.mode = not mode


class set_grad_enabled(_GradMode):  # noqa: N801
    """Sets grad mode at once (as a call) and restores it on exit (as a context manager)."""

    def __init__(self, mode: bool) -> None:
        self._previous = is_grad_enabled()
        self.mode = bool(mode)
        set_grad_enabled_flag(self.mode)

    def __enter__(self) -> None:
        set_grad_enabled_flag(self.mode)


class GradFn:
    """Base of every grad_fn object; the class name is torch's (AddBackward0, ...)."""

    # slots for what every record has (one is made per eager op); __dict__ for anything else
    __slots__ = ("_op", "_operands", "next_functions", "_freed", "__dict__", "__weakref__")

    def __init__(self, op: str, operands: tuple, next_functions: tuple) -> None:
        self._op = op  # the user-level operation, e.g. "mean"
        self._operands = operands  # tensors and Python numbers, for the forward formula
        self.next_functions = next_functions
        self._freed = 0  # the number of the backward (without retain_graph) that freed it

    _saves_tensors = True  # does torch's version of this node keep tensors that backward frees?

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {id(self):#x}>"


_SAVES_NOTHING = {"CopySlices", "AccumulateGrad", "CloneBackward0", "NegBackward0"}
_SAVES_NOTHING_PREFIXES = ("Add", "Sub", "Rsub", "Sum", "Mean", "View", "Unsqueeze", "Squeeze",
                           "Permute", "Transpose", "TBackward", "Expand", "Slice", "Select",
                           "Alias", "Cat", "Stack", "Split", "Repeat", "Flip", "ToCopy",
                           "UnsafeView")  # fmt: skip


class AccumulateGrad(GradFn):
    """A leaf's record. It holds its tensor weakly (the tensor holds it), so that dropping a
    leaf frees it at once instead of leaving a reference cycle for the garbage collector."""

    __slots__ = ("_variable",)
    _saves_tensors = False

    def __init__(self, variable: Any) -> None:
        super().__init__("leaf", (), ())
        self._variable = weakref.ref(variable)

    @property
    def variable(self) -> Any:
        return self._variable()


_classes: dict[str, type] = {}


def grad_fn_class(name: str) -> type:
    cls = _classes.get(name)
    if cls is None:
        saves = not (name in _SAVES_NOTHING or name.startswith(_SAVES_NOTHING_PREFIXES))
        cls = _classes[name] = type(name, (GradFn,), {"__module__": "torch.autograd.graph", "__slots__": (),
                                                      "_saves_tensors": saves})  # fmt: skip
    return cls


def make_grad_fn(name: str, op: str, operands: tuple, number_edges: bool = False,
                 after: GradFn | None = None) -> GradFn:  # fmt: skip
    """The record for `op(*operands)`, linked to the grad_fn of each tensor operand.

    torch gives a Python number operand of + - * / an empty edge (None, 0); `after`
    chains this record behind another one instead (multi-step indexing).
    """
    cls = grad_fn_class(name)
    if after is not None:
        return cls(op, operands, ((after, 0),))
    return cls(op, operands, edges(operands, number_edges)[0])


def edges(operands: tuple, number_edges: bool = False) -> tuple[tuple, bool]:
    """(next_functions of a record of `operands`, whether any of them leads to a gradient)."""
    nexts = []
    live = False
    for o in operands:
        if type(o) in NUMBERS:
            if number_edges:
                nexts.append(NO_EDGE)
        elif hasattr(o, "_grad_fn"):
            fn = o._grad_fn or edge(o)
            if fn is not None:
                live = True
            nexts.append((fn, 0))
        elif number_edges and isinstance(o, (int, float)):  # numpy's scalars
            nexts.append(NO_EDGE)
    return tuple(nexts), live


NUMBERS = frozenset({int, float, bool})  # Python's numbers (numpy's scalars are not among them)
NO_EDGE = (None, 0)


def edge(t: Any) -> GradFn | None:
    if not hasattr(t, "_grad_fn"):
        return None
    if t._grad_fn is not None:
        return t._grad_fn
    if not t.requires_grad:
        return None
    if t._accumulator is None:
        t._accumulator = AccumulateGrad(t)
    return t._accumulator


_backwards = itertools.count(1)


def free(roots: list[GradFn | None]) -> bool:
    """Mark every record under `roots` freed, in one walk; or mark nothing and return False
    when one of them was freed before and saves tensors (torch's error for a second backward).

    Each backward marks with its own number, so the mark is the walk's visited set too. A
    record freed before that saves nothing is walked through (its own flag only matters as
    that mark, which is why undoing may set it back to 0)."""
    mark = next(_backwards)
    found: list[GradFn] = []
    todo = [[(r, 0) for r in roots]]  # lists of edges: the roots', then each found record's
    for edges in todo:
        for n, _ in edges:
            if n is not None and n._freed is not mark:
                if n._freed and n._saves_tensors:
                    for m in found:
                        m._freed = 0
                    return False
                n._freed = mark
                found.append(n)
                todo.append(n.next_functions)
    return True


def walk(*roots: GradFn | None) -> list[GradFn]:
    """Every grad_fn record reachable from `roots` through next_functions (each once)."""
    found = [r for r in roots if r is not None]
    seen = {id(r) for r in found}
    k = 0
    while k < len(found):  # `found` is the work list too: records are appended as they are met
        for n, _ in found[k].next_functions:
            if n is not None and id(n) not in seen:
                seen.add(id(n))
                found.append(n)
        k += 1
    return found
