"""The calling convention: `CompiledProgram` checks numpy inputs and calls native code.

Owns input validation, output/temp allocation, the pointer array passed to
`i32 @name(ptr buffers, ptr error)` and turning its status into exceptions.
Imports numpy, ctypes, `.program`, `.check` and `.fastcall` (the native entry points).
A CompiledProgram holds the `NativeFunction` owning its machine code (so the code
lives exactly as long as something can call it) and its session as an opaque
reference (for assembly listings and fast entries).
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np

from . import fastcall
from .check import overwritten_outputs
from .program import KernelProgram

_ENTRY = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)
_ERROR_RECORD = ctypes.c_int64 * 2  # the bad index and its bound
STATUS_INDEX_ERROR = 1  # as opcode_ir.STATUS_INDEX_ERROR (this module does not import the emitter)
FAST_ENTRIES_KEPT = 8  # per program: the most recently asked-for shapes keep their entries


def _data_pointer_reader() -> Callable[[np.ndarray], int]:
    """Fastest correct way to read an array's data pointer.

    `arr.ctypes.data` costs about 1 us; reading the `data` field that follows
    the object header of a PyArrayObject costs about 0.1 us. The field offset
    is verified against numpy's own answer; if it ever disagrees, fall back.
    """
    offset = object.__basicsize__
    read = ctypes.c_void_p.from_address
    probes = [np.zeros(3), np.arange(10.0)[2::3], np.empty((2, 3), np.float32).T, np.zeros(0)]
    if all((read(id(a) + offset).value or 0) == a.ctypes.data for a in probes):
        return lambda a: read(id(a) + offset).value or 0
    return lambda a: a.ctypes.data


data_pointer = _data_pointer_reader()


class CompiledProgram:
    """A compiled KernelProgram: `outputs = compiled([input arrays])`.

    Inputs are the arrays for the program's "input" buffers, in program order;
    each must be a C-contiguous, aligned numpy array whose dtype equals the
    buffer's and whose size equals the buffer's (its shape is not looked at).
    Returns new flat 1-d arrays, one per "output" buffer, in program order.
    A gather or scatter index outside [-bound, bound) raises IndexError (and the
    partly written outputs are dropped).
    """

    def __init__(self, program: KernelProgram, native: Any, compile_seconds: float, session: Any) -> None:
        self.program = program
        self.native = native  # a jit.NativeFunction: owns the machine code at `address`
        self.name: str = native.symbol
        self.llvm_ir: str = native.llvm_ir
        self.optimized_ir: str = native.optimized_ir
        self.compile_seconds = compile_seconds
        self._session = session
        self._asm: str | None = None
        self.address: int = native.address
        self._entry = _ENTRY(self.address)
        self._fast_entries: OrderedDict[tuple[Any, Any], Callable[..., Any]] = OrderedDict()
        self._fast_lock = threading.Lock()
        self._pointers = ctypes.c_void_p * len(program.buffers)
        self._checks_indices = any(b.dtype == "int64" for b in program.buffers)
        buffers = list(enumerate(program.buffers))
        self._inputs = [(k, np.dtype(b.dtype), b.size) for k, b in buffers if b.kind == "input"]
        overwritten = overwritten_outputs(program)
        self._allocated = [
            (k, np.dtype(b.dtype), b.size, b.kind == "output", np.empty if k in overwritten else np.zeros)
            for k, b in buffers
            if b.kind != "input"
        ]

    @property
    def asm(self) -> str:
        """Host assembly of the optimised code (generated on first access)."""
        if self._asm is None:
            self._asm = self._session.assembly(self.optimized_ir)
        return self._asm

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise TypeError(f"{self.name}: expected {len(self._inputs)} inputs, got {len(inputs)}")
        pointers = self._pointers()
        for position, (array, (k, dtype, size)) in enumerate(zip(inputs, self._inputs)):
            if not (
                isinstance(array, np.ndarray)
                and array.dtype == dtype
                and array.size == size
                and (flags := array.flags).c_contiguous
                and flags.aligned
            ):
                self._refuse(position, array, dtype, size)
            pointers[k] = data_pointer(array)
        outputs: list[np.ndarray] = []
        temps: list[np.ndarray] = []  # listed only to outlive the native call
        for k, dtype, size, is_output, allocate in self._allocated:
            array = allocate(size, dtype)  # zeros unless the program overwrites it first
            pointers[k] = data_pointer(array)
            (outputs if is_output else temps).append(array)
        error = _ERROR_RECORD() if self._checks_indices else None
        status = self._entry(pointers, error)
        if status:
            self._raise_status(status, error)
        return outputs

    def fast_entry(
        self,
        shapes: Sequence[tuple[int, ...]] | None = None,
        output_shapes: Sequence[tuple[int, ...]] | None = None,
        fallback: Callable[..., Any] | None = None,
    ) -> Callable[..., Any]:
        """A native builtin `f(*inputs)` doing what `__call__` does in well under a microsecond.

        `f` takes the input arrays as positional arguments and checks each natively:
        an ndarray (or subclass) with the buffer's dtype in native byte order, C-contiguous
        and aligned, of shape `shapes[i]` (or, when `shapes` is None, of the buffer's size).
        It returns the single output array, or a tuple of them (empty without outputs),
        shaped as `output_shapes` (flat when None). Errors have `__call__`'s exception types
        (and IndexError its message).
        Cached per shapes (the FAST_ENTRIES_KEPT most recent); a returned entry keeps its
        machine code alive on its own. Raises RuntimeError if this process's CPython/numpy layout could
        not be verified (then use `__call__`). The GIL is released around large kernels.

        With `fallback`, arguments the entry does not take are passed to `fallback(*inputs)`,
        whose result it returns, instead of raising; such an entry is the caller's own (not
        cached: its code is loaded into an engine of its own, without LLVM work after the first).
        """
        key = fastcall.entry_key(self.program, shapes, output_shapes)
        if fallback is not None:
            return fastcall.build_entry(self.program, self.native, self._session, self.name, key, fallback)
        with self._fast_lock:
            entry = self._fast_entries.get(key)
            if entry is None:
                entry = fastcall.build_entry(self.program, self.native, self._session, self.name, key)
                self._fast_entries[key] = entry
                if len(self._fast_entries) > FAST_ENTRIES_KEPT:
                    self._fast_entries.popitem(last=False)
            self._fast_entries.move_to_end(key)
        return entry

    def _raise_status(self, status: int, error: Any) -> NoReturn:
        if status == STATUS_INDEX_ERROR:
            index, bound = error
            raise IndexError(f"index {index} is out of bounds for dimension with size {bound}")
        raise RuntimeError(f"{self.name}: native code returned unknown status {status}")

    def _refuse(self, position: int, array: Any, dtype: np.dtype, size: int) -> NoReturn:
        """Raise the error that says why `array` cannot be input `position`."""
        error: type[Exception]
        if not isinstance(array, np.ndarray):
            error, got = TypeError, f"got {type(array).__name__}"
        elif array.dtype != dtype:
            error, got = TypeError, f"got dtype {array.dtype}"
        elif array.size != size:
            error, got = ValueError, f"got shape {array.shape}"
        else:
            error, got = ValueError, "got a non-contiguous or unaligned array"
        expected = f"a C-contiguous, aligned {dtype} array of {size} elements"
        raise error(f"{self.name}: input {position}: expected {expected}, {got}")

    def __repr__(self) -> str:
        n_in, n_out = len(self._inputs), len(self._allocated)
        return f"<CompiledProgram {self.name}: {n_in} inputs, {n_out} outputs/temps>"
