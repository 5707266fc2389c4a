"""Autograd semantics: autograd.grad, create_graph (higher order), retain_graph errors,
retain_grad, hooks, custom Functions, autograd.functional, in-place rules.

Each case returns plain values; it runs on symgrad always (against hand-derived
numbers) and on torch when installed (the same numbers and exception types).
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad

CASES = {}


def case(*expected):
    def register(fn):
        CASES[fn.__name__] = (fn, expected)
        return fn

    return register


def arr(t):
    return None if t is None else np.asarray(t.detach().numpy(), dtype=np.float64)


@case([3.0, 12.0], [6.0, 12.0])
def second_derivative(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    (g,) = lib.autograd.grad((x**3).sum(), x, create_graph=True)
    (h,) = lib.autograd.grad(g.sum(), x)
    return arr(g), arr(h)


@case([6.0, 6.0])
def third_derivative(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    (g,) = lib.autograd.grad((x**3).sum(), x, create_graph=True)
    (h,) = lib.autograd.grad(g.sum(), x, create_graph=True)
    (k,) = lib.autograd.grad(h.sum(), x)
    return (arr(k),)


@case([np.cos(1.0), np.cos(2.0)], [-np.sin(1.0), -np.sin(2.0)])
def backward_create_graph(lib):
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    x.sin().sum().backward(create_graph=True)
    g = x.grad
    x.grad = None
    g.sum().backward()
    return arr(g), arr(x.grad)


@case("RuntimeError")
def backward_twice(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    try:
        y.backward()
    except RuntimeError:
        return ("RuntimeError",)
    return ("no error",)


@case([4.0, 8.0])
def backward_twice_with_retain_graph(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    return (arr(x.grad),)


@case([2.0, 2.0])
def backward_twice_through_add_is_allowed(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    y.backward()
    return (arr(x.grad),)


@case([4.0, 8.0], [8.0, 16.0])
def retain_grad(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    b.retain_grad()
    (b * b).sum().backward()
    return arr(b.grad), arr(a.grad)


@case([30.0, 30.0])
def leaf_hook_replaces_gradient(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    w.register_hook(lambda g: g * 10)
    (w * 3).sum().backward()
    return (arr(w.grad),)


@case([39.0, 75.0], [13.0, 25.0], [np.e, np.e**2])
def non_leaf_hooks_observe_and_replace(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()))
    z = y * y
    z.register_hook(lambda g: g * 2)
    (z.sum() + y.sum()).backward()
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = a.exp()
    b.register_hook(lambda g: g * 0)  # cuts the path through b
    (b * a).sum().backward()
    return arr(x.grad), seen[0], arr(a.grad)


@case([2.0, 0.0], None, "RuntimeError")
def grad_with_allow_unused(lib):
    x = lib.tensor([1.0, 0.0], requires_grad=True)
    y = lib.tensor([1.0, 1.0], requires_grad=True)
    gx, gy = lib.autograd.grad((x * x).sum(), [x, y], allow_unused=True)
    try:
        lib.autograd.grad((x * x).sum(), [x, y])
        error = "no error"
    except RuntimeError:
        error = "RuntimeError"
    return arr(gx), arr(gy), error


@case([2.0, 4.0], [1.0, 1.0])
def grad_of_a_non_leaf(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    (gy,) = lib.autograd.grad((y * y).sum(), y)
    (gx,) = lib.autograd.grad((x + 1).sum(), x)
    return arr(gy), arr(gx)


class _Exp:
    @staticmethod
    def make(lib):
        class Exp(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, g):
                (y,) = ctx.saved_tensors
                return g * y

        return Exp


@case("ExpBackward", list(2 * np.exp([1.0, -1.0]) ** 2))
def custom_function(lib):
    x = lib.tensor([1.0, -1.0], dtype=lib.float64, requires_grad=True)
    y = _Exp.make(lib).apply(x)
    (y * y).sum().backward()
    return type(y.grad_fn).__name__, arr(x.grad)


@case(list(np.exp([1.0, -1.0])))
def custom_function_twice_differentiable(lib):
    x = lib.tensor([1.0, -1.0], dtype=lib.float64, requires_grad=True)
    y = _Exp.make(lib).apply(x)
    (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = lib.autograd.grad(g.sum(), x)
    return (arr(h),)


@case([[2.0, 0.0], [0.0, 4.0]], [[6.0, 0.0], [0.0, 12.0]], [2.0, 4.0], [2.0, 4.0], [6.0, 12.0])
def functional_transforms(lib):
    F = lib.autograd.functional
    a = lib.tensor([1.0, 2.0])
    ones = lib.tensor([1.0, 1.0])
    jac = F.jacobian(lambda t: t**2, a)
    hess = F.hessian(lambda t: (t**3).sum(), a)
    _, vjp = F.vjp(lambda t: t**2, a, ones)
    _, jvp = F.jvp(lambda t: t**2, a, ones)
    _, hvp = F.hvp(lambda t: (t**3).sum(), a, ones)
    return arr(jac), arr(hess), arr(vjp), arr(jvp), arr(hvp)


@case("RuntimeError", [0.9, 1.8])
def sgd_step_under_no_grad(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    try:
        w -= 0.05 * w.grad  # with grad recording: torch refuses
        error = "no error"
    except RuntimeError:
        error = "RuntimeError"
    with lib.no_grad():
        w -= 0.05 * w.grad
    w.grad.zero_()
    return error, arr(w)


@case([2.0, 0.0], "RuntimeError")
def in_place_on_non_leaf_differentiates(lib):
    x = lib.tensor([1.0, 1.0], requires_grad=True)
    y = x * 1
    y[1] = 0.5  # CopySlices
    y.mul_(2)
    y.sum().backward()
    leaf = lib.tensor([1.0], requires_grad=True)
    try:
        leaf.add_(1)
        error = "no error"
    except RuntimeError:
        error = "RuntimeError"
    return arr(x.grad), error


def check(got, want):
    if isinstance(want, str) or want is None:
        assert got == want
    else:
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want), rtol=1e-5, atol=1e-6)


@case([[2.0, 2.0], [1.0, 1 - np.tanh(1.0) ** 2]])
def matmul_output_written_in_place_after_forward(lib):
    """tanh saves its output, not its input: writing into z afterwards does not change the
    gradient (symgrad reads z's saved value only while z is unmodified)."""
    x = lib.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    w = lib.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    z = x @ w
    loss = (z + lib.tensor([[0.0, 0.0], [0.0, 1.0]])).tanh().sum() + (z * lib.tensor([[1.0, 1.0], [0.0, 0.0]])).sum()
    with lib.no_grad():
        z.add_(100.0)
    loss.backward()
    return (arr(w.grad),)


@pytest.mark.parametrize("name", list(CASES))
def test_symgrad(name):
    fn, expected = CASES[name]
    for got, want in zip(fn(symgrad), expected, strict=True):
        check(got, want)


@pytest.mark.parametrize("name", list(CASES))
def test_same_as_torch(name):
    torch = pytest.importorskip("torch")
    fn, expected = CASES[name]
    for got, want in zip(fn(torch), expected, strict=True):
        check(got, want)


def test_higher_order_is_compiled():
    x = symgrad.tensor([0.5, 1.5], requires_grad=True)
    before = symgrad.cache_info()
    for _ in range(3):
        (g,) = symgrad.autograd.grad(x.tanh().sum(), x, create_graph=True)
        (h,) = symgrad.autograd.grad(g.sum(), x)
    after = symgrad.cache_info()
    assert after["compiles"] - before["compiles"] <= 2  # first and second derivative, once each
    t = np.tanh([0.5, 1.5])
    np.testing.assert_allclose(h.numpy(), -2 * t * (1 - t**2), rtol=1e-5)


def test_backward_reads_saved_matmul_values():
    """The eager forward's matmul results are inputs of the backward program (not recomputed),
    and the gradients still match numpy."""
    from symgrad.gradient import plan_for

    rng = np.random.default_rng(3)
    X, W, V = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    w, v = symgrad.tensor(W, requires_grad=True), symgrad.tensor(V, requires_grad=True)
    loss = ((symgrad.tensor(X) @ w).tanh() @ v).sin().sum()
    plan, *_ = plan_for([loss._node], [None], lambda order: [n for n in order if n.op == "leaf" and n.payload.is_param])
    assert len(plan.saved) == 2  # both matmul results
    assert "matmul" not in [s.op for s in plan.gradients[0].inputs]  # sanity: a gradient exists
    loss.backward()
    A = np.tanh(X @ W)
    dP = np.cos(A @ V)
    np.testing.assert_allclose(v.grad.numpy(), A.T @ dP, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), X.T @ ((dP @ V.T) * (1 - A**2)), rtol=1e-12)
    w.grad = None  # the same without saved values: the same gradients
    loss2 = ((symgrad.tensor(X) @ w).tanh() @ v).sin().sum()
    plan2, *_ = plan_for([loss2._node], [None], lambda order: [n for n in order if n.op == "leaf" and n.payload.is_param],
                         use_saved=False)
    assert plan2.saved == []
    loss2.backward()
    np.testing.assert_allclose(w.grad.numpy(), X.T @ ((dP @ V.T) * (1 - A**2)), rtol=1e-12)


def test_saved_matmul_values_are_released_by_a_backward_that_frees_its_graph():
    from symgrad.gradient import _saved

    rng = np.random.default_rng(5)
    X, W = rng.standard_normal((6, 4)), rng.standard_normal((4, 3))
    w = symgrad.tensor(W, requires_grad=True)
    kept = []
    for _ in range(3):  # as `losses.append(loss)` keeps each graph alive
        loss = (symgrad.tensor(X) @ w).tanh().sum()
        loss.backward(retain_graph=True)
        node = loss._node.inputs[0].inputs[0]
        assert node.op == "matmul" and node in _saved  # retained: still there
        loss2 = (symgrad.tensor(X) @ w).tanh().sum()
        loss2.backward()
        assert loss2._node.inputs[0].inputs[0] not in _saved  # freed with the graph's buffers
        kept.append(loss2)
    np.testing.assert_allclose(w.grad.numpy(), 6 * X.T @ (1 - np.tanh(X @ W) ** 2), rtol=1e-12)
