"""The rewrite engine: applies the rule tables of rules.py to a DAG, bottom-up.

A rule is data: a pattern, a replacement, and an optional guard. Patterns are
nested tuples `(op, *args)`; a name binds any node (the same name twice must
bind the same node), a name starting with `c` binds only a constant, a number
matches a constant of that value. Replacements are a name, a number, a nested
`(op, *args)` tuple, a `Fold` of bound constants, or a function of the bindings.
Imports node.py and registry.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .node import Node, const, make, topo_order
from .registry import apply, rebuild

Pattern = Any
Bindings = dict[str, Any]


@dataclass(frozen=True)
class Fold:
    """A constant computed from bound constants, in the node's dtype: `Fold(lambda c1, c2: c1*c2)`."""

    fn: Callable[..., Any]


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: Pattern
    replacement: Any
    when: Callable[[Bindings, Node], bool] | None = None


@dataclass
class RewriteStats:
    fired: Counter = field(default_factory=Counter)
    nodes_before: int = 0
    nodes_after: int = 0


Matcher = Callable[[Node, Bindings], bool]


def compile_pattern(pattern: Pattern) -> Matcher:
    """`matches(node, bindings)`: does `node` match `pattern` (filling `bindings`)? The
    pattern is read once: names bind at their first occurrence (left to right, depth
    first) and compare with `is` at the next ones."""
    return _compile(pattern, set())


def _compile(pattern: Pattern, bound: set[str]) -> Matcher:
    if isinstance(pattern, str):
        name, const_only = pattern, pattern.startswith("c")
        if name in bound:
            return lambda node, b: b[name] is node
        bound.add(name)

        def bind(node: Node, b: Bindings) -> bool:
            if const_only and node.op != "const":
                return False
            b[name] = node
            return True

        return bind
    if isinstance(pattern, (int, float)):
        value = pattern
        return lambda node, b: node.op == "const" and node.attrs[0] == value
    op, *args = pattern
    arity, parts = len(args), [_compile(a, bound) for a in args]

    def node_matches(node: Node, b: Bindings) -> bool:
        if node.op != op or len(node.inputs) != arity:
            return False
        for part, i in zip(parts, node.inputs):
            if not part(i, b):
                return False
        return True

    return node_matches


def fits(test: Callable[[str, tuple[str, ...]], bool]) -> Callable[[Callable], Callable]:
    """Mark a pass as able to change only nodes whose op and input ops pass `test(op,
    input_ops)`: the rewriter asks once per combination of ops, and calls the pass only
    where it may fire."""

    def mark(fn: Callable) -> Callable:
        fn.fits = test  # type: ignore[attr-defined]
        return fn

    return mark


def _fits(pattern: Pattern, op: str | tuple) -> bool:
    """Can a node with this op (a constant: its attrs) match `pattern` (an argument of a
    rule's pattern)?"""
    if isinstance(pattern, tuple):
        return pattern[0] == op
    if isinstance(pattern, (int, float)):
        return isinstance(op, tuple) and op[0] == pattern
    return isinstance(op, tuple) if pattern.startswith("c") else True


def build(template: Any, b: Bindings, like: Node, rewrite: Callable[[Node], Node]) -> Node:
    if isinstance(template, str):
        return b[template]
    if isinstance(template, (int, float)):
        return const(template, like.dtype)
    if isinstance(template, Fold):
        names = template.fn.__code__.co_varnames[: template.fn.__code__.co_argcount]
        dt = np.dtype(like.dtype).type
        with np.errstate(all="ignore"):
            value = template.fn(*(dt(b[n].attrs[0]) for n in names))
        return const(float(value), like.dtype)
    if callable(template):
        return template(b, like)
    op, *args = template
    return rewrite(apply(op, *(build(a, b, like, rewrite) for a in args)))


def _rebuilt(node: Node, inputs: tuple[Node, ...]) -> Node:
    """`rebuild(node, inputs)`, without the registry's shape and dtype rules when each new
    input has the shape, dtype and constness of the one it replaces: those rules read
    nothing else (a constant is weakly typed), so they would give the node's own. A
    rewrite keeps shape and dtype (`_accept`), so this is the common case."""
    for old, new in zip(node.inputs, inputs):
        if old is not new and (
            old.shape != new.shape or old.dtype != new.dtype or (old.op == "const") != (new.op == "const")
        ):
            return rebuild(node, inputs)
    return make(node.op, inputs, node.attrs, node.shape, node.dtype)


class Rewriter:
    """Applies passes (node -> node | None) and rules at every node until nothing fires."""

    def __init__(self, passes: Sequence[tuple[str, Callable]], rules: Sequence[Rule]) -> None:
        self.passes = list(passes)
        self.rules_by_op: dict[str, list[tuple[Rule, Matcher]]] = {}
        for rule in rules:
            self.rules_by_op.setdefault(rule.pattern[0], []).append((rule, compile_pattern(rule.pattern)))
        self.stats = RewriteStats()
        self._by_ops: dict[tuple, tuple[list, list[tuple[Rule, Matcher]]]] = {}  # see _candidates
        self.fixed: dict[int, Node] = {}  # nodes no rule or pass changes (kept alive: ids stay theirs)

    def fresh(self) -> Rewriter:
        """A rewriter with these passes and rules, sharing their compiled patterns and what
        fits each combination of ops (pure functions of them), with statistics and fixed
        points of its own."""
        other = object.__new__(Rewriter)
        other.passes, other.rules_by_op, other._by_ops = self.passes, self.rules_by_op, self._by_ops
        other.stats, other.fixed = RewriteStats(), {}
        return other

    def run(self, roots: Sequence[Node], count: bool = True) -> list[Node]:
        """The roots rewritten until nothing fires; `count`: add the nodes after to the
        statistics (one more walk over the result)."""
        order = topo_order(roots)
        self.stats.nodes_before += len(order)
        memo: dict[int, Node] = {}
        rewrite = self.rewrite
        for node in order:
            if node.inputs:
                inputs = tuple([memo[id(i)] for i in node.inputs])
                memo[id(node)] = rewrite(node if inputs == node.inputs else _rebuilt(node, inputs))
            else:
                memo[id(node)] = node
        result = [memo[id(r)] for r in roots]
        if count:
            self.stats.nodes_after += len(topo_order(result))
        return result

    def rewrite(self, node: Node) -> Node:
        for _ in range(64):  # a bound, in case two rules undo each other
            if id(node) in self.fixed:  # nodes are immutable: a fixed point stays one
                return node
            new = self._step(node)
            if new is None:
                self.fixed[id(node)] = node
                return node
            node = new
        return node

    def _step(self, node: Node) -> Node | None:
        if not node.inputs:  # leaves and constants
            return None
        key = (node.op, *[i.op if i.op != "const" else i.attrs for i in node.inputs])
        found = self._by_ops.get(key)
        passes, rules = found if found is not None else self._candidates(key)
        for name, fn in passes:
            new = fn(node)
            if new is not None and new is not node:
                return self._accept(name, node, new)
        for rule, matches in rules:
            b: Bindings = {}
            if matches(node, b) and (rule.when is None or rule.when(b, node)):
                new = build(rule.replacement, b, node, self.rewrite)
                if new is not node:
                    return self._accept(rule.name, node, new)
        return None

    def _candidates(self, key: tuple) -> tuple[list, list[tuple[Rule, Matcher]]]:
        """The passes and rules that may fire at a node of op key[0] whose inputs have the ops
        key[1:] (a constant's attrs in place of "const"): passes whose `fits` accepts those
        ops, rules whose pattern fits them."""
        op, inputs = key[0], key[1:]
        ops = tuple("const" if isinstance(i, tuple) else i for i in inputs)
        passes = [(name, fn) for name, fn in self.passes
                  if getattr(fn, "fits", None) is None or fn.fits(op, ops)]  # fmt: skip
        rules = [(rule, matches) for rule, matches in self.rules_by_op.get(op, ())
                 if len(rule.pattern) == len(key)
                 and all(_fits(p, o) for p, o in zip(rule.pattern[1:], inputs))]  # fmt: skip
        self._by_ops[key] = (passes, rules)
        return passes, rules

    def _accept(self, name: str, old: Node, new: Node) -> Node:
        if new.dtype != old.dtype:
            raise AssertionError(f"rewrite {name} changed dtype {old.dtype} -> {new.dtype}")
        if new.shape != old.shape:
            new = apply("broadcast_to", new, shape=old.shape)
        self.stats.fired[name] += 1
        return new
