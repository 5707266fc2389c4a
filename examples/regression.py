"""Least squares and logistic regression on numpy data, trained with symgrad.value_and_grad.

The loss and its gradient are traced once, compiled, and from then on each step is one
native call. The results are checked against numpy's least-squares solution and against
a logistic-regression gradient written out by hand.
"""

import numpy as np

import symgrad as sg

rng = np.random.default_rng(0)
n, d = 200, 5
X = rng.standard_normal((n, d))
w_true = rng.standard_normal(d)
y = X @ w_true + 0.1 * rng.standard_normal(n)


def least_squares(params, X, y):
    residual = X @ params["w"] + params["b"] - y
    return (residual**2).mean()


step = sg.value_and_grad(least_squares)
params = {"w": np.zeros(d), "b": np.array(0.0)}
for t in range(500):
    loss, grads = step(params, X, y)
    params = {k: params[k] - 0.1 * grads[k] for k in params}
    if t % 100 == 0:
        print(f"least squares step {t:3d}: loss {loss:.6f}")

A = np.hstack([X, np.ones((n, 1))])
solution = np.linalg.lstsq(A, y, rcond=None)[0]
assert np.allclose(params["w"], solution[:d], atol=1e-6) and np.isclose(params["b"], solution[d], atol=1e-6)
print("least squares matches numpy.linalg.lstsq:", np.round(params["w"], 4))
print("compiled once, then called:", step.cache_info()["hits"], "times")

labels = (X @ w_true > 0).astype(np.float64)


def logistic(w, X, labels):
    logits = X @ w
    return sg.nn.functional.binary_cross_entropy_with_logits(logits, labels)


step = sg.value_and_grad(logistic)
w = np.zeros(d)
for t in range(300):
    loss, g = step(w, X, labels)
    w = w - 0.5 * g
    if t % 100 == 0:
        print(f"logistic step {t:3d}: loss {loss:.6f}")
p = 1 / (1 + np.exp(-(X @ w)))
assert np.allclose(step(w, X, labels)[1], X.T @ (p - labels) / n, atol=1e-12)
accuracy = ((X @ w > 0) == labels.astype(bool)).mean()
print(f"logistic regression: final loss {loss:.6f}, training accuracy {accuracy:.3f}")
assert accuracy > 0.95
