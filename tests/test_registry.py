"""Every registered primitive, checked against its oracles.

For each record: value vs numpy (the sympy definition, lambdified), gradient vs
central finite differences in a random direction, compiled vs interpreted (value
and gradient, float32 and float64), and for elementwise records the derivative
DAG vs `sympy.diff`.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy
from sympy.core.function import AppliedUndef

import symgrad  # noqa: F401 - registers every primitive
from symgrad.cache import CodeCache
from symgrad.derive import X, Y, Z, definition, parse
from symgrad.differentiate import vjp
from symgrad.gradient import ValueSlot
from symgrad.interpret import evaluate
from symgrad.lower import lower
from symgrad.node import const, leaf
from symgrad.registry import REGISTRY, apply

SESSION = CodeCache()
ELEMENTWISE_SHAPES = {
    1: [[(3, 4)], [()]],
    2: [[(3, 4), (3, 4)], [(2, 3, 4), (3, 1)], [(), (5,)]],
    3: [[(3, 4), (3, 4), (3, 4)], [(3, 1), (4,), ()]],
}


# Primitives whose meaning needs more than one record's data, tested on their own.
TESTED_ELSEWHERE = {"custom": "tests/test_function.py (a custom Function's traced backward)"}
NOT_DIFFERENTIATED = {"stop_gradient"}  # zero gradient by definition, not by calculus


def _cases():
    for prim in REGISTRY.values():
        if prim.name in TESTED_ELSEWHERE:
            continue
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
    attrs = {k: v for k, v in example.items() if k not in ("shapes", "index_of")}
    if "index_of" in example:  # an int64 index input, negative values included
        bound = example["shapes"][0][attrs["axis"]]
        k = example["index_of"]
        values[k] = rng.integers(-bound, bound, size=example["shapes"][k])
    leaves = [leaf(v.shape, v.dtype.name, ValueSlot(v)) for v in values]
    return apply(name, *leaves, **attrs), leaves, values


def loss_and_grads(name: str, example: dict, dtype: str):
    """L = sum(prim(x) * w) for a fixed random w, and dL/dx for every input."""
    node, leaves, values = build(name, example, dtype)
    w_value = np.random.default_rng(1).uniform(-1, 1, size=node.shape).astype(dtype)
    w = leaf(node.shape, dtype, ValueSlot(w_value))
    loss = apply("sum", apply("mul", node, w), axes=tuple(range(node.ndim)), keepdims=False)
    grads = vjp([loss], [const(1.0, dtype)], leaves)
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
        symbols = [X, Y, Z][: prim.arity]
        expansion = prim.definition.expansion
        defined = parse(expansion) if expansion is not None else definition(name)
        if defined.atoms(AppliedUndef):
            pytest.skip(f"{name} is defined by its numpy function alone (checked against compiled code)")
        oracle = [{"erf": np.vectorize(lambda v: float(mpmath.erf(v)))}, "numpy"]
        want = sympy.lambdify(symbols, defined, oracle)(*values)
        np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-12)
    else:
        assert got.shape == node.shape


@pytest.mark.parametrize("name,example", cases())
def test_gradient_matches_finite_differences(name, example):
    node, loss, grads, leaves, values = loss_and_grads(name, example, "float64")
    if REGISTRY[name].vjp is None:
        assert all(g is None for g in grads)
    if name in NOT_DIFFERENTIATED:
        return
    rng = np.random.default_rng(2)
    directions = [rng.standard_normal(v.shape) * (v.dtype.kind == "f") for v in values[:-1]]
    h = 1e-6 if node.dtype == "float64" else 1e-2  # float32 rounding needs a larger step

    def loss_at(t: float) -> float:
        moved = [v + t * d if v.dtype.kind == "f" else v for v, d in zip(values[:-1], directions)]
        moved.append(values[-1])
        return float(interpret([loss], leaves, moved)[0])

    numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
    present = [(g, d) for g, d in zip(grads, directions) if g is not None]
    grad_values = interpret([g for g, _ in present], leaves, values) if present else []
    symbolic = sum(float(np.sum(gv * d)) for gv, (_, d) in zip(grad_values, present))
    rel = 1e-5 if node.dtype == "float64" else 1e-2  # a cast to float32 rounds the loss
    assert symbolic == pytest.approx(numeric, rel=rel, abs=1e-6)


def compiled_value_and_grads(name: str, example: dict, dtype: str):
    """(compiled outputs, their roots: value then gradients, leaves, input values)."""
    node, loss, grads, leaves, values = loss_and_grads(name, example, dtype)
    roots = [node] + [g for g in grads if g is not None]
    compiled = SESSION.session.compile(lower(roots, leaves), name=f"test_{name}")
    return compiled([np.ascontiguousarray(v).reshape(-1) for v in values]), roots, leaves, values


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,example", cases())
def test_compiled_matches_interpreter(name, example, dtype):
    got, roots, leaves, values = compiled_value_and_grads(name, example, dtype)
    want = interpret(roots, leaves, values)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.reshape(w.shape), w, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", [p.name for p in REGISTRY.values() if p.kind == "elementwise" and p.vjp])
def test_derivative_matches_sympy_diff(name):
    """The vjp DAG (built from sympy.diff through from_sympy) evaluates to sympy.diff."""
    prim = REGISTRY[name]
    symbols = [X, Y, Z][: prim.arity]
    point = [0.7 + 0.3 * i for i in range(prim.arity)]
    leaves = [leaf((), "float64", ValueSlot(np.asarray(v))) for v in point]
    g = leaf((), "float64", ValueSlot(np.asarray(1.3)))
    node = apply(name, *leaves)
    for k, cotangent in enumerate(REGISTRY[name].vjp(g, node)):
        want = 1.3 * sympy.diff(definition(name), symbols[k]).replace(sympy.DiracDelta, lambda *a: 0)
        if want.has(sympy.Derivative):  # floor, round, ...: declared piecewise constant
            want = sympy.S.Zero
        want = want.subs(dict(zip(symbols, point)))
        if cotangent is None:  # "no dependency": sympy must agree that it is zero
            assert want == 0
            continue
        (ours,) = evaluate([cotangent], lambda n: n.payload.array)
        assert float(ours) == pytest.approx(float(want.evalf()), rel=1e-12, abs=1e-15)


def test_derived_table_is_current():
    """derived.py (the templates that spare sympy at run time) matches the definitions."""
    from symgrad import derive

    assert derive.main(["--check"]) == 0, "run: python -m symgrad.derive"


def test_import_does_not_load_sympy():
    import subprocess
    import sys

    code = "import sys, symgrad; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_stale_definition_is_derived_with_sympy(monkeypatch):
    """A record whose definition no longer matches the table is derived afresh."""
    from importlib import import_module

    derived, elementwise = import_module("symgrad.derived"), import_module("symgrad.elementwise")
    monkeypatch.setitem(derived.TABLE, "tanh", ("stale", ((("const", 42.0),)), None))
    monkeypatch.delitem(elementwise._templates, "tanh", raising=False)
    partials, _ = elementwise.templates("tanh")
    elementwise._templates.pop("tanh")
    assert partials[0] != ("const", 42.0) and partials[0][0] == "sub"  # 1 - tanh(x)**2


@pytest.mark.parametrize("name,example", cases())
def test_float32_gradients_against_float64_reference(name, example):
    """Compiled float32 values and gradients vs the float64 interpreter on the same inputs
    (the float32 inputs, widened exactly): within 2e-5 of max(1, |reference|), about 170
    float32 ulp of a value near 1, where float32 has 2^-24 = 6e-8 per ulp."""
    got, _, _, values = compiled_value_and_grads(name, example, "float32")
    node64, _, grads64, leaves64, _ = loss_and_grads(name, example, "float64")
    wide = [v.astype(np.float64) if v.dtype == np.float32 else v for v in values]
    want = interpret([node64] + [g for g in grads64 if g is not None], leaves64, wide)
    for g, w in zip(got, want, strict=True):
        g = g.reshape(w.shape).astype(np.float64)
        scale = np.maximum(1.0, np.abs(w))
        assert np.all(np.abs(g - w) <= 2e-5 * scale), f"{name}: max error {np.max(np.abs(g - w) / scale):.2e}"
