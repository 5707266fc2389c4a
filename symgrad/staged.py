"""A transform's machinery: `Staged` traces the user's function once per input signature,
compiles what its `build` makes of the result, caches the programs (one `Entry` per
signature) and calls them; its class's `__call__` is the native entry of the signature
called last. Imports trace, tensor, node, lower, rules, cache, pytree; transforms.py
defines the transforms with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import pytree
from .cache import DEFAULT_CACHE, paused_gc
from .interpret import evaluate
from .lower import lower
from .node import Node, topo_order
from .rules import simplifier
from .tensor import Tensor
from .trace import ArgSlot, argument, as_array, trace_scope

log = logging.getLogger("symgrad")

LIVE: weakref.WeakSet = weakref.WeakSet()  # every transform, for symgrad.cache_info()
# build(outputs, args, extras) -> result tree with Node leaves: what a transform returns.
Build = Callable[[Any, list[Any], list[Node]], Any]


class Output:
    """Where a traced result had a node: the program output of this shape. A compiled entry
    keeps these, not the nodes (which would keep the whole graph alive: memory, and objects
    every garbage collection walks)."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


@dataclass
class Entry:
    """One compiled specialisation of a transform."""

    signature: tuple
    compiled: Any
    result_tree: Any  # the result tree; Output leaves are replaced by program outputs in order
    constants: list[Any]  # result leaves that are not nodes (returned as they are)
    captured: list[Node]  # leaves read from the enclosing scope (read at each call)
    outputs: list[Output]
    compile_seconds: float
    hits: int = 0
    fast: Callable | None | bool = None  # its native entry, built on the second call; False: it has none
    counted: int = 0  # the native entry's calls already credited to hits


@dataclass(eq=False)
class Staged:
    """A transform of `fn`: callable, cached per signature (the DEFAULT_CACHE.limit most
    recently used ones), inspectable.

    Each transform has a class of its own, whose `__call__` is the native entry of the
    signature called last, once it has one: a call runs no Python at all. The entry calls
    `Staged.__call__` (the Python path) for arguments it does not take."""

    fn: Callable
    build: Build
    static_argnums: tuple[int, ...] = ()
    name: str = ""
    entries: OrderedDict[tuple, Entry] = field(default_factory=OrderedDict)
    misses: int = 0
    evictions: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _fast_owner: Entry | None = None  # the signature called last (its native entry is __call__)

    def __post_init__(self) -> None:
        base = type(self)
        self.__class__ = type(base.__name__, (base,), {"__module__": base.__module__, "__qualname__": base.__qualname__,
                                                       "_own": True})  # fmt: skip
        self.name = self.name or getattr(self.fn, "__name__", "fn")
        self.__doc__ = getattr(self.fn, "__doc__", None)
        self.__wrapped__ = self.fn
        LIVE.add(self)

    def __hash__(self) -> int:
        return id(self)

    def __del__(self) -> None:
        # the class of its own is a reference cycle (as every class is): without this, the
        # native entry it holds, and its machine code, would wait for the garbage collector
        cls = type(self)  # (only its own class: a Staged whose __init__ failed has none)
        if cls.__dict__.get("_own") and "__call__" in cls.__dict__:
            del cls.__call__

    # ---- calling -------------------------------------------------------------------

    def __call__(self, *args: Any) -> Any:
        if _any_traced(args):
            return self._inline(args)
        statics, dynamic = self._split(args)
        flat, treedef = pytree.flatten(dynamic)
        arrays = [as_array(x) for x in flat]
        signature = (treedef, tuple((a.shape, a.dtype.str) for a in arrays), statics)
        entry = self._lookup(signature)
        if entry is None:
            with self._lock:  # threads asking for one new signature compile it once
                entry = self._lookup(signature) or self._compile(args, signature)
        else:
            entry.hits += 1
            DEFAULT_CACHE.stats.hits += 1
        # the native entry is built on the second call of a signature: a function called once
        # does not pay for it (first-call latency), a loop gets it right away
        if entry.fast is None and entry.hits:  # (decided once per signature)
            entry.fast = self._fast_path(entry, treedef, arrays) or False
        self._install(entry)
        return self._run(entry, arrays)

    @property
    def _fast(self) -> Callable | None:
        """The native entry that is this transform's __call__, if any."""
        owner = self._fast_owner
        return owner.fast or None if owner is not None else None

    def _install(self, owner: Entry | None) -> None:
        """Make `owner`'s native entry this transform's __call__ (none, or no owner: the Python path)."""
        self._settle_fast_calls()
        self._fast_owner = owner
        cls, fast = type(self), self._fast
        if not cls.__dict__.get("_own"):
            return
        if fast is not None:
            cls.__call__ = fast  # a builtin: no self is bound, it is the whole call
        elif "__call__" in cls.__dict__:
            del cls.__call__

    def _lookup(self, signature: tuple) -> Entry | None:
        with self._lock:
            entry = self.entries.get(signature)
            if entry is not None:
                self.entries.move_to_end(signature)  # most recently used: evicted last
            return entry

    def trim(self) -> None:
        """Evict the least recently used signatures beyond the cache limit (an evicted entry's
        code is freed once nothing holds it; its signature compiles again if called)."""
        with self._lock:
            while len(self.entries) > DEFAULT_CACHE.limit:
                self.entries.popitem(last=False)
                self.evictions += 1

    def clear(self) -> None:
        """Forget every compiled signature (symgrad.clear_cache)."""
        with self._lock:
            self._install(None)
            self.entries.clear()
            self.evictions = 0

    def _settle_fast_calls(self) -> None:
        """Credit the calls that took the native entry (counted natively) to its entry's statistics."""
        with self._lock:  # (two threads must not credit the same calls)
            owner = self._fast_owner
            if owner is not None and owner.fast:
                calls = owner.fast.__self__.calls()
                owner.hits += calls - owner.counted
                DEFAULT_CACHE.stats.hits += calls - owner.counted
                owner.counted = calls

    def _fast_path(self, entry: Entry, treedef: Any, arrays: list[np.ndarray]) -> Callable | None:
        """The native entry itself, when the call needs nothing else: plain float arrays in,
        results that are exactly its outputs (one array, or a flat tuple of arrays)."""
        plain = treedef == ("list", (("leaf",),) * len(arrays)) and not self.static_argnums
        if not plain or entry.compiled is None or entry.captured or entry.constants:
            return None
        if any(a.dtype.kind != "f" for a in arrays):
            return None
        _, out_def = pytree.flatten(entry.result_tree)
        flat_tuple = out_def == ("tuple", (("leaf",),) * len(entry.outputs))
        if out_def != ("leaf",) and not (flat_tuple and len(entry.outputs) > 1):
            return None
        try:
            return entry.compiled.fast_entry([a.shape for a in arrays], [n.shape for n in entry.outputs],
                                             fallback=_python_path(self))  # fmt: skip
        except RuntimeError:  # this process's struct layouts were not verified: Python path
            return None

    def _split(self, args: tuple) -> tuple[tuple, list]:
        statics = tuple(_hashable(args[i]) for i in self.static_argnums if i < len(args))
        return statics, [a for i, a in enumerate(args) if i not in self.static_argnums]

    def _run(self, entry: Entry, arrays: list[np.ndarray]) -> Any:
        inputs = [np.ascontiguousarray(a, dtype=np.float64 if a.dtype.kind in "iub" else a.dtype).reshape(-1)
                  for a in arrays]  # fmt: skip
        inputs += [np.ascontiguousarray(c.payload.value(), dtype=c.dtype).reshape(-1) for c in entry.captured]
        outs = iter(entry.compiled(inputs) if entry.compiled is not None else [])
        constants = iter(entry.constants)
        leaves, treedef = pytree.flatten(entry.result_tree)
        values = [next(outs).reshape(n.shape) if isinstance(n, Output) else next(constants) for n in leaves]
        return pytree.unflatten(treedef, values)

    # ---- tracing -------------------------------------------------------------------

    def trace(self, args: tuple) -> tuple[Any, list[Tensor], list[Tensor]]:
        """Run fn on argument tensors; (result tree of nodes, argument tensors, extra leaves)."""
        statics, dynamic = self._split(args)
        flat, treedef = pytree.flatten(dynamic)
        tensors = [argument(x, k) for k, x in enumerate(flat)]
        rebuilt = iter(pytree.unflatten(treedef, tensors))
        call_args = [a if i in self.static_argnums else next(rebuilt) for i, a in enumerate(args)]
        return self._build(call_args, tensors)

    def _build(self, call_args: list[Any], tensors: list[Tensor]) -> tuple[Any, list[Tensor], list[Node]]:
        with trace_scope(self.name):
            try:
                out = self.fn(*call_args)
            except Exception as error:
                _name_user_line(error, self.name)
                raise
        dynamic = [a for i, a in enumerate(call_args) if i not in self.static_argnums]
        return self.build(out, dynamic, []), tensors, []

    def _compile(self, args: tuple, signature: tuple) -> Entry:
        with paused_gc():
            return self._compile_now(args, signature)

    def _compile_now(self, args: tuple, signature: tuple) -> Entry:
        start = time.perf_counter()
        self._log_recompile(signature)
        result_tree, tensors, _ = self.trace(args)
        leaves, _ = pytree.flatten(result_tree)
        nodes = [n for n in leaves if isinstance(n, Node)]
        simplified = iter(simplifier().run(nodes, count=False))
        result_tree = pytree.tree_map(lambda n: next(simplified) if isinstance(n, Node) else n, result_tree)
        nodes = [n for n in pytree.flatten(result_tree)[0] if isinstance(n, Node)]
        arg_leaves = [t._node for t in tensors]
        captured = [n for n in topo_order(nodes) if n.op == "leaf" and not isinstance(n.payload, ArgSlot)]
        compiled = DEFAULT_CACHE.session.compile(lower(nodes, arg_leaves + captured), name="function") if nodes else None
        constants = [c for c in pytree.flatten(result_tree)[0] if not isinstance(c, Node)]
        seconds = time.perf_counter() - start
        result_tree = pytree.tree_map(lambda n: Output(n.shape) if isinstance(n, Node) else n, result_tree)
        outputs = [o for o in pytree.flatten(result_tree)[0] if isinstance(o, Output)]  # in `nodes`' order
        entry = Entry(signature, compiled, result_tree, constants, captured, outputs, seconds)
        self.entries[signature] = entry
        self.trim()
        self.misses += 1
        DEFAULT_CACHE.stats.misses += 1
        DEFAULT_CACHE.stats.compiles += 1
        DEFAULT_CACHE.stats.compile_seconds += seconds
        return entry

    def _log_recompile(self, signature: tuple) -> None:
        if not self.entries:
            return
        previous = next(reversed(self.entries))
        log.info("symgrad: compiling %s again: %s", self.name, describe_change(previous, signature))

    def _inline(self, args: tuple) -> Any:
        """Called on traced tensors: return tensors whose nodes are the results (composition)."""
        statics, dynamic = self._split(args)
        flat, treedef = pytree.flatten(dynamic)
        tensors = [x if isinstance(x, Tensor) and x._node is not None else argument(x, -1) for x in flat]
        rebuilt = iter(pytree.unflatten(treedef, tensors))
        call_args = [a if i in self.static_argnums else next(rebuilt) for i, a in enumerate(args)]
        result_tree, _, _ = self._build(call_args, tensors)
        leaves, out_def = pytree.flatten(result_tree)
        nodes = [n for n in leaves if isinstance(n, Node)]
        values = iter(evaluate(nodes, lambda n: n.payload.value()))
        return pytree.unflatten(out_def, [_tensor(n, next(values)) if isinstance(n, Node) else n for n in leaves])

    # ---- introspection -------------------------------------------------------------

    def cache_info(self) -> dict[str, Any]:
        self._settle_fast_calls()
        entries = [{"signature": describe_signature(e.signature), "hits": e.hits,
                    "compile_seconds": e.compile_seconds} for e in self.entries.values()]  # fmt: skip
        return {"entries": entries, "hits": sum(e.hits for e in self.entries.values()),
                "misses": self.misses, "evictions": self.evictions}  # fmt: skip


def _python_path(staged: Staged) -> Callable[..., Any]:
    """What a native entry calls for arguments it does not take: the transform's Python path
    (holding the transform weakly: its class holds the entry, which holds this)."""
    ref = weakref.ref(staged)

    def python_path(*args: Any, **kwargs: Any) -> Any:
        target = ref()
        if target is None:
            raise RuntimeError("symgrad: this native entry's transform no longer exists")
        return Staged.__call__(target, *args, **kwargs)

    return python_path


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _name_user_line(error: BaseException, name: str) -> None:
    """Add a note naming the line of the user's code that built the failing operation."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not os.path.abspath(f.filename).startswith(_PACKAGE)]  # fmt: skip
    if frames and hasattr(error, "add_note"):
        f = frames[-1]
        error.add_note(f"symgrad: while tracing {name}, at {f.filename}:{f.lineno} "
                       f"(in {f.name}): {f.line}")  # fmt: skip


def _tensor(node: Node, value: np.ndarray) -> Tensor:
    t = Tensor._wrap(np.asarray(value))
    t._node = node
    return t


def _any_traced(args: Any) -> bool:
    leaves, _ = pytree.flatten(list(args))
    return any(isinstance(x, Tensor) and x._node is not None for x in leaves)


def _hashable(x: Any) -> Any:
    try:
        hash(x)
        return x
    except TypeError:
        return repr(x)


def describe_signature(signature: tuple) -> str:
    treedef, shapes, statics = signature
    paths = pytree.leaf_paths(treedef, "args")
    parts = [f"{p}: {np.dtype(d).name}{list(s)}" for p, (s, d) in zip(paths, shapes)]
    return ", ".join(parts + [f"static {s!r}" for s in statics])


def describe_change(old: tuple, new: tuple) -> str:
    if old[0] != new[0]:
        return "the structure of the arguments changed"
    if old[2] != new[2]:
        return f"a static argument changed: {old[2]!r} -> {new[2]!r}"
    paths = pytree.leaf_paths(new[0], "args")
    changed = [f"{p} {np.dtype(a[1]).name}{list(a[0])} -> {np.dtype(b[1]).name}{list(b[0])}"
               for p, a, b in zip(paths, old[1], new[1]) if a != b]  # fmt: skip
    return "; ".join(changed) or "new signature"
