"""The compiled-gradient cache: one compile per structure, runtime inputs never baked in.

Eager backward interprets a structure's first pass and compiles it at the second
(`set_eager_compile_threshold`): a graph seen once never pays for LLVM.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as torch


@pytest.fixture(autouse=True)
def _default_policy(eager_threshold):
    eager_threshold(2)  # symgrad's default (the rest of the suite compiles at once)


def compiles() -> int:
    return torch.cache_info()["compiles"]


def train_step(w_value, x_value, y_value, scale=3.0):
    w = torch.tensor(w_value, requires_grad=True)
    x, y = torch.tensor(x_value), torch.tensor(y_value)
    loss = ((x * w - y) ** 2 * scale).mean()
    loss.backward()
    return w.grad.numpy()


def expected_grad(w, x, y, scale=3.0):
    return (scale * 2 * (x * w - y) * x).sum(axis=0) / x.size


def data(rng, n=5, d=3):
    return (rng.standard_normal(d), rng.standard_normal((n, d)), rng.standard_normal((n, d)))


def interpreted() -> int:
    return torch.cache_info()["interpreted"]


def test_same_structure_compiles_once_and_new_values_give_new_gradients():
    rng = np.random.default_rng(0)
    start = torch.cache_info()
    first = data(rng)
    np.testing.assert_allclose(train_step(*first), expected_grad(*first), rtol=1e-5)
    assert (compiles(), interpreted()) == (start["compiles"], start["interpreted"] + 1)
    second = data(rng)
    np.testing.assert_allclose(train_step(*second), expected_grad(*second), rtol=1e-5)
    assert (compiles(), interpreted()) == (start["compiles"] + 1, start["interpreted"] + 1)
    before = torch.cache_info()
    for _ in range(3):
        values = data(rng)
        np.testing.assert_allclose(train_step(*values), expected_grad(*values), rtol=1e-5)
    after = torch.cache_info()
    assert after["compiles"] == before["compiles"]
    assert after["hits"] == before["hits"] + 3


def test_new_shape_or_constant_compiles_again():
    rng = np.random.default_rng(1)
    train_step(*data(rng, n=7))  # interpreted
    train_step(*data(rng, n=7))  # compiled
    count = compiles()
    train_step(*data(rng, n=7))
    assert compiles() == count
    for _ in range(2):  # a new shape is a new specialisation (interpreted, then compiled)
        values = data(rng, n=8)
        np.testing.assert_allclose(train_step(*values), expected_grad(*values), rtol=1e-5)
    assert compiles() == count + 1
    for _ in range(2):  # Python numbers are constants of the compiled code
        values = data(rng, n=8)
        np.testing.assert_allclose(train_step(*values, scale=5.0), expected_grad(*values, 5.0), rtol=1e-5)
    assert compiles() == count + 2


def test_dtype_is_part_of_the_key():
    rng = np.random.default_rng(2)
    w, x, y = data(rng, n=4, d=2)  # a shape no other test uses
    for _ in range(2):
        train_step(w.astype(np.float32), x.astype(np.float32), y.astype(np.float32))
    count = compiles()
    for _ in range(2):
        g = train_step(w, x, y)  # float64 numpy arrays stay float64
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, expected_grad(w, x, y), rtol=1e-12)
    assert compiles() == count + 1


def test_gradient_accumulates_over_cached_calls():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    for k in range(1, 4):
        (w * w).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), k * 2 * np.array([1.0, 2.0]))


def test_data_modified_in_place_after_use_is_an_error():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.tensor([3.0, 4.0])
    loss = (w * x).sum()
    x[0] = 10.0  # the gradient needs the old x
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_a_graph_that_changes_every_iteration_is_never_compiled():
    rng = np.random.default_rng(3)
    before = torch.cache_info()
    for n in range(20, 30):  # a new shape each time
        values = data(rng, n=n, d=n % 4 + 1)
        np.testing.assert_allclose(train_step(*values), expected_grad(*values), rtol=1e-12)
    after = torch.cache_info()
    assert after["compiles"] == before["compiles"]
    assert after["interpreted"] == before["interpreted"] + 10


def test_interpreted_and_compiled_passes_agree_and_other_thresholds():
    rng = np.random.default_rng(4)
    values = data(rng, n=11, d=5)
    interpreted_grad = train_step(*values)
    compiled_grad = train_step(*values)
    np.testing.assert_allclose(interpreted_grad, compiled_grad, rtol=1e-13)
    torch.set_eager_compile_threshold(1)
    count = compiles()
    train_step(*data(rng, n=12, d=5))
    assert compiles() == count + 1
    torch.set_eager_compile_threshold(0)  # never: every pass interpreted
    before = torch.cache_info()
    for _ in range(3):
        values = data(rng, n=13, d=5)
        np.testing.assert_allclose(train_step(*values), expected_grad(*values), rtol=1e-12)
    assert torch.cache_info()["compiles"] == before["compiles"]
    assert torch.cache_info()["interpreted"] == before["interpreted"] + 3
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="set_eager_compile_threshold"):
            torch.set_eager_compile_threshold(bad)


def test_compilation_pauses_the_garbage_collector_and_restores_it():
    import gc

    from symgrad.cache import paused_gc

    seen = []
    f = torch.compile(lambda a: (a * 2.5).sin())
    real = gc.disable

    def spy():
        seen.append("disabled")
        real()

    assert gc.isenabled()
    gc.disable = spy
    try:
        f(np.ones(17))
    finally:
        gc.disable = real
    assert seen == ["disabled"] and gc.isenabled()
    with paused_gc():
        with paused_gc():  # nested: one pause
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # a program that keeps the collector off keeps it off
    try:
        with pytest.raises(ZeroDivisionError), paused_gc():
            raise ZeroDivisionError
        assert not gc.isenabled()
    finally:
        gc.enable()
