"""Bad input never crashes the interpreter: every case gives a result or a Python exception.

The cases run in a child process, so a segfault fails this test instead of killing pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r'''
import json, numpy as np, symgrad as sg

f = sg.value_and_grad(lambda x, y: (sg.sin(x) * y).sum())
g = sg.grad(lambda x: (x @ x.T).sum())
base = np.arange(12.0).reshape(3, 4)
weird = {
    "int": np.arange(12).reshape(3, 4), "bool": base > 3, "complex": base + 1j, "object": base.astype(object),
    "strided": np.arange(24.0).reshape(3, 8)[:, ::2], "negative": base[::-1], "fortran": np.asfortranarray(base),
    "readonly": np.array(base), "0-d": np.array(1.0), "size-0": np.zeros((0, 4)), "nan": base * np.nan,
    "inf": base * np.inf, "list": [[1.0, 2.0], [3.0, 4.0]], "none": None, "str": "abc", "float32": base.astype(np.float32),
    "big-endian": base.astype(">f8"),
}
weird["readonly"].setflags(write=False)
results = {}
for name, value in weird.items():
    for label, call in [("value_and_grad", lambda v: f(v, base)), ("grad", lambda v: g(v)),
                        ("eager", lambda v: (sg.tensor(v, requires_grad=True) * 2).sum().backward()),
                        ("mixed", lambda v: f(base, v))]:
        try:
            call(value)
            results[f"{label}/{name}"] = "ok"
        except Exception as e:
            results[f"{label}/{name}"] = type(e).__name__ + ": " + str(e)[:200]
for name, call in {
    "shape mismatch": lambda: f(np.ones(3), np.ones(4)),
    "matmul mismatch": lambda: sg.ones(2, 3) @ sg.ones(2, 3),
    "index out of range": lambda: sg.ones(3)[5],
    "gather index out of range": lambda: sg.ones(3, requires_grad=True)[sg.tensor([0, 7])],
    "backward twice": lambda: [(lambda y: (y.backward(), y.backward()))((sg.ones(2, requires_grad=True) ** 2).sum())],
    "reshape invalid": lambda: sg.ones(6).reshape(4, 2),
    "cat mismatch": lambda: sg.cat([sg.ones(2, 3), sg.ones(3, 2)], 1),
}.items():
    try:
        call()
        results[name] = "ok"
    except Exception as e:
        results[name] = type(e).__name__ + ": " + str(e)[:200]
print(json.dumps(results))
'''


def test_bad_inputs_raise_python_errors_and_never_crash():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"child died ({proc.returncode}): {proc.stderr[-2000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == 17 * 4 + 7
    for case in ["shape mismatch", "matmul mismatch", "index out of range", "gather index out of range",
                 "backward twice", "reshape invalid", "cat mismatch"]:  # fmt: skip
        assert results[case] != "ok", case
        assert results[case].split(":")[0] in {"RuntimeError", "ValueError", "IndexError", "TypeError"}
    for name in ["complex", "object", "none", "str"]:
        assert results[f"value_and_grad/{name}"].startswith("TypeError"), results[f"value_and_grad/{name}"]
    for name in ["strided", "negative", "fortran", "readonly", "nan", "inf", "float32", "int", "bool", "big-endian"]:
        for label in ["value_and_grad", "grad", "mixed"]:
            assert results[f"{label}/{name}"] == "ok", (label, name, results[f"{label}/{name}"])
