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

DTYPES = ("float32", "float64", "int64")  # int64 buffers only hold indices

# Scalar opcodes, with their arity. Comparison opcodes yield 1.0 or 0.0 in the
# kernel's dtype; `select(c, a, b)` is `a if c != 0 else b`.
OPCODES: dict[str, int] = {
    "add": 2, "sub": 2, "mul": 2, "div": 2, "pow": 2, "max": 2, "min": 2, "atan2": 2,
    "lt": 2, "le": 2, "gt": 2, "ge": 2, "eq": 2, "ne": 2,
    "neg": 1, "abs": 1, "exp": 1, "log": 1, "sqrt": 1, "sin": 1, "cos": 1,
    "tan": 1, "tanh": 1, "floor": 1, "ceil": 1,
    "asin": 1, "acos": 1, "atan": 1, "sinh": 1, "cosh": 1, "erf": 1,
    "log1p": 1, "expm1": 1, "exp2": 1, "log2": 1, "log10": 1,
    "round": 1,  # half to even, as numpy and torch round
    "trunc": 1, "isnan": 1, "isinf": 1,  # isnan/isinf yield 1.0 or 0.0
    "select": 3,
}  # fmt: skip

# "max"/"min" propagate NaN (as torch.amax does); "prod" multiplies in. The buffer
# must be filled first (0 for sum, 1 for prod, -inf / +inf for max / min).
STORE_MODES = ("assign", "sum", "max", "min", "prod")


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
    """One scalar SSA instruction; its value is named by its position in the body.

    `gather` reads element `address(loads[load]) + idx * stride` where `idx` is
    args[0], which must be a `load` from an int64 buffer (it stays an integer).
    An `idx` outside [-bound, bound) makes the whole call fail with an index
    error before anything is read there; a negative `idx` counts from `bound`.
    """

    op: str  # "load", "const", "gather", or a key of OPCODES
    args: tuple[int, ...] = ()  # positions of earlier instructions
    load: int = -1  # for "load" and "gather": index into Loop.loads
    value: float = 0.0  # for "const"
    stride: int = 0  # for "gather": elements between consecutive index values
    bound: int = 0  # for "gather": the size of the indexed dimension


@dataclass(frozen=True)
class Store:
    """Store (or accumulate) a body value; with `index` >= 0 the address moves by
    `idx * index_stride` where idx is that body position (an int64 load, as for
    gather, checked against `bound` the same way): a scatter."""

    access: Access
    value: int  # position of the stored instruction in the body
    mode: str = "assign"  # one of STORE_MODES
    index: int = -1
    index_stride: int = 0
    bound: int = 0


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


@dataclass(frozen=True)
class Matmul:
    """For each batch b: out[b] = op(A[b]) @ op(B[b]) (or +=), through BLAS gemm.

    All three buffers hold row-major matrices at the given element offsets; op()
    transposes when asked. A is m x k after op(), B is k x n, out is m x n with
    batch stride m * n. A batch stride of 0 broadcasts that operand.
    """

    a: int
    b: int
    out: int
    m: int
    n: int
    k: int
    trans_a: bool = False
    trans_b: bool = False
    batch: int = 1
    a_batch_stride: int = 0
    b_batch_stride: int = 0
    accumulate: bool = False
    a_offset: int = 0
    b_offset: int = 0
    out_offset: int = 0


Step = Loop | Fill | Matmul


@dataclass(frozen=True)
class KernelProgram:
    buffers: tuple[Buffer, ...]
    steps: tuple[Step, ...]

    def of_kind(self, kind: str) -> list[int]:
        return [i for i, b in enumerate(self.buffers) if b.kind == kind]
