"""JIT state: `JitSession` owns the host target machine; each `NativeFunction` its engine.

It parses, verifies and optimises LLVM IR with the new pass manager, compiles it
to object code and loads that into a small MCJIT engine of its own, freed with the
`NativeFunction` that owns it (so dropped code is freed); it makes the BLAS gemm symbols that
Matmul steps call resolvable, loads glibc's libmvec for vector math (`.vecmath`),
hands big loop bodies to the explicit vectoriser (`.vecloop`) and keeps object code
in an optional disk cache (`.diskcache`). The only module that imports
`llvmlite.binding`; it also imports `.emit`, `.blas` and `.call` to offer `compile`.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import llvmlite
import llvmlite.binding as llvm

from . import blas, diskcache, vecloop, vecmath
from .call import CompiledProgram
from .check import check_program
from .diskcache import Entry
from .emit import emit_program
from .opcode_ir import EmitContext
from .program import KernelProgram, Loop, Matmul

log = logging.getLogger("symgrad")
SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
QUICK = "; compiled by the -O0 code generator (a tiny program)\n"  # heads such optimised IR
TARGET_LINES = re.compile(r'^target (triple|datalayout) = "[^"]*"\n', re.M)
NO_LIBMVEC_ENV = "SYMGRAD_NO_LIBMVEC"  # set to 1 to keep math scalar (libm) everywhere
# LLVM's loop vectoriser takes time superlinear in the loop body (400 body
# instructions: 0.14 s, 1000: 1 s, 3000: 6.5 s). Programs with a longer loop body
# are vectorised by the emitter (`vecloop`) and optimised without it.
EXPLICIT_VECTOR_BODY = 400
# Programs doing at most this many loop-body instructions in all (2x2 examples, scalars)
# skip LLVM's IR pipeline and get -O0 code generation: ~10 ms of fixed cost, for a few
# nanoseconds per call.
TINY_WORK = 64
RECENT_OBJECTS = 64  # object code of add_ir kept per session: the same IR again is only loaded
_process_options_set = False  # LLVM command-line options are process-wide


class NativeFunction:
    """Machine code for `symbol` in an MCJIT engine of its own; valid while this object lives.

    Whatever can jump to `address` (a CompiledProgram, a fast entry's builtin) holds this
    object; when the last holder is gone, the engine and the code in it are freed.
    """

    __slots__ = ("address", "symbol", "llvm_ir", "optimized_ir", "_engine", "__weakref__")

    def __init__(self, entry: Entry) -> None:
        self._engine = _engine_with(entry.object_code)
        self.address: int = self._engine.get_function_address(entry.symbol)
        if not self.address:
            raise RuntimeError(f"JIT produced no code for symbol {entry.symbol!r}")
        self.symbol, self.llvm_ir, self.optimized_ir = entry.symbol, entry.llvm_ir, entry.optimized_ir

    def global_address(self, name: str) -> int:
        """Address of global variable `name` in this code's own data (RuntimeError if absent)."""
        address = self._engine.get_global_value_address(name)
        if not address:
            raise RuntimeError(f"JIT code for {self.symbol!r} has no global {name!r}")
        return address

    def __repr__(self) -> str:
        return f"<NativeFunction {self.symbol} at {self.address:#x}>"


@dataclass
class JitStats:
    """What a session did: `codegen` counts modules LLVM optimised and compiled."""

    codegen: int = 0
    codegen_seconds: float = 0.0
    disk_hits: int = 0  # code loaded from the disk cache (no LLVM work at all)
    disk_misses: int = 0
    session_hits: int = 0  # the same code asked for again in this session


class JitSession:
    """Owns the host target machine (pass builder, object code, assembly listings).

    Compiled code does not live in the session: each program is loaded into an
    engine owned by its `NativeFunction`, so it is freed when nothing can call it.

    `cache_dir`: a directory for compiled object code shared between processes
    (None: no disk cache). `vector_math`: call libmvec's vector functions from
    vectorised loops (None: yes unless the environment sets SYMGRAD_NO_LIBMVEC=1);
    `own_math`: symgrad's own float32 sin, cos, exp and tanh and float64 tanh in place of
    libmvec's.
    `explicit_vector_body`: programs with a loop body longer than this get explicit
    vector loops from the emitter instead of LLVM's loop vectoriser (0: always).
    `tiny_work`: programs executing at most this many loop-body instructions skip LLVM's
    IR optimisation pipeline and get -O0 code generation (-1: none does).
    """

    def __init__(
        self,
        opt_level: int = 3,
        cache_dir: str | None = None,
        vector_math: bool | None = None,
        own_math: bool = True,
        explicit_vector_body: int = EXPLICIT_VECTOR_BODY,
        tiny_work: int = TINY_WORK,
    ) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _set_process_options()
        self.opt_level = opt_level
        self.explicit_vector_body = explicit_vector_body
        self.tiny_work = tiny_work
        self.stats = JitStats()
        self._cpu, self._features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
        self._machines: dict[int, llvm.TargetMachine] = {}  # opt level -> host machine, made on use
        self._machines_lock = threading.Lock()
        self._uses: dict[str, int] = {}  # kernel name -> programs named so (symbols stay unique)
        self._linked: dict[str, int] = {}  # external symbol -> address, checked once
        # cache key -> code still held somewhere: asking again shares it (and never keeps it)
        self._loaded: weakref.WeakValueDictionary[str, NativeFunction] = weakref.WeakValueDictionary()
        self._recent: OrderedDict[str, Entry] = OrderedDict()  # add_ir's IR digest -> object code
        self._lock = threading.Lock()  # the target machines; loading into engines
        self._cache_lock = threading.Lock()  # one cached compile at a time
        if vector_math is None:
            vector_math = os.environ.get(NO_LIBMVEC_ENV, "0") in ("", "0")
        self.vector_library = _load_vector_library(own_math) if vector_math else None
        self.disk_cache = diskcache.DiskCache.open(cache_dir) if cache_dir is not None else None

    def _host_machine(self, opt_level: int) -> llvm.TargetMachine:
        target = llvm.Target.from_default_triple()
        return target.create_target_machine(cpu=self._cpu, features=self._features, opt=opt_level, jit=True)

    # What only some programs need is made when one first does (a first call pays for
    # nothing else): the explicit vectoriser, and the cache key's fixed part.

    @functools.cached_property
    def _vectors(self) -> vecloop.ExplicitVectors:
        functions = self.vector_library.functions() if self.vector_library else {}
        return vecloop.ExplicitVectors(vecmath.vector_lanes(self._features), functions)

    @functools.cached_property
    def _environment(self) -> dict[str, str]:
        """The part of every cache key that is fixed for this session."""
        library = self.vector_library
        return {
            "compiler": diskcache.compiler_version(),
            "llvmlite": llvmlite.__version__,
            "llvm": ".".join(map(str, llvm.llvm_version_info)),
            "triple": self._machine(quick=False).triple,
            "cpu": self._cpu,
            "features": self._features,
            "opt_level": str(self.opt_level),
            "explicit_vector_body": str(self.explicit_vector_body),
            "tiny_work": str(self.tiny_work),
            "libmvec": library.describe() if library is not None else "off",
        }

    # ------------------------------------------------------------ programs

    def compile(self, program: KernelProgram, name: str = "kernel") -> CompiledProgram:
        """Emit, optimise and load `program` (or load it from the disk cache); return it
        as a Python callable."""
        start = time.perf_counter()
        if not SYMBOL.fullmatch(name):
            raise ValueError(f"kernel name {name!r} must match {SYMBOL.pattern}")
        check_program(program)  # before anything else looks at it, cached or not
        for external in sorted(blas.gemm_symbols(program)):
            self._link_blas(external)
        if self.disk_cache is None:
            symbol = self._unique_symbol(name)
            native = self._load(self._build(program, symbol))
        else:
            # The symbol carries the key, so cached object code means the same everywhere.
            key = diskcache.digest(self.key_material(program, name))
            symbol = f"{name}_{key[:16]}"
            native = self._through_cache(key, symbol, lambda: self._build(program, symbol))
        seconds = time.perf_counter() - start
        log.debug("compiled %s (%d steps) in %.1f ms", symbol, len(program.steps), seconds * 1e3)
        return CompiledProgram(program, native, seconds, self)

    def key_material(self, program: KernelProgram, name: str) -> dict[str, str]:
        """Everything the machine code of `program` depends on (hashed into its cache key)."""
        return {**self._environment, "name": name, "program": repr(program)}

    def _build(self, program: KernelProgram, symbol: str) -> Entry:
        """Emit and compile `program`; a long loop body gets explicit vector loops, a tiny
        program small loops unrolled, no IR optimisation and -O0 code generation (LLVM's
        pipelines would cost milliseconds to save nanoseconds).
        Loops emitted in pieces (`vecloop.CHUNK`) are `optnone` code the pipeline leaves
        alone, while its module passes still read all of it (about 40 ms per 1000 body
        instructions): they count as no work here."""
        bodies = [len(step.body) for step in program.steps if isinstance(step, Loop)]
        explicit = max(bodies, default=0) > self.explicit_vector_body
        tiny = _work(program, set()) <= self.tiny_work
        vectors = self._vectors if explicit else None if tiny else self._vectors.reductions_only()
        llvm_ir = str(emit_program(program, symbol, vectors, checked=True, straight_line=tiny))
        work = _work(program, self._in_pieces(program) if explicit else set())
        return self._codegen(llvm_ir, symbol, explicit, optimize=work > self.tiny_work, quick=tiny)

    def _in_pieces(self, program: KernelProgram) -> set[int]:
        """Steps whose loop the explicit vectoriser emits as calls to pieces."""
        e = EmitContext(program, None, [], None)  # no builder: only asking vecloop
        lanes = self._vectors.lanes
        return {k for k, step in enumerate(program.steps)
                if isinstance(step, Loop) and step.shape and len(step.body) > vecloop.CHUNK
                and lanes.get(step.dtype, 0) >= 2 and vecloop.vectorizable(e, step)}  # fmt: skip

    # ------------------------------------------------------------ IR and objects

    def add_ir(self, llvm_ir: str, symbol: str, cache: bool = False) -> NativeFunction:
        """Optimise textual IR, load it into an engine of its own and return `symbol` there
        (the code is freed with the returned object: keep it while anything may call it).

        With `cache` (and a session disk cache) the object code is kept on disk, keyed
        by the IR text and symbol: only for IR that means the same in every process
        (no addresses baked in, no per-process symbol names).
        """
        if self.disk_cache is None or not cache:
            return self._load(self._recent_object(llvm_ir, symbol))
        key = diskcache.digest({**self._environment, "symbol": symbol, "llvm_ir": llvm_ir})
        return self._through_cache(key, symbol, lambda: self._codegen(llvm_ir, symbol, False))

    def _through_cache(self, key: str, symbol: str, build: Callable[[], Entry]) -> NativeFunction:
        """The code for `key`: still held in this session, from disk, or built and stored."""
        assert self.disk_cache is not None
        with self._cache_lock:
            native = self._loaded.get(key)
            if native is not None:
                self.stats.session_hits += 1
                return native
            entry = self.disk_cache.load(key, symbol)
            if entry is None:
                self.stats.disk_misses += 1
                entry = build()
                self.disk_cache.store(key, entry)
            else:
                self.stats.disk_hits += 1
            native = self._loaded[key] = self._load(entry)
            return native

    def _recent_object(self, llvm_ir: str, symbol: str) -> Entry:
        """Object code for IR this session compiled recently (loaded again, no LLVM work:
        each optimisation run costs time and, in llvmlite 0.50, about 60 KiB never freed)."""
        key = diskcache.digest({"symbol": symbol, "llvm_ir": llvm_ir})
        with self._cache_lock:
            entry = self._recent.get(key)
            if entry is not None:
                self._recent.move_to_end(key)
                self.stats.session_hits += 1
                return entry
        entry = self._codegen(llvm_ir, symbol, explicit=False)
        with self._cache_lock:
            self._recent[key] = entry
            while len(self._recent) > RECENT_OBJECTS:
                self._recent.popitem(last=False)
        return entry

    def _codegen(self, llvm_ir: str, symbol: str, explicit: bool, optimize: bool = True,
                 quick: bool = False) -> Entry:  # fmt: skip
        """Optimise textual IR (unless not `optimize`) and compile it to host object code
        (nothing is loaded); `quick`: with the -O0 code generator (about 1 ms instead of 6
        for a tiny program; its optimised IR says so, for `assembly`)."""
        with self._lock:  # one thread at a time uses the target machines
            start = time.perf_counter()
            machine = self._machine(quick)
            module, parsed = self._optimized(llvm_ir, explicit, optimize, machine)
            object_code = machine.emit_object(module)
            self.stats.codegen += 1
            self.stats.codegen_seconds += time.perf_counter() - start
        # without a pipeline the optimised IR is the text parsed (not printed again: 0.5 s at 10 MB)
        optimized = (QUICK + parsed if quick else parsed) if not optimize else str(module)
        return Entry(symbol, object_code, llvm_ir, optimized)

    def _machine(self, quick: bool) -> llvm.TargetMachine:
        """The host machine at the session's opt level, or at -O0 for `quick` code generation
        (each made when first asked for: a session compiling only tiny programs makes one)."""
        level = 0 if quick else self.opt_level
        with self._machines_lock:
            machine = self._machines.get(level)
            if machine is None:
                machine = self._machines[level] = self._host_machine(level)
            return machine

    def _load(self, entry: Entry) -> NativeFunction:
        """Load object code into a new engine (one at a time: symbol resolution is process-wide)."""
        with self._lock:
            return NativeFunction(entry)

    def _optimized(self, llvm_ir: str, explicit: bool, optimize: bool,
                   machine: llvm.TargetMachine) -> tuple[llvm.ModuleRef, str]:  # fmt: skip
        """The module parsed and optimised for `machine`, and the text parsed (with the
        target's triple and data layout); explicit vector code skips LLVM's vectorisers.
        Scalar math calls are routed through libmvec either way (one value per input in a
        program)."""
        library = self.vector_library
        annotated = "@llvm.compiler.used" in llvm_ir
        if library is not None and not explicit and not annotated and _calls_math(llvm_ir):
            llvm_ir = vecmath.annotate(llvm_ir, library)
        if library is not None:
            llvm_ir = vecmath.define(llvm_ir, library)
        llvm_ir = _targeted(llvm_ir, machine)
        module = llvm.parse_assembly(llvm_ir)
        module.verify()
        if optimize:
            tuning = llvm.create_pipeline_tuning_options(speed_level=self.opt_level)
            tuning.loop_vectorization = not explicit
            tuning.slp_vectorization = not explicit
            builder = llvm.create_pass_builder(machine, tuning)
            builder.getModulePassManager().run(module, builder)
        return module, llvm_ir

    def _link_blas(self, symbol: str) -> None:
        """Make `symbol` (a gemm of numpy's OpenBLAS) resolvable for the engine, or raise."""
        with self._lock:
            if symbol not in self._linked:
                address = _resolve_blas_symbol(symbol)
                llvm.add_symbol(symbol, address)
                self._linked[symbol] = address

    def assembly(self, optimized_ir: str) -> str:
        """Host assembly for already optimised IR (code generation only, nothing is loaded),
        by the code generator that compiled it."""
        with self._lock:
            machine = self._machine(optimized_ir.startswith(QUICK))
            return machine.emit_assembly(llvm.parse_assembly(optimized_ir))

    def _unique_symbol(self, name: str) -> str:
        """`name`, then `name_1`, `name_2`... (one count per name, not a set of every symbol)."""
        with self._lock:
            k = self._uses[name] = self._uses.get(name, -1) + 1
        return f"{name}_{k}" if k else name


def _engine_with(object_code: bytes) -> llvm.ExecutionEngine:
    """A new MCJIT engine holding `object_code`, linked and ready to run.

    The engine only links object code (the session's machine generates it), so its
    own target machine is a generic one: about 40 us to create, against about 250 us
    for the host-tuned one. The empty module MCJIT insists on is taken out again, or
    finalising would run a code generator over it (about 1 ms).
    """
    empty = llvm.parse_assembly("")
    machine = llvm.Target.from_default_triple().create_target_machine(opt=0, jit=True)
    engine = llvm.create_mcjit_compiler(empty, machine)  # owns `machine` from here on
    engine.remove_module(empty)
    engine.add_object_file(llvm.ObjectFileRef.from_data(object_code))
    engine.finalize_object()
    return engine


def _targeted(llvm_ir: str, machine: llvm.TargetMachine) -> str:
    """`llvm_ir` with the machine's triple and data layout in its header."""
    header = f'target triple = "{machine.triple}"\ntarget datalayout = "{machine.target_data}"\n'
    return header + TARGET_LINES.sub("", llvm_ir, count=2)  # (at the top: the search stops there)


def _calls_math(llvm_ir: str) -> bool:
    """Might the IR call a scalar math function (that libmvec has)?"""
    return " = call double @" in llvm_ir or " = call float @" in llvm_ir


def _work(program: KernelProgram, skipped: set[int]) -> int:
    """Loop-body instructions one run executes outside the `skipped` steps (a matmul counts
    as more than tiny)."""
    total = 0
    for k, step in enumerate(program.steps):
        if k in skipped:
            continue
        if isinstance(step, Loop):
            total += math.prod(step.shape) * max(len(step.body), 1)
        elif isinstance(step, Matmul):
            total += TINY_WORK + 1
    return total


def _set_process_options() -> None:
    """Let the loop vectoriser keep strict floating-point reductions in order.

    Without this, a loop that sums into a register (no fast-math) is never
    vectorised on x86, so its math stays scalar. In-order reductions give results
    bit-identical to the scalar loop. The option is process-wide LLVM state.
    """
    global _process_options_set
    if not _process_options_set:
        llvm.set_option("symgrad", "-force-ordered-reductions=true")
        _process_options_set = True


@functools.cache  # the library is loaded process-wide: look it up once
def _load_vector_library(own: bool = True) -> vecmath.VectorLibrary | None:
    """libmvec's variants usable on this host, with symgrad's own where it has them (and
    `own`), or None (then math stays scalar)."""
    if not llvm.get_process_triple().startswith("x86_64"):
        return None
    try:
        llvm.load_library_permanently(vecmath.LIBRARY)  # like dlopen: idempotent, process-wide
    except RuntimeError as error:
        log.info("no vector math library (%s): math calls stay scalar", error)
        return None
    return vecmath.host_library(llvm.get_host_cpu_features().flatten(), llvm.address_of_symbol, own)


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
