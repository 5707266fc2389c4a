"""nn modules and optimizers: the Module protocol, layers, init, optimizers and schedules.

The first half needs only symgrad; the second half runs the same code on symgrad and on
torch (`lib` is either module) and asserts the two agree: reprs, state_dict keys,
parameter order, and the parameters after several optimisation steps from identical
starting weights.
"""

from __future__ import annotations

import copy
import math
import pickle
import warnings

import numpy as np
import pytest

import symgrad
import symgrad.nn as nn
from symgrad import optim


def mlp(lib, dtype=None):
    model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.Tanh(), lib.nn.Linear(8, 3))
    return model if dtype is None else model.to(dtype)


def set_weights(lib, model, seed=0):
    """Identical starting weights for symgrad and torch, drawn with numpy."""
    rng = np.random.default_rng(seed)
    with lib.no_grad():
        for p in model.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)) * 0.5, dtype=p.dtype))
    return model


# ---- Parameter ---------------------------------------------------------------------------


def test_parameter_is_a_leaf_sharing_its_data():
    data = symgrad.zeros(2, 3)
    p = nn.Parameter(data)
    assert isinstance(p, symgrad.Tensor) and p.is_leaf and p.requires_grad
    with symgrad.no_grad():
        data.add_(1.0)
    assert p.sum().item() == 6.0
    assert repr(p).startswith("Parameter containing:\ntensor(") and str(p) == repr(p)
    assert not nn.Parameter(data, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    assert type(p * 2) is symgrad.Tensor


def test_parameter_copies_are_fresh_leaves():
    p = nn.Parameter(symgrad.ones(2))
    for twin in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert type(twin) is nn.Parameter and twin.requires_grad
        (twin * 3).sum().backward()
        assert p.grad is None and twin.grad.tolist() == [3.0, 3.0]


# ---- Module protocol ----------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        self.head = nn.Linear(3, 1)
        self.scale = nn.Parameter(symgrad.ones(1))
        self.register_buffer("count", symgrad.zeros(1))
        self.register_buffer("scratch", symgrad.zeros(1), persistent=False)

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_attribute_assignment_registers_parameters_buffers_and_modules():
    net = Net()
    assert list(net._parameters) == ["scale"] and list(net._modules) == ["body", "head"]
    assert list(net._buffers) == ["count", "scratch"]
    assert [n for n, _ in net.named_parameters()] == [
        "scale",
        "body.0.weight",
        "body.0.bias",
        "head.weight",
        "head.bias",
    ]
    assert list(net.state_dict()) == [
        "scale",
        "count",
        "body.0.weight",
        "body.0.bias",
        "head.weight",
        "head.bias",
    ]
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "head"]
    assert [type(m).__name__ for m in net.children()] == ["Sequential", "Linear"]
    assert net.get_parameter("body.0.bias") is net.body[0].bias
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' as parameter 'scale'"):
        net.scale = symgrad.ones(1)
    net.scale = None
    assert "scale" not in dict(net.named_parameters())
    del net.head
    assert not hasattr(net, "head")


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]


def test_forward_and_backward_through_modules():
    net = Net()
    out = net(symgrad.randn(5, 2))
    assert out.shape == (5, 1)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())


def test_zero_grad_sets_none_or_zeros_in_place():
    model = nn.Linear(3, 2)
    model(symgrad.randn(4, 3)).sum().backward()
    grad = model.weight.grad
    model.zero_grad(set_to_none=False)
    assert model.weight.grad is grad and grad.abs().sum().item() == 0.0
    model.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None


def test_state_dict_round_trip_and_errors():
    source, target = Net(), Net()
    with symgrad.no_grad():
        source.count.fill_(7.0)
    assert repr(target.load_state_dict(source.state_dict())) == "<All keys matched successfully>"
    assert target.count.item() == 7.0
    assert target.head.weight.tolist() == source.head.weight.tolist()
    assert target.head.weight is not source.head.weight
    state = source.state_dict()
    assert not any(t.requires_grad for t in state.values())
    del state["scale"]
    state["extra"] = symgrad.zeros(1)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "scale"'):
        target.load_state_dict(state)
    keys = target.load_state_dict(state, strict=False)
    assert keys.missing_keys == ["scale"] and keys.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match="size mismatch for head.bias"):
        target.load_state_dict({**source.state_dict(), "head.bias": symgrad.zeros(2)})


def test_train_eval_and_dropout():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(p=0.25))
    assert model.training and model[1].training
    x = symgrad.ones(200, 3)
    symgrad.manual_seed(0)
    dropped = nn.Dropout(0.25)(x).numpy()
    assert set(np.unique(dropped)) == {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (dropped == 0).mean() < 0.35
    model.eval()
    assert not model.training and not model[1].training
    assert model[1](x) is x
    assert model.train() is model and model[1].training


def test_apply_and_requires_grad_():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
    assert all(m.bias.abs().sum().item() == 0.0 for m in model)
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_dtype_conversion_keeps_parameter_objects():
    model = Net()
    weight = model.head.weight
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    assert model.double() is model and model.head.weight is weight
    assert all(t.dtype == symgrad.float64 for t in [*model.parameters(), *model.buffers()])
    model(symgrad.randn(3, 2, dtype=symgrad.float64)).sum().backward()
    assert weight.grad.dtype == symgrad.float64
    optimizer.step()
    model.to(symgrad.float32).to("cpu")
    assert weight.dtype == symgrad.float32 and weight.grad.dtype == symgrad.float32
    with pytest.raises(RuntimeError, match="CPU only"):
        model.to("cuda")


def test_forward_hooks():
    model = nn.Linear(2, 2)
    seen = []
    handle = model.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    model.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    assert model(symgrad.ones(1, 2)).tolist() == [model.bias.tolist()]
    handle.remove()
    model(symgrad.ones(1, 2))
    assert seen == [(1, 2)]


# ---- containers ---------------------------------------------------------------------------


def test_sequential_indexing_and_editing():
    seq = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    assert isinstance(seq[-1], nn.Linear) and list(seq[1:]._modules) == ["1", "2"]
    seq.insert(1, nn.Tanh())
    seq.append(nn.Sigmoid())
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "ReLU", "Linear", "Sigmoid"]
    del seq[0]
    assert list(seq._modules) == ["0", "1", "2", "3"]
    assert len(seq + nn.Sequential(nn.ReLU())) == 5 and len(seq * 2) == 8
    with pytest.raises(IndexError):
        seq[9]


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU())
    assert len(layers) == 4 and len(list(layers.parameters())) == 6
    assert repr(layers).splitlines()[1] == "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)"
    named = nn.ModuleDict({"act": nn.ReLU(), "out": nn.Linear(2, 1)})
    named["extra"] = nn.Tanh()
    assert list(named) == ["act", "out", "extra"] and "out" in named
    assert isinstance(named.pop("act"), nn.ReLU) and list(named.keys()) == ["out", "extra"]
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        layers(symgrad.ones(1))


# ---- init ---------------------------------------------------------------------------------


def test_linear_init_bounds_and_seed():
    symgrad.manual_seed(3)
    a = nn.Linear(50, 40)
    symgrad.manual_seed(3)
    b = nn.Linear(50, 40)
    assert a.weight.tolist() == b.weight.tolist()
    bound = 1 / math.sqrt(50)
    for p in (a.weight, a.bias):
        assert p.abs().max().item() <= bound and p.abs().max().item() > 0.8 * bound
    assert a.weight.shape == (40, 50) and a.bias.shape == (40,)


@pytest.mark.parametrize("fill, bound_or_std, kind", [
    (lambda t: nn.init.xavier_uniform_(t, gain=2.0), 2.0 * math.sqrt(6 / (300 + 200)), "bound"),
    (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2) * math.sqrt(3 / 200), "bound"),
    (lambda t: nn.init.uniform_(t, -0.3, 0.3), 0.3, "bound"),
    (lambda t: nn.init.xavier_normal_(t), math.sqrt(2 / (300 + 200)), "std"),
    (lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 300), "std"),
    (lambda t: nn.init.normal_(t, 0.0, 0.02), 0.02, "std"),
    (lambda t: nn.init.trunc_normal_(t, std=0.5, a=-0.4, b=0.4), 0.4, "bound"),
])  # fmt: skip
def test_init_distributions(fill, bound_or_std, kind):
    t = nn.Parameter(symgrad.empty(300, 200))
    version = t._storage.version
    assert fill(t) is t and t.requires_grad and t._storage.version > version
    values = t.detach().numpy()
    if kind == "bound":
        assert (
            np.abs(values).max() <= bound_or_std * (1 + 1e-6) and np.abs(values).max() > 0.99 * bound_or_std
        )
    else:
        assert values.std() == pytest.approx(bound_or_std, rel=0.02)


def test_init_constants_and_fans():
    t = symgrad.empty(3, 3)
    assert nn.init.ones_(t).sum().item() == 9 and nn.init.zeros_(t).sum().item() == 0
    assert nn.init.constant_(t, 0.5).sum().item() == 4.5 and nn.init.eye_(t).sum().item() == 3
    q = nn.init.orthogonal_(symgrad.empty(4, 6)).numpy()
    assert np.allclose(q @ q.T, np.eye(4), atol=1e-5)
    assert nn.init._calculate_fan_in_and_fan_out(symgrad.empty(5, 3, 2, 2)) == (12, 20)
    assert nn.init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(symgrad.empty(3))


# ---- optimizers (no torch) ------------------------------------------------------------


def test_sgd_momentum_by_hand():
    p = nn.Parameter(symgrad.tensor([1.0, -2.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.5, weight_decay=0.1)
    expected, buf = np.array([1.0, -2.0]), None
    for _ in range(3):
        opt.zero_grad()
        (p * p).sum().backward()  # grad = 2p
        g = 2 * expected + 0.1 * expected
        buf = g if buf is None else 0.5 * buf + g
        expected = expected - 0.1 * buf
        opt.step()
        assert p.detach().numpy() == pytest.approx(expected, rel=1e-6)


def test_adam_first_step_is_lr_times_sign():
    p = nn.Parameter(symgrad.tensor([1.0, -3.0, 0.5]))
    opt = optim.Adam([p], lr=0.01)
    (p**3).sum().backward()
    opt.step()
    assert p.detach().numpy() == pytest.approx([0.99, -3.01, 0.49], rel=1e-5)
    assert opt.state[p]["step"].item() == 1.0 and set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"}


def test_optimizer_minimises_a_quadratic():
    target = symgrad.tensor([1.0, 2.0, 3.0])
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1),
                 lambda ps: optim.RMSprop(ps, lr=0.05), lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0)):  # fmt: skip
        p = nn.Parameter(symgrad.zeros(3))
        opt = make([p])
        for _ in range(200):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
        assert p.detach().numpy() == pytest.approx([1.0, 2.0, 3.0], abs=0.05)


def test_param_groups_closure_and_errors():
    a, b = nn.Parameter(symgrad.ones(1)), nn.Parameter(symgrad.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]

    def closure():
        opt.zero_grad()
        loss = (a + b).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([a * 2], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([a], lr=0.1, nesterov=True)


def test_optimizer_state_dict_resumes_identically():
    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            model(symgrad.ones(3, 4)).pow(2).sum().backward()
            opt.step()

    first = set_weights(symgrad, mlp(symgrad))
    opt = optim.Adam(first.parameters(), lr=0.01, amsgrad=True)
    train(first, opt, 2)
    second = mlp(symgrad)
    second.load_state_dict(first.state_dict())
    opt2 = optim.Adam(second.parameters(), lr=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.state[next(second.parameters())]["step"].item() == 2
    train(first, opt, 2)
    train(second, opt2, 2)
    for p, q in zip(first.parameters(), second.parameters()):
        assert p.tolist() == q.tolist()


def test_step_bumps_the_version_counter_and_skips_params_without_grad():
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    version = model.weight._storage.version
    before = model.weight.tolist()
    opt.step()
    assert model.weight.tolist() == before
    model(symgrad.ones(1, 2)).sum().backward()
    opt.step()
    assert model.weight._storage.version > version and model.weight.tolist() != before


# ---- parity with torch ------------------------------------------------------------------


def both():
    torch = pytest.importorskip("torch")
    return symgrad, torch


REPR_CASES = [
    lambda nn: nn.Linear(2, 3),
    lambda nn: nn.Linear(2, 3, bias=False),
    lambda nn: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.1), nn.Linear(3, 1), nn.Sigmoid()),
    lambda nn: nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(4, 4), nn.GELU("tanh")), nn.Identity()),
    lambda nn: nn.ModuleList([nn.Tanh(), nn.Tanh(), nn.SiLU(inplace=True), nn.ELU(alpha=0.5)]),
    lambda nn: nn.ModuleDict({"a": nn.LeakyReLU(0.2), "b": nn.Softplus(beta=2), "c": nn.ModuleList()}),
    lambda nn: nn.Sequential(nn.Softmax(dim=1), nn.LogSoftmax(dim=-1), nn.Softmax(), nn.ReLU(inplace=True)),
    lambda nn: nn.Sequential(nn.MSELoss(), nn.L1Loss(reduction="sum"), nn.SmoothL1Loss(beta=0.5),
                             nn.CrossEntropyLoss(), nn.NLLLoss(), nn.BCELoss(), nn.BCEWithLogitsLoss()),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(REPR_CASES)))
def test_module_repr_matches_torch(case):
    sym, torch = both()
    assert repr(REPR_CASES[case](sym.nn)) == repr(REPR_CASES[case](torch.nn))


def composite(lib):
    nn = lib.nn
    model = nn.Sequential(nn.Linear(3, 4), nn.ModuleDict({"act": nn.ReLU(), "proj": nn.Linear(4, 4)}),
                          nn.ModuleList([nn.Linear(4, 2), nn.Linear(2, 2, bias=False)]))  # fmt: skip
    model.register_buffer("steps", lib.zeros(1))
    model.add_module("loss", nn.CrossEntropyLoss(weight=lib.ones(2)))
    return model


def test_structure_matches_torch():
    sym, torch = both()
    ours, theirs = composite(sym), composite(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert repr(ours) == repr(theirs)
    assert repr(nn.Parameter(sym.zeros(2, dtype=sym.float64))) == repr(
        torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    )


def test_implicit_softmax_dim_matches_torch():
    sym, torch = both()
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for shape in [(4,), (3, 4), (2, 3, 4)]:
            a = x.reshape(-1)[: math.prod(shape)].reshape(shape)
            ours = sym.nn.Softmax()(sym.tensor(a)).numpy()
            assert ours == pytest.approx(torch.nn.Softmax()(torch.tensor(a)).numpy(), rel=1e-6)


OPTIMIZERS = {
    "sgd": lambda o, ps: o.SGD(ps, lr=0.1),
    "sgd-momentum-wd": lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
    "sgd-nesterov": lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, maximize=False),
    "sgd-dampening": lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.5, dampening=0.3),
    "adam": lambda o, ps: o.Adam(ps, lr=0.01),
    "adam-amsgrad-wd": lambda o, ps: o.Adam(ps, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True),
    "adamw": lambda o, ps: o.AdamW(ps, lr=0.01, weight_decay=0.05),
    "rmsprop-centered": lambda o, ps: o.RMSprop(ps, lr=0.01, momentum=0.5, centered=True, weight_decay=0.01),
}

# A batch of 15 (odd): the gradient of a mean of signs can never cancel to exactly 0,
# where summation order would decide between 0 and 1e-9 and Adam would amplify it.
LOSSES = {
    "mse": (lambda nn: nn.MSELoss(), lambda nn: nn.Identity(), "regression"),
    "l1": (lambda nn: nn.L1Loss(), lambda nn: nn.Identity(), "regression"),
    "smooth-l1": (lambda nn: nn.SmoothL1Loss(beta=0.5), lambda nn: nn.Identity(), "regression"),
    "cross-entropy": (lambda nn: nn.CrossEntropyLoss(), lambda nn: nn.Identity(), "classes"),
    "nll": (lambda nn: nn.NLLLoss(), lambda nn: nn.LogSoftmax(dim=1), "classes"),
    "bce": (lambda nn: nn.BCELoss(), lambda nn: nn.Sigmoid(), "binary"),
    "bce-logits": (lambda nn: nn.BCEWithLogitsLoss(), lambda nn: nn.Identity(), "binary"),
}


def train_steps(lib, optimizer, loss, steps=4):
    make_loss, make_head, kind = LOSSES[loss]
    rng = np.random.default_rng(7)
    x = lib.tensor(rng.standard_normal((15, 4)), dtype=lib.float32)
    targets = {"regression": lambda: lib.tensor(rng.standard_normal((15, 3)), dtype=lib.float32),
               "classes": lambda: lib.tensor(rng.integers(0, 3, 15)),
               "binary": lambda: lib.tensor(rng.integers(0, 2, (15, 3)), dtype=lib.float32)}  # fmt: skip
    y = targets[kind]()
    model = lib.nn.Sequential(set_weights(lib, mlp(lib)), make_head(lib.nn))
    opt, loss_fn = OPTIMIZERS[optimizer](lib.optim, model.parameters()), make_loss(lib.nn)
    for _ in range(steps):
        opt.zero_grad()
        value = loss_fn(model(x), y)
        value.backward()
        opt.step()
    return [p.detach().numpy().copy() for p in model.parameters()], opt


CASES = [(o, "mse") for o in OPTIMIZERS] + [(o, "cross-entropy") for o in OPTIMIZERS if o != "sgd"] + \
        [(o, loss) for o in ("sgd-momentum-wd", "adam") for loss in LOSSES if loss not in ("mse", "cross-entropy")]  # fmt: skip


@pytest.mark.parametrize("optimizer, loss", CASES)
def test_training_matches_torch(optimizer, loss):
    sym, torch = both()
    ours, opt = train_steps(sym, optimizer, loss)
    theirs, topt = train_steps(torch, optimizer, loss)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert repr(opt) == repr(topt)
    state, tstate = opt.state_dict(), topt.state_dict()
    assert state["param_groups"] == tstate["param_groups"]
    assert {k: sorted(v) for k, v in state["state"].items()} == {
        k: sorted(v) for k, v in tstate["state"].items()
    }


def test_float64_training_matches_torch_closely():
    sym, torch = both()

    def run(lib):
        model = set_weights(lib, mlp(lib, lib.float64))
        opt = lib.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.01)
        x = lib.tensor(np.random.default_rng(2).standard_normal((7, 4)), dtype=lib.float64)
        for _ in range(5):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        return [p.detach().numpy() for p in model.parameters()]

    for a, b in zip(run(sym), run(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


SCHEDULES = {
    "step": lambda s, opt: s.StepLR(opt, step_size=3, gamma=0.5),
    "multistep": lambda s, opt: s.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.3),
    "exponential": lambda s, opt: s.ExponentialLR(opt, gamma=0.9),
    "cosine": lambda s, opt: s.CosineAnnealingLR(opt, T_max=4, eta_min=0.01),
    "lambda": lambda s, opt: s.LambdaLR(opt, lambda epoch: 1 / (1 + epoch)),
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_lr_schedules_match_torch(schedule):
    sym, torch = both()

    def lrs(lib):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(1))], lr=0.2)
        sched = SCHEDULES[schedule](lib.optim.lr_scheduler, opt)
        seen = []
        for _ in range(12):
            opt.step()
            sched.step()
            seen.append((opt.param_groups[0]["lr"], sched.get_last_lr()[0]))
        return seen

    assert lrs(sym) == lrs(torch)


def test_init_rules_match_torch():
    sym, torch = both()
    for shape in [(5, 3), (4, 3, 2), (6, 2, 3, 3)]:
        ours = sym.nn.init._calculate_fan_in_and_fan_out(sym.empty(*shape))
        assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    for args in [("linear",), ("relu",), ("tanh",), ("leaky_relu", 0.3), ("selu",), ("sigmoid",)]:
        assert sym.nn.init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)
    layer, tlayer = sym.nn.Linear(7, 5), torch.nn.Linear(7, 5)
    assert [tuple(p.shape) for p in layer.parameters()] == [tuple(p.shape) for p in tlayer.parameters()]
    assert layer.weight.dtype == symgrad.float32 and str(tlayer.weight.dtype) == "torch.float32"
