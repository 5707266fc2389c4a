"""LLVM IR written directly as text, through the part of `llvmlite.ir`'s interface that the
emitters use (`Module`, `Function`, `IRBuilder`, types, `Constant`), so `emit`, `opcode_ir`,
`vecloop` and `blas` read as if they built `llvmlite.ir` objects.

Building `llvmlite.ir` objects and printing them costs about 6-9 us per instruction; here an
instruction is one formatted line when it is built (phis and branch weights are completed
when the module is printed). Only what the emitters need exists; anything else is an
AttributeError, not a silent difference. Constants print as llvmlite prints them (floats as
the hex of their double, float32 rounded first), vectors of one repeated element as
`splat`. Types and constants' text are `.irtypes`'. Imports only the standard library and `.irtypes`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .irtypes import (  # noqa: F401 - the types are this module's interface (`ir.IntType(64)`)
    DoubleType,
    FloatType,
    FunctionType,
    IntType,
    PointerType,
    Type,
    Undefined,
    VectorType,
    VoidType,
    double_text,
    scalar_text,
)

# ---------------------------------------------------------------- values



class Value:
    """Something an instruction can use: its type and how it is referred to."""

    __slots__ = ("type", "ref")

    def __init__(self, ty: Type, ref: str) -> None:
        self.type, self.ref = ty, ref

    def get_reference(self) -> str:
        return self.ref


class Constant(Value):
    """A constant: an int, float, None (null pointer), Undefined, or for a vector one
    value per lane (or one value for all)."""

    __slots__ = ()

    def __init__(self, ty: Type, value: object) -> None:
        self.type = ty
        if not isinstance(ty, VectorType) or value is Undefined:
            self.ref = scalar_text(ty, value)
            return
        values = value if isinstance(value, (list, tuple)) else [value] * ty.count
        lanes = [scalar_text(ty.element, v) for v in values]
        if all(lane == lanes[0] for lane in lanes):
            zero = lanes[0] in ("0", "0x0000000000000000")
            self.ref = "zeroinitializer" if zero else f"splat ({ty.element.text} {lanes[0]})"
        else:
            self.ref = "<" + ", ".join(f"{ty.element.text} {lane}" for lane in lanes) + ">"


class AllocaInstr(Value):
    """The address of stack memory for `allocated_type` values."""

    __slots__ = ("allocated_type",)

    def __init__(self, allocated_type: Type, ref: str) -> None:
        super().__init__(PointerType(), ref)
        self.allocated_type = allocated_type


class _Attributes(list):
    """Attribute words in the order they were added (`.add`), with an optional `.align`
    (of an argument) or `.alignstack` (of a function)."""

    align: int | None = None
    alignstack: int | None = None

    def add(self, word: str) -> None:
        if word not in self:
            self.append(word)

    def words(self) -> str:
        extra = [f"align {self.align}"] if self.align else []
        extra += [f"alignstack({self.alignstack})"] if self.alignstack else []
        return " ".join([*self, *extra])


class Argument(Value):
    __slots__ = ("function", "attributes")

    def __init__(self, function: Function, ty: Type, index: int) -> None:
        super().__init__(ty, f"%.arg{index}")
        self.function, self.attributes = function, _Attributes()

    @property
    def name(self) -> str:
        return self.ref[1:]

    @name.setter
    def name(self, name: str) -> None:
        self.ref = "%" + self.function.local_name(name)

    def add_attribute(self, word: str) -> None:
        self.attributes.add(word)


class _Pending:
    """A line completed when the module is printed (a phi's incomings, a branch's weights)."""

    __slots__ = ("head", "tail")

    def __init__(self, head: str) -> None:
        self.head, self.tail = head, ""

    def __str__(self) -> str:
        return self.head + self.tail


class Phi(Value):
    __slots__ = ("line", "incomings")

    def __init__(self, ty: Type, ref: str) -> None:
        super().__init__(ty, ref)
        self.line, self.incomings = _Pending(f"  {ref} = phi {ty.text} "), []

    def add_incoming(self, value: Value, block: Block) -> None:
        self.incomings.append(f"[{value.ref}, {block.ref}]")
        self.line.tail = ", ".join(self.incomings)


class Branch:
    """A conditional branch; `set_weights` adds branch-weight metadata."""

    __slots__ = ("module", "line")

    def __init__(self, module: Module, line: _Pending) -> None:
        self.module, self.line = module, line

    def set_weights(self, weights: Sequence[int]) -> None:
        node = self.module.metadata_node(f'!{{!"branch_weights", {", ".join(f"i32 {w}" for w in weights)}}}')
        self.line.tail = f", !prof {node}"


class Block:
    __slots__ = ("function", "name", "ref", "lines")

    def __init__(self, function: Function, name: str) -> None:
        self.function, self.name, self.ref = function, name, "%" + name
        self.lines: list[object] = []


class Function(Value):
    """A definition once it has blocks, else a declaration."""

    __slots__ = ("module", "name", "ftype", "args", "attributes", "linkage", "blocks", "_used", "_count")

    def __init__(self, module: Module, ftype: FunctionType, name: str) -> None:
        super().__init__(ftype, f'@"{name}"')
        self.module, self.name, self.ftype, self.linkage = module, name, ftype, ""
        self.blocks: list[Block] = []
        self.attributes = _Attributes()
        self._used: dict[str, int] = {}  # local name -> times asked for (values and blocks)
        self._count = 0
        self.args = [Argument(self, ty, k) for k, ty in enumerate(ftype.args)]
        module.add(self)

    def local_name(self, name: str) -> str:
        """`name`, or `name.1`, `name.2`... when taken (unnamed values are `.N`)."""
        if not name:
            self._count += 1
            return f".{self._count}"
        n = self._used.get(name, -1) + 1
        self._used[name] = n
        return f"{name}.{n}" if n else name

    def append_basic_block(self, name: str = "") -> Block:
        block = Block(self, self.local_name(name))
        self.blocks.append(block)
        return block

    @property
    def entry_basic_block(self) -> Block:
        return self.blocks[0]

    def text(self) -> str:
        def param(a: Argument) -> str:
            words = a.attributes.words()
            return f"{a.type.text} {words} {a.ref}" if words else f"{a.type.text} {a.ref}"

        params = ", ".join(param(a) if self.blocks else a.type.text for a in self.args)
        linkage = self.linkage + " " if self.linkage else ""
        head = f"{linkage}{self.ftype.return_type.text} {self.ref}({params})"
        attributes = f" {self.attributes.words()}" if self.attributes else ""
        if not self.blocks:
            return f"declare {head}{attributes}\n"
        lines = [f"define {head}{attributes} {{"]
        for block in self.blocks:
            lines.append(f"{block.name}:")
            lines += [line if type(line) is str else str(line) for line in block.lines]
        lines.append("}\n")
        return "\n".join(lines)


class Module:
    def __init__(self, name: str = "") -> None:
        self.name = name
        self.globals: dict[str, Function] = {}
        self._metadata: list[str] = []
        self._bases: dict[str, int] = {}

    def add(self, fn: Function) -> None:
        if fn.name in self.globals:
            raise NameError(f"irtext: {fn.name!r} defined twice")
        self.globals[fn.name] = fn

    def get_unique_name(self, name: str) -> str:
        n = self._bases.get(name, 0)
        while (f"{name}.{n}" if n else name) in self.globals:
            n += 1
        self._bases[name] = n
        return f"{name}.{n}" if n else name

    def metadata_node(self, text: str) -> str:
        self._metadata.append(text)
        return f"!{len(self._metadata) - 1}"

    def __str__(self) -> str:
        header = f'; ModuleID = "{self.name}"\n'  # and the target lines llvmlite.ir writes
        parts = [header + 'target triple = "unknown-unknown-unknown"\ntarget datalayout = ""\n']
        parts += [fn.text() for fn in self.globals.values()]
        parts += [f"!{k} = {text}\n" for k, text in enumerate(self._metadata)]
        return "\n".join(parts)


# ---------------------------------------------------------------- the builder

_CMP = {">": "gt", "<": "lt", "==": "eq", "!=": "ne", ">=": "ge", "<=": "le"}


class IRBuilder:
    """Appends instructions to a block (or inserts them at its start: `position_at_start`)."""

    def __init__(self, block: Block | None = None) -> None:
        self.block: Block | None = None
        self._at: int | None = None  # insertion index in the block; None: at its end
        if block is not None:
            self.position_at_end(block)

    @property
    def function(self) -> Function:
        return self.block.function  # type: ignore[union-attr]

    @property
    def module(self) -> Module:
        return self.function.module

    def position_at_end(self, block: Block) -> None:
        self.block, self._at = block, None

    def position_at_start(self, block: Block) -> None:
        self.block, self._at = block, 0

    def append_basic_block(self, name: str = "") -> Block:
        return self.function.append_basic_block(name)

    def _line(self, line: object) -> None:
        lines = self.block.lines  # type: ignore[union-attr]
        if self._at is None:
            lines.append(line)
        else:
            lines.insert(self._at, line)
            self._at += 1

    def _value(self, ty: Type, text: str, name: str = "") -> Value:
        ref = "%" + self.block.function.local_name(name)  # type: ignore[union-attr]
        self._line(f"  {ref} = {text}")
        return Value(ty, ref)

    # ---- arithmetic, comparisons, casts

    def _binary(op: str):  # type: ignore[misc]  # noqa: N805 - builds methods
        def emit(self: IRBuilder, a: Value, b: Value, name: str = "") -> Value:
            return self._value(a.type, f"{op} {a.type.text} {a.ref}, {b.ref}", name)

        return emit

    fadd, fsub, fmul, fdiv = _binary("fadd"), _binary("fsub"), _binary("fmul"), _binary("fdiv")
    mul, sub = _binary("mul"), _binary("sub")

    def add(self, a: Value, b: Value, name: str = "", flags: Sequence[str] = ()) -> Value:
        return self._value(a.type, f"{' '.join(['add', *flags])} {a.type.text} {a.ref}, {b.ref}", name)

    def fneg(self, a: Value, name: str = "") -> Value:
        return self._value(a.type, f"fneg {a.type.text} {a.ref}", name)

    def _compare(self, kind: str, op: str, a: Value, b: Value, name: str) -> Value:
        ty = VectorType(IntType(1), a.type.count) if isinstance(a.type, VectorType) else IntType(1)
        return self._value(ty, f"{kind} {op} {a.type.text} {a.ref}, {b.ref}", name)

    def icmp_signed(self, op: str, a: Value, b: Value, name: str = "") -> Value:
        return self._compare("icmp", _CMP[op] if op in ("==", "!=") else "s" + _CMP[op], a, b, name)

    def icmp_unsigned(self, op: str, a: Value, b: Value, name: str = "") -> Value:
        return self._compare("icmp", _CMP[op] if op in ("==", "!=") else "u" + _CMP[op], a, b, name)

    def fcmp_ordered(self, op: str, a: Value, b: Value, name: str = "") -> Value:
        return self._compare("fcmp", "o" + _CMP[op] if op in _CMP else op, a, b, name)

    def fcmp_unordered(self, op: str, a: Value, b: Value, name: str = "") -> Value:
        return self._compare("fcmp", "u" + _CMP[op] if op in _CMP else op, a, b, name)

    def select(self, cond: Value, a: Value, b: Value, name: str = "") -> Value:
        text = f"select {cond.type.text} {cond.ref}, {a.type.text} {a.ref}, {b.type.text} {b.ref}"
        return self._value(a.type, text, name)

    def _cast(op: str):  # type: ignore[misc]  # noqa: N805 - builds methods
        def emit(self: IRBuilder, value: Value, ty: Type, name: str = "") -> Value:
            return self._value(ty, f"{op} {value.type.text} {value.ref} to {ty.text}", name)

        return emit

    uitofp, fpext, fptrunc = _cast("uitofp"), _cast("fpext"), _cast("fptrunc")
    del _binary, _cast

    # ---- vectors

    def extract_element(self, vector: Value, index: Value, name: str = "") -> Value:
        text = f"extractelement {vector.type.text} {vector.ref}, {index.type.text} {index.ref}"
        return self._value(vector.type.element, text, name)  # type: ignore[attr-defined]

    def insert_element(self, vector: Value, value: Value, index: Value, name: str = "") -> Value:
        text = (f"insertelement {vector.type.text} {vector.ref}, {value.type.text} {value.ref}, "
                f"{index.type.text} {index.ref}")  # fmt: skip
        return self._value(vector.type, text, name)

    def shuffle_vector(self, a: Value, b: Value, mask: Value, name: str = "") -> Value:
        text = f"shufflevector {a.type.text} {a.ref}, {b.type.text} {b.ref}, {mask.type.text} {mask.ref}"
        ty = VectorType(a.type.element, mask.type.count)  # type: ignore[attr-defined]
        return self._value(ty, text, name)

    # ---- memory

    def gep(self, ptr: Value, indices: Sequence[Value], inbounds: bool = False, name: str = "",
            source_etype: Type | None = None) -> Value:  # fmt: skip
        if source_etype is None:
            raise TypeError("irtext: gep needs source_etype (pointers are opaque)")
        op = "getelementptr inbounds" if inbounds else "getelementptr"
        rest = "".join(f", {i.type.text} {i.ref}" for i in indices)
        return self._value(ptr.type, f"{op} {source_etype.text}, {ptr.type.text} {ptr.ref}{rest}", name)

    def load(self, ptr: Value, name: str = "", align: int | None = None, typ: Type | None = None) -> Value:
        if typ is None:
            raise TypeError("irtext: load needs typ (pointers are opaque)")
        tail = f", align {align}" if align else ""
        return self._value(typ, f"load {typ.text}, {ptr.type.text} {ptr.ref}{tail}", name)

    def store(self, value: Value, ptr: Value, align: int | None = None) -> None:
        tail = f", align {align}" if align else ""
        self._line(f"  store {value.type.text} {value.ref}, {ptr.type.text} {ptr.ref}{tail}")

    def alloca(self, ty: Type, size: Value | None = None, name: str = "") -> AllocaInstr:
        count = f", {size.type.text} {size.ref}" if size is not None else ""
        ref = self._value(PointerType(), f"alloca {ty.text}{count}", name).ref
        return AllocaInstr(ty, ref)

    # ---- control flow and calls

    def phi(self, ty: Type, name: str = "") -> Phi:
        phi = Phi(ty, "%" + self.function.local_name(name))
        self._line(phi.line)
        return phi

    def branch(self, target: Block) -> None:
        self._line(f"  br label {target.ref}")

    def cbranch(self, cond: Value, then: Block, otherwise: Block) -> Branch:
        line = _Pending(f"  br {cond.type.text} {cond.ref}, label {then.ref}, label {otherwise.ref}")
        self._line(line)
        return Branch(self.module, line)

    def call(self, fn: Function, args: Sequence[Value], name: str = "") -> Value | None:
        ret = fn.ftype.return_type
        text = f"call {ret.text} {fn.ref}({', '.join(f'{a.type.text} {a.ref}' for a in args)})"
        if isinstance(ret, VoidType):
            self._line("  " + text)
            return None
        return self._value(ret, text, name)

    def ret(self, value: Value) -> None:
        self._line(f"  ret {value.type.text} {value.ref}")

    def ret_void(self) -> None:
        self._line("  ret void")
