"""The training-loop examples run on symgrad and print PyTorch's losses (stored in
examples/expected/, produced by running each script with torch)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


@pytest.mark.parametrize("name", ["polynomial_fit", "two_layer_net", "custom_function", "mlp_module"])
def test_example_matches_torch(name):
    out = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py")], capture_output=True,
                         text=True, timeout=300, check=True).stdout  # fmt: skip
    expected = (EXAMPLES / "expected" / f"{name}.txt").read_text()
    got, want = NUMBER.findall(out), NUMBER.findall(expected)
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert float(g) == pytest.approx(float(w), rel=1e-4, abs=1e-6)
    assert NUMBER.sub("#", out) == NUMBER.sub("#", expected)
