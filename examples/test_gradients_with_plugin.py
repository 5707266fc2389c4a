"""A user's own test file: symgrad's pytest plugin gives the `gradcheck` fixture.

Run it with `pytest examples/test_gradients_with_plugin.py` (the plugin is registered by
installing symgrad; nothing to import for the fixture).
"""

import numpy as np
import pytest

import symgrad as sg


def mlp_loss(w1, w2, x, y):
    hidden = sg.tanh(x @ w1)
    return ((hidden @ w2 - y) ** 2).mean()


def test_mlp_gradients(gradcheck):
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2)),
              rng.standard_normal((5, 3)), rng.standard_normal((5, 2))]  # fmt: skip
    assert gradcheck(mlp_loss, inputs)


class Cube(sg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x**2


class WrongCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x**2  # wrong on purpose


def test_custom_function_passes_and_a_wrong_one_is_caught(gradcheck):
    x = np.array([0.5, -1.5, 2.0])
    assert gradcheck(lambda v: Cube.apply(v), [x])
    with pytest.raises(AssertionError, match="worst element"):
        gradcheck(lambda v: WrongCube.apply(v), [x])


def test_expected_gradient(gradcheck):
    x = np.array([1.0, 2.0])
    gradcheck.assert_grad_close(lambda v: (v**2).sum(), [x], [2 * x])
