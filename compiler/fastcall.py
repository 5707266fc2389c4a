"""Native CPython entry points: one METH_FASTCALL builtin per compiled program, written in LLVM IR.

Owns the entry's specification (its IR text is `.entry_ir`'s) and the builtin object,
whose `self` keeps the machine code of the entry and of its kernel alive. The kernel's
address, the program's name and the fallback are read from globals set after loading,
so programs with the same buffers share one entry IR (and the session compiles it
once). Imports numpy, ctypes, `.program`, `.check`, `.entry_ir` and `.pylayout`; code
is added through the session's `add_ir`.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .check import overwritten_outputs
from .entry_ir import (
    CALLS_GLOBAL,
    ENTRY_SYMBOL,
    FALLBACK_GLOBAL,
    KERNEL_GLOBAL,
    MAX_DIMS,
    NAME_GLOBAL,
    ArgSpec,
    EntrySpec,
    entry_ir,
)
from .program import KernelProgram, Matmul
from .pylayout import MethodDef, python_function

METH_FASTCALL, METH_KEYWORDS = 0x0080, 0x0002  # stable ABI constants (Include/methodobject.h)
GIL_RELEASE_ELEMENTS = 1 << 15  # release the GIL around kernels touching this many elements

# ---------------------------------------------------------------- the builtin function


class FastEntry:
    """The `self` of a fast entry's builtin: keeps its PyMethodDef, its own machine code
    and its kernel's alive (the builtin holds it, so neither is freed while it can run)."""

    __slots__ = ("method", "strings", "code", "kernel", "spec", "fallback", "__weakref__")

    def __init__(self, method: MethodDef, strings: tuple[Any, ...], code: Any, kernel: Any,
                 spec: EntrySpec, fallback: Callable[..., Any] | None) -> None:  # fmt: skip
        self.method, self.strings, self.spec = method, strings, spec
        self.code, self.kernel = code, kernel  # jit.NativeFunction objects
        self.fallback = fallback  # the entry's global points at it

    def calls(self) -> int:
        """How many calls of the entry returned its outputs (fallback calls not counted)."""
        return ctypes.c_int64.from_address(self.code.global_address(CALLS_GLOBAL)).value


def _builtin(code: Any, kernel: Any, spec: EntrySpec, doc: str,
             fallback: Callable[..., Any] | None) -> Callable[..., Any]:  # fmt: skip
    name, text = spec.name.encode(), doc.encode()  # the PyMethodDef points into these
    name_buffer = ctypes.create_string_buffer(name)  # the entry's messages read it
    _set_global(code, KERNEL_GLOBAL, kernel.address)
    _set_global(code, NAME_GLOBAL, ctypes.addressof(name_buffer))
    _set_global(code, FALLBACK_GLOBAL, 0 if fallback is None else id(fallback))  # the keeper holds it
    method = MethodDef(name, code.address, METH_FASTCALL | METH_KEYWORDS, text)
    keeper = FastEntry(method, (name, text, name_buffer), code, kernel, spec, fallback)
    new = python_function(
        "PyCFunction_NewEx", ctypes.py_object, ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p
    )
    return new(ctypes.addressof(method), keeper, None)  # type: ignore[no-any-return]


def _set_global(code: Any, name: str, value: int) -> None:
    address = code.global_address(name)
    ctypes.c_void_p.from_address(address).value = value


def _normalized(
    shapes: Sequence[Sequence[int]] | None, sizes: list[int], what: str
) -> tuple[tuple[int, ...], ...] | None:
    if shapes is None:
        return None
    shapes = tuple(tuple(int(d) for d in shape) for shape in shapes)
    if len(shapes) != len(sizes):
        raise ValueError(f"fast entry: {len(sizes)} {what} shapes expected, got {len(shapes)}")
    for shape, size in zip(shapes, sizes):
        if len(shape) > MAX_DIMS or min(shape, default=0) < 0 or math.prod(shape) != size:
            raise ValueError(f"fast entry: {what} shape {shape} does not hold {size} elements")
    return shapes


def entry_key(program: KernelProgram, shapes: Any, output_shapes: Any) -> tuple[Any, Any]:
    """The cache key of an entry: normalised, validated input and output shapes."""
    sizes = {kind: [program.buffers[k].size for k in program.of_kind(kind)] for kind in ("input", "output")}
    return _normalized(shapes, sizes["input"], "input"), _normalized(output_shapes, sizes["output"], "output")


def _type_nums(dtype: np.dtype) -> tuple[int, ...]:
    return tuple(sorted({np.dtype(c).num for c in np.typecodes["All"] if np.dtype(c) == dtype}))


def entry_spec(
    program: KernelProgram, kernel: int, name: str, symbol: str, key: tuple[Any, Any]
) -> EntrySpec:
    shapes, output_shapes = key
    inputs = []
    for position, k in enumerate(program.of_kind("input")):
        buffer, shape = program.buffers[k], None if shapes is None else shapes[position]
        form = f"of {buffer.size} elements" if shape is None else f"of shape {shape}"
        expected = f"a C-contiguous, aligned {buffer.dtype} array {form}"
        inputs.append(ArgSpec(position, k, _type_nums(np.dtype(buffer.dtype)), shape, buffer.size, expected))
    overwritten = overwritten_outputs(program)
    outputs = tuple(
        (k, np.dtype(program.buffers[k].dtype).num,
         (program.buffers[k].size,) if output_shapes is None else output_shapes[i], k not in overwritten)
        for i, k in enumerate(program.of_kind("output"))
    )  # fmt: skip
    temps = tuple((k, b.size * np.dtype(b.dtype).itemsize) for k, b in enumerate(program.buffers)
                  if b.kind == "temp")  # fmt: skip
    touched = sum(b.size for b in program.buffers)
    release = touched >= GIL_RELEASE_ELEMENTS or any(isinstance(s, Matmul) for s in program.steps)
    return EntrySpec(name, symbol, kernel, len(program.buffers), tuple(inputs), outputs, temps, release)


def build_entry(program: KernelProgram, kernel: Any, session: Any, name: str,
                key: tuple[Any, Any], fallback: Callable[..., Any] | None = None) -> Callable[..., Any]:  # fmt: skip
    """Compile the entry for `key` (from `entry_key`) through `session.add_ir`; return the builtin.

    `kernel` is the kernel's `jit.NativeFunction`: the builtin keeps it alive. The entry's
    code has an engine of its own, whose globals say which kernel to call, its name, and
    `fallback`: called with the arguments instead of raising when they are not what the
    entry takes (wrong count, type, dtype, shape or layout).
    """
    spec = entry_spec(program, kernel.address, name, ENTRY_SYMBOL, key)
    code = session.add_ir(entry_ir(spec), ENTRY_SYMBOL)
    n_out = len(spec.outputs)
    returns = "the output array" if n_out == 1 else f"a tuple of {n_out} output arrays"
    doc = f"{name}(*{len(spec.inputs)} input arrays) -> {returns} (native entry; shapes {key[0]})"
    return _builtin(code, kernel, spec, doc, fallback)
