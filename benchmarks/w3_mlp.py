"""W3: one training step's loss and gradients of a 784-256-10 tanh MLP, float64:
loss = mean((tanh(X@W1 + b1)@W2 + b2 - Y)**2), X 256x784, grads w.r.t. W1, b1, W2, b2.

symgrad eager: persistent leaves, grads reset, forward + backward + .grad.numpy() per step;
symgrad compiled: `sg.value_and_grad(loss)(params, X, Y)`. Peers: hand-written numpy, PyTorch
eager (the same step as symgrad eager), torch.compile(loss) with the same step,
jax.jit(value_and_grad(loss)). Run: `python -m benchmarks.w3_mlp`.
"""

from __future__ import annotations

import argparse

import numpy as np

import symgrad as sg
from benchmarks.common import Row, Table, at_most, checker, compare, judge, load_jax, load_torch, main
from benchmarks.machine import matmul_rate

BATCH, IN, HIDDEN, OUT = 256, 784, 256, 10
TOL = 1e-9
PEERS = ["numpy", "torch", "torch.compile", "jax"]
# X@W1, then dW1 = X.T@dZ1 (no dX); H@W2, dW2 = H.T@dO and dH = dO@W2.T
FLOPS = 2 * BATCH * IN * HIDDEN * 2 + 2 * BATCH * HIDDEN * OUT * 3


def problem() -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    params = {
        "W1": rng.standard_normal((IN, HIDDEN)) / np.sqrt(IN),
        "b1": rng.standard_normal(HIDDEN) * 0.1,
        "W2": rng.standard_normal((HIDDEN, OUT)) / np.sqrt(HIDDEN),
        "b2": rng.standard_normal(OUT) * 0.1,
    }
    return params, rng.standard_normal((BATCH, IN)), rng.standard_normal((BATCH, OUT))  # fmt: skip


def loss(p: dict, X, Y, tanh):
    return ((tanh(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"] - Y) ** 2).mean()


def numpy_step(p: dict, X: np.ndarray, Y: np.ndarray) -> tuple:
    H = np.tanh(X @ p["W1"] + p["b1"])
    R = H @ p["W2"] + p["b2"] - Y
    dO = 2 * R / R.size
    dZ1 = (dO @ p["W2"].T) * (1 - H * H)
    grads = {"W1": X.T @ dZ1, "b1": dZ1.sum(0), "W2": H.T @ dO, "b2": dO.sum(0)}
    return np.mean(R * R), grads


def eager_step(lib, tensor, params: dict, X: np.ndarray, Y: np.ndarray, fn=loss):
    """A training-loop step in a torch-like eager library: reset grads, forward, backward."""
    leaves = {k: tensor(v, requires_grad=True) for k, v in params.items()}
    Xt, Yt = tensor(X), tensor(Y)

    def step(*_) -> tuple:
        for t in leaves.values():
            t.grad = None
        value = fn(leaves, Xt, Yt, lib.tanh)
        value.backward()
        return value.item(), {k: t.grad.numpy() for k, t in leaves.items()}

    return step


def jax_step(jax):
    jitted = jax.jit(jax.value_and_grad(lambda p, X, Y: loss(p, X, Y, jax.numpy.tanh)))
    return lambda p, X, Y: jax.block_until_ready(jitted(p, X, Y))


def candidates(args: argparse.Namespace, params: dict, X: np.ndarray, Y: np.ndarray) -> dict:
    torch, jax = load_torch(), load_jax()
    found = {"symgrad eager": eager_step(sg, sg.tensor, params, X, Y),
             "symgrad compiled": sg.value_and_grad(lambda p, X, Y: loss(p, X, Y, sg.tanh)),
             "numpy": numpy_step}  # fmt: skip
    if torch is not None:
        found["torch"] = eager_step(torch, torch.tensor, params, X, Y)
        if not args.no_torch_compile:
            found["torch.compile"] = eager_step(torch, torch.tensor, params, X, Y, torch.compile(loss))
    if jax is not None:
        found["jax"] = jax_step(jax)
    return found


def run(args: argparse.Namespace) -> list[Table]:
    params, X, Y = problem()
    ref = numpy_step(params, X, Y)
    fns = candidates(args, params, X, Y)
    table = Table(
        "W3: MLP 784-256-10 tanh, batch 256, loss + 4 gradients per step", [p for p in PEERS if p in fns]
    )
    times = compare(fns, (params, X, Y), checker(ref, TOL, table.notes), repeats=3 if args.quick else 9,
                    budget=1.0 if args.quick else 3.0)  # fmt: skip
    peak = matmul_rate() * 1e9
    for api in ("eager", "compiled"):
        sg_time = times[f"symgrad {api}"]
        status = judge(("≤ 1.1x torch eager", at_most(sg_time, times.get("torch"), 1.1)), measured=sg_time)
        row_times = {"symgrad": sg_time, **{p: times[p] for p in table.peers}}
        table.rows.append(
            Row(f"W3 MLP {api}", "256x784x256x10", "float64", row_times, "≤ 1.1x torch eager", status)
        )
    for name, t in times.items():
        if isinstance(t, float):
            table.notes.append(f"{name}: {FLOPS / t / 1e9:.1f} GFLOP/s, {FLOPS / t / peak:.0%} of the "
                               f"matmul rate measured here ({peak / 1e9:.1f} GFLOP/s, one thread)")  # fmt: skip
    table.notes += [
        f"{FLOPS / 1e6:.0f} MFLOP of matmul per step (X@W1, X.T@dZ1, and three 256x256x10 products).",
        f"Loss and gradients checked against numpy (relative error ≤ {TOL:g}) before timing; "
        "all candidates timed round-robin.",
        "Eager steps (symgrad, torch, torch.compile) keep their leaves, reset .grad to None, run "
        "forward + backward and read the grads as numpy; compiled symgrad and jax take numpy in and out.",
    ]
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
