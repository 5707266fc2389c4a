"""The wide op surface against PyTorch: values, gradients, dtypes and grad_fn names.

Each case is an expression over tensors x (3, 4), y (3, 4), v (4,), m (4, 4) with
values in (0.5, 2); the same expression runs in symgrad and torch, then both
backpropagate sum(out * w) for one fixed random w. Skipped without torch.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad

torch = pytest.importorskip("torch")

CASES = [
    "x + y", "x - 2", "3 - x", "x * y", "x / y", "2 / x", "x ** 2", "2 ** x", "x ** y", "-x",
    "x.exp()", "x.log()", "x.sqrt()", "x.sin()", "x.cos()", "x.tan()", "x.tanh()", "x.abs()",
    "x.exp2()", "x.log2()", "x.log10()", "x.log1p()", "x.expm1()", "(x / 3).asin()", "(x / 3).acos()",
    "x.atan()", "x.sinh()", "x.cosh()", "torch.erf(x)", "torch.atan2(x, y)", "x.rsqrt()",
    "x.reciprocal()", "x.sigmoid()", "(x - 1).relu()", "torch.maximum(x, y)", "torch.minimum(x, y)",
    "torch.where(x > y, x, y)", "x.clamp(0.8, 1.5)", "x.clamp(min=1.0)", "x.clamp(max=y)",
    "torch.lerp(x, y, 0.3)", "torch.lerp(x, y, x / 4)", "(x * 3).floor()", "(x * 3).round()",
    "x.square()", "(x - 1).sign()", "torch.nan_to_num(x.log())",
    "x.sum()", "x.sum(0)", "x.sum(1, keepdim=True)", "x.mean()", "x.mean(1)", "x.prod()", "x.prod(1)",
    "x.amax()", "x.amax(0)", "x.max()", "x.max(1)[0]", "x.min(0)[0]", "x.amin(1, keepdim=True)",
    "x.var()", "x.var(0)", "x.std()", "x.std(1, unbiased=False)", "x.norm()", "x.norm(dim=1)",
    "x.logsumexp(1)", "x.softmax(1)", "x.log_softmax(0)", "x.cumsum(1)", "x.cumsum(0)",
    "x @ m", "x.mm(m)", "m.mv(v)", "v.dot(v)", "torch.outer(v, v)", "x.t()", "x.T", "x.mT",
    "x.transpose(0, 1)", "x.permute(1, 0)", "x.reshape(2, 6)", "x.view(-1)", "x.flatten()",
    "x.unsqueeze(1)", "x[None].squeeze(0)", "v.expand(3, 4)", "x.repeat(2, 1)",
    "torch.cat([x, y])", "torch.cat([x, y], 1)", "torch.stack([x, y], 1)", "x.split(1)[1]",
    "x.chunk(2, 1)[1]", "x.narrow(1, 1, 2)", "x.flip(0)", "x.flip(0, 1)", "x.clone()",
    "x.double()", "x[1]", "x[:, 1:3]", "x[::2]", "x[..., 0]", "x[None, 1]",
    "x[torch.tensor([0, 2])]", "x[x > 1]", "x[:, torch.tensor([3, 0, 3])]",
    "x.index_select(1, torch.tensor([0, 2, 0]))", "x.gather(1, torch.tensor([[0, 1], [2, 2], [3, 0]]))",
    "x.masked_fill(x > 1.5, 0.0)", "x.masked_select(y > 1)",
    "x.scatter_add(1, torch.tensor([[0, 0], [1, 2], [3, 3]]), y[:, :2])",
    "x.index_add(0, torch.tensor([0, 0]), y[:2])", "x.scatter(1, torch.tensor([[1], [2], [0]]), y[:, :1])",
    "torch.einsum('ij,jk->ik', x, m)", "torch.einsum('ij,ij->i', x, y)", "torch.bmm(x[None], m[None])",
    "F.relu(x - 1)", "F.leaky_relu(x - 1, 0.1)", "F.elu(x - 1)", "F.gelu(x - 1)",
    "F.gelu(x - 1, approximate='tanh')", "F.silu(x)", "F.softplus(x)", "F.softmax(x, 1)",
    "F.log_softmax(x, 1)", "F.linear(x, m)", "F.linear(x, m, v)", "F.mse_loss(x, y)",
    "F.mse_loss(x, y, reduction='sum')", "F.l1_loss(x, y)", "F.smooth_l1_loss(x, y)",
    "F.cross_entropy(x, torch.tensor([0, 3, 1]))", "F.cross_entropy(x, y.softmax(1))",
    "F.nll_loss(x.log_softmax(1), torch.tensor([1, 1, 2]), reduction='none')",
    "F.binary_cross_entropy((x - 1).sigmoid(), y / 2)", "F.binary_cross_entropy_with_logits(x - 1, y / 2)",
    "F.binary_cross_entropy_with_logits(x - 1, y / 2, pos_weight=v.detach())",
    "x.sort(1)[0]", "x.sort(0, descending=True)[0]", "x.topk(2, 1)[0]", "x % 0.7", "torch.remainder(x, y)",
]  # fmt: skip


def run(lib, expr: str, dtype: str):
    rng = np.random.default_rng(0)
    data = {k: rng.uniform(0.5, 2.0, size=s).astype(dtype) for k, s in
            [("x", (3, 4)), ("y", (3, 4)), ("v", (4,)), ("m", (4, 4))]}  # fmt: skip
    leaves = {k: lib.tensor(a, requires_grad=True) for k, a in data.items()}
    scope = {"torch": lib, "F": lib.nn.functional, **leaves}
    out = eval(expr, scope)
    w = np.random.default_rng(1).uniform(-1, 1, size=tuple(out.shape)).astype(out.detach().numpy().dtype)
    (out * lib.tensor(w)).sum().backward()
    grads = {k: None if t.grad is None else t.grad.numpy() for k, t in leaves.items()}
    return out, grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("expr", CASES)
def test_matches_torch(expr, dtype):
    ours, our_grads = run(symgrad, expr, dtype)
    theirs, their_grads = run(torch, expr, dtype)
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
    assert str(ours.dtype) == str(theirs.dtype) and tuple(ours.shape) == tuple(theirs.shape)
    rtol = 2e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=rtol)
    for k in our_grads:
        if their_grads[k] is None:
            assert our_grads[k] is None, f"grad of {k}"
        else:
            assert our_grads[k] is not None, f"grad of {k} missing"
            np.testing.assert_allclose(our_grads[k], their_grads[k], rtol=rtol * 10, atol=rtol * 10, err_msg=k)
