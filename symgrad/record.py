"""How an eager op is evaluated and recorded: the value with the primitives' numpy
evaluation and, while autograd records, a Pending for its DAG node (pending.py) and the
grad_fn record torch would attach.

`primitive` is the general path; `_recorded_binary` and `_recorded_unary` write it out
for the common cases (float tensors in a graph, Python numbers), and tests check them
against it. torch's dtype promotion is `result_dtype`. Imports registry, node, pending,
gradfn, gradient and tensor; ops.py declares torch's functions with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import dtypes
from .gradfn import NO_EDGE, NUMBERS, edge, edges, grad_fn_class
from .gradfn import _state as _grad_mode
from .gradient import SAVED_KINDS, ValueSlot, save_value
from .node import Node, const, dtype_name, leaf
from .pending import Pending
from .registry import REGISTRY, Primitive, apply
from .tensor import Tensor, _trace_state, tracing

Operand = Any  # Tensor or Python number


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def result_dtype(operands: Sequence[Operand]) -> np.dtype:
    """torch's promotion: dimensioned tensors, then 0-d tensors, then Python numbers.

    A later group only changes the result when its category (bool < int < float) is higher.
    """
    first = None  # the common case: float tensors of one dtype, and Python numbers
    for o in operands:
        if isinstance(o, Tensor):
            if first is None:
                first = o._value.dtype
            elif o._value.dtype is not first:
                break
        elif type(o) is not float and type(o) is not int:
            break
    else:
        if first is not None and first.kind == "f":
            return first
    tensors = [o for o in operands if isinstance(o, Tensor)]
    if tensors and all(t._value.dtype is tensors[0]._value.dtype for t in tensors):
        dt = tensors[0]._value.dtype  # one tensor dtype: only a Python float can change it
        if dt.kind == "f" or not any(isinstance(o, float) for o in operands if not isinstance(o, Tensor)):
            if dt.kind != "b" or all(isinstance(o, (Tensor, bool)) for o in operands):
                return dt
    groups = [
        [t._value.dtype for t in tensors if t.ndim > 0],
        [t._value.dtype for t in tensors if t.ndim == 0],
        [_scalar_dtype(o) for o in operands if not isinstance(o, Tensor)],
    ]
    result: np.dtype | None = None
    for group in groups:
        if not group:
            continue
        top = max(_CATEGORY[d.kind] for d in group)
        dt = np.result_type(*(d for d in group if _CATEGORY[d.kind] == top))  # float32 + int64 -> float32
        if result is None or _CATEGORY[dt.kind] > _CATEGORY[result.kind]:
            result = dt
    return result if result is not None else dtypes.DEFAULT_FLOAT.numpy


def _scalar_dtype(value: Any) -> np.dtype:
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, int):
        return np.dtype(np.int64)
    return dtypes.DEFAULT_FLOAT.numpy


def operand_array(o: Operand, dt: np.dtype) -> np.ndarray:
    if isinstance(o, Tensor):
        return o._value if o._value.dtype is dt else cast(o._value, dt)
    return np.asarray(o, dtype=dt)


def cast(v: np.ndarray, dt: np.dtype, copy: bool = False) -> np.ndarray:
    """`v` as `dt`, silently as torch casts (1e308 as float32 is inf)."""
    with np.errstate(all="ignore"):
        return v.astype(dt, copy=copy)


def operand_node(o: Operand, dt: np.dtype) -> Node:
    """The operand's node in dtype `dt`: differentiable casts, or converted runtime inputs."""
    name = _node_dtype(dt)
    if dt.kind != "f":  # graphs compute in floats: integers and booleans enter as float64
        dt = np.dtype(np.float64)
    if not isinstance(o, Tensor):
        return const(float(o), name)
    if o._node is not None:
        return o._node if o._node.dtype == name else apply("cast", o._node, dtype=name)
    if o._value.dtype == dt:
        return o.graph_node()
    return leaf(o.shape, name, ValueSlot(o._value.astype(dt)))


def primitive(name: str, operands: Sequence[Operand], dt: np.dtype | None = None, **attrs: Any) -> Tensor:
    """`name(*operands)` evaluated eagerly, with its DAG node when grad is being recorded."""
    prim = REGISTRY[name]
    if len(operands) == 1 and dt is None and _grad_mode.enabled and not _trace_state.depth:
        result = _recorded_unary(prim, operands[0], attrs)
        if result is not None:
            return result
    if dt is None:
        dt = result_dtype(operands)
    index = INDEX_OPERANDS.get(name, ())
    arrays = []  # one pass over the operands: their arrays, and what a Pending records
    recorded = []  # nodes and Pendings (None: a tensor outside the graph) and numbers
    in_graph = unbound = False
    for o in operands:
        if isinstance(o, Tensor):
            v, nd = o._value, o._nd
            arrays.append(v if v.dtype is dt or index else cast(v, dt))
            recorded.append(nd)
            if nd is not None:
                in_graph = True
            else:
                unbound = True
        else:
            arrays.append(_number_array(o, dt))
            recorded.append(o)
    if index:  # int64 positions stay int64, the others are cast
        arrays = [o._value if k in index else operand_array(o, dt) for k, o in enumerate(operands)]
    attr_tuple = tuple([attrs[a] for a in prim.attr_names]) if attrs else ()
    try:
        value = prim.evaluate(attr_tuple, *arrays)
    except ValueError:  # numpy broadcasts as torch does: only its error message differs
        if prim.kind == "elementwise":
            _check_broadcast([o._value.shape for o in operands if isinstance(o, Tensor)])
        raise
    if type(value) is not np.ndarray or value.dtype is not dt:
        value = np.asarray(value, dtype=dt)
    result = Tensor._wrap(value)
    traced = _trace_state.depth > 0  # tracing() and is_grad_enabled(), read without calls
    if in_graph and (traced or _grad_mode.enabled):  # as grad_enabled_for(*operands)
        if index or traced or name in SAVED_KINDS:  # the node now (traces read nodes as they go)
            nodes = [o.graph_node() if k in index else operand_node(o, dt) for k, o in enumerate(operands)]
            result._node = apply(name, *nodes, **attrs)
            if name in SAVED_KINDS and not traced:
                save_value(result._node, result._value, result._storage)
        else:  # the node when something asks for it (pending.py). A tensor outside the graph
            # is bound now, to the value it has now (so an in-place write to it before
            # backward is caught, as torch does)
            if unbound:
                recorded = [operand_node(o, dt) if isinstance(o, Tensor) and r is None else r
                            for o, r in zip(operands, recorded)]  # fmt: skip
            result._nd = Pending(name, tuple(recorded), attr_tuple, _node_dtype(dt), value.shape)
        if dt is _BOOL and prim.kind == "elementwise" and name not in _ZERO_ONE:  # graphs compute in
            # floats: a boolean result is its float value != 0 (True + True is True, not 2)
            nd = result._nd
            result._nd = (Pending("ne", (nd, 0), (), "float64", value.shape) if type(nd) is Pending
                          else apply("ne", nd, const(0.0, "float64")))  # fmt: skip
    return result


def _recorded_unary(prim: Primitive, a: Operand, attrs: dict) -> Tensor | None:
    """primitive(prim.name, [a], **attrs) written out for the common case while grad is
    recorded: `a` a float tensor in a graph. None for anything else (the general path)."""
    if type(a) is not Tensor or prim.name in SAVED_KINDS:
        return None
    va, nd = a._value, a._nd
    dt = va.dtype
    if nd is None or not (dt is _F64 or dt is _F32):
        return None
    attr_tuple = tuple([attrs[n] for n in prim.attr_names]) if attrs else ()
    value = prim.evaluate(attr_tuple, va)
    if type(value) is not np.ndarray or value.dtype is not dt:
        value = np.asarray(value, dtype=dt)
    result = Tensor._wrap(value)
    result._nd = Pending(prim.name, (nd,), attr_tuple, _NODE_DTYPES[dt], value.shape)
    return result


def then(t: Tensor, name: str, number: float) -> Tensor:
    """`primitive(name, [t, number])` for a tensor that a composite op just made and nobody
    else holds (mean's sum): the same value and Pending, in `t` itself (no second tensor)."""
    if type(t._nd) is not Pending:  # no graph, or nodes built at once (traces): in general
        return primitive(name, [t, number], t._value.dtype)
    dt = t._value.dtype
    value = REGISTRY[name].evaluate((), t._value, _number_array(number, dt))
    if type(value) is not np.ndarray or value.dtype is not dt:
        value = np.asarray(value, dtype=dt)
    t._value = value
    t._nd = Pending(name, (t._nd, number), (), t._nd.dtype, value.shape)
    return t


INDEX_OPERANDS = {"gather": (1,), "scatter_add": (1,)}
_F64, _F32, _BOOL = np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.bool_)
_ZERO_ONE = frozenset({"gt", "lt", "ge", "le", "eq", "ne", "isnan", "isinf"})  # already 1.0 or 0.0


def _number_array(o: Operand, dt: np.dtype) -> Any:
    """A number operand as a ufunc takes it in `dt`: a Python float for float32 and float64
    (the ufunc casts it as the array, NEP 50, without making a 0-d array), else a 0-d array."""
    return float(o) if (dt is _F64 or dt is _F32) and type(o) in NUMBERS else np.asarray(o, dtype=dt)


def _node_dtype(dt: np.dtype) -> str:
    """The dtype an op's graph computes in: floats as they are, integers and booleans as float64."""
    name = _NODE_DTYPES.get(dt)  # looked up: dt.kind and dt.name are slow on the hot path
    return name if name is not None else dtype_name(dt) if dt.kind == "f" else "float64"


_NODE_DTYPES = {np.dtype(n): n if n.startswith("float") else "float64"
                for n in ("float32", "float64", "int64", "int32", "bool")}  # fmt: skip


def _check_broadcast(shapes: list) -> None:
    """torch's error for shapes that do not broadcast (numpy's would be a ValueError)."""
    if all(s == shapes[0] or s == () for s in shapes):
        return
    ndim = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    for d in range(ndim):
        sizes = {p[d] for p in padded} - {1}
        if len(sizes) > 1:
            a, b = sorted(sizes, key=[p[d] for p in padded].index)[:2]
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) "
                               f"at non-singleton dimension {d}")


def recorded(result: Tensor, grad_fn: str, op: str, operands: Sequence[Operand],
             number_edges: bool = False) -> Tensor:  # fmt: skip
    """Attach the user-level grad_fn record (when `result` is differentiated)."""
    if result._nd is not None:
        operands = tuple(operands)
        nexts, live = edges(operands, number_edges)
        if live or tracing():  # traces keep records (formulas), whether or not they lead anywhere
            result._grad_fn = grad_fn_class(grad_fn)(op, operands, nexts)
    return result


def _float_operands(a: Operand, b: Operand) -> np.dtype:
    dt = result_dtype([a, b])
    return dt if dt.kind == "f" else dtypes.DEFAULT_FLOAT.numpy


FLOAT: Any = object()  # as binary's dt: a float result (torch's true division)


def binary(name: str, grad_fn: str, a: Operand, b: Operand, dt: np.dtype | None = None,
            number_edges: bool = True) -> Tensor:  # fmt: skip
    if type(a) is Tensor and (dt is None or dt is FLOAT) and _grad_mode.enabled and not _trace_state.depth:
        result = _recorded_binary(name, grad_fn, a, b, number_edges)
        if result is not None:
            return result
    if dt is FLOAT:
        dt = _float_operands(a, b)
    if not isinstance(b, (Tensor, int, float)) or not isinstance(a, (Tensor, int, float)):
        if isinstance(a, np.generic) or isinstance(b, np.generic):  # numpy's scalars: as torch,
            return binary(name, grad_fn, as_number(a), as_number(b), dt, number_edges)  # Python numbers
        return NotImplemented
    return recorded(primitive(name, [a, b], dt), grad_fn, name, [a, b], number_edges and name != "pow")


def _recorded_binary(name: str, grad_fn: str, a: Tensor, b: Operand, number_edges: bool) -> Tensor | None:
    """`recorded(primitive(name, [a, b]), ...)` written out for the common case while grad
    is recorded: `a` a float tensor in a graph, `b` a Python number or a tensor of the same
    dtype in a graph. None for anything else (the general path takes it)."""
    va, nd = a._value, a._nd
    dt = va.dtype
    if nd is None or not (dt is _F64 or dt is _F32):
        return None
    kind = type(b)
    try:
        if kind is float or kind is int:
            value = REGISTRY[name].evaluate((), va, float(b))
            operand = b
        elif kind is Tensor and b._value.dtype is dt and b._nd is not None:
            value = REGISTRY[name].evaluate((), va, b._value)
            operand = b._nd
        else:
            return None
    except ValueError:  # shapes that do not broadcast: the general path raises torch's error
        return None
    if type(value) is not np.ndarray or value.dtype is not dt:
        value = np.asarray(value, dtype=dt)
    result = Tensor._wrap(value)
    result._nd = Pending(name, (nd, operand), (), _NODE_DTYPES[dt], value.shape)
    fn = a._grad_fn or edge(a)
    if kind is Tensor:
        other = b._grad_fn or edge(b)
        if fn is not None or other is not None:
            result._grad_fn = grad_fn_class(grad_fn)(name, (a, b), ((fn, 0), (other, 0)))
    elif fn is not None:
        nexts = ((fn, 0), NO_EDGE) if number_edges and name != "pow" else ((fn, 0),)
        result._grad_fn = grad_fn_class(grad_fn)(name, (a, b), nexts)
    return result


def as_number(o: Operand) -> Operand:
    return o.item() if isinstance(o, np.generic) else o


def type_name(o: Any) -> str:
    """As torch names an argument's type in its errors: numpy.ndarray, list, str."""
    kind = type(o)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.split('.')[0]}.{kind.__name__}"
