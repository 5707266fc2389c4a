"""irtext writes LLVM IR text through llvmlite.ir's interface: its constants print as
llvmlite.ir prints them, and what the emitters build parses and verifies."""

from __future__ import annotations

import math

import llvmlite.binding as llvm
import pytest
from llvmlite import ir as llvmlite_ir
from symgrad.compiler import irtext as ir

VALUES = [0.0, -0.0, 1.0, 0.1, -2.5, 1e-310, 3.4e38, 1e300, math.inf, -math.inf, math.nan, 0.5001]


@pytest.mark.parametrize("name", ["DoubleType", "FloatType"])
def test_float_constants_print_as_llvmlite_prints_them(name: str) -> None:
    for value in VALUES:
        if name == "FloatType" and abs(value) > 3.5e38 and math.isfinite(value):
            continue  # not a float32
        ours = ir.Constant(getattr(ir, name)(), value).ref
        theirs = llvmlite_ir.Constant(getattr(llvmlite_ir, name)(), value).get_reference()
        assert int(ours, 16) == int(theirs, 16), value


def test_int_vector_and_special_constants() -> None:
    i64, f64 = ir.IntType(64), ir.DoubleType()
    assert ir.Constant(i64, -7).ref == "-7" and ir.Constant(ir.IntType(1), True).ref == "true"
    assert ir.Constant(ir.PointerType(), None).ref == "null"
    assert ir.Constant(f64, ir.Undefined).ref == "undef"
    v4 = ir.VectorType(f64, 4)
    assert ir.Constant(v4, 0.5).ref == ir.Constant(v4, [0.5] * 4).ref == "splat (double 0x3fe0000000000000)"
    assert ir.Constant(v4, [0.0] * 4).ref == "zeroinitializer" != ir.Constant(v4, [-0.0] * 4).ref
    assert ir.Constant(ir.VectorType(i64, 2), [1, 2]).ref == "<i64 1, i64 2>"


def test_types_are_equal_by_text() -> None:
    assert ir.IntType(64) == ir.IntType(64) != ir.IntType(32)
    assert ir.VectorType(ir.DoubleType(), 8) == ir.VectorType(ir.DoubleType(), 8)
    assert {ir.DoubleType(): 1}[ir.DoubleType()] == 1


def test_a_module_with_loops_phis_weights_and_vectors_parses_and_verifies() -> None:
    i64, f64, ptr = ir.IntType(64), ir.DoubleType(), ir.PointerType()
    module = ir.Module("m")
    fn = ir.Function(module, ir.FunctionType(f64, [ptr, i64]), name="sum.it")
    fn.args[0].name, fn.args[1].name = "data", "n"
    fn.args[0].add_attribute("noalias")
    fn.attributes.add("nounwind")
    entry = fn.append_basic_block("entry")
    b = ir.IRBuilder(entry)
    loop, body, done = (b.append_basic_block(s) for s in ("loop", "body", "done"))
    b.branch(loop)
    b.position_at_end(loop)
    i, total = b.phi(i64, name="i"), b.phi(f64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    total.add_incoming(ir.Constant(f64, 0.0), entry)
    b.cbranch(b.icmp_signed("<", i, fn.args[1]), body, done).set_weights([1 << 20, 1])
    b.position_at_end(body)
    x = b.load(b.gep(fn.args[0], [i], inbounds=True, source_etype=f64), typ=f64, align=8)
    vec = ir.VectorType(f64, 4)
    splat = b.insert_element(ir.Constant(vec, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    doubled = b.fmul(ir.Constant(vec, 2.0), splat)
    lane = b.extract_element(doubled, ir.Constant(ir.IntType(32), 0))
    sine = b.call(ir.Function(module, ir.FunctionType(f64, [f64]), name="llvm.sin.f64"), [lane])
    step = b.fadd(total, b.uitofp(b.fcmp_unordered("uno", sine, sine), f64))
    i.add_incoming(b.add(b.sub(i, ir.Constant(i64, 0)), ir.Constant(i64, 1), flags=("nuw", "nsw")), body)
    total.add_incoming(b.fadd(step, sine), body)
    b.branch(loop)
    b.position_at_end(done)
    slot = ir.IRBuilder(entry)
    slot.position_at_start(entry)
    array = slot.alloca(f64, ir.Constant(i64, 2))  # inserted before the branch
    assert array.allocated_type == f64 and array.type == ptr
    fn.attributes.alignstack = 64
    b.ret(total)
    text = str(module)
    assert "!prof !0" in text and 'declare double @"llvm.sin.f64"(double)' in text
    assert "nounwind alignstack(64) {" in text
    parsed = llvm.parse_assembly(text)
    parsed.verify()
    assert parsed.get_function("sum.it").name == "sum.it"
