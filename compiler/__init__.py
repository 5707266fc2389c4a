"""symgrad.compiler: the back end (kernel program -> LLVM IR -> native code).

Never imports the front end. Entry point: `JitSession().compile(program, name)`,
which returns a `CompiledProgram`. Modules in pipeline order: program, emit, jit, call.
"""

from .call import CompiledProgram
from .emit import check_program, emit_program
from .jit import JitSession, NativeFunction
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
    "KernelProgram",
    "Loop",
    "NativeFunction",
    "Step",
    "Store",
    "check_program",
    "emit_program",
]
