"""The interpreter: numpy evaluation of any DAG, the oracle for compiled code.

Imports node.py and registry.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .node import Node, topo_order
from .registry import REGISTRY


def evaluate(roots: Sequence[Node], leaf_value: Callable[[Node], np.ndarray]) -> list[np.ndarray]:
    """Values of `roots`, with each leaf's value given by `leaf_value(leaf)`."""
    values: dict[int, np.ndarray] = {}
    for node in topo_order(roots):
        if node.op == "leaf":
            value = np.asarray(leaf_value(node), dtype=node.dtype)
        elif node.op == "const":
            value = np.asarray(node.attrs[0], dtype=node.dtype)
        else:
            args = [values[id(i)] for i in node.inputs]
            value = REGISTRY[node.op].evaluate(node.attrs, *args).astype(node.dtype, copy=False)
        if value.shape != node.shape:
            raise AssertionError(f"{node.op}: value shape {value.shape} != node shape {node.shape}")
        values[id(node)] = value
    return [values[id(r)] for r in roots]
