"""The seed tutorial prints what PyTorch prints (tutorial.expected), object addresses aside."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seed"
EXPECTED = (Path(__file__).parent / "data" / "tutorial.expected").read_text().splitlines()


def run(script: Path, *args: str) -> list[str]:
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                            text=True, cwd=script.parent, timeout=120, check=True)  # fmt: skip
    return [re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", line) for line in result.stdout.splitlines()]


def test_example_reproduces_pytorch_output():
    lines = run(ROOT / "examples" / "seed_tutorial.py")
    assert lines[: len(EXPECTED)] == EXPECTED
    assert lines[len(EXPECTED)].startswith("---")


def test_example_shows_the_pipeline():
    tail = "\n".join(run(ROOT / "examples" / "seed_tutorial.py")[len(EXPECTED) :])
    assert "out = mean(3*(x + 2)**2)" in tail
    assert "d out/dx = 3*(x + 2)/2" in tail
    assert "d y/dx = 512*g" in tail
    assert "compiled 0 more times" in tail


@pytest.mark.skipif(not (SEED / "tutorial.py").exists(), reason="../shared/seed is not beside the clone")
def test_shared_seed_tutorial_runs_on_symgrad():
    expected = (SEED / "tutorial.expected").read_text().splitlines()
    assert expected == EXPECTED, "tests/data/tutorial.expected is out of date"
    assert run(SEED / "tutorial.py", "symgrad") == expected
