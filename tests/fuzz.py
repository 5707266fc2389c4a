"""Differential fuzzing: random tensor programs run four ways, which must agree.

A *program* is a few statements over a pool of tensors, starting from 1-3 input arrays
(0-d, size-1 and size-0 dimensions; float32 and float64; more inputs may join as second
operands), each statement applying one op of the table `OPS` (by family). Its loss
is sum(out * w) over every result no later statement reads, with fixed random weights w.
For each program:

  (a) symgrad eager (values, `.grad` after `loss.backward()`) vs torch eager, if installed;
  (b) symgrad compiled, `sg.value_and_grad(fn, argnums=all, has_aux=True)`, vs symgrad eager;
  (c) the interpreter (`symgrad.interpret.evaluate` of the eager graph's simplified
      gradient DAG) vs the compiled gradients of the eager backward.

`programs()` and `check()` are shared with tests/test_fuzz.py (bounded, in CI). As a
script it runs a long campaign and prints each distinct failure with the minimal program
hypothesis shrank it to, as runnable code:

    python tests/fuzz.py --examples 10000 [--seed N] [--known]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import symgrad as sg
from symgrad.gradient import symbolic_gradients
from symgrad.interpret import evaluate
from symgrad.node import const

try:
    import torch
except ImportError:  # (a) is skipped; (b) and (c) still run
    torch = None

# Left out of the generator, because torch and symgrad legitimately differ there or
# because there is no common value to compare:
#  - randomness (rand, dropout) and data-dependent shapes (x[x > 0], nonzero);
#  - which of tied elements max(dim)/min(dim) returns (and sends the gradient to): torch
#    does not specify it, so they are applied only to inputs without ties along `dim`;
#    amax/amin/max() share the gradient among ties in both and are tested with ties;
#  - index_put with duplicate indices (b[ix] = v): torch does not say which write wins;
#  - jumps of floor/ceil/round/trunc/sign: applied only to values that both libraries
#    compute exactly (`Value.exact`), since 1 ulp of libm difference can cross a jump;
#  - index_select with negative indices (torch raises, symgrad wraps them);
#  - where(): a NaN or inf in the branch not taken reaches torch's gradient, not symgrad's
#    (README, "Semantics"); `where` reads only values without NaN/inf (`Value.special`);
#  - std where its value is rounding error: torch's gradient is 0 where std is exactly 0 (as
#    symgrad's), but the mean of equal values may round (3 x 0.1), and the gradient is then
#    +-1/sqrt(N - 1) by the sign of a rounding error; std reads inputs whose rows along the
#    reduced dims are not constant, or constant at a multiple of 0.25 (whose mean is exact).
#
# Found differences the generator avoids unless `known=True` (`fuzz.py --known`); each has
# a strict-xfail regression test in tests/test_fuzz.py.
KNOWN_DIFFERENCES = {
    "prod-nonfinite-zero": "the gradient of prod over a group holding a 0 and a NaN or inf: torch "
    "multiplies the other elements (0 at the NaN or inf), symgrad divides prod by x there (NaN); "
    "prod reads values that may hold NaN or inf only through abs() + 0.5",
    "inf-into-flat-piece": "an infinite gradient into the flat piece of relu, clamp, maximum or "
    "minimum (log(-relu(x)) at x = 0, log(x.clamp(min=0)) at x < 0): torch's backward selects (0), "
    "symgrad multiplies by the slope 0 (nan; where() selects, as torch); values computed through "
    "these ops meet the raw domain of log, sqrt, / ... only through its guard",
    "var-of-inf": "the gradient of var over values holding an inf, with N - correction > 0 "
    "(log(x).var() at x = [0, 1]): torch's is 2 g (x - mean) / (N - correction), [nan, inf]; "
    "symgrad's also carries the mean's path -2 g sum(x - mean) / (N (N - correction)), 0 for finite "
    "x, nan here, so nan everywhere; var and std read values without NaN/inf",
    "sum-of-0d-signed-zero": "sum() or mean() of a 0-d -0.0 is +0 in torch and in symgrad's values, "
    "but symgrad's simplified gradient reads the sum as x itself (-0), so log(x.sum()) at x = -0 "
    "has gradient -inf, torch +inf; 0-d sums and means meet raw domains only through their guard",
    "zero-times-overflow": "a zero gradient times a partial derivative that overflows (float32 "
    "tanh(rsqrt(x)) at x = 1e-38: 0 * -inf): torch gives nan, symgrad's simplified gradient may "
    "multiply in another order and give 0, the exact limit; inputs are 0 or at least 1e-12 away",
    "nan-piecewise": "NaN into a piecewise op: torch's conventions differ from symgrad's (torch "
    "sign(nan) = 0; clamp with a NaN tensor bound gives NaN; maximum(nan, b) sends the gradient "
    "to both); piecewise ops read only values without NaN/inf",
}

MAX_NUMEL = 120  # per tensor: keeps compile and run time small
MAX_INPUTS = 4
SCALARS = [2.0, 0.5, -1.5, 3.0, 1.0, 0.0, -2.0]
EXACT_SCALARS = (2.0, 0.5, 1.0, 0.0, -2.0)  # x * c and x + c are then exact in both libraries
EXPONENTS = ["2", "3", "0.5", "-1", "0", "1.5", "-0.5", "2.0", "1"]
FLOAT_ELEMENTS = st.one_of(  # not within 1e-12 of 0 (KNOWN_DIFFERENCES["zero-times-overflow"])
    st.floats(-3, 3, width=32, allow_subnormal=False).filter(lambda v: v == 0 or abs(v) > 1e-12),
    st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0]),  # ties, zeros, kinks
)


# ---- programs ----------------------------------------------------------------------------


@dataclass
class Program:
    """Straight-line code over `lib` (torch or symgrad) and its inputs, printable as a repro."""

    inputs: list[np.ndarray]
    lines: list[str]
    sinks: list[str]  # results no later statement reads: the loss is built from these
    weights: list[np.ndarray]
    traceable: bool = True  # False: an op refuses traced tensors, or a known difference
    float32: bool = True  # some value is float32: its rounding enters later values
    tags: set[str] = field(default_factory=set)  # ops used, for the coverage counts
    focused: bool = False  # the first statement applies the op asked for

    @property
    def args(self) -> list[str]:
        return [f"x{i}" for i in range(len(self.inputs))]

    def source(self) -> str:
        body = "".join(f"    {line}\n" for line in self.lines)
        return f"def program(lib, {', '.join(self.args)}):\n{body}    return [{', '.join(self.sinks)}]\n"

    def function(self) -> Callable[..., list[Any]]:
        scope: dict[str, Any] = {}
        exec(compile(self.source(), "<fuzz program>", "exec"), scope)  # noqa: S102 - generated code
        return scope["program"]

    def __repr__(self) -> str:
        def literal(a: np.ndarray) -> str:
            return f"np.array({a.tolist()!r}, dtype=np.{a.dtype.name}).reshape({a.shape})"

        inputs = "".join(f"{n} = {literal(a)}\n" for n, a in zip(self.args, self.inputs))
        weights = ", ".join(literal(w) for w in self.weights)
        return (f"\n{self.source()}{inputs}weights = [{weights}]\n"
                "# loss = sum((out * lib.tensor(w)).sum() for out, w in zip(program(lib, *xs), weights))\n")  # fmt: skip


@dataclass
class Value:
    name: str
    shape: tuple[int, ...]
    dtype: str
    exact: bool = False  # computed without rounding, the same in every library
    special: bool = False  # may hold NaN or inf
    flat: bool = False  # through a flat piece (relu, clamp, maximum, minimum) or a 0-d sum: never raw


def numel(shape: tuple[int, ...] | list[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def promote(*values: Value) -> str:
    """torch's result dtype: a 0-d tensor counts only when every operand is 0-d."""
    ranked = [v for v in values if v.shape] or values
    return "float64" if any(v.dtype == "float64" for v in ranked) else "float32"


def index_source(item: Any) -> str:
    if item is None:
        return "None"
    if item is Ellipsis:
        return "..."
    if isinstance(item, slice):
        parts = ["" if item.start is None else str(item.start), "" if item.stop is None else str(item.stop)]
        return ":".join(parts + ([str(item.step)] if item.step is not None else []))
    return str(item)


def index_tensor(values: np.ndarray) -> str:
    return f"lib.tensor({values.tolist()!r}, dtype=lib.int64)"


# Domain guards: the op's argument is wrapped so that values stay finite, except in one
# program statement of `RAW_ONE_IN`, where nan and inf may appear.
def _pos(e: str) -> str:
    return f"({e}.abs() + 0.5)"


def _unit(e: str) -> str:
    return f"({e}.atan() * 0.57)"  # in (-0.9, 0.9)


def _bounded(e: str) -> str:
    # in (-3.2, 3.2); not tanh, whose derivative 1 - tanh**2 is all rounding error where
    # tanh rounds to 1 (float32: from 9 on), and that error differs between libraries
    return f"({e}.atan() * 2)"


RAW_ONE_IN = 6
UNARY: dict[str, Callable[[str], str] | None] = {
    "neg": None, "abs": None, "exp": _bounded, "log": _pos, "sqrt": _pos, "sin": None, "cos": None,
    "tan": lambda e: f"({e}.atan() * 0.9)", "tanh": None, "sigmoid": None, "relu": None, "exp2": _bounded,
    "log2": _pos, "log10": _pos, "log1p": lambda e: f"{e}.abs()", "expm1": _bounded, "asin": _unit,
    "acos": _unit, "atan": None, "sinh": _bounded, "cosh": _bounded, "erf": None, "floor": None,
    "ceil": None, "round": None, "trunc": None, "sign": None, "reciprocal": _pos, "rsqrt": _pos,
    "square": None,
}  # fmt: skip
OPS = {  # family -> its ops (a family without a list has one op, drawn in its own way)
    "unary": list(UNARY),
    "scalar_binary": ["+", "-", "*", "/", "**", "r-", "r/", "r**", "r+", "r*"],
    "binary": ["+", "-", "*", "/", "**", "atan2", "maximum", "minimum", "where", "where0", "clamp",
               "clamp_t", "lerp", "lerp_t"],
    "reduction": ["sum", "mean", "prod", "amax", "amin", "max", "min", "var", "std", "norm", "logsumexp",
                  "softmax", "log_softmax", "cumsum"],
    "view": ["reshape", "permute", "transpose", "unsqueeze", "squeeze", "expand", "flip", "narrow", "index"],
    "join": ["cat", "stack"],
    "gather": None, "assign": None, "matmul": None, "cast": None,
}  # fmt: skip
FOCUS = [(family, op) for family, ops in OPS.items() for op in ops or [None]]
DISCONTINUOUS = {"floor", "ceil", "round", "trunc", "sign"}
PIECEWISE = DISCONTINUOUS | {"abs", "relu"}
PIECEWISE_BINARY = {"maximum", "minimum", "where", "where0", "clamp", "clamp_t"}
NAN_SENSITIVE = {"amax", "amin", "max", "min", "norm"}  # norm: with p=1, abs
CLAMP_BOUNDS = [-1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
EXACT_UNARY = {"neg", "abs", "relu", "sign", "floor", "ceil", "round", "trunc", "square"}


class Builder:
    """Draws one program statement by statement, tracking each value's shape and dtype."""

    FAMILIES = list(OPS)

    def __init__(self, draw: Callable, known: bool) -> None:
        self.draw, self.known = draw, known
        self.inputs: list[np.ndarray] = []
        self.pool: list[Value] = []  # newest first
        self.lines: list[str] = []
        self.used: set[str] = set()
        self.temps = 0
        self.traceable = True
        self.float32 = False
        self.tags: set[str] = set()
        self.drawn: set[str] = set()  # ops of the statement being drawn
        self.forced: str | None = None  # the op of the statement being drawn, if chosen by focus

    # ---- drawing helpers -------------------------------------------------------------

    def rare(self, one_in: int = 8) -> bool:
        return self.draw(st.integers(0, one_in - 1)) == one_in - 1

    def choice(self, options: list) -> Any:
        return self.draw(st.sampled_from(options))

    def op_of(self, family: str) -> str:
        return self.forced if self.forced is not None else self.choice(OPS[family])

    def shape(self, max_dims: int = 3) -> tuple[int, ...]:
        ndim = self.draw(st.integers(0, max_dims))
        sides = st.one_of(st.integers(1, 4), st.just(0)) if self.rare(6) else st.integers(1, 4)
        return tuple(self.draw(st.lists(sides, min_size=ndim, max_size=ndim)))

    def new_input(self, shape: tuple[int, ...], dtype: str | None = None) -> Value | None:
        if len(self.inputs) >= MAX_INPUTS:
            return None
        dtype = dtype or self.choice(["float64", "float32"])
        self.inputs.append(self.draw(hnp.arrays(dtype, shape, elements=FLOAT_ELEMENTS)))
        value = Value(f"x{len(self.inputs) - 1}", shape, dtype, exact=True)
        self.float32 |= dtype == "float32"
        self.pool.insert(0, value)
        return value

    def pick(self, where: Callable[[Value], bool] = lambda v: True) -> Value | None:
        found = [v for v in self.pool if where(v)]
        return self.choice(found) if found else None

    def plain(self, v: Value) -> bool:
        """May `v` go into a piecewise op (KNOWN_DIFFERENCES['nan-piecewise'])?"""
        return self.known or not v.special

    def emit(self, expr: str, shape: Any, dtype: str, *reads: Value, exact: bool = False,
             special: bool = False, flat: bool = False) -> Value:  # fmt: skip
        special = special or any(r.special for r in reads)
        flat = flat or any(r.flat for r in reads)
        value = Value(f"t{self.temps}", tuple(shape), dtype, exact and not special, special, flat)
        self.temps += 1
        self.float32 |= dtype == "float32"
        self.lines.append(f"{value.name} = {expr}")
        self.used.update(r.name for r in reads)
        self.pool.insert(0, value)
        return value

    def view_of(self, a: Value, expr: str, shape: Any) -> Value:
        return self.emit(expr, shape, a.dtype, a, exact=a.exact)

    def guard(self, wrap: Callable[[str], str] | None, v: Value) -> tuple[str, bool]:
        """(argument, special): `v` through its domain guard, or raw once in a while; never raw
        after a flat piece (KNOWN_DIFFERENCES["inf-into-flat-piece"])."""
        if wrap is None:
            return v.name, False
        raw = (self.known or not v.flat) and self.rare(RAW_ONE_IN)
        return (v.name, True) if raw else (wrap(v.name), False)

    def dim(self, ndim: int) -> int:
        """A dim of a tensor with `ndim` dims, sometimes negative (0 or -1 for a 0-d tensor)."""
        n = max(ndim, 1)
        return self.draw(st.integers(-n, n - 1))

    def operand(self, shape: tuple[int, ...], dtype: str | None = None) -> Value | None:
        """A second operand that broadcasts with `shape`: from the pool or a new input."""

        def fits(v: Value) -> bool:
            out = broadcast(v.shape, shape)
            return out is not None and numel(out) <= MAX_NUMEL and dtype in (None, v.dtype)

        if not self.rare(3):
            found = self.pick(fits)
            if found is not None:
                return found
        keep = self.draw(st.integers(0, len(shape)))
        suffix = tuple(1 if self.rare(3) else n for n in shape[len(shape) - keep :])
        prefix = tuple(self.draw(st.lists(st.integers(1, 3), max_size=1))) if keep == len(shape) < 3 else ()
        new_shape = prefix + suffix if numel(broadcast(prefix + suffix, shape)) <= MAX_NUMEL else suffix
        return self.new_input(new_shape, dtype) or self.pick(fits)

    # ---- op families: each returns the new value, or None when it does not apply ------

    def unary(self) -> Value | None:
        a = self.pick()
        op = self.op_of("unary")
        if op in DISCONTINUOUS and not a.exact or op in PIECEWISE and not self.plain(a):
            return None
        arg, special = self.guard(UNARY[op], a)
        self.drawn.add(op)
        expr = self.choice([f"lib.{op}({arg})", f"{arg}.{op}()"])
        return self.emit(expr, a.shape, a.dtype, a, exact=op in EXACT_UNARY and a.exact, special=special,
                         flat=op == "relu")

    def scalar_binary(self) -> Value | None:
        a = self.pick()
        op = self.op_of("scalar_binary")
        self.drawn.add(f"scalar {op}")
        c = self.choice(SCALARS)
        if op == "**":
            e = self.choice(EXPONENTS)
            base, special = (a.name, False) if e in ("2", "3", "0", "1", "2.0") else self.guard(_pos, a)
            return self.emit(f"{base} ** {e}", a.shape, a.dtype, a, special=special)
        if op == "r**":
            c = self.choice([2.0, 0.5, 3.0, 1.0] + ([0.0] if self.known or not a.flat else []))  # "inf-into-flat-piece"
            return self.emit(f"{c} ** {_bounded(a.name)}", a.shape, a.dtype, a, special=c == 0.0)
        if op == "r/":
            arg, special = self.guard(_pos, a)
            return self.emit(f"{c} / {arg}", a.shape, a.dtype, a, special=special)
        if op == "/" and c == 0.0 and (not self.rare() or a.flat and not self.known):
            c = 4.0  # x / 0 once in a while; its inf gradient not into a flat piece ("inf-into-flat-piece")
        expr = f"{c} {op[1]} {a.name}" if op.startswith("r") else f"{a.name} {op} {c}"
        exact = a.exact and op in ("+", "-", "*", "r-", "r+", "r*") and c in EXACT_SCALARS
        return self.emit(expr, a.shape, a.dtype, a, exact=exact, special=c == 0.0 and op == "/")

    def binary(self) -> Value | None:
        a = self.pick()
        op = self.op_of("binary")
        b = self.operand(a.shape, a.dtype if op in ("clamp_t", "lerp", "lerp_t") else None)
        if b is None or op in PIECEWISE_BINARY and not (self.plain(a) and self.plain(b)):
            return None
        self.drawn.add(op)
        shape, dtype, exact = broadcast(a.shape, b.shape), promote(a, b), a.exact and b.exact
        x, y = a.name, b.name
        if op in ("+", "-", "*"):
            return self.emit(f"{x} {op} {y}", shape, dtype, a, b, exact=exact and op != "*")
        if op in ("/", "**"):
            guarded, special = self.guard(_pos, b if op == "/" else a)
            expr = f"{x} / {guarded}" if op == "/" else f"{guarded} ** {y}.atan()"
            return self.emit(expr, shape, dtype, a, b, special=special)
        if op in ("atan2", "maximum", "minimum"):
            return self.emit(f"lib.{op}({x}, {y})", shape, dtype, a, b, exact=exact and op != "atan2",
                             flat=op != "atan2")
        if op == "where":
            return self.emit(f"lib.where({x} > {y}, {x}, {y})", shape, dtype, a, b, exact=exact)
        if op == "where0":
            return self.emit(
                f"lib.where({x} > 0, {y}, {self.choice([y, '0.0', '1.5'])})", shape, b.dtype, a, b
            )
        if op == "clamp":
            lo, hi = sorted(self.draw(st.lists(st.sampled_from(CLAMP_BOUNDS), min_size=2, max_size=2)))
            form = self.choice(
                [f"{x}.clamp({lo}, {hi})", f"{x}.clamp(min={lo})", f"lib.clamp({x}, max={hi})"]
            )
            return self.emit(form, a.shape, a.dtype, a, exact=a.exact, flat=True)
        if op == "clamp_t":
            return self.emit(
                f"lib.clamp({x}, {self.choice(['min', 'max'])}={y})", shape, a.dtype, a, b, exact=exact, flat=True
            )
        if op == "lerp":
            return self.emit(
                f"lib.lerp({x}, {y}, {self.choice([0.3, 0.0, 1.0, -0.5])})", shape, a.dtype, a, b
            )
        c = self.operand(shape, a.dtype)  # lerp_t: a tensor weight
        if c is None or broadcast(shape, c.shape) is None:
            return None
        return self.emit(f"lib.lerp({x}, {y}, {c.name})", broadcast(shape, c.shape), a.dtype, a, b, c)

    def reduction(self) -> Value | None:
        op = self.op_of("reduction")
        # max(dim), min(dim) and std read inputs, whose values are known (see _input_rows)
        a = self.pick(lambda v: v.name.startswith("x") or op not in ("max", "min", "std") or self.known)
        if op in ("cumsum", "max", "min") and not a.shape and not self.known:
            return None  # 0-d dims: the generator does not draw them (tests/test_misc_api.py covers them)
        if op in ("softmax", "log_softmax", "cumsum"):
            return self._along(a, op)
        axes, dim = self._axes(a, op)
        keepdim = dim is not None and self.draw(st.booleans())
        kd = ", keepdim=True" if keepdim else ""
        count = numel([a.shape[d] for d in axes])
        out = tuple(1 if d in axes else n for d, n in enumerate(a.shape)) if keepdim else \
            tuple(n for d, n in enumerate(a.shape) if d not in axes)  # fmt: skip
        extreme = op in ("amax", "amin", "max", "min")
        if extreme and (count == 0 or dim is None and numel(a.shape) == 0):
            return None  # torch: "Expected reduction dim to have non-zero size"
        if op in NAN_SENSITIVE and not self.plain(a):
            return None  # KNOWN_DIFFERENCES["nan-piecewise"]
        if op in ("var", "std") and a.special and not self.known:
            return None  # KNOWN_DIFFERENCES["var-of-inf"]
        self.drawn.add(f"{op}({'all' if dim is None else 'dim'})")
        special = count == 0 and op in ("mean", "logsumexp")  # nan, -inf
        if op in ("max", "min") and dim is not None:
            return self._extreme_dim(a, op, dim, kd, out)
        if op in ("var", "std"):
            return self._variance(a, op, axes, dim, kd, out)
        if op == "norm":
            p = self.choice(["", "p=1, "]) if not isinstance(dim, tuple) or len(dim) < 3 else "p=1, "  # fro: 2 dims
            return self.emit(f"{a.name}.norm({p}dim={dim!r}{kd})" if dim is not None else
                             f"{a.name}.norm({p[:-2]})", out, a.dtype, a)  # fmt: skip
        if op == "logsumexp":
            return self.emit(f"lib.logsumexp({a.name}, {dim!r}{kd})", out, a.dtype, a, special=special)
        # prod: raw values (zeros too) once in a while, unless NaN/inf ("prod-nonfinite-zero")
        arg = _pos(a.name) if op == "prod" and (not self.plain(a) or not self.rare(3)) else a.name
        form = f"{arg}.{op}()" if dim is None else \
            self.choice([f"{arg}.{op}({dim!r}{kd})", f"lib.{op}({arg}, dim={dim!r}{kd})"])  # fmt: skip
        return self.emit(form, out, a.dtype, a, exact=extreme and a.exact, special=special,
                         flat=op in ("sum", "mean") and not a.shape)  # KNOWN_DIFFERENCES["sum-of-0d-signed-zero"]

    def _along(self, a: Value, op: str) -> Value | None:
        """softmax, log_softmax, cumsum: along one dim, the shape unchanged."""
        d = self.dim(len(a.shape))
        self.drawn.add(op)
        return self.emit(
            self.choice([f"{a.name}.{op}({d})", f"lib.{op}({a.name}, dim={d})"]), a.shape, a.dtype, a
        )

    def _axes(self, a: Value, op: str) -> tuple[tuple[int, ...], Any]:
        """(the reduced axes, the `dim` argument: None for all, an int, or a tuple of ints)."""
        nd = len(a.shape)
        mode = self.choice(["all", "dim", "dims"] if op not in ("prod", "max", "min") else ["all", "dim"])
        if mode == "dim":
            dim = self.dim(nd)
            return ((dim % nd,) if nd else ()), dim
        if mode == "dims" and nd:
            axes = tuple(sorted(self.draw(st.sets(st.integers(0, nd - 1), min_size=1))))
            return axes, tuple(d - nd if self.rare(3) else d for d in axes)
        if op == "logsumexp":  # torch's logsumexp needs dims
            return tuple(range(nd)), (tuple(range(nd)) if nd else 0)
        return tuple(range(nd)), None

    def _variance(self, a: Value, op: str, axes: tuple, dim: Any, kd: str, out: tuple) -> Value | None:
        count = numel([a.shape[d] for d in axes])
        extra = self.choice(["", "unbiased=False", "correction=0", "correction=2"])
        correction = {"": 1, "correction=2": 2}.get(extra, 0)
        if op == "std":  # a std of exactly equal values must be 0 in both libraries (see the top)
            rows = self._input_rows(a, axes)
            if rows is None or any(len(set(r.tolist())) < 2 and r[0] * 4 % 1 for r in rows if r.size):
                return None
        args = ", ".join(x for x in [f"dim={dim!r}" if dim is not None else "", extra, kd[2:]] if x)
        special = count <= correction  # N - correction <= 0: inf, or nan where all are equal
        return self.emit(f"{a.name}.{op}({args})", out, a.dtype, a, special=special)

    def _extreme_dim(self, a: Value, op: str, dim: int, kd: str, out: tuple) -> Value | None:
        # torch does not say which of tied elements max(dim) returns (its gradient goes there):
        # only inputs whose values along `dim` are distinct.
        rows = self._input_rows(a, (dim % max(len(a.shape), 1),) if a.shape else ())
        if rows is None or any(len(set(row.tolist())) < len(row) for row in rows):
            return None
        self.traceable = False  # symgrad refuses max(dim) on traced tensors (it returns indices)
        form = self.choice([f"{a.name}.{op}({dim}{kd})[0]", f"lib.{op}({a.name}, {dim}{kd}).values"])
        return self.view_of(a, form, out)

    def _input_rows(self, a: Value, axes: tuple[int, ...]) -> np.ndarray | None:
        """The values of input `a` along `axes`, one row per reduced group (None: not an input)."""
        if not a.name.startswith("x"):
            return None
        array = self.inputs[int(a.name[1:])]
        rest = [d for d in range(array.ndim) if d not in axes]
        if array.size == 0:
            return np.zeros((0, 1))
        return np.transpose(array, rest + list(axes)).reshape(numel([array.shape[d] for d in rest]), -1)

    def view(self) -> Value | None:
        a = self.pick()
        op = self.op_of("view")
        nd, shape = len(a.shape), a.shape
        if op == "narrow" and nd == 0 or op in ("transpose", "flip") and nd == 0 and not self.known:
            return None  # 0-d dims: the generator does not draw them (tests/test_misc_api.py covers them)
        self.drawn.add(op)
        if op == "reshape":
            new = self._factor(numel(shape))
            out = new
            if numel(shape) and new and self.rare(3):
                k = self.draw(st.integers(0, len(new) - 1))
                new = new[:k] + (-1,) + new[k + 1 :]
            return self.view_of(
                a, self.choice([f"{a.name}.reshape({new!r})", f"lib.reshape({a.name}, {new!r})"]), out
            )
        if op == "permute":
            perm = tuple(self.draw(st.permutations(range(nd))))
            return self.view_of(a, f"{a.name}.permute({', '.join(map(str, perm)) or '()'})",
                                [shape[p] for p in perm])  # fmt: skip
        if op == "transpose":
            d0, d1 = self.dim(nd), self.dim(nd)
            new = list(shape)
            if nd:
                new[d0], new[d1] = new[d1], new[d0]
            return self.view_of(a, f"{a.name}.transpose({d0}, {d1})", new)
        if op == "unsqueeze":
            d = self.draw(st.integers(-nd - 1, nd))
            new = list(shape)
            new.insert(d % (nd + 1), 1)
            return self.view_of(a, f"{a.name}.unsqueeze({d})", new)
        if op == "squeeze":
            if nd == 0 or self.rare(3):
                return self.view_of(a, f"{a.name}.squeeze()", [n for n in shape if n != 1])
            d = self.dim(nd)
            return self.view_of(
                a, f"{a.name}.squeeze({d})", [n for k, n in enumerate(shape) if k != d % nd or n != 1]
            )
        if op == "expand":
            lead = tuple(self.draw(st.lists(st.integers(1, 3), max_size=max(0, 3 - nd))))
            sizes = tuple(self.draw(st.integers(1, 3)) if n == 1 and self.rare(2) else n if self.rare(3) else -1
                          for n in shape)  # fmt: skip
            new = lead + tuple(n if s == -1 else s for n, s in zip(shape, sizes))
            if numel(new) > MAX_NUMEL:
                return None
            args = ", ".join(str(s) for s in lead + sizes)
            return self.view_of(a, f"{a.name}.expand({args})" if args else f"{a.name}.expand(())", new)
        if op == "flip":
            dims = self.draw(
                st.lists(st.integers(0, max(nd, 1) - 1), min_size=1, max_size=max(nd, 1), unique=True)
            )
            return self.view_of(a, f"{a.name}.flip({tuple(dims)!r})", shape)
        if op == "narrow":
            d = self.dim(nd)
            start = self.draw(st.integers(0, shape[d]))
            length = self.draw(st.integers(0, shape[d] - start))
            new = list(shape)
            new[d] = length
            return self.view_of(a, f"{a.name}.narrow({d}, {start}, {length})", new)
        return self._basic_index(a)

    def _factor(self, n: int) -> tuple[int, ...]:
        """A random shape with n elements."""
        ndim = self.draw(st.integers(0 if n == 1 else 1, 4))
        if n == 0:
            sizes = [self.draw(st.integers(1, 3)) for _ in range(ndim)]
            sizes[self.draw(st.integers(0, ndim - 1))] = 0
            return tuple(sizes)
        sizes, rest = [], n
        for _ in range(ndim - 1):
            k = self.choice([k for k in range(1, rest + 1) if rest % k == 0])
            sizes.append(k)
            rest //= k
        return tuple(sizes + [rest]) if ndim else ()

    def _basic_index(self, a: Value) -> Value:
        items: list[Any] = []
        for n in a.shape:
            kind = self.choice(["slice", "int", "full"])
            if kind == "int" and n > 0:
                items.append(self.draw(st.integers(-n, n - 1)))
            elif kind == "slice":
                bound, step = (
                    st.one_of(st.none(), st.integers(-n - 1, n + 1)),
                    st.one_of(st.none(), st.integers(1, 3)),
                )
                items.append(slice(self.draw(bound), self.draw(bound), self.draw(step)))
            else:
                items.append(slice(None))
            if self.rare(5):
                items.append(None)
        if self.rare(4):
            items.insert(self.draw(st.integers(0, len(items))), None)
        if items and self.rare(4):  # an ellipsis replaces a run of full slices (or nothing)
            k = self.draw(st.integers(0, len(items)))
            while k < len(items) and items[k] == slice(None):
                del items[k]
            items.insert(k, Ellipsis)
        index = tuple(items) or (self.choice([Ellipsis, None]),)
        shape = np.empty(a.shape)[index].shape  # numpy's basic indexing is torch's (steps > 0)
        return self.view_of(a, f"{a.name}[{', '.join(index_source(i) for i in index)}]", shape)

    def gather(self) -> Value | None:
        """Advanced indexing with an int64 index tensor (repeats and negatives included)."""
        a = self.pick(lambda v: len(v.shape) >= 1)
        if a is None:
            return None
        d = self.draw(st.integers(0, len(a.shape) - 1))
        n = a.shape[d]
        ix_shape = self.choice([(self.draw(st.integers(0 if n == 0 else 1, 4)),), (2, 2), (3, 1)])
        new = a.shape[:d] + ix_shape + a.shape[d + 1 :]
        if n == 0 and numel(ix_shape) or numel(new) > MAX_NUMEL:
            return None
        elements = st.integers(-n, n - 1) if n else st.nothing()
        ix = np.array(
            self.draw(st.lists(elements, min_size=numel(ix_shape), max_size=numel(ix_shape))), np.int64
        )
        self.drawn.add("index tensor")
        if len(ix_shape) == 1 and self.rare(3):
            self.drawn.add("index_select")
            return self.view_of(a, f"{a.name}.index_select({d}, {index_tensor(ix % max(n, 1))})", new)
        return self.view_of(a, f"{a.name}[{':, ' * d}{index_tensor(ix.reshape(ix_shape))}]", new)

    def assign(self) -> Value | None:
        """b = zeros(S) (or a clone); b[idx] = v (or +=); sometimes a second, overlapping write."""
        v = self.pick(lambda x: len(x.shape) <= 2)
        found = None if v is None else self._assign_index(v)
        if found is None:
            return None
        index, shape, advanced = found
        operator = "+=" if self.rare(3) else "="
        # b keeps its dtype; but torch's index_put (an index tensor) refuses values of another
        # dtype (so does symgrad: tests/test_fuzz.py), while += casts them
        same = advanced and operator == "="
        dtype = v.dtype if same else self.choice([v.dtype, "float32", "float64"])
        self.drawn.add("index assignment")
        base = self.pick(lambda x: x.shape == shape and (x.dtype == v.dtype or not same))
        if base is not None and self.rare(2):
            b = self.emit(f"{base.name}.clone()", shape, base.dtype, base)
        else:
            b = self.emit(f"lib.zeros({shape!r}, dtype=lib.{dtype})", shape, dtype, exact=True)
        value = self.choice([v.name, f"{v.name} * 2.0", f"{v.name}.exp()"])
        self.lines.append(f"{b.name}[{index}] {operator} {value}")
        self.used.add(v.name)
        if self.rare(3):  # a second write over part of the first
            second = self.pick(lambda x: not x.shape and x is not b)
            source = second.name if second is not None else "1.5"
            self.lines.append(f"{b.name}[{'0' if shape and shape[0] else '...'}] = {source}")
            self.used.add(source)
        b.exact, b.special = False, b.special or v.special
        return b

    def _assign_index(self, v: Value) -> tuple[str, tuple[int, ...], bool] | None:
        """(index, shape of b, has an index tensor) such that b[index] has v's shape."""
        items: list[Any] = []
        target: list[int] = []
        for n in v.shape:
            if self.rare(4):  # an int index: a dimension of b that v does not have
                size = self.draw(st.integers(1, 3))
                items.append(self.draw(st.integers(-size, size - 1)))
                target.append(size)
            kind = self.choice(["full", "offset", "step", "tensor"])
            if kind == "tensor" and not any(isinstance(i, (int, str)) for i in items):
                size = n + self.draw(st.integers(0, 2))
                rows = np.array(self.draw(st.permutations(range(size)))[:n], dtype=np.int64)  # distinct
                items.append(index_tensor(rows))
                target.append(size)
            elif kind == "offset":
                start = self.draw(st.integers(0, 2))
                items.append(slice(start, start + n))
                target.append(start + n + self.draw(st.integers(0, 1)))
            elif kind == "step" and n > 0:
                items.append(slice(None, None, 2))
                target.append(2 * n - 1 + self.draw(st.integers(0, 1)))
            else:
                items.append(slice(None))
                target.append(n)
        advanced = any(isinstance(i, str) for i in items)
        if advanced and any(isinstance(i, int) for i in items):
            return None  # torch and numpy order the dims of mixed int and tensor indices differently
        if numel(target) > MAX_NUMEL:
            return None
        return (
            ", ".join(i if isinstance(i, str) else index_source(i) for i in items) or "...",
            tuple(target),
            advanced,
        )

    def matmul(self) -> Value | None:
        a = self.pick(lambda x: len(x.shape) >= 1)
        if a is None:
            return None
        self.drawn.add("matmul")
        form = self.choice(["new", "self", "pool"])
        if form == "self":
            if len(a.shape) == 1:
                return self.emit(f"{a.name} @ {a.name}", (), a.dtype, a)
            mt = f"{a.name}.transpose(-1, -2)"
            if self.draw(st.booleans()):
                return self.emit(f"{a.name} @ {mt}", a.shape[:-1] + a.shape[-2:-1], a.dtype, a)
            return self.emit(f"lib.matmul({mt}, {a.name})", a.shape[:-2] + a.shape[-1:] * 2, a.dtype, a)
        if form == "pool":
            b = self.pick(
                lambda x: x.shape != () and x.dtype == a.dtype and matmul_shape(a.shape, x.shape) is not None
            )
            if b is None:
                return None
            return self.emit(f"{a.name} @ {b.name}", matmul_shape(a.shape, b.shape), a.dtype, a, b)
        k = a.shape[-1]
        other = self.choice([(k,), (k, self.draw(st.integers(1, 3))), (2, k, self.draw(st.integers(1, 3)))])
        out = matmul_shape(a.shape, other)
        if out is None or numel(out) > MAX_NUMEL:
            return None
        b = self.new_input(other, a.dtype)
        return None if b is None else self.emit(f"lib.matmul({a.name}, {b.name})", out, a.dtype, a, b)

    def join(self) -> Value | None:
        a = self.pick()
        op = self.op_of("join")
        nd = len(a.shape)
        if op == "cat" and nd == 0:
            return None
        self.drawn.add(op)
        d = self.draw(st.integers(-nd - 1, nd)) if op == "stack" else self.dim(nd)
        axis = d % (nd + 1) if op == "stack" else d % nd

        def fits(v: Value) -> bool:
            if op == "stack":
                return v.shape == a.shape
            return len(v.shape) == nd and all(
                m == n for k, (m, n) in enumerate(zip(v.shape, a.shape)) if k != axis
            )

        parts = [a] + [v for v in self.pool if fits(v) and self.draw(st.booleans())][:2]
        new = list(a.shape)
        if op == "stack":
            new.insert(axis, len(parts))
        else:
            new[axis] = sum(p.shape[axis] for p in parts)
        if numel(new) > MAX_NUMEL:
            return None
        names = ", ".join(p.name for p in parts)
        form = f"lib.stack([{names}], {d})" if op == "stack" else \
            self.choice([f"lib.cat([{names}], {d})", f"lib.cat(({names},), dim={d})"])  # fmt: skip
        return self.emit(form, new, promote(*parts), *parts, exact=all(p.exact for p in parts))

    def cast(self) -> Value | None:
        a = self.pick()
        self.drawn.add("cast")
        if a.dtype == "float32":
            form = self.choice([f"{a.name}.double()", f"{a.name}.to(lib.float64)"])
            return self.emit(form, a.shape, "float64", a, exact=a.exact)
        return self.emit(f"{a.name}.float()", a.shape, "float32", a)

    def step(self, focus: tuple[str, str | None] | None = None) -> bool:
        """Add a statement (of the family and op `focus`, if given); False if none applies."""
        for _ in range(8 if focus is None else 30):  # an op that does not apply to the operands drawn
            self.drawn, self.forced = set(), focus[1] if focus else None
            family = focus[0] if focus else self.choice(self.FAMILIES)
            made = getattr(self, family)() is not None
            self.forced = None
            if made:
                self.tags |= self.drawn
                return True
        return False


def matmul_shape(s: tuple[int, ...], t: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return np.matmul(np.zeros(s), np.zeros(t)).shape
    except ValueError:
        return None


STEP_COUNTS = [3, 1, 2, 4, 5, 6, 7, 8]


@st.composite
def programs(draw: Callable, known: bool = False, max_steps: int = 6,
             focus: tuple[str, str | None] | None = None) -> Program:  # fmt: skip
    """A random program; `known=True` also generates the cases of KNOWN_DIFFERENCES; with
    `focus` (a family of OPS and one of its ops) its first statement applies that op."""
    b = Builder(draw, known)
    for _ in range(draw(st.integers(1, 3))):
        b.new_input(b.shape())
    # hypothesis often draws the simplest choice: make that a program of a few steps
    steps = draw(st.sampled_from([n for n in STEP_COUNTS if n <= max_steps] or [1]))
    focused = focus is not None and b.step(focus)
    steps -= focus is not None
    for _ in range(steps):
        b.step()
    temps = [v for v in reversed(b.pool) if v.name.startswith("t")]
    sinks = [v for v in temps if v.name not in b.used] or b.pool[:1]
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    weights = [np.round(rng.uniform(-1, 1, size=v.shape), 3).astype(v.dtype) for v in sinks]
    return Program(
        b.inputs, b.lines, [v.name for v in sinks], weights, b.traceable, b.float32, b.tags, focused
    )


# ---- running a program -------------------------------------------------------------------


@dataclass
class Run:
    outs: list[np.ndarray]
    loss: np.ndarray
    grads: list[np.ndarray | None]
    loss_tensor: Any = None
    leaves: list[Any] = field(default_factory=list)


def loss_of(lib: Any, outs: list[Any], weights: list[np.ndarray]) -> Any:
    total = None
    for out, w in zip(outs, weights):
        term = (out * lib.tensor(w)).sum()
        total = term if total is None else total + term
    return total


def run_eager(lib: Any, program: Program) -> Run:
    leaves = [lib.tensor(x, requires_grad=True) for x in program.inputs]
    outs = program.function()(lib, *leaves)
    loss = loss_of(lib, outs, program.weights)
    loss.backward()
    grads = [None if t.grad is None else t.grad.numpy().copy() for t in leaves]
    return Run([o.detach().numpy().copy() for o in outs], loss.detach().numpy().copy(), grads, loss, leaves)


def repeated_eager(program: Program) -> Run:
    """The same eager program again until a pass finds its compiled plan by tape key (the
    path every later iteration of a loop takes), at most three more passes."""
    for _ in range(3):
        before = sg.cache_info()["by_tape"]
        run = run_eager(sg, program)
        if sg.cache_info()["by_tape"] > before:
            break
    return run


def run_compiled(program: Program) -> Run:
    fn = program.function()

    def traced(*xs: Any) -> Any:
        outs = fn(sg, *xs)
        return loss_of(sg, outs, program.weights), outs

    argnums = tuple(range(len(program.inputs)))
    (loss, outs), grads = sg.value_and_grad(traced, argnums=argnums, has_aux=True)(*program.inputs)
    return Run([np.asarray(o) for o in outs], np.asarray(loss), [np.asarray(g) for g in grads])


def run_interpreter(eager: Run) -> Run:
    """The eager graph's gradient DAG (differentiated and simplified), evaluated by numpy."""
    root = eager.loss_tensor._node
    grads, _ = symbolic_gradients([root], [const(1.0, root.dtype)], [t._node for t in eager.leaves])
    values = iter(evaluate([g for g in grads if g is not None], lambda n: n.payload.value()))
    return Run([], eager.loss, [None if g is None else next(values) for g in grads])


# ---- comparing ---------------------------------------------------------------------------


class Mismatch(AssertionError):
    pass


def tolerance(program: Program) -> float:
    return 1e-4 if program.float32 else 1e-9


def assert_close(what: str, got: Any, want: Any, rtol: float) -> None:
    """Equal shapes and dtypes, nan and inf where `want` has them, finite values within
    rtol * (|want| + max|want| + 0.01): the second term allows for cancellation in sums,
    the third for a float32 gradient that rounding makes 0 in one path (1 - tanh(x)**2)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        raise Mismatch(f"{what}: {got.dtype}{list(got.shape)} != {want.dtype}{list(want.shape)}")
    g, w = got.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(w) & np.isfinite(g)
    scale = float(np.max(np.abs(w[finite]), initial=0.0))
    bad = ~finite & ~((np.isnan(g) & np.isnan(w)) | (g == w))
    bad |= finite & (np.abs(g - w) > rtol * (np.abs(w) + scale + 1e-2))
    if np.any(bad):
        k = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Mismatch(f"{what}: {int(bad.sum())} of {w.size} differ, first at {list(k)}: {g[k]!r} != {w[k]!r} "
                       f"(rtol {rtol})\n got {got!r}\nwant {want!r}")  # fmt: skip


def compare(
    label: str, got: Run, want: Run, rtol: float, outs: bool = True, none_is_zero: bool = False
) -> None:
    """`none_is_zero`: compiled transforms return zeros where the eager .grad stays None."""
    for k, (g, w) in enumerate(zip(got.outs, want.outs) if outs else []):
        assert_close(f"{label}: result {k}", g, w, rtol)
    assert_close(f"{label}: loss", got.loss, want.loss, rtol)
    for k, (g, w) in enumerate(zip(got.grads, want.grads)):
        if none_is_zero and (g is None) != (w is None):
            g, w = (np.zeros_like(w) if g is None else g), (np.zeros_like(g) if w is None else w)
        if (g is None) != (w is None):
            raise Mismatch(f"{label}: grad of x{k}: {'None' if g is None else 'a tensor'} != "
                           f"{'None' if w is None else 'a tensor'}\n got {g!r}\nwant {w!r}")  # fmt: skip
        if g is not None:
            assert_close(f"{label}: grad of x{k}", g, w, rtol)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # torch warns about var() with dof <= 0
        yield


def check(program: Program) -> str:
    """Raise Mismatch (or the exception of the failing run) unless all paths agree; return
    "compared", or "rejected: <torch's error>" when torch and symgrad both raise."""
    rtol = tolerance(program)
    with quiet():
        theirs = None
        if torch is not None:
            try:
                theirs = run_eager(torch, program)
            except Exception as error:  # torch refuses the program: symgrad must refuse it too
                with contextlib.suppress(Exception):
                    run_eager(sg, program)
                    raise Mismatch(
                        f"torch raises {type(error).__name__}, symgrad does not: {error}"
                    ) from None
                return f"rejected: {type(error).__name__}: {error}"
        ours = run_eager(sg, program)
        if theirs is not None:
            compare("symgrad eager vs torch", ours, theirs, rtol)
        compare("symgrad eager repeated vs first", repeated_eager(program), ours, rtol)
        if program.traceable:
            compare("symgrad compiled vs eager", run_compiled(program), ours, rtol, none_is_zero=True)
        compare(
            "interpreter vs compiled backward",
            run_interpreter(ours),
            ours,
            rtol,
            outs=False,
            none_is_zero=True,
        )
    return "compared"


def signature(error: BaseException) -> str:
    """What makes two failures the same: the comparison and the quantity, or the exception."""
    if isinstance(error, Mismatch):
        label, what = str(error).split(":")[:2]
        return f"{label}: {what.strip().split(' ')[0]}"
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first[:70]}"


# ---- the long campaign -------------------------------------------------------------------


def fails_as(program: Program, kind: str) -> bool:
    try:
        check(program)
    except Exception as error:  # noqa: BLE001
        return signature(error) == kind
    return False


def _smaller(program: Program) -> Iterator[Program]:
    """Programs with one statement less: deleted, or bypassed (its users read one of its
    operands instead), or with one unused input less."""
    for k, line in enumerate(program.lines):
        name = line.split(" = ")[0]
        rest = program.lines[:k] + program.lines[k + 1 :]
        keep = [i for i, s in enumerate(program.sinks) if s != name]
        if keep:
            yield replace(program, lines=rest, sinks=[program.sinks[i] for i in keep],
                          weights=[program.weights[i] for i in keep])  # fmt: skip
        if re.fullmatch(r"t\d+", name):
            for operand in dict.fromkeys(re.findall(r"\b[xt]\d+\b", line.split(" = ", 1)[1])):
                bypass = [re.sub(rf"\b{name}\b", operand, other) for other in rest]
                yield replace(
                    program, lines=bypass, sinks=[operand if s == name else s for s in program.sinks]
                )
    for k, arg in enumerate(program.args):
        if not any(re.search(rf"\b{arg}\b", line) for line in program.lines):
            names = {a: f"x{i - (i > k)}" for i, a in enumerate(program.args) if i != k}
            rename = functools.partial(re.sub, r"\bx\d+\b", lambda m: names[m.group()])
            yield replace(program, inputs=program.inputs[:k] + program.inputs[k + 1 :],
                          lines=[rename(line) for line in program.lines], sinks=[rename(s) for s in program.sinks])  # fmt: skip


def simplify(program: Program, kind: str) -> Program:
    """After hypothesis' shrinking: delete or bypass statements and drop unused inputs while
    the program still fails the same way."""
    progress = True
    while progress:
        progress = False
        for smaller in _smaller(program):
            if len(set(smaller.sinks)) == len(smaller.sinks) and fails_as(smaller, kind):
                program, progress = smaller, True
                break
    return program


class Found(Exception):
    """Raised for the kind of failure being shrunk in this round."""


@dataclass
class Campaign:
    """A long run in rounds. Within a round, the first new kind of failure is raised, so
    that hypothesis shrinks it; other kinds are counted, and raised in a later round if
    they recur; kinds already shrunk only count."""

    known: bool
    max_steps: int
    found: dict[str, list[Program]] = field(default_factory=dict)  # kind -> programs generated
    minimal: dict[str, Program] = field(default_factory=dict)  # kind -> the shrunk program
    tags: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[str, Program]] = field(default_factory=list)  # refused by both libraries
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(["tried", "failed", "compiled",
                                                                          "rejected", "shrink runs"], 0))  # fmt: skip

    def run(self, examples: int, seed: int) -> None:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as seeded

        for rounds in range(50):
            if self.counts["tried"] >= examples:
                return
            target: list[str] = []
            test = given(programs(known=self.known, max_steps=self.max_steps))(lambda p: self.one(p, target))
            test = settings(max_examples=examples - self.counts["tried"], deadline=None, database=None,
                            phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
                            report_multiple_bugs=False, print_blob=False)(test)  # fmt: skip
            test = seeded(seed + rounds)(test)
            with contextlib.redirect_stdout(sys.stderr):
                try:
                    test()
                except Found:
                    pass
                except Exception as error:  # noqa: BLE001 - e.g. a failure that did not repeat
                    print(f"round {rounds}: hypothesis stopped: {type(error).__name__}: {error}")

    def one(self, program: Program, target: list[str]) -> None:
        """Run one program; `target` holds the kind being shrunk in this round, if any."""
        shrinking = bool(target)
        self.counts["shrink runs" if shrinking else "tried"] += 1
        if not shrinking:
            self.counts["compiled"] += program.traceable
            for t in program.tags:
                self.tags[t] = self.tags.get(t, 0) + 1
        try:
            outcome = check(program)
            if outcome != "compared" and not shrinking:
                self.counts["rejected"] += 1
                self.rejected.append((outcome, program))
            return
        except Exception as error:  # noqa: BLE001 - every failure is a finding
            kind = signature(error)
        if not shrinking:
            self.counts["failed"] += 1
            self.found.setdefault(kind, []).append(program)
            if kind not in self.minimal:
                target.append(kind)
        if target and kind == target[0]:
            self.minimal[kind] = program  # hypothesis' last call is its minimal example
            raise Found(kind)

    def report(self, seed: int, elapsed: float) -> None:
        c = self.counts
        print(f"seed {seed}: {c['tried']} programs in {elapsed:.0f} s ({c['compiled']} also compiled; "
              f"{'each run by torch' if torch is not None else 'torch not installed'}; {c['rejected']} "
              f"refused by torch and symgrad alike); {c['shrink runs']} more runs while shrinking")  # fmt: skip
        print(f"{c['failed']} failed, {len(self.found)} kinds of failure")
        print(
            "ops covered (programs using each):", ", ".join(f"{k} {v}" for k, v in sorted(self.tags.items()))
        )
        for outcome, program in list(dict(reversed(self.rejected)).items())[
            :3
        ]:  # the generator should not make these
            print(f"\n--- {outcome[:200]}{program!r}".rstrip())
        for n, (kind, progs) in enumerate(sorted(self.found.items(), key=lambda kv: -len(kv[1]))):
            smallest = min(progs, key=lambda p: (len(p.lines), sum(x.size for x in p.inputs)))
            minimal = simplify(self.minimal.get(kind, smallest), kind)
            how = "shrunk" if kind in self.minimal else "the smallest seen, not shrunk"
            print(f"\n=== failure {n + 1}: {kind}  ({len(progs)} programs; {how})")
            print(repr(minimal).strip())
            try:
                check(minimal)
                print("(passes when run again)")
            except Exception as error:  # noqa: BLE001
                print("".join(traceback.format_exception_only(type(error), error)).rstrip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=None, help="default: from the clock")
    parser.add_argument("--known", action="store_true", help="also generate the KNOWN_DIFFERENCES cases")
    parser.add_argument("--max-steps", type=int, default=6)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 2**31
    run = Campaign(args.known, args.max_steps)
    start = time.perf_counter()
    run.run(args.examples, seed)
    run.report(seed, time.perf_counter() - start)


if __name__ == "__main__":
    main()
