"""The compiled-gradient cache: one compile per structure, runtime inputs never baked in."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as torch


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


def test_same_structure_compiles_once_and_new_values_give_new_gradients():
    rng = np.random.default_rng(0)
    first = data(rng)
    np.testing.assert_allclose(train_step(*first), expected_grad(*first), rtol=1e-5)
    before = torch.cache_info()
    for _ in range(3):
        values = data(rng)
        np.testing.assert_allclose(train_step(*values), expected_grad(*values), rtol=1e-5)
    after = torch.cache_info()
    assert after["compiles"] == before["compiles"]
    assert after["hits"] == before["hits"] + 3


def test_new_shape_or_constant_compiles_again():
    rng = np.random.default_rng(1)
    train_step(*data(rng, n=7))
    count = compiles()
    train_step(*data(rng, n=7))
    assert compiles() == count
    values = data(rng, n=8)  # a new shape is a new specialisation
    np.testing.assert_allclose(train_step(*values), expected_grad(*values), rtol=1e-5)
    assert compiles() == count + 1
    values = data(rng, n=8)  # Python numbers are constants of the compiled code
    np.testing.assert_allclose(train_step(*values, scale=5.0), expected_grad(*values, 5.0), rtol=1e-5)
    assert compiles() == count + 2


def test_dtype_is_part_of_the_key():
    rng = np.random.default_rng(2)
    w, x, y = data(rng, n=4, d=2)  # a shape no other test uses
    train_step(w.astype(np.float32), x.astype(np.float32), y.astype(np.float32))
    count = compiles()
    g = train_step(w, x, y)  # float64 numpy arrays stay float64
    assert g.dtype == np.float64
    assert compiles() == count + 1
    np.testing.assert_allclose(g, expected_grad(w, x, y), rtol=1e-12)


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
