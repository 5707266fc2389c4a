"""sympy in and out, user-defined elementwise ops, inspection of functions, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symgrad as sg

a, b = sympy.symbols("a b")


def test_from_sympy_values_and_partials_vectorised():
    f = sg.from_sympy(sympy.exp(-a * b) * sympy.sin(a), [a, b])
    xa, xb = np.linspace(0.1, 2, 7), np.array(0.3)
    np.testing.assert_allclose(f(xa, xb), np.exp(-xa * xb) * np.sin(xa), rtol=1e-13)
    da, db = f.grad(xa, xb)
    np.testing.assert_allclose(da, np.exp(-xa * xb) * (np.cos(xa) - xb * np.sin(xa)), rtol=1e-12)
    np.testing.assert_allclose(db, -xa * np.exp(-xa * xb) * np.sin(xa), rtol=1e-12)


def test_from_sympy_matrix():
    m = sg.from_sympy(sympy.Matrix([[a * b, a], [sympy.cos(b), 1]]), [a, b])
    out = m(np.array([1.0, 2.0]), np.array(0.0))
    np.testing.assert_allclose(out, [[[0, 1], [1, 1]], [[0, 2], [1, 1]]])


def test_user_elementwise_in_eager_compiled_and_inspected_code():
    op = sg.elementwise(lambda x, y: sympy.log(1 + sympy.exp(x * y)), name="softplus_xy")
    x = sg.tensor([0.5, -1.0], dtype=sg.float64, requires_grad=True)
    y = sg.tensor([2.0, 3.0], dtype=sg.float64, requires_grad=True)
    op(x, y).sum().backward()
    s = 1 / (1 + np.exp(-np.array([1.0, -3.0])))
    np.testing.assert_allclose(x.grad.numpy(), s * [2.0, 3.0], rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), s * [0.5, -1.0], rtol=1e-12)
    g = sg.grad(lambda u, v: op(u, v).sum(), argnums=(0, 1))(np.array([0.5, -1.0]), np.array([2.0, 3.0]))
    np.testing.assert_allclose(g[0], x.grad.numpy(), rtol=1e-12)
    assert "softplus_xy" in str(sg.inspect(lambda u: op(u, u).sum(), np.ones(2)))


def test_elementwise_refuses_what_cannot_be_compiled():
    with pytest.raises(NotImplementedError, match="gamma"):
        sg.elementwise(lambda x: sympy.gamma(x))


def test_inspect_function_formulas_stats_and_code():
    def loss(W, X, Y):
        return ((X @ W - Y) ** 2).mean()

    rng = np.random.default_rng(0)
    report = sg.inspect(loss, rng.standard_normal((3, 2)), rng.standard_normal((5, 3)), rng.standard_normal((5, 2)))
    W, X, Y = sympy.symbols("W X Y")
    assert set(report.gradients) == {"W", "X", "Y"}
    assert str(report.gradients["W"]) == "X.T @ ((-Y + X @ W)/5)"
    assert report.stats["BLAS calls"] == 3 and report.stats["nodes after"] < report.stats["nodes before simplification"]
    assert set(report.stats["seconds"]) >= {"trace", "differentiate", "simplify", "lower", "LLVM compile"}
    assert report.dot.startswith("digraph") and "matmul" in report.dot
    assert "define" in report.llvm_ir and report.asm.strip()
    assert report.cache_key == "W: float64[3, 2], X: float64[5, 3], Y: float64[5, 2]"
    assert r"\frac" in report._repr_latex_()
    formulas = sg.to_sympy(loss, np.ones((3, 2)), np.ones((5, 3)), np.ones((5, 2)))
    assert set(formulas) == {"loss", "d loss/dW", "d loss/dX", "d loss/dY"}


def test_gradcheck_reports_the_worst_element():
    assert sg.testing.gradcheck(lambda x: sg.sin(x) * x, [np.array([0.1, 0.2, 0.3])])
    wrong = sg.elementwise(lambda x: x**2, name="square_ok")
    assert sg.testing.gradcheck(lambda x: wrong(x), [np.array([1.0, 2.0])])
    with pytest.raises(sg.testing.GradcheckError, match=r"worst element \(1,\)"):
        sg.testing.assert_grad_close(lambda x: (x**2).sum(), [np.array([1.0, 2.0])], [np.array([2.0, 4.5])])
