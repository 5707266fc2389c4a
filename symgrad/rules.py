"""The rewrite rules and passes that simplify gradient graphs, as data.

Every rule states its identity in a trailing comment. Rules that are exact in
IEEE arithmetic are marked nowhere; the ones that may round differently from a
literal evaluation (re-associating constants) are marked `~`. None of them
turns a NaN or inf into a finite value. Imports node.py, registry.py, simplify.py.
"""

from __future__ import annotations

import functools

import numpy as np

from .elementwise import broadcast_shapes
from .node import Node, const
from .registry import REGISTRY, apply
from .simplify import Fold, Rewriter, Rule, fits


def _scalar_const(node: Node) -> Node | None:
    """The 0-d constant behind `node`, looking through broadcasts."""
    while node.op == "broadcast_to":
        node = node.inputs[0]
    return node if node.op == "const" else None


@fits(lambda op, inputs: all(i in ("const", "broadcast_to") for i in inputs))
def fold_constants(node: Node) -> Node | None:
    """An elementwise op of constants is a constant (broadcast to the op's shape)."""
    if REGISTRY[node.op].kind != "elementwise":
        return None
    consts = [_scalar_const(i) for i in node.inputs]
    if any(c is None for c in consts):
        return None
    values = [np.asarray(c.attrs[0], dtype=node.dtype) for c in consts]  # type: ignore[union-attr]
    value = REGISTRY[node.op].evaluate(node.attrs, *values).astype(node.dtype)
    return const(float(value), node.dtype)


@fits(lambda op, inputs: "broadcast_to" in inputs)
def drop_broadcasts(node: Node) -> Node | None:
    """op(broadcast_to(a), b) -> op(a, b) where implicit broadcasting gives the same shape."""
    if REGISTRY[node.op].kind != "elementwise":
        return None
    inputs = list(node.inputs)
    for k, inp in enumerate(inputs):
        if inp.op != "broadcast_to":
            continue
        trial = inputs[:k] + [inp.inputs[0]] + inputs[k + 1 :]
        if broadcast_shapes(*(t.shape for t in trial)) == node.shape:
            inputs = trial
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return None
    return apply(node.op, *inputs)


@fits(lambda op, inputs: op in ("reshape", "broadcast_to", "index", "sum")
      and inputs[0] in ("const", "broadcast_to"))
def fold_structure(node: Node) -> Node | None:
    """Views and sums of a broadcast constant are a broadcast constant."""
    if node.op not in ("reshape", "broadcast_to", "index", "sum") or node.op == "const":
        return None
    c = _scalar_const(node.inputs[0])
    if c is None or (node.op == "broadcast_to" and node.inputs[0] is c):
        return None
    if node.op == "sum":  # sum of n copies of c -> n * c
        count = node.inputs[0].size // max(node.size, 1)
        c = const(float(np.asarray(c.attrs[0] * count, dtype=node.dtype)), node.dtype)
    return c if node.shape == () else apply("broadcast_to", c, shape=node.shape)


def _same_shape(b: dict, node: Node) -> bool:
    return b["x"].shape == node.shape


PASSES = [
    ("fold constants", fold_constants),
    ("fold structure", fold_structure),
    ("drop broadcasts", drop_broadcasts),
]

ARITHMETIC = [
    Rule("x*1", ("mul", "x", 1.0), "x"),  # x * 1 -> x
    Rule("1*x", ("mul", 1.0, "x"), "x"),  # 1 * x -> x
    Rule("x/1", ("div", "x", 1.0), "x"),  # x / 1 -> x
    Rule("x+0", ("add", "x", 0.0), "x"),  # x + 0 -> x (-0 + 0 is +0: sign of zero only)
    Rule("0+x", ("add", 0.0, "x"), "x"),  # 0 + x -> x
    Rule("x-0", ("sub", "x", 0.0), "x"),  # x - 0 -> x
    Rule("0-x", ("sub", 0.0, "x"), ("neg", "x")),  # 0 - x -> -x
    Rule("x**1", ("pow", "x", 1.0), "x"),  # x ** 1 -> x
    Rule("x**2", ("pow", "x", 2.0), ("mul", "x", "x")),  # ~ x ** 2 -> x * x (as numpy and torch compute it)
    Rule("-1*x", ("mul", -1.0, "x"), ("neg", "x")),  # -1 * x -> -x
    Rule("--x", ("neg", ("neg", "x")), "x"),  # -(-x) -> x
    Rule("x*c", ("mul", "x", "c"), ("mul", "c", "x")),  # x * c -> c * x (constants first)
    Rule("x+c", ("add", "x", "c"), ("add", "c", "x")),  # x + c -> c + x
    Rule("x/c", ("div", "x", "c"), ("mul", Fold(lambda c: 1 / c), "x"),
         when=lambda b, n: _is_power_of_two(b["c"].attrs[0])),  # x / 2^k -> 2^-k * x
    Rule("c*(c*x)", ("mul", "c1", ("mul", "c2", "x")), ("mul", Fold(lambda c1, c2: c1 * c2), "x")),  # ~ c1 (c2 x) -> (c1 c2) x
    Rule("c+(c+x)", ("add", "c1", ("add", "c2", "x")), ("add", Fold(lambda c1, c2: c1 + c2), "x")),  # ~ c1 + (c2 + x) -> (c1 + c2) + x
    Rule("c*-x", ("mul", "c", ("neg", "x")), ("mul", Fold(lambda c: -c), "x")),  # c (-x) -> (-c) x
    Rule("-(c*x)", ("neg", ("mul", "c", "x")), ("mul", Fold(lambda c: -c), "x")),  # -(c x) -> (-c) x
    Rule("x+x", ("add", "x", "x"), ("mul", 2.0, "x")),  # x + x -> 2 x
    Rule("cx+x", ("add", ("mul", "c", "x"), "x"), ("mul", Fold(lambda c: c + 1), "x")),  # ~ c x + x -> (c + 1) x
    Rule("x+cx", ("add", "x", ("mul", "c", "x")), ("mul", Fold(lambda c: c + 1), "x")),  # ~ x + c x -> (c + 1) x
    Rule("cx+cx", ("add", ("mul", "c1", "x"), ("mul", "c2", "x")), ("mul", Fold(lambda c1, c2: c1 + c2), "x")),  # ~ c1 x + c2 x -> (c1 + c2) x
    Rule("x*(1/y)", ("mul", "x", ("div", 1.0, "y")), ("div", "x", "y")),  # x (1/y) -> x / y
    Rule("(1/y)*x", ("mul", ("div", 1.0, "y"), "x"), ("div", "x", "y")),  # (1/y) x -> x / y
    Rule("x+-y", ("add", "x", ("neg", "y")), ("sub", "x", "y")),  # x + (-y) -> x - y
    Rule("where(c, x, y)", ("where", "c", "x", "y"), lambda b, n: b["x"] if b["c"].attrs[0] != 0 else b["y"]),  # where(true, x, y) -> x
    Rule("x--y", ("sub", "x", ("neg", "y")), ("add", "x", "y")),  # x - (-y) -> x + y
]  # fmt: skip

STRUCTURE = [
    Rule("broadcast to own shape", ("broadcast_to", "x"), "x", when=_same_shape),  # broadcast_to(x, x.shape) -> x
    Rule("reshape to own shape", ("reshape", "x"), "x", when=_same_shape),  # reshape(x, x.shape) -> x
    Rule("reshape of reshape", ("reshape", ("reshape", "x")),
         lambda b, n: apply("reshape", b["x"], shape=n.shape)),  # reshape(reshape(x)) -> reshape(x)
    Rule("broadcast of broadcast", ("broadcast_to", ("broadcast_to", "x")),
         lambda b, n: apply("broadcast_to", b["x"], shape=n.shape)),  # broadcast(broadcast(x)) -> broadcast(x)
    Rule("sum over nothing", ("sum", "x"), "x", when=lambda b, n: not n.attrs[0] and _same_shape(b, n)),  # sum(x, ()) -> x
]  # fmt: skip


def _softplus(x: Node) -> Node:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow for large |x|.

    maximum's derivative at a tie is 1/2, so the derivative at 0 stays sigmoid(0) = 1/2."""
    tail = apply("log1p", apply("exp", apply("neg", apply("abs", x))))
    return apply("add", apply("maximum", x, const(0.0, x.dtype)), tail)


def _not_stable_already(b: dict, node: Node) -> bool:
    x = b["x"]
    return not (x.op == "neg" and x.inputs[0].op == "abs")


STABLE = [
    Rule("log(1+x)", ("log", ("add", 1.0, "x")), ("log1p", "x")),  # log(1 + x) -> log1p(x)
    Rule("exp(x)-1", ("sub", ("exp", "x"), 1.0), ("expm1", "x")),  # exp(x) - 1 -> expm1(x)
    Rule("softplus", ("log1p", ("exp", "x")), lambda b, n: _softplus(b["x"]),
         when=_not_stable_already),  # log1p(exp(x)) -> relu(x) + log1p(exp(-|x|))
    Rule("log(sigmoid(x))", ("log", ("sigmoid", "x")),
         lambda b, n: apply("neg", _softplus(apply("neg", b["x"])))),  # log(sigmoid(x)) -> -softplus(-x)
    Rule("1/(1+exp(-x))", ("div", 1.0, ("add", 1.0, ("exp", ("neg", "x")))), ("sigmoid", "x")),  # -> sigmoid(x)
]  # fmt: skip

# A gradient masked by where() keeps the mask outermost, so that a NaN or inf computed on
# the branch not taken (sqrt'(x) for x < 0, ...) is never multiplied into the result.
MASKING = [
    Rule("x*where(c,1,0)", ("mul", "x", ("where", "m", 1.0, 0.0)), ("where", "m", "x", 0.0)),  # x * [m] -> where(m, x, 0)
    Rule("where(c,1,0)*x", ("mul", ("where", "m", 1.0, 0.0), "x"), ("where", "m", "x", 0.0)),  # [m] * x -> where(m, x, 0)
    Rule("where(c,x,0)*y", ("mul", ("where", "m", "x", 0.0), "y"), ("where", "m", ("mul", "x", "y"), 0.0)),  # where(m, x, 0) y -> where(m, x y, 0)
    Rule("y*where(c,x,0)", ("mul", "y", ("where", "m", "x", 0.0)), ("where", "m", ("mul", "y", "x"), 0.0)),  # y where(m, x, 0) -> where(m, y x, 0)
    Rule("where(c,x,0)/y", ("div", ("where", "m", "x", 0.0), "y"), ("where", "m", ("div", "x", "y"), 0.0)),  # where(m, x, 0) / y -> where(m, x / y, 0)
]  # fmt: skip


def _is_power_of_two(v: float) -> bool:
    m, _ = np.frexp(v)
    return v != 0 and np.isfinite(v) and abs(m) == 0.5


@functools.cache
def _tables() -> Rewriter:
    """A rewriter over the tables above, made once: its compiled form is shared."""
    return Rewriter(PASSES, ARITHMETIC + STRUCTURE + STABLE + MASKING)


def simplifier() -> Rewriter:
    """A fresh rewriter (it collects statistics of what fired)."""
    return _tables().fresh()
