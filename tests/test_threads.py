"""Threads: compiling and calling the same and different functions at once, eager backward
in several threads; one compile per signature even when requested concurrently."""

from __future__ import annotations

import threading

import numpy as np

import symgrad as sg


def run_threads(n: int, target) -> list:
    results: list = [None] * n
    errors: list = []

    def work(k: int) -> None:
        try:
            results[k] = target(k)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert not errors, errors
    return results


def test_one_function_compiled_once_under_concurrency():
    calls = []

    def f(x):
        calls.append(1)
        return (sg.sin(x) * x).sum()

    g = sg.grad(f)
    x = np.linspace(0, 1, 50)
    barrier = threading.Barrier(8)

    def call(k: int):
        barrier.wait()
        return [g(x + k) for _ in range(20)]

    results = run_threads(8, call)
    assert len(calls) == 1
    for k, rs in enumerate(results):
        for r in rs:
            np.testing.assert_allclose(r, np.cos(x + k) * (x + k) + np.sin(x + k), rtol=1e-12)


def test_different_functions_and_eager_backward_at_once():
    def work(k: int):
        if k % 2:
            f = sg.value_and_grad(lambda v, p=k: (v**p).sum())
            value, g = f(np.arange(1.0, 4.0))
            np.testing.assert_allclose(g, k * np.arange(1.0, 4.0) ** (k - 1))
            return value
        for _ in range(30):
            w = sg.tensor(np.arange(1.0, 4.0) * k, requires_grad=True)
            ((w * w).sum() + w.tanh().sum()).backward()
            np.testing.assert_allclose(w.grad.numpy(), 2 * w.detach().numpy() + 1 - np.tanh(w.detach().numpy()) ** 2)
        return True

    run_threads(8, work)


def test_eager_backward_first_sightings_in_threads(eager_threshold):
    """The default policy (interpret a structure's first pass, compile at its second) with
    threads meeting the same and new structures at once."""
    eager_threshold(2)

    def work(k: int):
        rng = np.random.default_rng(k)
        for step in range(40):
            n = 2 + (k + step) % 6  # shapes shared between threads, and new ones
            x = rng.standard_normal(n)
            w = sg.tensor(x, requires_grad=True)
            ((w * w).sin().sum() * 1.5).backward()
            np.testing.assert_allclose(w.grad.numpy(), 1.5 * np.cos(x * x) * 2 * x, rtol=1e-12)
        return True

    assert all(run_threads(8, work))
