"""Deferred nodes (symgrad/pending.py) and the eager backward found by tape key.

An eager op records a Pending instead of building its node; a backward over a structure
compiled before looks its plan up by the tape key, without building nodes. These tests
check that the tape path gives the same gradients as the full path (which builds nodes),
that everything the key must tell apart is told apart, and that torch's errors survive.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import symgrad
from symgrad.pending import MAX_LEAVES, Pending, tape_key, walked_key

RNG = np.random.default_rng(7)


def by_tape() -> int:
    return symgrad.cache_info()["by_tape"]


def leaf(values, dtype=symgrad.float64):
    return symgrad.tensor(values, dtype=dtype, requires_grad=True)


def test_a_repeated_step_is_found_by_tape_without_building_nodes():
    x0 = RNG.standard_normal((3, 2))
    grads = []
    for step in range(3):
        x = leaf(x0)
        y = (3 * (x + 2) ** 2).mean()
        before = by_tape()
        y.backward()
        grads.append(x.grad.numpy().copy())
        if step > 0:  # the first pass compiles (threshold 1 in the suite) and remembers the key
            assert by_tape() == before + 1
            assert type(y._nd) is Pending and y._nd.node is None, "the tape path built a node"
    expected = 6 * (x0 + 2) / x0.size
    for g in grads:
        np.testing.assert_allclose(g, expected, rtol=1e-13)


def test_default_policy_interprets_compiles_then_uses_the_tape(eager_threshold):
    eager_threshold(2)
    x0 = RNG.standard_normal(5)
    for step in range(4):
        x = leaf(x0)
        before = dict(symgrad.cache_info())
        (x.sin() * x).sum().backward()
        after = symgrad.cache_info()
        np.testing.assert_allclose(x.grad.numpy(), np.cos(x0) * x0 + np.sin(x0), rtol=1e-13)
        if step == 0:
            assert after["interpreted"] == before["interpreted"] + 1
        if step >= 2:
            assert after["by_tape"] == before["by_tape"] + 1
            assert after["compiles"] == before["compiles"]


@pytest.mark.parametrize("c", [2.0, 3.0, -0.5, 0.0, -0.0, float("inf"), float("nan")])
def test_python_numbers_are_part_of_the_key(c):
    """x * c for every c after a compiled x * 2.0: the constant is never taken from another plan."""
    for _ in range(2):
        x = leaf([1.0, -2.0, 0.5])
        (x * c).sum().backward()
    got = x.grad.numpy()
    want = np.full(3, c)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(got, want)


def test_which_leaves_are_shared_is_part_of_the_key():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 5.0])
    for _ in range(2):
        a.grad = b.grad = None
        (a * b).sum().backward()
    for _ in range(2):
        a.grad = None
        (a * a).sum().backward()  # same ops and shapes, one leaf
        np.testing.assert_allclose(a.grad.numpy(), [2.0, 4.0])


def test_a_leaf_that_does_not_require_grad_is_part_of_the_key():
    a = leaf([1.0, 2.0])
    c = symgrad.tensor([3.0, 5.0], dtype=symgrad.float64)
    for _ in range(2):
        a.grad = None
        (a * c).sum().backward()
    b = leaf([3.0, 5.0])
    for _ in range(2):
        a.grad = b.grad = None
        (a * b).sum().backward()
        np.testing.assert_allclose(b.grad.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 5.0])


def test_mixed_dtypes_cast_the_same_way_on_the_tape_path():
    x32 = RNG.standard_normal(4).astype(np.float32)
    y64 = RNG.standard_normal(4)
    for _ in range(3):
        x = leaf(x32, symgrad.float32)
        y = leaf(y64)
        (x * y + x).sum().backward()
        assert x.grad.dtype == symgrad.float32 and y.grad.dtype == symgrad.float64
        np.testing.assert_allclose(x.grad.numpy(), y64 + 1, rtol=1e-6)
        np.testing.assert_allclose(y.grad.numpy(), x32.astype(np.float64), rtol=1e-12)


def test_gradient_argument_and_accumulation_on_the_tape_path():
    x = leaf(np.arange(4.0))
    seed = np.array([1.0, -1.0, 2.0, 0.5])
    for k in range(1, 4):
        (x * x).backward(symgrad.tensor(seed, dtype=symgrad.float64))
        np.testing.assert_allclose(x.grad.numpy(), k * 2 * np.arange(4.0) * seed)


def test_leaf_hooks_run_on_the_tape_path():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    for _ in range(3):
        x.grad = None
        (x * 3).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    assert len(seen) == 3


def test_in_place_write_to_an_operand_is_caught_on_the_tape_path():
    """torch refuses a backward that needs a value overwritten since the forward."""
    for _ in range(2):
        x = leaf([1.0, 2.0])
        c = symgrad.tensor([3.0, 4.0], dtype=symgrad.float64)
        y = (x * c).sum()
        c.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()


def test_in_place_update_of_a_result_keeps_the_recorded_graph():
    """y's later in-place update does not change what z recorded (z = y * 2 over the old y)."""
    for _ in range(3):
        x = leaf([1.0, 2.0])
        y = x * 3
        z = (y * 2).sum()
        y.add_(x)  # y is now 4x: z's graph is still 6x
        z.backward()
        np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_backward_twice_without_retain_graph_still_raises():
    for _ in range(2):
        x = leaf([1.0, 2.0])
        y = (x.exp() * 2).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.backward()


def test_a_deep_eager_chain_builds_and_keys_without_recursion():
    depth = max(3000, sys.getrecursionlimit() * 3)
    for _ in range(2):
        x = leaf([0.5, -0.25])
        y = x
        for _ in range(depth):
            y = y * 0.999 + 0.001
        y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.999**depth] * 2, rtol=1e-9)
    z = (x * 1.0).sum()
    assert z._node.op == "sum"  # building a deep Pending chain does not recurse either


def test_shallow_and_deep_walks_give_the_same_key(monkeypatch):
    from symgrad import pending

    x, w = leaf([1.0, 2.0]), leaf([0.5, 0.25])
    c = symgrad.tensor([3.0, 4.0], dtype=symgrad.float64)
    y = ((x * w + c) ** 2 - x.exp() / 3).sum() + (w * w).mean()
    shallow = walked_key([y._nd], ("one",))
    monkeypatch.setattr(pending._Walk, "DEPTH", 0)
    deep = walked_key([y._nd], ("one",))
    assert shallow[0] == deep[0]
    assert [id(n) for n in shallow[1]] == [id(n) for n in deep[1]]


def key_of(make) -> tuple:
    """The tape key of a fresh graph made by `make(x, y)` (two new float64 leaves of shape (2,))."""
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    return tape_key([make(x, y)._nd], ("one",))[0]


def test_signatures_tell_apart_what_builds_different_nodes():
    same = [lambda x, y: (x * 2).sum(), lambda x, y: (x * 2.0).sum()]
    assert key_of(same[0]) == key_of(same[1]) == key_of(same[0])
    different = [
        lambda x, y: (x * y).sum(),
        lambda x, y: (x * x).sum(),  # one leaf used twice
        lambda x, y: (x * 0.0).sum(),
        lambda x, y: (x * -0.0).sum(),
        lambda x, y: (x * float("nan")).sum(),
        lambda x, y: (x * y).sum(0, keepdim=True),  # another attribute
        lambda x, y: (x * y).mean(),
        lambda x, y: (x.float() * y.float()).sum(),  # another dtype
        lambda x, y: (x * y.detach()).sum(),  # a leaf that is not a parameter
        lambda x, y: (x * y + x * y.sin()).sum(),
        lambda x, y: (x * y + y * x.sin()).sum(),  # the second operand's leaves in another order
        lambda x, y: (x * y.sin()).sum(),
        lambda x, y: (x.sin() * y).sum(),
    ]
    keys = [key_of(make) for make in different]
    assert len(set(keys)) == len(keys)
    # one structure over leaves met in the other order: one key (the leaves are listed in order)
    assert key_of(lambda x, y: (y * x.sin()).sum()) == keys[-2]


def test_swapped_leaves_share_a_signature_and_get_their_own_gradients():
    """x * sin(y) and y * sin(x) have one structure; the gradients follow the leaves."""
    x0, y0 = np.array([0.5, 1.5]), np.array([-1.0, 2.0])
    for _ in range(3):
        x, y = leaf(x0), leaf(y0)
        (x * y.sin()).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), np.sin(y0), rtol=1e-14)
        np.testing.assert_allclose(y.grad.numpy(), x0 * np.cos(y0), rtol=1e-14)
        x, y = leaf(x0), leaf(y0)
        before = by_tape()
        (y * x.sin()).sum().backward()
        assert by_tape() == before + 1  # the same plan, by signature
        np.testing.assert_allclose(y.grad.numpy(), np.sin(x0), rtol=1e-14)
        np.testing.assert_allclose(x.grad.numpy(), y0 * np.cos(x0), rtol=1e-14)
        x, y = leaf(x0), leaf(y0)
        (x * y + y * x.sin()).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), y0 + y0 * np.cos(x0), rtol=1e-14)
        np.testing.assert_allclose(y.grad.numpy(), x0 + np.sin(x0), rtol=1e-14)


def test_more_leaves_than_signatures_take_are_keyed_by_walking():
    values = RNG.standard_normal((MAX_LEAVES + 4, 3))
    for step in range(3):
        leaves = [leaf(v) for v in values]
        total = leaves[0] * 1.0
        for t in leaves[1:]:
            total = total + t * t
        y = total.sum()
        assert y._nd.sig is None
        before = by_tape()
        y.backward()
        if step:
            assert by_tape() == before + 1
        np.testing.assert_allclose(leaves[0].grad.numpy(), np.ones(3))
        for t, v in zip(leaves[1:], values[1:]):
            np.testing.assert_allclose(t.grad.numpy(), 2 * v, rtol=1e-14)


def test_several_roots_are_keyed_by_their_signatures_and_shared_leaves():
    x0, y0 = np.array([0.5, 1.5]), np.array([-1.0, 2.0])
    for step in range(3):
        x, y = leaf(x0), leaf(y0)
        a, b = (x * y).sum(), (y.exp() * 2).sum()
        before = by_tape()
        symgrad.autograd.backward([a, b])
        if step:
            assert by_tape() == before + 1
        np.testing.assert_allclose(x.grad.numpy(), y0, rtol=1e-14)
        np.testing.assert_allclose(y.grad.numpy(), x0 + 2 * np.exp(y0), rtol=1e-14)


def test_graphs_with_built_nodes_are_keyed_by_their_nodes_too():
    """Indexing builds its node at once; the tape key reads such nodes structurally."""
    x0 = RNG.standard_normal((3, 4))
    for step in range(3):
        x = leaf(x0)
        before = by_tape()
        (x[1:, ::2] * x[0, :2]).sum().backward()
        want = np.zeros_like(x0)
        want[1:, ::2] += x0[0, :2]
        want[0, :2] += x0[1:, ::2].sum(axis=0)
        np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-13)
        if step:
            assert by_tape() == before + 1


def test_evicted_plan_is_rebuilt_not_reused_from_the_tape_table():
    for _ in range(2):
        x = leaf([1.0, 2.0])
        (x.cos() * x).sum().backward()
    symgrad.clear_cache()
    x = leaf([1.0, 2.0])
    before = symgrad.cache_info()
    (x.cos() * x).sum().backward()
    after = symgrad.cache_info()
    assert after["compiles"] == before["compiles"] + 1
    v = np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), -np.sin(v) * v + np.cos(v), rtol=1e-13)


def test_eager_ops_do_not_warn_and_leave_numpys_error_state_alone():
    import warnings

    state = np.geterr()
    x = leaf([0.0, -1.0, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x.log() + x.sqrt() + x * 1e308 + 1.0 / x
        assert np.isnan(y.detach().numpy()[1])
        inf = leaf([np.inf, -np.inf])
        assert np.isnan(inf.sum().item()) and np.isnan(inf.mean().item())  # reductions
        assert np.isnan((inf.reshape(1, 2) @ leaf([[0.0], [1.0]])).item())  # matmul: inf * 0
        assert np.isinf(x.float().detach().numpy()[2])  # a cast that overflows
    assert np.geterr() == state


# ---- the written-out binary op (record._recorded_binary) against the general path -----------

_OPERATORS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
              "/": lambda a, b: a / b, "**": lambda a, b: a ** b, "r+": lambda a, b: b + a,
              "r-": lambda a, b: b - a, "r*": lambda a, b: b * a, "r/": lambda a, b: b / a,
              "r**": lambda a, b: b ** a}  # fmt: skip


def _operand(kind: str, dtype):
    base = RNG.uniform(0.5, 2.0, (2, 3))
    return {
        "leaf": lambda: symgrad.tensor(base, dtype=dtype, requires_grad=True),
        "computed": lambda: _computed(symgrad.tensor(base, dtype=dtype, requires_grad=True)),
        "plain": lambda: symgrad.tensor(base, dtype=dtype),
        "row": lambda: symgrad.tensor(base[:1], dtype=dtype, requires_grad=True),
        "mismatched": lambda: symgrad.tensor(base[:, :2], dtype=dtype, requires_grad=True),
        "scalar0d": lambda: symgrad.tensor(1.25, dtype=dtype, requires_grad=True),
        "other dtype": lambda: symgrad.tensor(base, dtype=symgrad.float32 if dtype == symgrad.float64
                                              else symgrad.float64, requires_grad=True),
        "int": lambda: 3, "float": lambda: -0.75, "zero": lambda: -0.0, "nan": lambda: float("nan"),
        "bool": lambda: True, "np.float32": lambda: np.float32(2.5),
    }[kind]  # fmt: skip


def _computed(x):
    """x * 1.5, remembering its leaf x (whose gradient the comparisons read)."""
    y = x * 1.5
    _LEAF_OF[id(y)] = (y, x)  # (y kept: its id is not reused)
    return y


_LEAF_OF: dict[int, tuple] = {}


def _leaf_grads(*operands) -> tuple:
    leaves = [_LEAF_OF[id(t)][1] if id(t) in _LEAF_OF else t for t in operands if isinstance(t, symgrad.Tensor)]
    return tuple(None if t.grad is None else t.grad.numpy().tobytes() for t in leaves if t.is_leaf)


def _described(t) -> tuple:
    """What an eager result must agree on, whichever path made it."""
    fn = t.grad_fn
    nexts = None if fn is None else tuple((None if n is None else type(n).__name__, k) for n, k in fn.next_functions)
    nd = t._nd
    return (t._value.dtype, t._value.tobytes(), t.requires_grad, None if fn is None else type(fn).__name__,
            nexts, type(nd).__name__, getattr(nd, "sig", None), getattr(nd, "op", None))  # fmt: skip


@pytest.mark.parametrize("dtype", [symgrad.float64, symgrad.float32])
@pytest.mark.parametrize("operator", sorted(_OPERATORS))
def test_the_written_out_binary_op_matches_the_general_path(monkeypatch, operator, dtype):
    import symgrad.record as record

    general = record._recorded_binary
    kinds = ["leaf", "computed", "plain", "row", "scalar0d", "other dtype", "mismatched", "int", "float",
             "zero", "nan", "bool", "np.float32"]  # fmt: skip
    taken = 0
    for a_kind in kinds[:7]:
        for b_kind in kinds:
            makers = _operand(a_kind, dtype), _operand(b_kind, dtype)
            seen = []
            for fast in (True, False):
                monkeypatch.setattr(record, "_recorded_binary", general if fast else lambda *args: None)
                a, b = makers[0](), makers[1]()
                try:
                    out = _OPERATORS[operator](a, b)
                except RuntimeError as error:  # shapes that do not broadcast: torch's error
                    seen.append(str(error))
                    continue
                seen.append(_described(out))
                if out.requires_grad:
                    out.sum().backward()
                    seen.append(_leaf_grads(a, b))
            monkeypatch.setattr(record, "_recorded_binary", general)
            assert seen[: len(seen) // 2] == seen[len(seen) // 2 :], (a_kind, b_kind)
            taken += 1
    assert taken == 7 * len(kinds)


def test_the_written_out_binary_op_is_taken(monkeypatch):
    import symgrad.record as record

    calls = []
    general = record._recorded_binary
    monkeypatch.setattr(record, "_recorded_binary", lambda *args: calls.append(args[0]) or general(*args))
    x = leaf(RNG.standard_normal((2, 2)))
    (3 * (x + 2) ** 2 - x / x).mean()
    assert calls == ["add", "pow", "mul", "div", "sub"]


_UNARY = {"exp": lambda t: t.exp(), "tanh": lambda t: t.tanh(), "neg": lambda t: -t, "sqrt": lambda t: t.sqrt(),
          "sum": lambda t: t.sum(), "sum(dim)": lambda t: t.sum(0, keepdim=True), "mean": lambda t: t.mean(),
          "amax": lambda t: t.amax(-1), "relu": lambda t: t.relu(), "abs": lambda t: t.abs(),
          "softmax": lambda t: t.softmax(-1), "cumsum": lambda t: t.cumsum(0), "t": lambda t: t.t(),
          "reshape": lambda t: t.reshape(-1), "sigmoid": lambda t: t.sigmoid()}  # fmt: skip


@pytest.mark.parametrize("op", sorted(_UNARY))
def test_the_written_out_unary_primitive_matches_the_general_path(monkeypatch, op):
    import symgrad.record as record

    general = record._recorded_unary
    base = RNG.uniform(-2.0, 2.0, (2, 3))
    makers = {
        "leaf64": lambda: symgrad.tensor(base, requires_grad=True),
        "leaf32": lambda: symgrad.tensor(base, dtype=symgrad.float32, requires_grad=True),
        "computed": lambda: _computed(symgrad.tensor(base, requires_grad=True)),
        "plain": lambda: symgrad.tensor(base),
        "int": lambda: symgrad.tensor(base).to(symgrad.int64),
        "0-d": lambda: symgrad.tensor(1.25, requires_grad=True),
    }
    for kind, make in makers.items():
        seen = []
        for fast in (True, False):
            monkeypatch.setattr(record, "_recorded_unary", general if fast else lambda *args: None)
            a = make()
            try:
                out = _UNARY[op](a)
            except (RuntimeError, IndexError) as error:  # torch's refusals (an int softmax, t() of 0-d, ...)
                seen.append(str(error))
                continue
            seen.append(_described(out))
            if out.requires_grad:
                out.sum().backward()
                seen.append(_leaf_grads(a))
        monkeypatch.setattr(record, "_recorded_unary", general)
        assert seen[: len(seen) // 2] == seen[len(seen) // 2 :], kind
