"""Every rewrite rule and pass: sound at random points, and it changes the structure."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad  # noqa: F401 - registers every primitive
from symgrad.gradient import ValueSlot
from symgrad.interpret import evaluate
from symgrad.node import Node, const, leaf, topo_order
from symgrad.registry import apply
from symgrad.rules import ARITHMETIC, MASKING, PASSES, STABLE, STRUCTURE, simplifier
from symgrad.simplify import Rewriter

CONSTANTS = [2.0, 0.25, -4.0, 1.5]


def instantiate(pattern, bound: dict, rng) -> Node:
    """A graph matching `pattern`: names become leaves (or constants, for c-names)."""
    if isinstance(pattern, str):
        if pattern not in bound:
            if pattern.startswith("c"):
                bound[pattern] = const(float(rng.choice(CONSTANTS)), "float64")
            else:
                value = rng.uniform(0.5, 2.0, size=(3,))
                bound[pattern] = leaf((3,), "float64", ValueSlot(value))
        return bound[pattern]
    if isinstance(pattern, (int, float)):
        return const(float(pattern), "float64")
    op, *args = pattern
    return apply(op, *(instantiate(a, bound, rng) for a in args))


def values_of(node: Node) -> np.ndarray:
    return evaluate([node], lambda n: n.payload.array)[0]


@pytest.mark.parametrize("rule", ARITHMETIC, ids=lambda r: r.name)
def test_arithmetic_rule_is_sound_and_fires(rule):
    rng = np.random.default_rng(0)
    for _ in range(20):
        node = instantiate(rule.pattern, {}, rng)
        rewriter = Rewriter([], [rule])
        (new,) = rewriter.run([node])
        if rule.when is not None and not rewriter.stats.fired:
            continue  # the guard said no for these constants
        assert rewriter.stats.fired[rule.name] >= 1
        assert new is not node
        np.testing.assert_allclose(values_of(new), values_of(node), rtol=1e-14)
        return
    pytest.fail(f"rule {rule.name} never fired")


def structure_cases():
    x = leaf((3, 1), "float64", ValueSlot(np.arange(3.0).reshape(3, 1) + 1))
    c = const(2.5, "float64")
    b = apply("broadcast_to", c, shape=(3, 4))
    return [
        ("broadcast to own shape", apply("broadcast_to", x, shape=(3, 1))),
        ("reshape to own shape", apply("reshape", x, shape=(3, 1))),
        ("reshape of reshape", apply("reshape", apply("reshape", x, shape=(1, 3)), shape=(3,))),
        ("broadcast of broadcast",
         apply("broadcast_to", apply("broadcast_to", x, shape=(3, 4)), shape=(2, 3, 4))),
        ("sum over nothing", apply("sum", x, axes=(), keepdims=False)),
        ("fold constants", apply("mul", b, const(4.0, "float64"))),
        ("fold structure", apply("sum", b, axes=(1,), keepdims=False)),
        ("drop broadcasts", apply("mul", apply("broadcast_to", x, shape=(3, 4)),
                                  leaf((3, 4), "float64", ValueSlot(np.ones((3, 4)))))),
    ]  # fmt: skip


@pytest.mark.parametrize("name,node", structure_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_structure_rules_and_passes(name, node):
    rules = [r for r in STRUCTURE if r.name == name]
    passes = [p for p in PASSES if p[0] == name]
    assert rules or passes, f"no rule or pass named {name}"
    rewriter = Rewriter(passes, rules)
    (new,) = rewriter.run([node])
    assert rewriter.stats.fired[name] >= 1
    assert len(topo_order([new])) < len(topo_order([node]))
    np.testing.assert_allclose(values_of(new), values_of(node), rtol=1e-14)


def test_every_rule_and_pass_is_tested():
    names = {r.name for r in ARITHMETIC} | {n for n, _ in structure_cases()}
    assert names >= {r.name for r in STRUCTURE} | {n for n, _ in PASSES}


def test_simplifier_reaches_a_fixpoint_on_a_long_chain():
    x = leaf((3,), "float64", ValueSlot(np.ones(3)))
    node = x
    for _ in range(50):
        node = apply("mul", apply("add", node, const(0.0, "float64")), const(1.0, "float64"))
    (new,) = simplifier().run([node])
    assert new is x


def _instance_with_mask(rule, rng):
    """Like instantiate(), but a name `m` is a 0/1 mask (a comparison), so both branches occur."""
    x = leaf((3,), "float64", ValueSlot(np.array([0.5, 1.5, 2.5])))
    bound = {"m": apply("gt", x, const(1.0, "float64"))}
    return instantiate(rule.pattern, bound, rng)


@pytest.mark.parametrize("rule", STABLE + MASKING, ids=lambda r: r.name)
def test_stable_and_masking_rules_are_sound_and_fire(rule):
    rng = np.random.default_rng(0)
    node = _instance_with_mask(rule, rng)
    rewriter = Rewriter([], [rule])
    (new,) = rewriter.run([node])
    assert rewriter.stats.fired[rule.name] >= 1 and new is not node
    np.testing.assert_allclose(values_of(new), values_of(node), rtol=1e-12)


def test_where_gradients_do_not_leak_nan_from_the_branch_not_taken():
    x = symgrad.tensor([-1.0, 4.0], dtype=symgrad.float64, requires_grad=True)
    symgrad.where(x > 0, x.sqrt(), symgrad.zeros(2, dtype=symgrad.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.25])  # torch gives [nan, 0.25]


def test_stable_forms_reach_the_gradient():
    x = symgrad.tensor([1000.0, -1000.0, 0.0], dtype=symgrad.float64, requires_grad=True)
    symgrad.log(1 + symgrad.exp(x)).sum().backward()  # softplus
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 0.5])
    y = symgrad.tensor([-1000.0, 0.0, 1000.0], dtype=symgrad.float64, requires_grad=True)
    symgrad.log(symgrad.sigmoid(y)).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [1.0, 0.5, 0.0])
    f = symgrad.value_and_grad(lambda v: symgrad.log(1 + v).sum())
    value, g = f(np.array([1e-17, 1e-10]))
    assert value == pytest.approx(1e-17 + 1e-10, rel=1e-12)  # log1p: exact where log(1 + x) gives 0


def test_compiled_patterns_bind_compare_and_filter():
    """A name binds at its first occurrence and must be the same node at the next; c-names
    bind constants only; a number matches a constant of that value."""
    from symgrad.simplify import compile_pattern

    x = leaf((3,), "float64", ValueSlot(np.ones(3)))
    y = leaf((3,), "float64", ValueSlot(np.ones(3)))
    two = const(2.0, "float64")
    twice = compile_pattern(("add", "x", "x"))
    assert twice(apply("add", x, x), {}) and not twice(apply("add", x, y), {})
    scaled = compile_pattern(("mul", "c", "x"))
    b: dict = {}
    assert scaled(apply("mul", two, y), b) and b == {"c": two, "x": y}
    assert not scaled(apply("mul", x, y), {})
    assert compile_pattern(("mul", 2.0, "x"))(apply("mul", two, x), {})
    assert not compile_pattern(("mul", 1.0, "x"))(apply("mul", two, x), {})
    assert not compile_pattern(("neg", ("neg", "x")))(apply("neg", x), {})
