"""Fit y = sin(x) with a cubic, manual SGD under no_grad (PyTorch's "Learning PyTorch
with Examples", autograd part). Runs on symgrad, or on torch: `python polynomial_fit.py torch`.
Prints the loss every 400 steps; tests/test_examples.py compares it with torch's numbers.
"""

import importlib
import sys

import numpy as np

torch = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "symgrad")
dtype = torch.float64

x = torch.linspace(-np.pi, np.pi, 2000, dtype=dtype)
y = torch.sin(x)

rng = np.random.default_rng(0)
a, b, c, d = (torch.tensor(rng.standard_normal(), dtype=dtype, requires_grad=True) for _ in range(4))

learning_rate = 1e-6
for t in range(2000):
    y_pred = a + b * x + c * x**2 + d * x**3
    loss = (y_pred - y).pow(2).sum()
    if t % 400 == 399:
        print(t, f"{loss.item():.6f}")
    loss.backward()
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None

print(f"Result: y = {a.item():.6f} + {b.item():.6f} x + {c.item():.6f} x^2 + {d.item():.6f} x^3")
