"""symgrad.printing must reproduce torch's tensor repr byte for byte.

Literal tests run everywhere; parity tests compare against torch when it is installed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from symgrad import printing
from symgrad.printing import get_printoptions, set_printoptions, tensor_repr

nan, inf = math.nan, math.inf


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _default_printoptions() -> Iterator[None]:
    yield
    set_printoptions(profile="default")


def symgrad_repr_of(t: Any) -> str:
    """tensor_repr called with the same data and autograd flags as torch tensor ``t``."""
    return tensor_repr(
        t.detach().numpy(),
        requires_grad=t.requires_grad and t.is_leaf,
        grad_fn_name=type(t.grad_fn).__name__ if t.grad_fn else None,
    )


def from_numpy(torch: Any, values: np.ndarray) -> Any:
    return torch.from_numpy(values.copy())


def assert_parity(t: Any) -> None:
    assert symgrad_repr_of(t) == repr(t)


@contextlib.contextmanager
def both_printoptions(torch: Any, **options: Any) -> Iterator[None]:
    torch.set_printoptions(**options)
    set_printoptions(**options)
    try:
        yield
    finally:
        torch.set_printoptions(profile="default")
        set_printoptions(profile="default")


# --- torch-free: literal expected strings -------------------------------------------------

LITERALS = [
    (
        np.ones((2, 2), np.float32),
        {"requires_grad": True},
        "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)",
    ),
    (np.float32(27.0), {"grad_fn_name": "MeanBackward0"}, "tensor(27., grad_fn=<MeanBackward0>)"),
    (np.array([5.12, 51.2, 512.0], np.float32), {}, "tensor([  5.1200,  51.2000, 512.0000])"),
    (np.array([0.1], np.float32), {}, "tensor([0.1000])"),
    (np.array(5.8942, np.float32), {}, "tensor(5.8942)"),
    (np.array([1.5, 2.0]), {}, "tensor([1.5000, 2.0000], dtype=torch.float64)"),
    (np.arange(4), {}, "tensor([0, 1, 2, 3])"),
    (np.array([7, -12], np.int32), {}, "tensor([  7, -12], dtype=torch.int32)"),
    (
        np.array([[True, False], [False, True]]),
        {},
        "tensor([[ True, False],\n        [False,  True]])",
    ),
    (np.array([1e-5, 1.0], np.float32), {}, "tensor([1.0000e-05, 1.0000e+00])"),
    (np.array([-0.0, 1.0, nan, -inf], np.float32), {}, "tensor([-0., 1., nan, -inf])"),
    (
        np.arange(1001, dtype=np.float32),
        {},
        "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.])",
    ),
    (np.zeros((0, 3), np.float32), {}, "tensor([], size=(0, 3))"),
    (np.zeros(0, np.int64), {}, "tensor([], dtype=torch.int64)"),
    (np.zeros(0, bool), {}, "tensor([], dtype=torch.bool)"),
    (np.int64(3), {}, "tensor(3)"),
    (
        np.float32(2.0),
        {"requires_grad": True, "grad_fn_name": "MulBackward0"},
        "tensor(2., grad_fn=<MulBackward0>)",
    ),
]


@pytest.mark.parametrize(("values", "flags", "expected"), LITERALS)
def test_literal_repr(values: np.ndarray, flags: dict[str, Any], expected: str) -> None:
    assert tensor_repr(np.asarray(values), **flags) == expected


def test_rows_wrap_at_linewidth_without_torch() -> None:
    assert tensor_repr(np.arange(20, dtype=np.float32) / 4) == (
        "tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000, 1.2500, 1.5000, 1.7500, 2.0000,\n"
        "        2.2500, 2.5000, 2.7500, 3.0000, 3.2500, 3.5000, 3.7500, 4.0000, 4.2500,\n"
        "        4.5000, 4.7500])"
    )


def test_printoptions_state_and_profiles() -> None:
    assert get_printoptions() == {
        "precision": 4,
        "threshold": 1000,
        "edgeitems": 3,
        "linewidth": 80,
        "sci_mode": None,
    }
    set_printoptions(profile="short", linewidth=60, sci_mode=True)
    assert get_printoptions() == {
        "precision": 2,
        "threshold": 1000,
        "edgeitems": 2,
        "linewidth": 60,
        "sci_mode": True,
    }
    set_printoptions(precision=3)  # like torch, omitting sci_mode resets it
    assert get_printoptions()["sci_mode"] is None
    set_printoptions(profile="full")
    assert get_printoptions()["threshold"] == inf
    assert "..." not in tensor_repr(np.arange(5000))


def test_printoptions_context_restores() -> None:
    with printing.printoptions(precision=1):
        assert tensor_repr(np.array([0.25], np.float32)) == "tensor([0.2])"
    assert tensor_repr(np.array([0.25], np.float32)) == "tensor([0.2500])"


def test_unsupported_dtype_raises() -> None:
    with pytest.raises(TypeError, match="complex"):
        tensor_repr(np.zeros(2, np.complex64))


# --- parity with torch -------------------------------------------------------------------


def _rand(
    shape: tuple[int, ...], scale: float = 1.0, seed: int = 0, dtype: Any = np.float32
) -> np.ndarray:
    """Seeded normal samples; always an ndarray, also for shape ()."""
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype)


PARITY_ARRAYS: dict[str, np.ndarray] = {
    "zero_d": np.array(5.8942, np.float32),
    "tenth": np.array([0.1], np.float32),
    "integral": np.array([1.0, 2.0, -3.0], np.float32),
    "integral_sci": np.array([1e10, 1.0], np.float32),
    "integral_ratio_sci": np.array([100000.0, 1.0], np.float32),
    "big_integral": np.array([123456789.0], np.float64),
    "neg_zero": np.array([-0.0, 0.0], np.float32),
    "neg_zero_frac": np.array([-0.0, 1.5], np.float32),
    "neg_zero_sci": np.array([-0.0, 1e-8], np.float32),
    "all_nan": np.array([nan, nan], np.float32),
    "nan_inf": np.array([nan, inf, -inf], np.float32),
    "nan_frac": np.array([1.5, nan, -inf, 0.0], np.float32),
    "nan_sci": np.array([[1e-7, nan], [inf, 3.0]], np.float32),
    "tiny": np.array([1e-30, 2e-30], np.float32),
    "huge64": np.array([1e300, -2e-300]),
    "zeros": np.zeros((2, 3), np.float32),
    "arange1001": np.arange(1001, dtype=np.float32),
    "arange_int2000": np.arange(2000),
    "summarised_3d": _rand((20, 30, 40), seed=1),
    "summarised_4d": _rand((8, 9, 10, 11), seed=2),
    "summarised_sci": _rand((1200,), scale=1e6, seed=3),
    "nested_4d": _rand((2, 2, 2, 2), seed=4),
    "long_row": _rand((50,), scale=100.0, seed=5),
    "long_row64": _rand((12,), scale=100.0, seed=6, dtype=np.float64),
    "wide_matrix": _rand((3, 25), seed=7),
    "float16": _rand((3, 4), seed=8, dtype=np.float16),
    "float16_0d": np.array(0.333, np.float16),
    "ints_wide": np.array([[1, -100000], [3, 4]]),
    "int32_row": np.arange(-40, 40, dtype=np.int32) * 1000,
    "int8": np.array([-128, 0, 127], np.int8),
    "uint8": np.array([0, 255], np.uint8),
    "int16_0d": np.array(-7, np.int16),
    "bool_matrix": np.array([[True, False], [False, True]]),
    "bool_0d": np.array(False),
    "bool_long": np.random.default_rng(9).random(1500) > 0.5,
}


@pytest.mark.parametrize("name", PARITY_ARRAYS)
def test_array_parity(torch: Any, name: str) -> None:
    assert_parity(from_numpy(torch, PARITY_ARRAYS[name]))


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 1.0, 37.0, 1e3, 1e9])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_parity(torch: Any, scale: float, shape: tuple[int, ...], dtype: Any) -> None:
    assert_parity(from_numpy(torch, _rand(shape, scale, seed=len(shape), dtype=dtype)))


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]
)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4), ()])
def test_empty_and_scalar_parity(torch: Any, dtype: str, shape: tuple[int, ...]) -> None:
    t = torch.ones(shape, dtype=getattr(torch, dtype))
    assert_parity(t)


GRAD_CASES: dict[str, Callable[[Any], Any]] = {
    "leaf": lambda torch: torch.ones(2, 2, requires_grad=True),
    "leaf64_wraps": lambda torch: torch.linspace(
        -900, 900, 12, dtype=torch.float64, requires_grad=True
    ),
    "mul": lambda torch: torch.tensor([1.5, 2.0], requires_grad=True) * 3,
    "mean": lambda torch: (torch.tensor([3.0], requires_grad=True) ** 3).mean(),
    "sum_0d": lambda torch: torch.arange(4.0, requires_grad=True).sum(),
    "exp_matrix": lambda torch: torch.linspace(-3, 3, 40, requires_grad=True).reshape(5, 8).exp(),
    "long_grad_fn": lambda torch: torch.linspace(0, 1, 13, requires_grad=True).sigmoid(),
    "detached": lambda torch: (torch.ones(3, requires_grad=True) * 2).detach(),
}


@pytest.mark.parametrize("name", GRAD_CASES)
def test_autograd_suffix_parity(torch: Any, name: str) -> None:
    assert_parity(GRAD_CASES[name](torch))


OPTIONS = [
    {"precision": 2},
    {"precision": 0},
    {"precision": 10},
    {"threshold": 5},
    {"threshold": 5, "edgeitems": 1},
    {"edgeitems": 0, "threshold": 10},
    {"edgeitems": 0},
    {"linewidth": 40},
    {"linewidth": 120},
    {"profile": "short"},
    {"profile": "full"},
    {"sci_mode": True},
    {"sci_mode": False},
    {"profile": "short", "sci_mode": True, "linewidth": 50},
]
OPTION_TENSORS = {
    "row": lambda: _rand((30,), scale=10.0, seed=10),
    "matrix": lambda: _rand((40, 40), seed=11),
    "cube64": lambda: _rand((3, 4, 5), scale=1e-5, seed=12, dtype=np.float64),
    "ints": lambda: np.arange(2000).reshape(40, 50),
    "integral": lambda: np.arange(12, dtype=np.float32).reshape(3, 4),
    "scalar": lambda: np.array(3.14159265, np.float32),
    "short_1d": lambda: np.arange(5, dtype=np.float32),
}


@pytest.mark.parametrize("tensor_name", OPTION_TENSORS)
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_printoptions_parity(torch: Any, options: dict[str, Any], tensor_name: str) -> None:
    t = from_numpy(torch, OPTION_TENSORS[tensor_name]()).requires_grad_(tensor_name == "row")
    with both_printoptions(torch, **options):
        assert_parity(t)
        assert get_printoptions() == torch._tensor_str.get_printoptions()


finite_or_special = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 1e-5, 1e9, 12345.0]),
)


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
        elements=finite_or_special,
    )
)
def test_random_arrays_match_torch(values: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    assert_parity(from_numpy(torch, values))
