"""Eager indexing: reads and writes by ints, slices, None, ..., index tensors and masks;
index_select, gather, scatter(_add), index_add, masked_fill, masked_select.

Basic indexing is a view (the `index` primitive). Everything data-dependent becomes a
gather from, or a scatter-add into, the flattened tensor at int64 positions computed
eagerly by applying the same indexing to `arange(numel)`: the positions are runtime
inputs, so one compiled gradient serves every index value. Imports ops, autograd, tensor.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .gradfn import grad_fn_class, is_grad_enabled, make_grad_fn
from .indexing import normalize_index
from .node import Node
from .record import Operand, primitive, recorded
from .registry import apply
from .tensor import Tensor, _refuse_traced, grad_enabled_for

_LEAF_IN_PLACE = "a leaf Variable that requires grad is being used in an in-place operation."


def _numpy_index(index: Any) -> Any:
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if isinstance(item, Tensor):
            _refuse_traced(item, "indexing by a traced index tensor or mask")
    converted = tuple(i._value if isinstance(i, Tensor) else i for i in items)
    return converted if isinstance(index, tuple) else converted[0]


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, slice) or
               (isinstance(i, (int, np.integer)) and not isinstance(i, bool)) for i in items)  # fmt: skip


def positions(a: Tensor, select: Any, index: Any = None) -> np.ndarray:
    """The flat positions of `a` that `select(arange)` picks, as int64."""
    if isinstance(index, Tensor):
        _refuse_traced(index, "an index tensor or mask computed from traced values")
    return np.asarray(select(np.arange(a.numel(), dtype=np.int64).reshape(a.shape)), dtype=np.int64)


def _flat_gather(a: Tensor, flat: np.ndarray) -> Tensor:
    """a.flatten()[flat], shaped like `flat`, differentiable in a."""
    line = primitive("reshape", [a], a._value.dtype, shape=(a.numel(),))
    picked = primitive("gather", [line, Tensor._wrap(flat.reshape(-1))], a._value.dtype, axis=0)
    return primitive("reshape", [picked], shape=flat.shape)


def _flat_scatter_add(a: Tensor, flat: np.ndarray, src: Operand) -> Tensor:
    """a with src added at the flat positions (duplicates accumulate)."""
    src = src if isinstance(src, Tensor) else Tensor._wrap(np.asarray(src, dtype=a._value.dtype))
    src = primitive("broadcast_to", [src], a._value.dtype, shape=flat.shape) if src.shape != flat.shape else src
    line = primitive("reshape", [a], a._value.dtype, shape=(a.numel(),))
    values = primitive("reshape", [src], a._value.dtype, shape=(flat.size,))
    added = primitive("scatter_add", [line, Tensor._wrap(flat.reshape(-1)), values], a._value.dtype, axis=0)
    return primitive("reshape", [added], shape=a.shape)


def _flat_put(a: Tensor, flat: np.ndarray, src: Operand) -> Tensor:
    """a with src written at the flat positions (where(mask, scattered, a))."""
    mask = np.zeros(a.numel(), dtype=bool)
    mask[flat.reshape(-1)] = True
    zeros = Tensor._wrap(np.zeros(a.shape, dtype=a._value.dtype))
    scattered = _flat_scatter_add(zeros, flat, src)
    return primitive("where", [Tensor._wrap(mask.reshape(a.shape)), scattered, a], a._value.dtype)


def getitem(a: Tensor, index: Any) -> Tensor:
    if not _is_basic(index):
        np_index = _numpy_index(index)
        flat = positions(a, lambda r: r[np_index])
        return recorded(_flat_gather(a, flat), "IndexBackward0", "getitem", [a, index])
    spec, out_shape, steps = normalize_index(index, a.shape)
    result = Tensor._wrap(np.asarray(a._value[index]), a._storage)
    result._base = (a, index)
    remember_view(result, a, lambda base: getitem(base, index))
    if grad_enabled_for(a):
        node = apply("index", a.graph_node(), spec=spec)
        result._node = node if node.shape == out_shape else apply("reshape", node, shape=out_shape)
        chain = make_grad_fn(steps[0], "getitem", (a, index))
        for step in steps[1:]:
            chain = make_grad_fn(step, "getitem", (a, index), after=chain)
        result._grad_fn = chain
    return result


_SCALAR_TYPES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}


def _check_put_dtype(a: Tensor, index: Any, value: Tensor) -> None:
    """torch's index_put (a write through an index tensor) takes values of a's dtype only; a
    mask with a single value is a masked_fill, which converts it."""
    if value._value.dtype == a._value.dtype:
        return
    items = index if isinstance(index, tuple) else (index,)
    if value.numel() == 1 and any(isinstance(i, Tensor) and i._value.dtype == bool for i in items):
        return
    names = [_SCALAR_TYPES.get(t._value.dtype.name, t._value.dtype.name) for t in (a, value)]
    raise RuntimeError("Index put requires the source and destination dtypes match, "
                       f"got {names[0]} for the destination and {names[1]} for the source.")  # fmt: skip


def setitem(a: Tensor, index: Any, value: Operand) -> None:
    v = value if isinstance(value, Tensor) else Tensor._wrap(np.asarray(value, dtype=a._value.dtype))
    if not _is_basic(index) and isinstance(value, Tensor):
        _check_put_dtype(a, index, value)
    np_index = index if _is_basic(index) else _numpy_index(index)
    node = grad_fn = None
    if grad_enabled_for(a, v):
        before = snapshot(a)
        if _is_basic(index):
            spec, _, _ = normalize_index(index, a.shape)
            node = apply("setitem", before.graph_node(), cast_like(v, a).graph_node(), spec=spec)
        else:
            node = _flat_put(before, positions(a, lambda r: r[np_index]), v)._node
        grad_fn = make_grad_fn("CopySlices", "setitem", (before, v))
    write(a, lambda arr: arr.__setitem__(np_index, v._value), node, grad_fn)


def cast_like(v: Tensor, a: Tensor) -> Tensor:
    """v in a float a's dtype (a cast in the graph): a write into a keeps a's dtype."""
    dt = a._value.dtype
    if v._node is None or v._value.dtype == dt or dt.kind != "f":
        return v
    return primitive("cast", [v], dt, dtype=dt.name)


def snapshot(a: Tensor) -> Tensor:
    """`a` as it is now, before a write: its node, or (outside autograd) a copy of its values,
    so that the graph after the write still reads the values from before it."""
    if a._node is not None:
        before = Tensor._wrap(a._value, a._storage)
        before._node, before._grad_fn = a._node, a._grad_fn
        return before
    return Tensor._wrap(a._value.copy())


def write(a: Tensor, assign: Any, node: Node | None = None, grad_fn: Any = None) -> None:
    """An in-place write into `a`: the values in place, then (when recording) its new node."""
    if node is not None and a.requires_grad and a.is_leaf:
        raise RuntimeError(_LEAF_IN_PLACE)
    base = a._base[0] if a._base is not None else None
    if node is not None and base is not None and base.requires_grad and base.is_leaf:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                           "in-place operation.")  # fmt: skip
    assign(a._value)
    a._storage.version += 1
    if node is not None:
        a._node, a._grad_fn = node, grad_fn
        if base is not None:
            _write_back(base, a._base[1], a)
        _remake_views(base if base is not None else a, a)


def remember_view(view: Tensor, base: Tensor, remake: Any) -> None:
    """`view` shares `base`'s memory as `remake(base)`: after an in-place write into base (or
    into another view of it) that gives base a new node, `view` is remade from it, with
    torch's AsStridedBackward0 record, so that it reads base's new history."""
    if _REMAKING or not is_grad_enabled():
        return
    views = base._storage.views
    if views is None:
        views = base._storage.views = []
    elif len(views) >= 8 and not len(views) & (len(views) - 1):  # at 8, 16, 32...: drop the views
        views[:] = [v for v in views if v[0]() is not None]  # that died (a parameter gets new ones every step)
    views.append((weakref.ref(view), weakref.ref(base), remake))  # weakly: no cycle through the storage


def _remake_views(base: Tensor, written: Tensor) -> None:
    """Views of `base` (and views of them, in the order they were made) take base's new node."""
    views = base._storage.views
    if not views:
        return
    remade = {id(base)}
    _REMAKING.append(True)
    try:
        for ref, base_ref, remake in list(views):
            view, of = ref(), base_ref()
            if view is None or of is None or view is written or id(of) not in remade:
                continue
            fresh = remake(of)
            view._node, record = fresh._node, fresh._grad_fn
            view._grad_fn = None if record is None else grad_fn_class("AsStridedBackward0")(
                record._op, record._operands, record.next_functions)
            remade.add(id(view))
    finally:
        _REMAKING.pop()


_REMAKING: list[bool] = []  # remade views are not views to remember


def _write_back(base: Tensor, index: Any, view: Tensor) -> None:
    """The view was written in place: the base's node takes the new region (CopySlices)."""
    spec, _, _ = normalize_index(index, base.shape)
    region = tuple(e[2] for e in spec if not isinstance(e, int))
    value = view._node if view._node.shape == region else apply("reshape", view._node, shape=region)
    before = snapshot(base)
    base._node = apply("setitem", before.graph_node(), value, spec=spec)
    base._grad_fn = make_grad_fn("CopySlices", "setitem", (before, view))


def index_select(a: Tensor, dim: int, index: Tensor) -> Tensor:
    flat = positions(a, lambda r: np.take(r, index._value, axis=dim), index)
    return recorded(_flat_gather(a, flat), "IndexSelectBackward0", "index_select", [a])


def gather(a: Tensor, dim: int, index: Tensor) -> Tensor:
    flat = positions(a, lambda r: np.take_along_axis(r, index._value, axis=dim), index)
    return recorded(_flat_gather(a, flat), "GatherBackward0", "gather", [a])


def scatter_add(a: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    flat = positions(a, lambda r: np.take_along_axis(r, index._value, axis=dim), index)
    part = src[tuple(slice(0, n) for n in index.shape)] if src.shape != index.shape else src
    return recorded(_flat_scatter_add(a, flat, part), "ScatterAddBackward0", "scatter_add", [a, src])


def scatter(a: Tensor, dim: int, index: Tensor, src: Operand = None, value: Operand = None) -> Tensor:
    src = value if src is None else src
    flat = positions(a, lambda r: np.take_along_axis(r, index._value, axis=dim), index)
    if isinstance(src, Tensor) and src.shape != index.shape:
        src = src[tuple(slice(0, n) for n in index.shape)]
    name = "ScatterBackward0" if isinstance(src, Tensor) else "ScatterBackward1"
    return recorded(_flat_put(a, flat, src), name, "scatter", [a, src])


def index_add(a: Tensor, dim: int, index: Tensor, source: Tensor, alpha: float = 1) -> Tensor:
    flat = positions(a, lambda r: np.take(r, index._value, axis=dim), index)
    source = source if alpha == 1 else primitive("mul", [source, alpha])
    return recorded(_flat_scatter_add(a, flat, source), "IndexAddBackward0", "index_add", [a, source])


def masked_fill(a: Tensor, mask: Tensor, value: Operand) -> Tensor:
    result = primitive("where", [mask, value, a], a._value.dtype)
    return recorded(result, "MaskedFillBackward0", "masked_fill", [a, value])


def masked_select(a: Tensor, mask: Tensor) -> Tensor:
    flat = positions(a, lambda r: np.broadcast_to(r, np.broadcast_shapes(r.shape, mask.shape))[
        np.broadcast_to(mask._value, np.broadcast_shapes(r.shape, mask.shape))], mask)  # fmt: skip
    return recorded(_flat_gather(a, flat), "MaskedSelectBackward0", "masked_select", [a])
