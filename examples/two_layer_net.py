"""A two-layer ReLU network trained with mm and clamp(min=0), manual SGD (PyTorch's
"Learning PyTorch with Examples", tensors-and-autograd part), float32.
Runs on symgrad, or on torch: `python two_layer_net.py torch`.
"""

import importlib
import sys

import numpy as np

torch = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "symgrad")

N, D_in, H, D_out = 64, 1000, 100, 10
rng = np.random.default_rng(0)
x = torch.tensor(rng.standard_normal((N, D_in)), dtype=torch.float32)
y = torch.tensor(rng.standard_normal((N, D_out)), dtype=torch.float32)
w1 = torch.tensor(rng.standard_normal((D_in, H)) * 0.01, dtype=torch.float32, requires_grad=True)
w2 = torch.tensor(rng.standard_normal((H, D_out)) * 0.01, dtype=torch.float32, requires_grad=True)

learning_rate = 1e-3
for t in range(300):
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    loss = (y_pred - y).pow(2).sum()
    if t % 50 == 49:
        print(t, f"{loss.item():.4f}")
    loss.backward()
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad
        w1.grad.zero_()
        w2.grad.zero_()
