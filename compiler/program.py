"""The kernel-program contract: plain data that the front end hands to the back end.

Owns the dataclasses and the scalar opcode vocabulary. Imports nothing from
symgrad's front end (and nothing but the standard library).

A program is a list of buffers (flat, contiguous, one dtype each) and an
ordered list of steps. A `Loop` walks an N-d iteration space; every load and
store addresses its buffer through an affine `Access` (element offset plus one
element stride per loop axis: stride 0 means broadcast for a load and
reduction for a store). The body is a straight-line scalar SSA program.
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPES = ("float32", "float64")

# Scalar opcodes, with their arity. Comparison opcodes yield 1.0 or 0.0 in the
# kernel's dtype; `select(c, a, b)` is `a if c != 0 else b`.
OPCODES: dict[str, int] = {
    "add": 2, "sub": 2, "mul": 2, "div": 2, "pow": 2, "max": 2, "min": 2,
    "lt": 2, "le": 2, "gt": 2, "ge": 2, "eq": 2, "ne": 2,
    "neg": 1, "abs": 1, "exp": 1, "log": 1, "sqrt": 1, "sin": 1, "cos": 1,
    "tan": 1, "tanh": 1, "floor": 1, "ceil": 1,
    "select": 3,
}  # fmt: skip

STORE_MODES = ("assign", "sum")


@dataclass(frozen=True)
class Buffer:
    """A flat contiguous array. Inputs and outputs are passed in by the caller."""

    dtype: str  # one of DTYPES
    size: int  # number of elements
    kind: str  # "input" | "output" | "temp"


@dataclass(frozen=True)
class Access:
    """Element `offset + sum(strides[k] * i[k])` of `buffer` at loop index `i`."""

    buffer: int  # index into KernelProgram.buffers
    offset: int
    strides: tuple[int, ...]  # one per loop axis


@dataclass(frozen=True)
class Instr:
    """One scalar SSA instruction; its value is named by its position in the body."""

    op: str  # "load", "const", or a key of OPCODES
    args: tuple[int, ...] = ()  # positions of earlier instructions
    load: int = -1  # for "load": index into Loop.loads
    value: float = 0.0  # for "const"


@dataclass(frozen=True)
class Store:
    access: Access
    value: int  # position of the stored instruction in the body
    mode: str = "assign"  # "assign", or "sum" to accumulate (+=)


@dataclass(frozen=True)
class Loop:
    """for i in ndindex(shape): evaluate body, then perform every store."""

    shape: tuple[int, ...]
    dtype: str  # arithmetic dtype of the body; loads and stores convert
    loads: tuple[Access, ...]
    body: tuple[Instr, ...]
    stores: tuple[Store, ...]


@dataclass(frozen=True)
class Fill:
    """Set every element of a buffer to a constant (e.g. zero before a sum)."""

    buffer: int
    value: float


Step = Loop | Fill


@dataclass(frozen=True)
class KernelProgram:
    buffers: tuple[Buffer, ...]
    steps: tuple[Step, ...]

    def of_kind(self, kind: str) -> list[int]:
        return [i for i, b in enumerate(self.buffers) if b.kind == kind]
