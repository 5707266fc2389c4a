"""The eager Tensor: a numpy value, its autograd state, and its node in the DAG.

Forward values are computed eagerly with numpy; a tensor that requires grad
also carries the DAG node of its value in terms of the graph's leaves, which
`backward()` differentiates and compiles. Operators dispatch to ops.py.
Imports autograd, dtypes, node, gradient, printing.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np

from . import dtypes
from .gradfn import AccumulateGrad, GradFn, is_grad_enabled
from .gradient import ParamSlot, ValueSlot
from .node import Node, dtype_name, leaf
from .pending import Pending
from .printing import tensor_repr


class Size(tuple):
    def __repr__(self) -> str:
        return f"torch.Size({list(self)})"

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


class Storage:
    """What views of one array share: the version counter bumped by in-place writes."""

    version = 0  # a class default: making a Storage runs no Python code
    views: list | None = None  # index_ops.remember_view: (view, its base, how to remake it)


_NON_LEAF_GRAD = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more informations."
)


class Tensor:
    __slots__ = ("_value", "_storage", "_nd", "_grad_fn", "_grad", "_accumulator",
                 "_value_leaf", "_base", "_retains_grad", "_hooks", "__weakref__")  # fmt: skip

    def __init__(self, *data: Any) -> None:
        from .creation import legacy_constructor_value

        self._init(legacy_constructor_value(data, dtypes.DEFAULT_FLOAT))

    def _init(self, value: np.ndarray, storage: Storage | None = None) -> None:
        self._value = value
        self._storage = storage if storage is not None else Storage()
        self._nd: Node | Pending | None = None  # see the _node property
        self._grad_fn: GradFn | None = None
        self._grad: Tensor | None = None
        self._accumulator: AccumulateGrad | None = None
        self._value_leaf: tuple[int, Node] | None = None
        self._base: tuple[Tensor, Any] | None = None  # (base, index) for views made by indexing
        self._retains_grad = False
        self._hooks: list = []

    @classmethod
    def _wrap(cls, value: np.ndarray, storage: Storage | None = None) -> Tensor:
        t = cls.__new__(cls)
        t._init(value, storage)
        return t

    # ---- autograd state ---------------------------------------------------------------

    @property
    def _node(self) -> Node | None:
        """This tensor's DAG node (an eager op's node is built on first request, see pending.py)."""
        nd = self._nd
        if type(nd) is Node:
            if nd.op == "leaf" and nd.payload.is_param:  # read by an op that builds its node now
                nd.payload.use()
            return nd
        return nd if nd is None else (nd.node or nd.build())

    @_node.setter
    def _node(self, node: Node | None) -> None:
        self._nd = node

    @property
    def requires_grad(self) -> bool:
        """A computed tensor with a grad_fn, or a leaf marked requires_grad.

        Other tensors may carry a node too (comparisons, traced arguments): they take
        part in graphs without being differentiated.
        """
        if self._grad_fn is not None:
            return True
        node = self._nd  # a Pending is never a leaf
        return type(node) is Node and node.op == "leaf" and node.payload.is_param

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self._grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self._grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to "
                    "use a computed variable in a subgraph that doesn't require differentiation "
                    "use var_no_grad = var.detach()."
                )
            return self
        if requires_grad and self._value.dtype.kind != "f":
            raise RuntimeError("only Tensors of floating point and complex dtype can require gradients")
        if requires_grad and not self.requires_grad:
            self._node = leaf(self._value.shape, dtype_name(self._value.dtype), ParamSlot(self))
        elif not requires_grad and self.requires_grad:
            self._node = None
        return self

    @property
    def grad_fn(self) -> GradFn | None:
        return self._grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        if self._grad_fn is not None and not self._retains_grad:
            warnings.warn(_NON_LEAF_GRAD, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        self._grad = value

    def graph_node(self) -> Node:
        """This tensor's node: its expression if it requires grad, else a runtime input."""
        if self._node is not None:
            return self._node
        cached = self._value_leaf
        if cached is None or cached[0] != self._storage.version:
            slot = ValueSlot(self._value, self._storage, self._describe())
            cached = (self._storage.version, leaf(self._value.shape, dtype_name(self._value.dtype), slot))
            self._value_leaf = cached
        return cached[1]

    def _describe(self) -> str:
        return f"torch.{self.dtype.name.capitalize()}Tensor {list(self.shape)}"

    def backward(self, gradient: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Any = None) -> None:  # fmt: skip
        _engine().backward(self, gradient, retain_graph, create_graph, inputs)

    def retain_grad(self) -> None:
        from .engine import retain_grad

        retain_grad(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook: Any) -> Any:
        from .engine import register_hook

        return register_hook(self, hook)

    def detach(self) -> Tensor:
        return Tensor._wrap(self._value, self._storage)

    @property
    def data(self) -> Tensor:
        """The same memory, outside autograd: writes through it are not version-checked."""
        return Tensor._wrap(self._value, Storage())

    @data.setter
    def data(self, other: Tensor) -> None:
        reshaped = other._value.shape != self._value.shape or other._value.dtype != self._value.dtype
        self._value, self._storage = other._value, other._storage
        if reshaped and self.requires_grad and self.is_leaf:  # a new leaf of the new shape
            self._node = leaf(self._value.shape, dtype_name(self._value.dtype), ParamSlot(self))
        self._value_leaf = None

    def __deepcopy__(self, memo: dict) -> Tensor:
        copy = Tensor._wrap(self._value.copy())
        if self.requires_grad and self.is_leaf:
            copy.requires_grad_(True)
        memo[id(self)] = copy
        return copy

    # ---- protocol ---------------------------------------------------------------------

    @property
    def shape(self) -> Size:
        return Size(self._value.shape)

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self._value.shape[dim]

    @property
    def dtype(self) -> dtypes.dtype:
        return dtypes.from_numpy_dtype(self._value.dtype)

    @property
    def ndim(self) -> int:
        return self._value.ndim

    def dim(self) -> int:
        return self._value.ndim

    def numel(self) -> int:
        return int(self._value.size)

    def item(self) -> Any:
        _refuse_traced(self, ".item()")
        if self._value.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._value.size} elements cannot be converted to Scalar"
            )
        return self._value.reshape(()).item()

    def numpy(self) -> np.ndarray:
        _refuse_traced(self, ".numpy()")
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return self._value

    def tolist(self) -> Any:
        _refuse_traced(self, ".tolist()")
        return self._value.tolist()

    __array_priority__ = 1000  # numpy's scalars and arrays leave `np.float32(2) * t` to Tensor, as torch's

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        _refuse_traced(self, "numpy.asarray()")
        value = self.numpy()  # as torch: refused for a tensor that requires grad
        return value if dtype is None else value.astype(dtype)

    def __len__(self) -> int:
        if self._value.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._value)

    def __bool__(self) -> bool:
        _refuse_traced(self, "bool()")
        if self._value.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._value.reshape(()))

    def _scalar(self) -> Any:
        _refuse_traced(self, "float() / int()")
        if self._value.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        if self.requires_grad:
            warnings.warn("Converting a tensor with requires_grad=True to a scalar may lead to "
                          "unexpected behavior.\nConsider using tensor.detach() first.", UserWarning, stacklevel=3)  # fmt: skip
        return self._value.reshape(()).item()

    def __float__(self) -> float:
        return float(self._scalar())

    def __int__(self) -> int:
        return int(self._scalar())

    def __index__(self) -> int:
        if self._value.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._scalar())

    def __format__(self, spec: str) -> str:
        if self._value.size == 1 and self.ndim == 0:
            return format(self._value.item(), spec)
        return repr(self) if not spec else format(repr(self), spec)

    def __repr__(self) -> str:
        fn = self._grad_fn
        return tensor_repr(self._value, requires_grad=self.requires_grad and fn is None,
                           grad_fn_name=type(fn).__name__ if fn is not None else None)  # fmt: skip

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)


def _engine() -> Any:
    """engine.py (which imports this module): imported on the first backward."""
    global _ENGINE
    if _ENGINE is None:
        from . import engine

        _ENGINE = engine
    return _ENGINE


_ENGINE: Any = None


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def grad_enabled_for(*operands: Any) -> bool:
    """Should an op on these operands record its node? (grad mode, or a trace, and a node in)"""
    for o in operands:
        if isinstance(o, Tensor) and o._nd is not None:
            return is_grad_enabled() or tracing()
    return False


def _refuse_traced(t: Tensor, what: str) -> None:
    if tracing():
        from .trace import refuse

        refuse(t, what)


def tracing() -> bool:
    return _trace_state.depth > 0


class _TraceState(threading.local):
    depth = 0  # a class default: no failed attribute lookup per op in a new thread
    names: list = []


_trace_state = _TraceState()
