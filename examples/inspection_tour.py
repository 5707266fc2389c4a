"""A tour of what symgrad shows: formulas, the simplified graph, statistics, LLVM IR,
assembly, Graphviz DOT, cache keys, and sympy in and out."""

import numpy as np
import sympy

import symgrad as sg


def loss(W, X, Y):
    return ((X @ W - Y) ** 2).mean()


rng = np.random.default_rng(0)
W, X, Y = rng.standard_normal((3, 2)), rng.standard_normal((5, 3)), rng.standard_normal((5, 2))

report = sg.inspect(loss, W, X, Y)
print("== formulas (sympy, printed at the tensor level)")
print(report)
print("\n== the simplified gradient graph")
print(report.graph)
print("\n== statistics")
for key, value in report.stats.items():
    print(f"{key}: {value}")
print("\n== cache key:", report.cache_key)
print(f"== LLVM IR: {len(report.llvm_ir.splitlines())} lines; assembly: {len(report.asm.splitlines())} lines")
print("\n".join(report.llvm_ir.splitlines()[4:10]))
print(f"\n== Graphviz DOT ({len(report.dot.splitlines())} lines; render with `dot -Tsvg`)")

print("\n== a tensor computed eagerly")
x = sg.ones(2, 2, requires_grad=True)
out = (3 * (x + 2) ** 2).mean()
print(sg.inspect(out))

print("\n== sympy in: a compiled function with its derivatives")
a, b = sympy.symbols("a b")
f = sg.from_sympy(sympy.exp(-a**2) * sympy.cos(b), [a, b])
print("f(1, 0) =", f(np.array(1.0), np.array(0.0)), " grad:", f.grad(np.array(1.0), np.array(0.0)))

print("\n== a new elementwise op from a sympy expression (derivative from sympy.diff)")
swish = sg.elementwise(lambda z: z / (1 + sympy.exp(-z)), name="swish")
print(sg.inspect(lambda v: swish(v).sum(), np.ones(3)))

print("\n== sympy out")
formulas = sg.to_sympy(loss, W, X, Y)
print({k: sympy.srepr(v)[:60] + "..." for k, v in formulas.items()})
