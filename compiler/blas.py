"""BLAS gemm for Matmul steps: the symbols, where they live, and the IR that calls them.

The generated code calls numpy's bundled OpenBLAS (ILP64 CBLAS, row-major). Imports
numpy (only to locate its package folder), `.irtext` and `.program`; loading
the library into the JIT is `jit.py`'s job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import irtext as ir
from .program import KernelProgram, Matmul

# cblas_?gemm64_(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
GEMM_SYMBOLS = {"float64": "scipy_cblas_dgemm64_", "float32": "scipy_cblas_sgemm64_"}
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS enum values (C int)
_I32, _I64, _PTR = ir.IntType(32), ir.IntType(64), ir.PointerType()
_FLOAT = {"float32": ir.FloatType(), "float64": ir.DoubleType()}


def gemm_symbols(program: KernelProgram) -> set[str]:
    """The gemm symbols `program`'s code calls (empty without Matmul steps)."""
    return {
        GEMM_SYMBOLS[program.buffers[step.out].dtype]
        for step in program.steps
        if isinstance(step, Matmul)
    }


def openblas_candidates() -> list[Path]:
    """Shared libraries of numpy's bundled OpenBLAS (Linux/Windows wheels, macOS wheels)."""
    package = Path(np.__file__).parent
    folders = [package.parent / "numpy.libs", package / ".dylibs"]
    return sorted(p for folder in folders if folder.is_dir() for p in folder.glob("*openblas*"))


def emit_gemm(
    b: ir.IRBuilder, dtype: str, mm: Matmul, a: ir.Value, bmat: ir.Value, c: ir.Value
) -> None:
    """C = op(A) @ op(B) (+ C when accumulating) for one batch, all row-major."""
    ty = _FLOAT[dtype]
    name = GEMM_SYMBOLS[dtype]
    fn = b.module.globals.get(name) or _declare_gemm(b.module, name, ty)
    lda = mm.m if mm.trans_a else mm.k  # row length of A as stored
    ldb = mm.k if mm.trans_b else mm.n
    args = [
        ir.Constant(_I32, ROW_MAJOR),
        ir.Constant(_I32, TRANS if mm.trans_a else NO_TRANS),
        ir.Constant(_I32, TRANS if mm.trans_b else NO_TRANS),
        *(ir.Constant(_I64, v) for v in (mm.m, mm.n, mm.k)),
        ir.Constant(ty, 1.0),
        a,
        ir.Constant(_I64, max(1, lda)),  # BLAS wants leading dimensions >= 1, even when empty
        bmat,
        ir.Constant(_I64, max(1, ldb)),
        ir.Constant(ty, 1.0 if mm.accumulate else 0.0),  # beta = 0: C is not read
        c,
        ir.Constant(_I64, max(1, mm.n)),
    ]
    b.call(fn, args)


def _declare_gemm(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    params = [_I32] * 3 + [_I64] * 3 + [ty, _PTR, _I64, _PTR, _I64, ty, _PTR, _I64]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), params), name=name)
    fn.attributes.add("nounwind")
    return fn
