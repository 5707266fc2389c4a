"""The seed PyTorch autograd tutorial, run by symgrad, then what symgrad did behind it.

Everything above the dashed line prints exactly what PyTorch prints for the same
code (object addresses aside); tests/test_seed.py checks it line by line.
"""

import symgrad as torch

# In [5]
x = torch.ones(2, 2, requires_grad=True)
print(x)

# In [7]
y = x + 2
print(y)
print(y.grad_fn)

# In [10]
z = y * y * 3
out = z.mean()
print(z)
print(out)

# In [11]
a = torch.randn(2, 2)
a = (a * 3) / (a - 1)
print(a.requires_grad)
a.requires_grad_(True)
print(a.requires_grad)
b = (a * a).sum()
print(b.grad_fn)

# In [12]
out.backward()
seen_out = torch.inspect(out)  # kept for the end: formulas, gradient graph, LLVM IR

# In [13]
print(x.grad)
print(y.grad)
print(z.grad)

# In [63]
x = torch.tensor([2.3015, 0.3758, 1.80205], requires_grad=True)
y = x * 2
print(y)
print(y.data)
print(y.data.norm())
while y.data.norm() < 1000:
    y = y * 2
print(y)

# In [64]
y.backward(torch.tensor([0.01, 0.1, 1], dtype=torch.float))
print(y[0].data / x[0].data)
print(x.grad)
seen_y = torch.inspect(y)

# In [44]
a = torch.FloatTensor([[2, 4]])
a.requires_grad_(requires_grad=True)
b = torch.zeros(1, 2)
b[0, 0] = a[0, 0] ** 2 + a[0, 1]
b[0, 1] = a[0, 1] ** 3 + a[0, 0]
out = b * 2
out.backward(torch.FloatTensor([[1, 1]]))

# In [46]
print("input:", a.data)
print("output:", out.data)
print("input gradients:", a.grad)

# In [65]
print(x.requires_grad)
print((x**2).requires_grad)

with torch.no_grad():
    print((x**2).requires_grad)

print("-" * 72)
print("Behind the scenes: backward() differentiates the graph symbolically; a structure's first")
print("pass runs in the numpy interpreter, every later one in LLVM-compiled code, cached per shape.")
print(seen_out)
print(seen_y)
print("The gradient graph of y, after simplification:")
print(seen_y.graph)
before = torch.cache_info()
for _ in range(3):  # the loop of In [63] again, with new values: the same structure, no compile
    x = torch.randn(3, requires_grad=True)
    y = x * 2
    for _ in range(8):
        y = y * 2
    y.backward(torch.tensor([0.01, 0.1, 1]))
    assert torch.allclose(x.grad, torch.tensor([5.12, 51.2, 512.0]))
after = torch.cache_info()
print(f"cache: {after['compiles']} compiles, {after['hits']} hits; "
      f"running that loop 3 more times compiled {after['compiles'] - before['compiles']} more times")
ir = seen_out.llvm_ir.splitlines()
print(f"LLVM IR of d out/dx ({len(ir)} lines) begins:")
print("\n".join("    " + line for line in ir[4:8]))
