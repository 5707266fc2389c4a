"""The compile-and-call API: every transform against finite differences and against the
eager path, composition, caching and recompilation, trees of arguments, trace errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import symgrad as sg


def f_scalar(x):
    return (sg.sin(x) * sg.exp(-(x**2)) + sg.tanh(x * 2)).sum()


def numeric_grad(fn, x, h=1e-6):
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (fn(x + e) - fn(x - e)) / (2 * h)
    return g


def eager_value(fn, x):
    return float(fn(sg.tensor(x)).item())


X = np.random.default_rng(0).uniform(-1, 1, size=(3, 4))


def test_grad_matches_finite_differences_and_eager_backward():
    g = sg.grad(f_scalar)(X)
    np.testing.assert_allclose(g, numeric_grad(lambda v: eager_value(f_scalar, v), X), rtol=1e-6, atol=1e-8)
    t = sg.tensor(X, requires_grad=True)
    f_scalar(t).backward()
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_value_and_grad_and_compile_agree():
    value, g = sg.value_and_grad(f_scalar)(X)
    assert value == pytest.approx(eager_value(f_scalar, X), rel=1e-12)
    assert sg.compile(f_scalar)(X) == pytest.approx(float(value), rel=1e-12)
    np.testing.assert_allclose(g, sg.grad(f_scalar)(X), rtol=1e-12)


def test_has_aux_and_argnums_tuple_and_dict_params():
    def loss(params, data, target):
        pred = data @ params["w"] + params["b"]
        return ((pred - target) ** 2).mean(), pred

    rng = np.random.default_rng(1)
    data, target = rng.standard_normal((6, 3)), rng.standard_normal(6)
    params = {"w": rng.standard_normal(3), "b": np.array(0.5)}
    (value, pred), grads = sg.value_and_grad(loss, has_aux=True)(params, data, target)
    residual = data @ params["w"] + params["b"] - target
    np.testing.assert_allclose(pred, residual + target, rtol=1e-12)
    np.testing.assert_allclose(grads["w"], 2 * data.T @ residual / 6, rtol=1e-10)
    np.testing.assert_allclose(grads["b"], 2 * residual.mean(), rtol=1e-10)
    g_params, g_data = sg.grad(lambda p, d, t: loss(p, d, t)[0], argnums=(0, 1))(params, data, target)
    np.testing.assert_allclose(g_data, 2 * np.outer(residual, params["w"]) / 6, rtol=1e-10)


def test_jacobian_hessian_vjp_jvp():
    x = np.array([0.3, -0.7, 1.1])
    jac = sg.jacobian(lambda v: sg.sin(v) * v)(x)
    np.testing.assert_allclose(jac, np.diag(np.cos(x) * x + np.sin(x)), atol=1e-12)
    hess = sg.hessian(lambda v: (v**3).sum() + v[0] * v[1])(x)
    want = np.diag(6 * x)
    want[0, 1] = want[1, 0] = 1.0
    np.testing.assert_allclose(hess, want, atol=1e-12)
    value, pullback = sg.vjp(lambda v: v**2, x)
    np.testing.assert_allclose(value, x**2)
    (ct,) = pullback(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(ct, 2 * x * [1.0, 2.0, 3.0])
    value, tangent = sg.jvp(lambda v: v**2, (x,), (np.ones(3),))
    np.testing.assert_allclose(tangent, 2 * x)


def test_composition():
    x = np.array([0.5, 1.5])
    second = sg.grad(lambda v: sg.grad(lambda w: (w**4).sum())(v).sum())(x)
    np.testing.assert_allclose(second, 12 * x**2)
    compiled = sg.compile(sg.value_and_grad(lambda v: (v**2).sum()))
    value, g = compiled(x)
    assert value == pytest.approx(2.5)
    np.testing.assert_allclose(g, 2 * x)
    np.testing.assert_allclose(sg.jacobian(sg.grad(lambda v: (sg.sin(v) * v).sum()))(x),
                               np.diag(2 * np.cos(x) - x * np.sin(x)), atol=1e-12)  # fmt: skip


def test_traced_once_per_signature_and_recompiles_are_logged(caplog):
    calls = []

    def fn(x):
        calls.append(1)
        return (x * x).sum()

    g = sg.grad(fn)
    for _ in range(3):
        g(np.random.default_rng(2).standard_normal(4))
    assert len(calls) == 1 and g.cache_info()["hits"] == 2
    with caplog.at_level(logging.INFO, logger="symgrad"):
        g(np.ones(5))
    assert len(calls) == 2
    assert "args[0] float64[4] -> float64[5]" in caplog.text
    entries = g.cache_info()["entries"]
    assert [e["signature"] for e in entries] == ["args[0]: float64[4]", "args[0]: float64[5]"]


def test_static_argnums_and_captured_constants():
    scale = 3.0  # a Python number captured from the enclosing scope: a constant of the trace

    def fn(x, power):
        return (x**power).sum() * scale

    g = sg.grad(fn, static_argnums=(1,))
    np.testing.assert_allclose(g(np.array([1.0, 2.0]), 2), 3.0 * 2 * np.array([1.0, 2.0]))
    np.testing.assert_allclose(g(np.array([1.0, 2.0]), 3), 3.0 * 3 * np.array([1.0, 4.0]))
    assert len(g.cache_info()["entries"]) == 2


def test_where_instead_of_control_flow_and_trace_errors():
    g = sg.grad(lambda x: sg.where(x > 0, x**2, -x).sum())
    np.testing.assert_allclose(g(np.array([-1.0, 2.0])), [-1.0, 4.0])
    np.testing.assert_allclose(g(np.array([3.0, -2.0])), [6.0, -1.0])  # the mask is recomputed
    for bad in (lambda x: x.sum() if x.sum() > 0 else -x.sum(), lambda x: x * float(x.sum()),
                lambda x: x * x.sum().item()):  # fmt: skip
        with pytest.raises(sg.TraceError, match="static_argnums"):
            sg.grad(lambda x, b=bad: b(x).sum())(np.array([1.0, 2.0]))


def test_float32_inputs_stay_float32_and_integer_data_is_accepted():
    g = sg.grad(lambda x, k: ((x * k) ** 2).sum())(np.ones(3, np.float32), np.array([1, 2, 3]))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * np.array([1.0, 4.0, 9.0]))


def test_cross_entropy_with_traced_targets():
    def loss(w, data, labels):
        return sg.nn.functional.cross_entropy(data @ w, labels)

    rng = np.random.default_rng(3)
    w, data = rng.standard_normal((4, 3)), rng.standard_normal((5, 4))
    g = sg.grad(loss)
    for labels in (np.array([0, 1, 2, 0, 1]), np.array([2, 2, 1, 0, 0])):
        t = sg.tensor(w, requires_grad=True)
        loss(t, sg.tensor(data), sg.tensor(labels)).backward()
        np.testing.assert_allclose(g(w, data, labels), t.grad.numpy(), rtol=1e-10)


def test_bad_arguments_are_python_errors():
    g = sg.grad(lambda x: (x * x).sum())
    with pytest.raises(TypeError):
        g(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="scalar"):
        sg.grad(lambda x: x * 2)(np.ones(3))


def test_a_shape_error_names_the_users_line():
    def model(w, x):
        hidden = x @ w
        return (hidden + np.ones(7)).sum()  # the broken line

    with pytest.raises(RuntimeError) as info:
        sg.grad(model)(np.ones((3, 2)), np.ones((4, 3)))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "test_transforms.py" in notes and "the broken line" in notes


def test_a_compiled_signature_keeps_no_graph():
    """Once compiled, an entry keeps the shapes of its outputs, not their nodes (which would
    keep the whole traced and simplified graph alive)."""
    import gc

    from symgrad import node, pytree

    def chain(x):
        for _ in range(30):
            x = sg.sin(x) * 0.75 + x * 0.25
        return x.sum()

    f = sg.value_and_grad(chain)
    x = np.linspace(-1.0, 1.0, 7)
    gc.collect()
    before = len(node._table)
    value, grad = f(x)
    gc.collect()
    assert len(node._table) - before < 10  # constants stay interned; the 200-odd nodes do not
    entry = next(iter(f.entries.values()))
    assert not any(isinstance(leaf, node.Node) for leaf in pytree.flatten(entry.result_tree)[0])
    assert [o.shape for o in entry.outputs] == [(), (7,)]
    np.testing.assert_array_equal(f(x)[1], grad)


def test_a_transform_calls_its_native_entry_directly_and_falls_back_for_other_arguments():
    f = sg.value_and_grad(lambda x: (3 * (x + 2) ** 2).mean())
    x = np.array([[0.5, -1.25], [2.0, 0.125]])
    want = (np.mean(3 * (x + 2) ** 2), 6 * (x + 2) / 4)
    f(x)
    assert type(f).__call__ is sg.transforms.Staged.__call__  # one call: the Python path
    f(x)
    native = type(f).__call__
    assert type(native).__name__ == "builtin_function_or_method" and native is f._fast
    assert type(f) is not sg.transforms.Staged and isinstance(f, sg.transforms.Staged)
    assert type(sg.grad(lambda x: x.sum())) is not type(f)  # each transform has a class of its own
    for _ in range(5):
        value, grad = f(x)
        assert value == want[0] and np.array_equal(grad, want[1])
    assert f.cache_info()["hits"] == 6  # native calls counted too
    # what the entry does not take goes to the Python path: other shapes and dtypes, bad input
    y = np.arange(6.0).reshape(2, 3)
    assert np.allclose(f(y)[1], 6 * (y + 2) / 6)
    assert np.allclose(f(x.astype(np.float32))[1], want[1])
    assert np.allclose(f(x.T)[1], want[1].T) and np.allclose(f(np.asfortranarray(x))[1], want[1])
    with pytest.raises(TypeError):
        f(x, x)
    with pytest.raises(TypeError):
        f("not an array")
    f(y)  # y's signature twice: its own entry is installed, x's is kept on its cache entry
    assert type(f).__call__ is not native and np.array_equal(f(x)[1], want[1])
    f.clear()
    assert type(f).__call__ is sg.transforms.Staged.__call__
    assert np.array_equal(f(x)[1], want[1])


def test_a_transform_with_a_native_entry_is_freed_with_its_code():
    import gc
    import weakref

    f = sg.grad(lambda x: (x * x).sum())
    x = np.ones(3)
    f(x), f(x)
    assert type(type(f).__call__).__name__ == "builtin_function_or_method"
    refs = [weakref.ref(f), weakref.ref(f._fast.__self__), weakref.ref(f._fast.__self__.code)]
    gc.disable()
    try:
        del f
        assert [r() for r in refs] == [None] * 3  # at once, not at the next collection
    finally:
        gc.enable()


def test_keywords_after_the_native_entry_is_installed():
    f = sg.compile(lambda x, y: x * y + 1)
    a = np.ones(3)
    for _ in range(3):  # the Python path, then the native entry
        with pytest.raises(TypeError, match=r"Staged.__call__\(\) got an unexpected keyword argument 'y'"):
            f(a, y=a)
        assert np.array_equal(f(a, a), a + 1) and np.array_equal(f(a, a, **{}), a + 1)


def test_a_transform_whose_construction_failed_leaves_the_class_alone():
    import gc

    with pytest.raises(TypeError):
        sg.transforms.Staged()  # no fn: __init__ fails, the half-made object is dropped
    gc.collect()
    assert "__call__" in sg.transforms.Staged.__dict__
    f = sg.compile(lambda x: x * 2)
    assert np.array_equal(f(np.ones(2)), 2 * np.ones(2))
