"""symgrad.compiler: the back end (kernel program -> LLVM IR -> native code).

Never imports the front end. Entry point: `JitSession().compile(program, name)`,
which returns a `CompiledProgram`. Modules in pipeline order: program, check, emit
(loops and steps; opcode_ir for single values, blas for Matmul steps, vecloop for explicit
vector loops; all of them write LLVM IR text through irtext, with irtypes), vecmath (libmvec; vecpoly
for symgrad's own float32 sin, cos, exp, tanh and float64 tanh), jit (with
diskcache for object code), call (with fastcall, entry_ir and pylayout for the native METH_FASTCALL
entry).
"""

from .call import CompiledProgram
from .check import check_program
from .emit import emit_program
from .jit import JitSession, JitStats, NativeFunction
from .program import (
    DTYPES,
    OPCODES,
    STORE_MODES,
    Access,
    Buffer,
    Fill,
    Instr,
    KernelProgram,
    Loop,
    Matmul,
    Step,
    Store,
)

__all__ = [
    "DTYPES",
    "OPCODES",
    "STORE_MODES",
    "Access",
    "Buffer",
    "CompiledProgram",
    "Fill",
    "Instr",
    "JitSession",
    "JitStats",
    "KernelProgram",
    "Loop",
    "Matmul",
    "NativeFunction",
    "Step",
    "Store",
    "check_program",
    "emit_program",
]
