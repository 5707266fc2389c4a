"""Test-wide settings.

Eager backward interprets a graph structure's first pass by default and compiles it at the
second (symgrad.set_eager_compile_threshold). Most tests run each graph once, so the suite
compiles at once (threshold 1): what they check is the compiled code, the path every loop
takes. The interpreted first pass is checked on its own: tests/test_cache.py (the policy)
and tests/test_eager_parity.py (gradients vs torch through both paths).
"""

from __future__ import annotations

import pytest

import symgrad


@pytest.fixture(autouse=True, scope="session")
def _compile_eager_backward_at_once():
    symgrad.set_eager_compile_threshold(1)
    yield
    symgrad.set_eager_compile_threshold(2)


@pytest.fixture
def eager_threshold():
    """Set symgrad.set_eager_compile_threshold for one test: `eager_threshold(2)`."""
    yield symgrad.set_eager_compile_threshold
    symgrad.set_eager_compile_threshold(1)
