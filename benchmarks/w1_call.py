"""W1: value and gradient of mean(3*(x+2)**2) for a 2x2 float64 x, per call.

"W1 call" is symgrad's compile-and-call API (`sg.value_and_grad(f)(x)`, inputs checked,
numpy arrays back); "W1 eager" builds the graph and runs `backward()` every call, reading
x.grad as numpy. Peers: hand-written numpy, PyTorch eager (a new leaf, forward, backward,
.grad.numpy()), torch.compile of f with the same autograd step, jax.jit(value_and_grad(f))
with block_until_ready. Run: `python -m benchmarks.w1_call`.
"""

from __future__ import annotations

import argparse

import numpy as np

import symgrad as sg
from benchmarks.common import (
    Row,
    Table,
    at_most,
    checker,
    compare,
    fmt_ratio,
    fmt_time,
    judge,
    load_jax,
    load_torch,
    main,
    median_time,
    ratio,
)

TOL = 1e-12
PEERS = ["numpy", "torch", "torch.compile", "jax"]
X = np.array([[0.5, -1.25], [2.0, 0.125]])


def f(x):  # the same source runs on symgrad, torch and jax arrays
    return (3 * (x + 2) ** 2).mean()


def numpy_value_and_grad(x: np.ndarray) -> tuple:
    d = x + 2
    return np.mean(3 * d**2), 6 * d / d.size


def symgrad_eager(x: np.ndarray) -> tuple:
    t = sg.tensor(x, requires_grad=True)
    loss = f(t)
    loss.backward()
    return loss.item(), t.grad.numpy()


def torch_step(torch, fn):
    def step(x: np.ndarray) -> tuple:
        t = torch.tensor(x, requires_grad=True)
        loss = fn(t)
        loss.backward()
        return loss.item(), t.grad.numpy()

    return step


def jax_value_and_grad(jax):
    jitted = jax.jit(jax.value_and_grad(f))

    def call(x: np.ndarray) -> tuple:
        return jax.block_until_ready(jitted(x))

    return call


def candidates(args: argparse.Namespace) -> dict:
    """Every value-and-grad callable on a numpy x: symgrad's two APIs, then the peers."""
    torch, jax = load_torch(), load_jax()
    found = {"W1 call": sg.value_and_grad(f), "W1 eager": symgrad_eager, "numpy": numpy_value_and_grad}
    if torch is not None:
        found["torch"] = torch_step(torch, f)
        if not args.no_torch_compile:
            found["torch.compile"] = torch_step(torch, torch.compile(f))
    if jax is not None:
        found["jax"] = jax_value_and_grad(jax)
    return found


def run(args: argparse.Namespace) -> list[Table]:
    table = Table("W1: mean(3*(x+2)**2), x 2x2 float64, value + gradient per call", [])
    times = compare(candidates(args), (X,), checker(numpy_value_and_grad(X), TOL, table.notes),
                    repeats=3 if args.quick else 9)  # fmt: skip
    table.peers = [p for p in PEERS if p in times]
    peers = {p: times[p] for p in table.peers}
    call, eager = times["W1 call"], times["W1 eager"]
    table.rows = [
        Row("W1 call", "2x2", "float64", {"symgrad": call, **peers}, "≤ 0.5 µs; ≤ 0.1x jax",
            judge(("≤ 0.5 µs", at_most(call, 1.0, 0.5e-6)), ("≤ 0.1x jax", at_most(call, peers.get("jax"), 0.1)),
                  measured=call)),
        Row("W1 eager", "2x2", "float64", {"symgrad": eager, **peers}, "≤ 0.5x torch eager",
            judge(("≤ 0.5x torch", at_most(eager, peers.get("torch"), 0.5)), measured=eager)),
    ]  # fmt: skip
    ufunc = median_time(np.add, X, X)
    table.notes += [
        f"For scale: one numpy ufunc call on a 2x2 array (np.add) takes {fmt_time(ufunc)} in this run "
        f"(W1 call = {fmt_ratio(ratio(call, ufunc))} of them); DESIGN.md measured about 220 ns on a quiet machine.",
        "W1 call: symgrad through the public value_and_grad API (input checks, numpy outputs); "
        "W1 eager: sg.tensor + forward + backward + .grad.numpy() per call.",
        "The peer columns are the same in both rows: torch is eager (new leaf, forward, backward, "
        ".grad.numpy()), torch.compile compiles f and runs the same autograd step, jax is "
        "jit(value_and_grad(f)) called on a numpy array with block_until_ready, numpy is hand-written.",
        f"Results checked against numpy (relative error ≤ {TOL:g}) before timing; all candidates "
        "timed round-robin in one process.",
    ]
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
