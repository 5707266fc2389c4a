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


def run(name: str, *extra: str) -> str:
    return subprocess.run([sys.executable, *extra, str(EXAMPLES / name)], capture_output=True,
                          text=True, timeout=300, check=True).stdout  # fmt: skip


def test_regression_example_checks_itself():
    out = run("regression.py")
    assert "least squares matches numpy.linalg.lstsq" in out and "training accuracy" in out


def test_lennard_jones_example_finds_the_tetrahedron():
    out = run("lennard_jones.py")
    assert "energy -6.00000000" in out and "six zero modes" in out


def test_inspection_tour_shows_formulas_graph_and_ir():
    out = run("inspection_tour.py")
    assert "d loss/dW = X.T @ ((-Y + X @ W)/5)" in out
    assert "out = mean(3*(x + 2)**2)" in out and "define internal i32" in out


def test_pytest_plugin_example_passes():
    result = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
                             str(EXAMPLES / "test_gradients_with_plugin.py")],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
