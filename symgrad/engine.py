"""The eager backward engine: backward() and autograd.grad() on tensors.

Checks torch's preconditions (scalar outputs, grad-requiring inputs, graphs freed by
an earlier backward), runs the compiled gradient plan, applies tensor hooks and
accumulates into .grad (differentiably with create_graph). Imports tensor, gradient,
gradfn.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .gradfn import free, grad_fn_class, is_grad_enabled, walk
from .gradient import ValueSlot, gradients, rebind, seed_kind, tape_gradients
from .node import Node, leaf, topo_order
from .pending import Pending, tape_key
from .registry import rebuild
from .tensor import Size, Tensor

_FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you "
    "call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling backward."
)

RETAINING: weakref.WeakSet = weakref.WeakSet()  # non-leaf tensors that called retain_grad()
HOOKED: weakref.WeakSet = weakref.WeakSet()  # non-leaf tensors with hooks


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _seeds(outputs: list[Tensor], grad_outputs: list[Any], create_graph: bool = False) -> list[Any]:
    """Per output: None (the implicit 1), an array, or a node (a differentiable cotangent)."""
    seeds: list[Any] = []
    for k, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"element {k} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            seeds.append(None)
            continue
        value = g._value if isinstance(g, Tensor) else np.asarray(g)
        if value.shape != out.shape:
            raise RuntimeError(f"Mismatch in shape: grad_output[{k}] has a shape of {Size(value.shape)!r} "
                               f"and output[{k}] has a shape of {out.shape!r}.")  # fmt: skip
        if create_graph and isinstance(g, Tensor) and g.requires_grad and g._value.dtype == out._value.dtype:
            seeds.append(g._node)
        else:
            seeds.append(np.ascontiguousarray(value, dtype=out._value.dtype))
    return seeds


def _check_and_free(outputs: list[Tensor], retain_graph: bool) -> None:
    """torch's error for a second backward through a freed graph that saved tensors; without
    `retain_graph`, mark every record under `outputs` freed."""
    if retain_graph:
        if any(r._freed and r._saves_tensors for r in walk(*[o._grad_fn for o in outputs])):
            raise RuntimeError(_FREED)
    elif not free([o._grad_fn for o in outputs]):
        raise RuntimeError(_FREED)


def _result(array: np.ndarray, node: Node | None) -> Tensor:
    t = Tensor._wrap(array)
    if node is not None and is_grad_enabled():  # create_graph: the gradient is differentiable
        t._node = node
        t._grad_fn = grad_fn_class(f"{node.op.capitalize()}Backward0")("gradient", (), ())
    return t


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs: Any = None) -> None:  # fmt: skip
    if (type(tensors) is Tensor and grad_tensors is None and not retain_graph and not create_graph
            and inputs is None and _scalar_step(tensors)):  # fmt: skip
        return
    outputs = _as_list(tensors)
    seeds = _seeds(outputs, _as_list(grad_tensors) if grad_tensors is not None else [None] * len(outputs),
                   create_graph)
    retain = create_graph if retain_graph is None else retain_graph
    _check_and_free(outputs, retain)
    targets = None if inputs is None else [t for t in _as_list(inputs)]
    tape = None
    if targets is None and not create_graph and not RETAINING.data and not HOOKED.data:  # (no Python __len__)
        tape = tape_key([o._nd for o in outputs], tuple([seed_kind(s) for s in seeds]))
        if _by_tape(tape, seeds):
            return

    def choose(order: list[Node]) -> list[Node]:
        if targets is not None:
            return [t._node for t in targets]
        present = {id(n) for n in order}
        return _parameters(order) + [t._node for t in list(RETAINING) if t._node is not None and id(t._node) in present]

    roots = [o._node for o in outputs]
    hooked = _hooked_nodes(roots) if targets is None else []
    if not hooked:
        _stage(roots, seeds, choose, targets, create_graph, release=not retain, tape=tape)
    else:
        _staged(roots, seeds, hooked, create_graph)


def _scalar_step(out: Tensor) -> bool:
    """`out.backward()` of a recorded scalar, as the general path below does it for that case
    (the step of a training loop): False, having done nothing, for anything else."""
    nd = out._nd
    if (type(nd) is not Pending or nd.sig is None or out._grad_fn is None or out._value.size != 1
            or RETAINING.data or HOOKED.data):  # fmt: skip
        return False
    if not free([out._grad_fn]):
        raise RuntimeError(_FREED)
    tape = tape_key([nd], _ONE)
    if not _by_tape(tape, [None]):
        _stage([nd.node or nd.build()], [None], _parameters, None, False, release=True, tape=tape)
    return True


_ONE = (seed_kind(None),)


def _parameters(order: list[Node]) -> list[Node]:
    return [n for n in order if n.op == "leaf" and n.payload.is_param]


def _by_tape(tape: tuple, seeds: list) -> bool:
    """The backward of a structure compiled before, without building its nodes (pending.py):
    False if this structure is not known by its tape key."""
    found = tape_gradients(tape, seeds)
    if found is None:
        return False
    for w, array in zip(*found):
        owner = w.payload.tensor()
        if array is not None and owner is not None:
            _accumulate(owner, _hooked(owner, Tensor._wrap(array)))
    return True


def _stage(roots: list[Node], seeds: list, choose: Any, targets: Any, create_graph: bool,
           release: bool = False, tape: tuple | None = None) -> dict[int, np.ndarray]:  # fmt: skip
    """One compiled backward pass; accumulates into owners and returns the other cotangents.
    `release`: drop the saved forward values it read (the graph is not retained); `tape`:
    the graph's tape key, under which a compiled plan is remembered."""
    wrt, arrays, symbolic = gradients(roots, seeds, choose, create_graph, release_saved=release, tape=tape)
    owners = _owners(wrt, targets)
    rest = {}
    for w, owner_list, array, node in zip(wrt, owners, arrays, symbolic):
        for owner in owner_list:
            if array is not None:
                _accumulate(owner, _hooked(owner, _result(array, node)))
        if not owner_list and array is not None:
            rest[id(w)] = array
    return rest


def _hooked_nodes(roots: list[Node]) -> list[tuple[Node, list[Tensor]]]:
    """Nodes of non-leaf tensors with hooks in this graph, nearest the roots first."""
    if not HOOKED:
        return []
    order = topo_order(roots)
    position = {id(n): k for k, n in enumerate(order)}
    found: dict[int, tuple[Node, list[Tensor]]] = {}
    for t in list(HOOKED):
        if t._node is not None and id(t._node) in position and t._hooks:
            found.setdefault(id(t._node), (t._node, []))[1].append(t)
    return sorted(found.values(), key=lambda item: -position[id(item[0])])


def _staged(roots: list[Node], seeds: list, hooked: list, create_graph: bool) -> None:
    """Backward through tensor hooks that may replace a gradient: the graph is cut at each
    hooked tensor; each piece is its own compiled pass, run from the roots down."""
    cut = {id(h): leaf(h.shape, h.dtype, ValueSlot(ts[0]._value)) for h, ts in hooked}
    stand_ins = [cut[id(h)] for h, _ in hooked]
    originals = [h for h, _ in hooked]

    def choose(order: list[Node]) -> list[Node]:
        present = {id(n) for n in order}
        params = [n for n in order if n.op == "leaf" and n.payload.is_param]
        return params + [c for c in stand_ins if id(c) in present]

    pending = _stage(rebind(roots, originals, stand_ins), seeds, choose, None, create_graph)
    for node, tensors in hooked:
        array = pending.pop(id(cut[id(node)]), None)
        if array is None:
            continue
        grad = Tensor._wrap(array)
        for t in tensors:
            grad = _hooked(t, grad)
            if t._retains_grad:
                _accumulate(t, grad)
        inputs = rebind(list(node.inputs), originals, stand_ins)
        root = rebuild(node, inputs)
        seed = np.ascontiguousarray(grad._value, dtype=node.dtype)
        for key, value in _stage([root], [seed], choose, None, create_graph).items():
            pending[key] = pending[key] + value if key in pending else value


def _owners(wrt: list[Node], targets: list[Tensor] | None) -> list[list[Tensor]]:
    """The tensors whose .grad receives each gradient."""
    if targets is not None:
        return [[t] for t in targets]
    retaining: dict[int, list[Tensor]] = {}
    for t in list(RETAINING):
        if t._node is not None:
            retaining.setdefault(id(t._node), []).append(t)
    return [[n.payload.tensor()] if n.op == "leaf" and n.payload.is_param else retaining.get(id(n), [])
            for n in wrt]  # fmt: skip


def _hooked(t: Tensor, grad: Tensor) -> Tensor:
    for hook in t._hooks:
        replaced = hook(grad)
        if replaced is not None:
            grad = replaced
    return grad


def _accumulate(t: Tensor | None, grad: Tensor) -> None:
    """`.grad += grad`: in place when possible (torch keeps the same .grad tensor)."""
    if t is None:
        return
    current = t._grad
    if current is None:
        t._grad = grad if grad._value.dtype == t._value.dtype else Tensor._wrap(grad._value.astype(t._value.dtype))
    elif grad._node is not None or current._node is not None:
        t._grad = current + grad  # differentiable accumulation (create_graph)
    elif current._value.flags.writeable and current._value.shape == grad.shape:
        np.add(current._value, grad._value, out=current._value, casting="unsafe")
        current._storage.version += 1
    else:
        t._grad = Tensor._wrap(current._value + grad._value)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True, allow_unused: bool | None = None,
         is_grads_batched: bool = False, materialize_grads: bool = False) -> tuple[Tensor | None, ...]:  # fmt: skip
    outs, ins = _as_list(outputs), _as_list(inputs)
    for t in ins:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    seeds = _seeds(outs, _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outs),
                   create_graph)
    retain = create_graph if retain_graph is None else retain_graph
    _check_and_free(outs, retain)
    _, arrays, symbolic = gradients([o._node for o in outs], seeds, [t._node for t in ins], create_graph,
                                    release_saved=not retain)  # fmt: skip
    results: list[Tensor | None] = []
    for t, array, node in zip(ins, arrays, symbolic):
        if array is None and not (allow_unused or materialize_grads):
            raise RuntimeError("One of the differentiated Tensors appears to not have been used in the "
                               "graph. Set allow_unused=True if this is the desired behavior.")  # fmt: skip
        if array is None:
            results.append(Tensor._wrap(np.zeros(t.shape, t._value.dtype)) if materialize_grads else None)
        else:
            results.append(_hooked(t, _result(array, node)))
    return tuple(results)


def retain_grad(t: Tensor) -> None:
    if not t.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if t.grad_fn is not None:
        t._retains_grad = True
        RETAINING.add(t)


def register_hook(t: Tensor, hook: Any) -> Any:
    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    t._hooks.append(hook)
    if t.grad_fn is not None:
        HOOKED.add(t)
    return _Handle(t, hook)


class _Handle:
    def __init__(self, t: Tensor, hook: Any) -> None:
        self._t, self._hook = weakref.ref(t), hook

    def remove(self) -> None:
        t = self._t()
        if t is not None and self._hook in t._hooks:
            t._hooks.remove(self._hook)


