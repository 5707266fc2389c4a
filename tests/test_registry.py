"""Every registered primitive, checked against its oracles.

For each record: value vs numpy (the sympy definition, lambdified), gradient vs
central finite differences in a random direction, compiled vs interpreted (value
and gradient, float32 and float64), and for elementwise records the derivative
DAG vs `sympy.diff`.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symgrad  # noqa: F401 - registers every primitive
from symgrad.cache import CodeCache
from symgrad.differentiate import vjp
from symgrad.elementwise import X, Y
from symgrad.gradient import ValueSlot
from symgrad.inspection import gradient_formula
from symgrad.interpret import evaluate
from symgrad.lower import lower
from symgrad.node import const, leaf
from symgrad.registry import REGISTRY, apply

SESSION = CodeCache()
ELEMENTWISE_SHAPES = {1: [[(3, 4)], [()]], 2: [[(3, 4), (3, 4)], [(2, 3, 4), (3, 1)], [(), (5,)]]}


def _cases():
    for prim in REGISTRY.values():
        if prim.kind == "elementwise":
            for shapes in ELEMENTWISE_SHAPES[prim.arity]:
                yield pytest.param(prim.name, {"shapes": shapes}, id=f"{prim.name}-{shapes}")
        else:
            assert prim.examples, f"primitive {prim.name} has no test examples"
            for k, example in enumerate(prim.examples):
                yield pytest.param(prim.name, example, id=f"{prim.name}-{k}")


def cases():
    return list(_cases())


def build(name: str, example: dict, dtype: str, seed: int = 0):
    """(node, leaves, values): the primitive applied to fresh leaves with random values."""
    prim = REGISTRY[name]
    rng = np.random.default_rng(seed)
    lo, hi = prim.domain
    values = [rng.uniform(lo, hi, size=s).astype(dtype) for s in example["shapes"]]
    leaves = [leaf(v.shape, dtype, ValueSlot(v)) for v in values]
    attrs = {k: v for k, v in example.items() if k != "shapes"}
    return apply(name, *leaves, **attrs), leaves, values


def loss_and_grads(name: str, example: dict, dtype: str):
    """L = sum(prim(x) * w) for a fixed random w, and dL/dx for every input."""
    node, leaves, values = build(name, example, dtype)
    w_value = np.random.default_rng(1).uniform(-1, 1, size=node.shape).astype(dtype)
    w = leaf(node.shape, dtype, ValueSlot(w_value))
    loss = apply("sum", apply("mul", node, w), axes=tuple(range(node.ndim)), keepdims=False)
    grads = vjp(loss, const(1.0, dtype), leaves)
    return node, loss, grads, leaves + [w], values + [w_value]


def interpret(roots, leaves, values):
    table = {id(n): v for n, v in zip(leaves, values)}
    return evaluate(roots, lambda n: table[id(n)])


@pytest.mark.parametrize("name,example", cases())
def test_value_matches_numpy(name, example):
    prim = REGISTRY[name]
    node, leaves, values = build(name, example, "float64")
    (got,) = interpret([node], leaves, values)
    if prim.kind == "elementwise":
        symbols = [X, Y][: prim.arity]
        want = sympy.lambdify(symbols, prim.expr, "numpy")(*values)
        np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-12)
    else:
        assert got.shape == node.shape


@pytest.mark.parametrize("name,example", cases())
def test_gradient_matches_finite_differences(name, example):
    node, loss, grads, leaves, values = loss_and_grads(name, example, "float64")
    if REGISTRY[name].vjp is None:
        assert all(g is None for g in grads)
    rng = np.random.default_rng(2)
    directions = [rng.standard_normal(v.shape) for v in values[:-1]]
    h = 1e-6

    def loss_at(t: float) -> float:
        moved = [v + t * d for v, d in zip(values[:-1], directions)] + [values[-1]]
        return float(interpret([loss], leaves, moved)[0])

    numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
    present = [(g, d) for g, d in zip(grads, directions) if g is not None]
    grad_values = interpret([g for g, _ in present], leaves, values) if present else []
    symbolic = sum(float(np.sum(gv * d)) for gv, (_, d) in zip(grad_values, present))
    assert symbolic == pytest.approx(numeric, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,example", cases())
def test_compiled_matches_interpreter(name, example, dtype):
    node, loss, grads, leaves, values = loss_and_grads(name, example, dtype)
    roots = [node] + [g for g in grads if g is not None]
    program = lower(roots, leaves)
    compiled = SESSION.session.compile(program, name=f"test_{name}")
    got = compiled([np.ascontiguousarray(v).reshape(-1) for v in values])
    want = interpret(roots, leaves, values)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.reshape(w.shape), w, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", [p.name for p in REGISTRY.values() if p.kind == "elementwise" and p.vjp])
def test_derivative_matches_sympy_diff(name):
    prim = REGISTRY[name]
    symbols = [X, Y][: prim.arity]
    leaves = [leaf((), "float64", None) for _ in symbols]
    g = leaf((), "float64", None)
    node = apply(name, *leaves)
    names = {id(n): s for n, s in zip(leaves, symbols)} | {id(g): sympy.Symbol("g")}
    for k, cotangent in enumerate(REGISTRY[name].vjp(g, node)):
        ours = gradient_formula(cotangent, names)
        want = sympy.Symbol("g") * sympy.diff(prim.expr, symbols[k])
        point = {s: sympy.Float(0.7 + 0.3 * i) for i, s in enumerate(symbols)}
        point[sympy.Symbol("g")] = sympy.Float(1.3)
        assert float(ours.doit().subs(point)) == pytest.approx(float(want.subs(point)), rel=1e-12)
