"""pytest plugin (entry point `pytest11`): a `gradcheck` fixture for users' test suites.

    def test_my_model(gradcheck):
        gradcheck(my_loss, [weights, data])

Imports testing.
"""

from __future__ import annotations

from typing import Any

import pytest

from .testing import assert_grad_close
from .testing import gradcheck as _gradcheck


class _Checker:
    """gradcheck(fn, inputs, ...) and .assert_grad_close(fn, inputs, expected, ...)."""

    def __call__(self, fn: Any, inputs: Any, **tolerances: Any) -> bool:
        return _gradcheck(fn, inputs, **tolerances)

    assert_grad_close = staticmethod(assert_grad_close)


@pytest.fixture
def gradcheck() -> _Checker:
    return _Checker()
