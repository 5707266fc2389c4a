"""Inspection shows the formulas, the simplified gradient DAG and real LLVM IR."""

from __future__ import annotations

import sympy

import symgrad as torch
from symgrad.gradient import seed_nodes, symbolic_gradients
from symgrad.node import topo_order
from symgrad.sympy_forms import Reduce


def seed_out():
    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    return x, z.mean()


def test_formula_and_gradient_of_the_seed():
    x, out = seed_out()
    seen = torch.inspect(out)
    sx = sympy.Symbol("x")
    assert seen.name == "out"
    assert isinstance(seen.formula, Reduce) and type(seen.formula).__name__ == "Mean"
    assert sympy.simplify(seen.formula.args[0] - 3 * (sx + 2) ** 2) == 0
    (grad,) = seen.gradients.values()
    want = sympy.Rational(3, 2) * (sx + 2)
    assert sympy.simplify(grad.doit() - want) == 0
    assert sympy.count_ops(grad) <= sympy.count_ops(3 * (sx + 2) / 2, visual=False)
    text = str(seen).splitlines()
    assert text == ["out = mean(3*(x + 2)**2)", "d out/dx = 3*(x + 2)/2"]


def test_llvm_ir_is_real():
    _, out = seed_out()
    ir = torch.inspect(out).llvm_ir
    assert "define" in ir and "fmul" in ir and "fadd" in ir


def test_doubling_loop_gradient_is_the_constant_512():
    x = torch.tensor([2.3015, 0.3758, 1.80205], requires_grad=True)
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    (seed,) = seed_nodes([y._node], [y.detach().numpy()])
    (grad,), stats = symbolic_gradients([y._node], [seed], [x._node])
    assert grad.op == "mul"
    assert grad.inputs[0].op == "const" and grad.inputs[0].attrs[0] == 512.0
    assert grad.inputs[1] is seed  # the gradient passed to backward, nothing else
    assert len(topo_order([grad])) == 3 and stats.nodes_after < stats.nodes_before
    assert "d y/dx = 512*g" in str(torch.inspect(y))


def test_graph_text_and_stats():
    _, out = seed_out()
    seen = torch.inspect(out)
    lines = seen.graph.splitlines()
    assert lines[-1].startswith("%4 = mul")
    assert seen.stats["nodes after"] < seen.stats["nodes before simplification"]
    assert seen.stats["rewrites fired"]["x+x"] == 1
    assert "\\frac" in seen._repr_latex_()
