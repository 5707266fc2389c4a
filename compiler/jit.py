"""JIT state: `JitSession` owns the host target machine and one MCJIT engine.

It parses, verifies and optimises LLVM IR with the new pass manager, adds it to
the engine and returns native addresses; it makes the BLAS gemm symbols that Matmul
steps call resolvable. The only module that imports `llvmlite.binding`; it also
imports `.emit`, `.blas` and `.call` to offer `compile`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

import llvmlite.binding as llvm

from . import blas
from .call import CompiledProgram
from .emit import emit_program
from .program import KernelProgram

log = logging.getLogger("symgrad")
SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class NativeFunction:
    """A function living in a session's engine, and the optimised IR it came from."""

    address: int
    optimized_ir: str


class JitSession:
    """Owns a target machine and an MCJIT engine; code added here lives as long as the session.

    Two target machines are created from the same host description: the engine
    takes ownership of its own one (and frees it with the engine), the session
    keeps the other for the pass builder and for assembly listings.
    """

    def __init__(self, opt_level: int = 3) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.opt_level = opt_level
        self._target_machine = self._host_machine()
        engine_machine = self._host_machine()  # owned by the engine from here on
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), engine_machine)
        self._symbols: set[str] = set()
        self._linked: dict[str, int] = {}  # external symbol -> address, checked once
        self._lock = threading.Lock()

    def _host_machine(self) -> llvm.TargetMachine:
        target = llvm.Target.from_default_triple()
        return target.create_target_machine(
            cpu=llvm.get_host_cpu_name(),
            features=llvm.get_host_cpu_features().flatten(),
            opt=self.opt_level,
            jit=True,
        )

    def compile(self, program: KernelProgram, name: str = "kernel") -> CompiledProgram:
        """Emit, optimise and load `program`; return it as a Python callable."""
        start = time.perf_counter()
        symbol = self._unique_symbol(name)
        llvm_ir = str(emit_program(program, symbol))
        for external in sorted(blas.gemm_symbols(program)):
            self._link_blas(external)
        native = self.add_ir(llvm_ir, symbol)
        seconds = time.perf_counter() - start
        log.debug("compiled %s (%d steps) in %.1f ms", symbol, len(program.steps), seconds * 1e3)
        return CompiledProgram(
            program, native.address, llvm_ir, native.optimized_ir, seconds, self, symbol
        )

    def add_ir(self, llvm_ir: str, symbol: str) -> NativeFunction:
        """Optimise textual IR, add it to the engine and return the address of `symbol`."""
        with self._lock:  # one thread at a time uses the target machine and the engine
            module = self._optimized(llvm_ir)
            optimized_ir = str(module)
            self._engine.add_module(module)  # the engine owns the module from here on
            self._engine.finalize_object()
            address = self._engine.get_function_address(symbol)
        if not address:
            raise RuntimeError(f"JIT produced no code for symbol {symbol!r}")
        return NativeFunction(address, optimized_ir)

    def _optimized(self, llvm_ir: str) -> llvm.ModuleRef:
        module = llvm.parse_assembly(llvm_ir)
        module.triple = self._target_machine.triple
        module.data_layout = str(self._target_machine.target_data)
        module.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=self.opt_level)
        tuning.loop_vectorization = True
        tuning.slp_vectorization = True
        builder = llvm.create_pass_builder(self._target_machine, tuning)
        builder.getModulePassManager().run(module, builder)
        return module

    def _link_blas(self, symbol: str) -> None:
        """Make `symbol` (a gemm of numpy's OpenBLAS) resolvable for the engine, or raise."""
        with self._lock:
            if symbol not in self._linked:
                address = _resolve_blas_symbol(symbol)
                llvm.add_symbol(symbol, address)
                self._linked[symbol] = address

    def assembly(self, optimized_ir: str) -> str:
        """Host assembly for already optimised IR (code generation only, nothing is loaded)."""
        with self._lock:
            return self._target_machine.emit_assembly(llvm.parse_assembly(optimized_ir))

    def _unique_symbol(self, name: str) -> str:
        if not SYMBOL.fullmatch(name):
            raise ValueError(f"kernel name {name!r} must match {SYMBOL.pattern}")
        with self._lock:
            symbol, k = name, 0
            while symbol in self._symbols:
                k += 1
                symbol = f"{name}_{k}"
            self._symbols.add(symbol)
        return symbol


def _resolve_blas_symbol(symbol: str) -> int:
    """Address of `symbol`, loading numpy's bundled OpenBLAS (process-wide) if needed."""
    address = llvm.address_of_symbol(symbol)
    candidates = [] if address else blas.openblas_candidates()
    for library in candidates:
        llvm.load_library_permanently(str(library))  # like dlopen: idempotent, process-wide
        address = llvm.address_of_symbol(symbol)
        if address:
            log.debug("BLAS: %s from %s", symbol, library)
            break
    if not address:
        tried = ", ".join(map(str, candidates)) or "no OpenBLAS library next to numpy"
        raise RuntimeError(
            f"Matmul needs the BLAS symbol {symbol!r} from numpy's bundled OpenBLAS, "
            f"which was not found (tried: {tried})"
        )
    return address
