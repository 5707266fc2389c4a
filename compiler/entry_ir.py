"""The LLVM IR text of a native entry: a METH_FASTCALL function that checks its numpy
arguments, allocates the outputs, calls the kernel and returns the arrays (fastcall.py
makes the builtin). Checks read CPython's and numpy's struct layouts as `.pylayout`
verified them for this process. Imports `.pylayout` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pylayout import Layout, layout

STATUS_INDEX_ERROR = 1  # as opcode_ir.STATUS_INDEX_ERROR
MAX_DIMS = 32  # numpy 1.x's NPY_MAXDIMS (2.x allows 64)
ENTRY_SYMBOL = "symgrad.fastcall"  # a '.', which kernel names cannot have
KERNEL_GLOBAL, NAME_GLOBAL = "symgrad.kernel", "symgrad.name"  # set in each entry's own engine
FALLBACK_GLOBAL = "symgrad.fallback"  # null, or what to call instead for arguments it does not take
CALLS_GLOBAL = "symgrad.calls"  # how many calls returned its outputs

# ---------------------------------------------------------------- the entry's IR


@dataclass(frozen=True)
class ArgSpec:
    """What input argument `position` must be, and where its data pointer goes."""

    position: int
    buffer: int
    type_nums: tuple[int, ...]  # every numpy type number equal to the buffer's dtype
    shape: tuple[int, ...] | None  # None: only the element count is checked
    size: int
    expected: str  # for messages: "a C-contiguous, aligned float64 array of shape (2, 2)"


@dataclass(frozen=True)
class EntrySpec:
    """Everything the entry's IR depends on (with the process's `Layout`)."""

    name: str  # for messages
    symbol: str
    kernel: int  # address of `i32 kernel(ptr buffers, ptr error)`
    n_buffers: int
    inputs: tuple[ArgSpec, ...]
    outputs: tuple[tuple[int, int, tuple[int, ...], bool], ...]  # (buffer, type number, shape, zeroed)
    temps: tuple[tuple[int, int], ...]  # (buffer, bytes)
    release_gil: bool


def _c_string(text: str) -> tuple[str, int]:
    data = text.encode() + b"\0"
    escaped = "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else f"\\{c:02X}" for c in data)
    return f'c"{escaped}"', len(data)


def _format(text: str) -> str:
    return text.replace("%", "%%")


class _EntryWriter:
    """Builds the entry as LLVM IR text (text is ~10x cheaper to build than llvmlite.ir).

    Blocks: entry (nargs) -> arg<j> checks per input -> allocate -> kernel -> result;
    every failure sets a Python exception and jumps to `fail`, which frees temps and
    drops outputs (their slots start as NULL: free and Py_DecRef accept NULL).
    """

    def __init__(self, spec: EntrySpec, lay: Layout) -> None:
        self.spec, self.o, self.lay = spec, lay.offsets, lay
        self.globals = [f"@api.{n} = private unnamed_addr constant ptr inttoptr (i64 {a} to ptr)"
                        for n, a in lay.addresses.items()]  # fmt: skip
        # external linkage: the optimiser must not assume they keep their initial null
        self.globals += [f'@"{KERNEL_GLOBAL}" = global ptr null', f'@"{NAME_GLOBAL}" = global ptr null',
                         f'@"{FALLBACK_GLOBAL}" = global ptr null', f'@"{CALLS_GLOBAL}" = global i64 0']
        self.body: list[str] = []
        self.count = 0

    # ---- building blocks

    def emit(self, line: str) -> None:
        self.body.append("  " + line)

    def value(self, instruction: str) -> str:
        self.count += 1
        self.emit(f"%t{self.count} = {instruction}")
        return f"%t{self.count}"

    def label(self, name: str) -> None:
        self.body.append(f"{name}:")

    def mismatch(self, name: str) -> None:
        """Label `name`, where an argument is not what the entry takes: on to `fallback` when
        the entry has one (nothing is allocated yet), else on to raise the error."""
        self.label(name)
        fallback = self.value(f'load ptr, ptr @"{FALLBACK_GLOBAL}"')
        self.branch(self.value(f"icmp eq ptr {fallback}, null"), f"{name}.raise", "fallback")
        self.label(f"{name}.raise")

    def fallback(self) -> None:
        """The fallback's result for the arguments as they came (positional and keywords)."""
        self.label("fallback")
        fallback = self.value(f'load ptr, ptr @"{FALLBACK_GLOBAL}"')
        result = self.call("ptr", "PyObject_Vectorcall", f"ptr {fallback}, ptr %args, i64 %nargs, ptr %kwnames")
        self.emit(f"ret ptr {result}")

    def branch(self, condition: str, good: str, bad: str) -> None:
        self.emit(f"br i1 {condition}, label %{good}, label %{bad}")

    def api(self, name: str) -> str:
        return self.value(f"load ptr, ptr @api.{name}")  # a constant global: folded away

    def call(self, ret: str, fn: str, args: str, signature: str = "") -> str:
        callee = f"{signature}{self.api(fn)}({args})"
        if ret == "void":
            self.emit(f"call void {callee}")
            return ""
        return self.value(f"call {ret} {callee}")

    def constant(self, kind: str, typ: str, init: str) -> str:
        name = f"@{kind}.{len(self.globals)}"
        self.globals.append(f"{name} = private unnamed_addr constant {typ} {init}")
        return name

    def string(self, text: str) -> str:
        literal, size = _c_string(text)
        return self.constant("str", f"[{size} x i8]", literal)

    def field(self, base: str, offset: str, typ: str) -> str:
        address = self.value(f"getelementptr inbounds i8, ptr {base}, i64 {self.o[offset]}")
        return self.value(f"load {typ}, ptr {address}")

    def element(self, base: str, typ: str, index: int | str) -> str:
        return self.value(f"getelementptr inbounds {typ}, ptr {base}, i64 {index}")

    def load(self, typ: str, base: str, index: int | str) -> str:
        return self.value(f"load {typ}, ptr {self.element(base, typ, index)}")

    def store(self, value: str, base: str, index: int) -> None:
        self.emit(f"store ptr {value}, ptr {self.element(base, 'ptr', index)}")

    def raise_error(self, error: str, message: str, args: str = "", named: bool = True) -> None:
        """PyErr_Format(error, message, [name,] args...) and jump to `fail`; a `named`
        message starts with "%s", the program's name (read from a global set at load)."""
        args = ", ".join(a for a in ("ptr %entry.name" if named else "", args) if a)
        exc, extra = self.api(error), f", {args}" if args else ""
        self.call("ptr", "PyErr_Format", f"ptr {exc}, ptr {self.string(message)}{extra}", "(ptr, ptr, ...) ")
        self.emit("br label %fail")

    def message(self, arg: ArgSpec, got: str) -> str:
        return f"%s: input {arg.position}: expected {_format(arg.expected)}, {got}"

    # ---- the function

    def text(self) -> str:
        s = self.spec
        self.label("entry")
        for name, n in (("buffers", s.n_buffers), ("outs", len(s.outputs)), ("temps", len(s.temps))):
            self.emit(f"%{name} = alloca [{max(n, 1)} x ptr], align 8")
        self.emit("%error = alloca [2 x i64], align 8")
        self.emit(f'%entry.name = load ptr, ptr @"{NAME_GLOBAL}"')
        for i in range(len(s.outputs)):
            self.store("null", "%outs", i)
        for i in range(len(s.temps)):
            self.store("null", "%temps", i)
        self.branch(self.value("icmp eq ptr %kwnames, null"), "count", "keywords")
        self.mismatch("keywords")
        self.raise_error("TypeError", "%s() takes no keyword arguments")
        self.label("count")
        self.branch(self.value(f"icmp eq i64 %nargs, {len(s.inputs)}"), "arg0" if s.inputs else "allocate",
                    "bad_count")  # fmt: skip
        self.mismatch("bad_count")
        self.raise_error("TypeError", f"%s: expected {len(s.inputs)} input arrays, got %zd",
                         "i64 %nargs")  # fmt: skip
        for arg in s.inputs:
            self.argument(arg, f"arg{arg.position + 1}" if arg.position + 1 < len(s.inputs) else "allocate")
        self.allocate()
        self.run_kernel()
        self.result()
        self.fail()
        self.fallback()
        head = f'define ptr @"{s.symbol}"(ptr %self, ptr %args, i64 %nargs, ptr %kwnames) {{'
        return "\n".join([*self.globals, "", head, *self.body, "}", ""])

    def argument(self, arg: ArgSpec, after: str) -> None:
        """Type, dtype, shape, then layout; only then is the data pointer taken."""
        j = arg.position
        self.label(f"arg{j}")
        array = self.load("ptr", "%args", j)
        self.check_type(arg, array)
        self.check_dtype(arg, array)
        self.check_shape(arg, array)
        self.label(f"arg{j}.layout")
        wanted = self.o["c_contiguous"] | self.o["aligned"]
        masked = self.value(f"and i32 {self.field(array, 'flags', 'i32')}, {wanted}")
        self.branch(self.value(f"icmp eq i32 {masked}, {wanted}"), f"arg{j}.take", f"arg{j}.bad_layout")
        self.mismatch(f"arg{j}.bad_layout")
        self.raise_error("ValueError", self.message(arg, "got a non-contiguous or unaligned array"))
        self.label(f"arg{j}.take")
        self.store(self.field(array, "data", "ptr"), "%buffers", arg.buffer)
        self.emit(f"br label %{after}")

    def check_type(self, arg: ArgSpec, array: str) -> None:
        """PyObject_TypeCheck(array, &PyArray_Type): exact type first, then subclasses."""
        j = arg.position
        tp = self.field(array, "ob_type", "ptr")
        self.branch(self.value(f"icmp eq ptr {tp}, {self.api('PyArray_Type')}"), f"arg{j}.dtype",
                    f"arg{j}.subclass")  # fmt: skip
        self.label(f"arg{j}.subclass")
        sub = self.call("i32", "PyType_IsSubtype", f"ptr {tp}, ptr {self.api('PyArray_Type')}")
        self.branch(self.value(f"icmp ne i32 {sub}, 0"), f"arg{j}.dtype", f"arg{j}.bad_type")
        self.mismatch(f"arg{j}.bad_type")
        name = self.field(tp, "tp_name", "ptr")
        self.raise_error("TypeError", self.message(arg, "got %.200s"), f"ptr {name}")

    def check_dtype(self, arg: ArgSpec, array: str) -> None:
        """One of the buffer's type numbers (int64 is NPY_LONG and NPY_LONGLONG), native byte order."""
        j = arg.position
        self.label(f"arg{j}.dtype")
        descr = self.field(array, "descr", "ptr")
        type_num, order = self.field(descr, "type_num", "i32"), self.field(descr, "byteorder", "i8")
        known = "false"
        for num in arg.type_nums:
            known = self.value(f"or i1 {known}, {self.value(f'icmp eq i32 {type_num}, {num}')}")
        native = self.value(f"icmp ne i8 {order}, {self.lay.foreign_byteorder}")
        self.branch(self.value(f"and i1 {known}, {native}"), f"arg{j}.shape", f"arg{j}.bad_dtype")
        self.mismatch(f"arg{j}.bad_dtype")
        self.raise_error("TypeError", self.message(arg, "got dtype %S"), f"ptr {descr}")

    def check_shape(self, arg: ArgSpec, array: str) -> None:
        """nd and every dimension, or (shape None) the product of the dimensions."""
        j = arg.position
        self.label(f"arg{j}.shape")
        nd, dims = self.field(array, "nd", "i32"), self.field(array, "dimensions", "ptr")
        if arg.shape is None:
            self.check_size(arg, nd, dims)
        else:
            self.branch(
                self.value(f"icmp eq i32 {nd}, {len(arg.shape)}"), f"arg{j}.dims", f"arg{j}.bad_shape"
            )
            self.label(f"arg{j}.dims")  # dimensions[0:nd] are read only once nd is known
            same = "true"
            for i, extent in enumerate(arg.shape):
                equal = self.value(f"icmp eq i64 {self.load('i64', dims, i)}, {extent}")
                same = self.value(f"and i1 {same}, {equal}")
            self.branch(same, f"arg{j}.layout", f"arg{j}.bad_shape")
        self.report_shape(arg, array)

    def check_size(self, arg: ArgSpec, nd: str, dims: str) -> None:
        """Product of dimensions[0:nd] == size (numpy keeps that product within intp)."""
        j = arg.position
        self.emit(f"br label %arg{j}.size")
        self.label(f"arg{j}.size")
        self.emit(f"%i{j} = phi i32 [0, %arg{j}.shape], [%i{j}.next, %arg{j}.size.step]")
        self.emit(f"%n{j} = phi i64 [1, %arg{j}.shape], [%n{j}.next, %arg{j}.size.step]")
        self.branch(self.value(f"icmp slt i32 %i{j}, {nd}"), f"arg{j}.size.step", f"arg{j}.size.done")
        self.label(f"arg{j}.size.step")
        dim = self.load("i64", dims, self.value(f"zext i32 %i{j} to i64"))
        self.emit(f"%n{j}.next = mul i64 %n{j}, {dim}")
        self.emit(f"%i{j}.next = add i32 %i{j}, 1")
        self.emit(f"br label %arg{j}.size")
        self.label(f"arg{j}.size.done")
        self.branch(self.value(f"icmp eq i64 %n{j}, {arg.size}"), f"arg{j}.layout", f"arg{j}.bad_shape")

    def report_shape(self, arg: ArgSpec, array: str) -> None:
        j = arg.position
        self.mismatch(f"arg{j}.bad_shape")
        shape = self.call("ptr", "PyObject_GetAttrString", f"ptr {array}, ptr {self.string('shape')}")
        self.null_check(shape, f"arg{j}.got_shape", "fail")  # getattr raised: keep its exception
        exc, message = self.api("ValueError"), self.string(self.message(arg, "got shape %S"))
        self.call("ptr", "PyErr_Format", f"ptr {exc}, ptr {message}, ptr %entry.name, ptr {shape}",
                  "(ptr, ptr, ...) ")  # fmt: skip
        self.call("void", "Py_DecRef", f"ptr {shape}")
        self.emit("br label %fail")

    def null_check(self, value: str, name: str, bad: str) -> None:
        self.branch(self.value(f"icmp eq ptr {value}, null"), bad, f"{name}.ok")
        self.label(f"{name}.ok")

    def allocate(self) -> None:
        """Temps with calloc, outputs with PyArray_Zeros or, when the program overwrites them
        first, PyArray_Empty (as np.zeros and np.empty in __call__)."""
        self.label("allocate")
        for i, (buffer, nbytes) in enumerate(self.spec.temps):
            memory = self.call("ptr", "calloc", f"i64 {max(nbytes, 1)}, i64 1")
            self.store(memory, "%temps", i)
            self.store(memory, "%buffers", buffer)
            self.null_check(memory, f"temp{i}", "no_memory")
        for i, (buffer, type_num, shape, zeroed) in enumerate(self.spec.outputs):
            descr = self.call("ptr", "PyArray_DescrFromType", f"i32 {type_num}")
            self.null_check(descr, f"out{i}.descr", "fail")
            dims = self.constant("dims", f"[{max(len(shape), 1)} x i64]",
                                 f"[{', '.join(f'i64 {d}' for d in shape) or 'i64 0'}]")  # fmt: skip
            make = "PyArray_Zeros" if zeroed else "PyArray_Empty"
            array = self.call("ptr", make, f"i32 {len(shape)}, ptr {dims}, ptr {descr}, i32 0")
            self.store(array, "%outs", i)
            self.null_check(array, f"out{i}", "fail")  # the descr was stolen either way
            self.store(self.field(array, "data", "ptr"), "%buffers", buffer)
        self.emit("br label %kernel")
        self.label("no_memory")
        self.call("ptr", "PyErr_NoMemory", "")
        self.emit("br label %fail")

    def run_kernel(self) -> None:
        """Call the kernel (without the GIL if it is large), free temps, then check the status."""
        self.label("kernel")
        thread = self.call("ptr", "PyEval_SaveThread", "") if self.spec.release_gil else ""
        kernel = self.value(f'load ptr, ptr @"{KERNEL_GLOBAL}"')
        self.emit(f"%status = call i32 {kernel}(ptr %buffers, ptr %error)")
        if thread:
            self.call("void", "PyEval_RestoreThread", f"ptr {thread}")
        for i in range(len(self.spec.temps)):
            self.call("void", "free", f"ptr {self.load('ptr', '%temps', i)}")
            self.store("null", "%temps", i)
        self.emit("%ok = icmp eq i32 %status, 0")
        self.branch("%ok", "result", "bad_status")
        self.label("bad_status")
        self.branch(self.value(f"icmp eq i32 %status, {STATUS_INDEX_ERROR}"), "index_error", "unknown_status")
        self.label("index_error")  # same message as CompiledProgram.__call__
        index, bound = self.load("i64", "%error", 0), self.load("i64", "%error", 1)
        self.raise_error("IndexError", "index %zd is out of bounds for dimension with size %zd",
                         f"i64 {index}, i64 {bound}", named=False)  # fmt: skip
        self.label("unknown_status")
        self.raise_error("RuntimeError", "%s: native code returned unknown status %d",
                         "i32 %status")  # fmt: skip

    def result(self) -> None:
        """One output: the array itself; otherwise a tuple that steals the references."""
        self.label("result")
        calls = self.value(f'load i64, ptr @"{CALLS_GLOBAL}"')
        self.emit(f'store i64 {self.value(f"add i64 {calls}, 1")}, ptr @"{CALLS_GLOBAL}"')
        outputs = [self.load("ptr", "%outs", i) for i in range(len(self.spec.outputs))]
        if len(outputs) == 1:
            self.emit(f"ret ptr {outputs[0]}")
            return
        packed = self.call("ptr", "PyTuple_New", f"i64 {len(outputs)}")
        self.null_check(packed, "tuple", "fail")
        for i, array in enumerate(outputs):
            self.call("i32", "PyTuple_SetItem", f"ptr {packed}, i64 {i}, ptr {array}")
        self.emit(f"ret ptr {packed}")

    def fail(self) -> None:
        self.label("fail")
        for i in range(len(self.spec.temps)):
            self.call("void", "free", f"ptr {self.load('ptr', '%temps', i)}")
        for i in range(len(self.spec.outputs)):
            self.call("void", "Py_DecRef", f"ptr {self.load('ptr', '%outs', i)}")
        self.emit("ret ptr null")


def entry_ir(spec: EntrySpec) -> str:
    """The LLVM IR text of a METH_FASTCALL | METH_KEYWORDS function
    `ptr @symbol(ptr self, ptr args, i64 nargs, ptr kwnames)` (keywords: the fallback's, or an error)."""
    return _EntryWriter(spec, layout()).text()
