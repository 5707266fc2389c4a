"""The LLVM types of `.irtext` (each one is its text) and how a scalar constant is written
as llvmlite writes it (floats as the hex of their double, float32 rounded first).
Imports only the standard library.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence


class Type:
    """A type is its text: equal texts are equal types."""

    __slots__ = ("text",)
    text: str

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Type) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class IntType(Type):
    __slots__ = ("width",)

    def __init__(self, width: int) -> None:
        self.width, self.text = width, f"i{width}"


class FloatType(Type):
    def __init__(self) -> None:
        self.text = "float"


class DoubleType(Type):
    def __init__(self) -> None:
        self.text = "double"


class PointerType(Type):
    def __init__(self) -> None:
        self.text = "ptr"


class VoidType(Type):
    def __init__(self) -> None:
        self.text = "void"


class VectorType(Type):
    __slots__ = ("element", "count")

    def __init__(self, element: Type, count: int) -> None:
        self.element, self.count, self.text = element, count, f"<{count} x {element.text}>"


class FunctionType(Type):
    __slots__ = ("return_type", "args")

    def __init__(self, return_type: Type, args: Sequence[Type]) -> None:
        self.return_type, self.args = return_type, tuple(args)
        self.text = f"{return_type.text} ({', '.join(a.text for a in self.args)})"


Undefined = object()  # `Constant(ty, Undefined)` is undef


def double_text(value: float) -> str:
    return "0x%016x" % struct.unpack("=Q", struct.pack("=d", value))[0]


def scalar_text(ty: Type, value: object) -> str:
    if value is Undefined:
        return "undef"
    if isinstance(ty, IntType):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(ty, DoubleType):
        return double_text(float(value))  # type: ignore[arg-type]
    if isinstance(ty, FloatType):  # rounded to float32, written as the double it is
        return double_text(struct.unpack("f", struct.pack("f", value))[0])
    if isinstance(ty, PointerType) and value is None:
        return "null"
    raise TypeError(f"irtext: no constant of type {ty} from {value!r}")
