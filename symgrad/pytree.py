"""Nested arguments and results: flatten tuples, lists and dicts of leaves, and rebuild them.

A leaf is anything that is not a tuple, list or dict (arrays, numbers, tensors, None).
The tree definition is hashable, so it can be part of a cache key. Imports nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TreeDef = Any  # ("leaf",) | ("tuple"|"list", children) | ("dict", keys, children)


def flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list[Any]) -> TreeDef:
    if isinstance(tree, (tuple, list)):
        return (type(tree).__name__, tuple(_flatten(t, leaves) for t in tree))
    if isinstance(tree, dict):
        keys = tuple(sorted(tree, key=repr))
        return ("dict", keys, tuple(_flatten(tree[k], leaves) for k in keys))
    leaves.append(tree)
    return ("leaf",)


def unflatten(treedef: TreeDef, leaves: list[Any]) -> Any:
    it = iter(leaves)
    return _build(treedef, it)


def _build(treedef: TreeDef, it: Any) -> Any:
    kind = treedef[0]
    if kind == "leaf":
        return next(it)
    if kind == "dict":
        return {k: _build(t, it) for k, t in zip(treedef[1], treedef[2])}
    children = [_build(t, it) for t in treedef[1]]
    return tuple(children) if kind == "tuple" else children


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    leaves, treedef = flatten(tree)
    return unflatten(treedef, [fn(x) for x in leaves])


def leaf_paths(treedef: TreeDef, prefix: str = "") -> list[str]:
    """A readable path per leaf (`params['w']`, `args[1][0]`), for messages."""
    kind = treedef[0]
    if kind == "leaf":
        return [prefix]
    if kind == "dict":
        return [p for k, t in zip(treedef[1], treedef[2]) for p in leaf_paths(t, f"{prefix}[{k!r}]")]
    return [p for i, t in enumerate(treedef[1]) for p in leaf_paths(t, f"{prefix}[{i}]")]
