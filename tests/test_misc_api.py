"""Small pieces of the torch API that programs use everywhere, compared with torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = '''
import sys, importlib
torch = importlib.import_module(sys.argv[1])
@torch.no_grad()
def f(x): return x * 2
x = torch.ones(2, requires_grad=True)
print(f(x).requires_grad)
@torch.no_grad
def g(x): return x * 2
print(g(x).requires_grad)
with torch.enable_grad(): print((x*2).requires_grad)
with torch.set_grad_enabled(False): print((x*2).requires_grad)
print(torch.is_grad_enabled())
with torch.inference_mode(): print((x*2).requires_grad)
y = x * 3
print(y.grad_fn.name(), x.grad_fn, y.is_leaf, x.is_leaf)
print(torch.zeros(3, 0), torch.tensor([]), torch.tensor([True, False]), torch.arange(5), torch.tensor(3))
print(torch.tensor([1e-8, 1.0, 1e8]), torch.tensor([[1.5, -0.0]]), torch.linspace(0, 1, 5))
print(len(torch.ones(3, 2)), [t.shape for t in torch.ones(3, 2)], torch.ones(2, 3).size(1), torch.ones(2,3).numel())
print(torch.ones(2, 2).sum().item(), float(torch.tensor(2.5)), int(torch.tensor(3)))
print(f"{torch.tensor(3.14159):.2f}")
w = torch.randn(3, requires_grad=True); w.grad = torch.zeros(3); w.grad.data.zero_(); print(w.grad)
print(torch.tensor([1, 2, 3]) / torch.tensor([2, 2, 2]), torch.tensor([1, 2]) // 2, torch.tensor([5, 3]) % 2)
m = torch.tensor([1.0, -2.0, 3.0])
print((m > 0) & (m < 2), ~(m > 0), (m > 0).any(), (m > 0).all(), torch.nonzero(m > 0), torch.where(m > 0))
print(m.sort(), m.topk(2), m.argsort(descending=True), m.new_zeros(2), m.new_ones((1, 2)), m.new_tensor([1, 2]))
'''


def run(lib: str) -> str:
    return subprocess.run([sys.executable, "-c", SCRIPT, lib], capture_output=True, text=True,
                          timeout=120, check=True).stdout  # fmt: skip


def test_same_output_as_torch():
    pytest.importorskip("torch")
    assert run("symgrad") == run("torch")


def test_runs_without_torch():
    assert run("symgrad").splitlines()[0] == "False"


def test_dim_ops_on_0d_tensors_match_torch():
    torch = pytest.importorskip("torch")
    import symgrad as sg

    results = []
    for lib in (sg, torch):
        x = lib.tensor(1.5, requires_grad=True)
        outs = [x.cumsum(0), x.max(0)[0], x.transpose(0, -1), x.flip(0), x.min(-1).values]
        (outs[0] + outs[1] + outs[2] + outs[3] + outs[4]).backward()
        results.append([(tuple(o.shape), type(o.grad_fn).__name__, o.item()) for o in outs] + [x.grad.item()])
    assert results[0] == results[1]
