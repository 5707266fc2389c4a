"""A small classifier written the usual PyTorch way: nn.Sequential of Linear/ReLU/Linear,
nn.CrossEntropyLoss, optim.Adam, on three Gaussian blobs in the plane (float32).
Weights start from numpy, so symgrad and torch start identically.
Runs on symgrad, or on torch: `python mlp_module.py torch`.
Prints the loss every 50 steps and the final training accuracy.
"""

import importlib
import sys

import numpy as np

torch = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "symgrad")
nn = torch.nn

rng = np.random.default_rng(0)
N, D_in, H, C = 300, 2, 32, 3
centres = np.array([[0.0, 2.0], [-1.8, -1.0], [1.8, -1.0]])
labels = rng.integers(0, C, N)
points = centres[labels] + rng.standard_normal((N, D_in)) * 0.9
x = torch.tensor(points, dtype=torch.float32)
y = torch.tensor(labels)

model = nn.Sequential(nn.Linear(D_in, H), nn.ReLU(), nn.Linear(H, C))
with torch.no_grad():
    for layer in (model[0], model[2]):
        fan_in = layer.in_features
        layer.weight.copy_(
            torch.tensor(rng.standard_normal(layer.weight.shape) / np.sqrt(fan_in), dtype=torch.float32)
        )
        layer.bias.zero_()

loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

for t in range(300):
    loss = loss_fn(model(x), y)
    if t % 50 == 49:
        print(t, f"{loss.item():.6f}")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

model.eval()
with torch.no_grad():
    accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
print(f"accuracy {accuracy:.4f}")
