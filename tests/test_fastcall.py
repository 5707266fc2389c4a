"""The native METH_FASTCALL entry (`CompiledProgram.fast_entry`) against `CompiledProgram.__call__`."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import textwrap
import threading
import timeit
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from symgrad.compiler import (
    Access,
    Buffer,
    CompiledProgram,
    Fill,
    Instr,
    JitSession,
    KernelProgram,
    Loop,
    Store,
    fastcall,
    pylayout,
)

ROOT = Path(__file__).resolve().parents[1]


def loop(shape, dtype, loads, body, stores) -> Loop:
    return Loop(tuple(shape), dtype, tuple(loads), tuple(body), tuple(stores))


def load(k: int) -> Instr:
    return Instr("load", load=k)


def sum_and_product(n: int, dtype: str = "float64") -> KernelProgram:
    """(x + y, x * y) over n elements: two inputs, two outputs."""
    access = [Access(k, 0, (1,)) for k in range(4)]
    body = [load(0), load(1), Instr("add", (0, 1)), Instr("mul", (0, 1))]
    stores = [Store(access[2], 2), Store(access[3], 3)]
    buffers = (Buffer(dtype, n, "input"), Buffer(dtype, n, "input"),
               Buffer(dtype, n, "output"), Buffer(dtype, n, "output"))  # fmt: skip
    return KernelProgram(buffers, (loop((n,), dtype, access[:2], body, stores),))


def exp_twice_through_temp(n: int, dtype: str = "float32") -> KernelProgram:
    """t = exp(x); out = t + t, with t a temp buffer."""
    buffers = (Buffer(dtype, n, "input"), Buffer(dtype, n, "temp"), Buffer(dtype, n, "output"))
    a = [Access(k, 0, (1,)) for k in range(3)]
    first = loop((n,), dtype, [a[0]], [load(0), Instr("exp", (0,))], [Store(a[1], 1)])
    second = loop((n,), dtype, [a[1]], [load(0), Instr("add", (0, 0))], [Store(a[2], 1)])
    return KernelProgram(buffers, (first, second))


def row_sums(rows: int, cols: int, dtype: str = "float64") -> KernelProgram:
    """out[i] = sum_j x[i, j] (a Fill, then a reducing store)."""
    buffers = (Buffer(dtype, rows * cols, "input"), Buffer(dtype, rows, "output"))
    body = loop((rows, cols), dtype, [Access(0, 0, (cols, 1))], [load(0)],
                [Store(Access(1, 0, (1, 0)), 0, "sum")])  # fmt: skip
    return KernelProgram(buffers, (Fill(1, 0.0), body))


def take_rows(n_idx: int, rows: int, cols: int) -> KernelProgram:
    """out[i, j] = x[idx[i], j]: gathers, so an index can be out of bounds."""
    return KernelProgram(
        (Buffer("int64", n_idx, "input"), Buffer("float64", rows * cols, "input"),
         Buffer("float64", n_idx * cols, "output")),
        (loop((n_idx, cols), "float64", [Access(0, 0, (1, 0)), Access(1, 0, (0, 1))],
              [load(0), Instr("gather", (0,), load=1, stride=cols, bound=rows)],
              [Store(Access(2, 0, (cols, 1)), 1)]),),
    )  # fmt: skip


@pytest.fixture(scope="module")
def session() -> JitSession:
    return JitSession()


@pytest.fixture(scope="module")
def tiny(session: JitSession) -> CompiledProgram:
    return session.compile(sum_and_product(4), name="tiny")


@pytest.fixture(scope="module")
def tiny_entry(tiny: CompiledProgram):
    return tiny.fast_entry([(2, 2), (2, 2)], [(2, 2), (2, 2)])


def as_list(result) -> list[np.ndarray]:
    return list(result) if isinstance(result, tuple) else [result]


def assert_same(fast_result, slow: list[np.ndarray], output_shapes=None) -> None:
    fast = as_list(fast_result)
    assert len(fast) == len(slow)
    for k, (got, want) in enumerate(zip(fast, slow)):
        assert type(got) is np.ndarray and got.flags.c_contiguous and got.flags.writeable
        assert got.dtype == want.dtype
        assert got.shape == (want.shape if output_shapes is None else output_shapes[k])
        np.testing.assert_array_equal(got.ravel(), want)


# ---------------------------------------------------------------- results equal __call__

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_outputs_flat_and_shaped(session: JitSession, dtype: str) -> None:
    compiled = session.compile(sum_and_product(6, dtype), name="sp")
    x, y = RNG.standard_normal((2, 6)).astype(dtype)
    slow = compiled([x, y])
    assert_same(compiled.fast_entry()(x, y), slow)
    shaped = compiled.fast_entry([(2, 3), (3, 2)], [(3, 2), (6,)])
    assert_same(shaped(x.reshape(2, 3), y.reshape(3, 2)), slow, [(3, 2), (6,)])


def test_single_output_is_returned_bare_and_temps_work(session: JitSession) -> None:
    compiled = session.compile(exp_twice_through_temp(7), name="temp32")
    x = RNG.standard_normal(7).astype(np.float32)
    out = compiled.fast_entry()(x)
    assert isinstance(out, np.ndarray)
    assert_same(out, compiled([x]))


def test_reduction_with_fill(session: JitSession) -> None:
    compiled = session.compile(row_sums(3, 5), name="rowsum")
    x = RNG.standard_normal((3, 5))
    assert_same(compiled.fast_entry([(3, 5)], [(3,)])(x), compiled([x.ravel()]), [(3,)])


def partly_written(n: int) -> KernelProgram:
    """out[0] = x[0] + x[1] (the rest of out is never written) and y = 2 x."""
    buffers = (Buffer("float64", n, "input"), Buffer("float64", n, "output"), Buffer("float64", n, "output"))
    first = loop((1,), "float64", [Access(0, 0, (0,)), Access(0, 1, (0,))],
                 [load(0), load(1), Instr("add", (0, 1))], [Store(Access(1, 0, (0,)), 2)])  # fmt: skip
    twice = loop((n,), "float64", [Access(0, 0, (1,))], [load(0), Instr("add", (0, 0))],
                 [Store(Access(2, 0, (1,)), 1)])  # fmt: skip
    return KernelProgram(buffers, (first, twice))


def test_only_outputs_the_program_overwrites_skip_zeroing(session: JitSession) -> None:
    """Whole-output assignments and Fills make zeroing pointless (it cost W2 0.5 ms at 1e6
    float32); an output partly written keeps its zeros, through both call paths."""
    n = 1 << 16
    compiled = session.compile(partly_written(n), name="partly")
    spec = fastcall.entry_spec(compiled.program, compiled.address, "partly", "s", (None, None))
    assert [zeroed for *_, zeroed in spec.outputs] == [True, False]
    ir_text = fastcall.entry_ir(spec)
    assert ir_text.count("@api.PyArray_Zeros") == ir_text.count("@api.PyArray_Empty") == 2  # global + use
    x = RNG.standard_normal(n)
    for _ in range(3):  # freed outputs leave dirty memory behind for the next call's
        slow, fast = compiled([x]), compiled.fast_entry()(x)
        for out in (slow, list(fast)):
            assert out[0][0] == x[0] + x[1] and not out[0][1:].any()
            np.testing.assert_array_equal(out[1], 2 * x)
    assert fastcall.entry_spec(sum_and_product(4), 0, "sp", "s", (None, None)).outputs[0][-1] is False
    assert fastcall.entry_spec(row_sums(3, 5), 0, "rs", "s", (None, None)).outputs[0][-1] is False  # Fill


def test_zero_dimensional(session: JitSession) -> None:
    compiled = session.compile(sum_and_product(1), name="scalar")
    x, y = np.array(3.0), np.array(4.0)
    entry = compiled.fast_entry([(), ()], [(), ()])
    assert_same(entry(x, y), compiled([x, y]), [(), ()])
    assert_same(compiled.fast_entry()(x, np.array([4.0])), compiled([x, y]))  # size only
    with pytest.raises(ValueError, match=re.escape("input 1: expected a C-contiguous, aligned float64 "
                                                   "array of shape (), got shape (1,)")):  # fmt: skip
        entry(x, np.array([4.0]))


def test_size_zero(session: JitSession) -> None:
    compiled = session.compile(sum_and_product(0), name="empty")
    x = np.zeros((3, 0))
    out = compiled.fast_entry([(3, 0), (0,)], [(0, 5), (3, 0)])(x, np.zeros(0))
    assert [a.shape for a in out] == [(0, 5), (3, 0)]
    assert [a.shape for a in compiled.fast_entry()(x, x.T)] == [(0,), (0,)]


def test_no_inputs_and_no_outputs(session: JitSession) -> None:
    sevens = session.compile(KernelProgram((Buffer("float64", 3, "output"),), (Fill(0, 7.0),)), name="sevens")
    assert sevens.fast_entry()().tolist() == [7.0] * 3
    with pytest.raises(TypeError, match="sevens: expected 0 input arrays, got 1"):
        sevens.fast_entry()(X)
    scratch = KernelProgram((Buffer("float64", 3, "input"), Buffer("float64", 3, "temp")), (Fill(1, 7.0),))
    assert session.compile(scratch, name="scratch").fast_entry()(np.ones(3)) == ()


def test_index_error_matches_call_and_entry_stays_usable(session: JitSession) -> None:
    compiled = session.compile(take_rows(3, 5, 2), name="gather")
    entry, table = compiled.fast_entry(), np.arange(10.0)
    for bad in (5, -6, 2**63 - 1, -(2**63)):
        idx = np.array([0, bad, 1])
        with pytest.raises(IndexError) as slow:
            compiled([idx, table])
        with pytest.raises(IndexError, match=re.escape(str(slow.value))):
            entry(idx, table)
    good = np.array([4, -5, 1])
    assert_same(entry(good, table), compiled([good, table]))
    assert_same(entry(good.astype(np.longlong), table), compiled([good, table]))  # NPY_LONGLONG is int64 too


def test_subclass_and_read_only_inputs_are_accepted(tiny: CompiledProgram, tiny_entry) -> None:
    class Tagged(np.ndarray):
        pass

    x = np.arange(4.0).reshape(2, 2)
    x.flags.writeable = False
    y = np.ones((2, 2)).view(Tagged)
    assert_same(tiny_entry(x, y), tiny([x.ravel(), np.ones(4)]), [(2, 2), (2, 2)])
    assert not x.flags.writeable


def test_entries_are_cached_per_shapes(tiny: CompiledProgram, tiny_entry) -> None:
    assert tiny.fast_entry([(2, 2), (2, 2)], [(2, 2), (2, 2)]) is tiny_entry
    assert tiny.fast_entry(((2, 2), [2, 2]), [[2, 2], (2, 2)]) is tiny_entry
    assert tiny.fast_entry() is tiny.fast_entry() is not tiny_entry
    assert type(tiny_entry).__name__ == "builtin_function_or_method"
    with pytest.raises(ValueError, match="does not hold 4 elements"):
        tiny.fast_entry([(2, 2), (5,)])
    with pytest.raises(ValueError, match="2 input shapes expected"):
        tiny.fast_entry([(4,)])
    with pytest.raises(ValueError, match="output shape"):
        tiny.fast_entry(None, [(4,), (3,)])


def test_entry_outlives_its_program_and_session() -> None:
    entry = JitSession().compile(sum_and_product(3), name="orphan").fast_entry()
    gc.collect()
    a, b = entry(np.ones(3), np.full(3, 2.0))
    assert a.tolist() == [3.0] * 3 and b.tolist() == [2.0] * 3


def test_programs_sharing_a_kernel_symbol_get_distinct_entries(tmp_path) -> None:
    cached = JitSession(cache_dir=str(tmp_path))  # a session hit returns the same symbol again
    first, second = (cached.compile(sum_and_product(4), name="shared") for _ in range(2))
    assert first.name == second.name
    wide, tall = first.fast_entry([(1, 4), (1, 4)]), second.fast_entry([(4, 1), (4, 1)])
    assert wide(np.ones((1, 4)), np.ones((1, 4)))[0].tolist() == [2.0] * 4
    assert tall(np.ones((4, 1)), np.ones((4, 1)))[0].tolist() == [2.0] * 4
    with pytest.raises(ValueError, match=re.escape("shape (4, 1), got shape (1, 4)")):
        tall(np.ones((1, 4)), np.ones((1, 4)))


def test_programs_with_the_same_buffers_share_the_entry_code_not_its_kernel_or_name() -> None:
    session = JitSession()
    add_mul = session.compile(sum_and_product(3), name="add_mul")
    body = [load(0), load(1), Instr("sub", (0, 1)), Instr("div", (0, 1))]  # same buffers, other math
    access = [Access(k, 0, (1,)) for k in range(4)]
    sub_div = session.compile(KernelProgram(add_mul.program.buffers, (loop(
        (3,), "float64", access[:2], body, [Store(access[2], 2), Store(access[3], 3)]),)), name="sub_div")
    first, codegen = add_mul.fast_entry(), session.stats.codegen
    second = sub_div.fast_entry()  # the same entry IR: loaded again, not compiled again
    assert session.stats.codegen == codegen and session.stats.session_hits == 1
    assert first.__self__.code is not second.__self__.code  # each has its own engine and globals
    x, y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    np.testing.assert_array_equal(first(x, y)[0], x + y)
    np.testing.assert_array_equal(second(x, y)[1], x / y)
    with pytest.raises(TypeError, match="^sub_div: expected 2 input arrays, got 1$"):
        second(x)
    with pytest.raises(ValueError, match="^add_mul: input 1: expected"):
        first(x, np.ones(4))


def test_unverified_layout_refuses_with_runtime_error(session, monkeypatch) -> None:
    monkeypatch.setattr(pylayout, "_LAYOUT", RuntimeError("fast entry: PyArrayObject.nd does not match"))
    compiled = session.compile(sum_and_product(2), name="refused")
    with pytest.raises(RuntimeError, match="PyArrayObject.nd"):
        compiled.fast_entry()
    assert compiled([np.ones(2), np.ones(2)])[0].tolist() == [2.0, 2.0]  # the Python path still works


def test_layout_checks_detect_a_wrong_offset() -> None:
    offsets = dict(pylayout.layout().offsets)
    pylayout.verify_array(np.zeros((2, 3)), offsets)
    for field in ("data", "nd", "dimensions", "descr", "flags", "type_num", "byteorder"):
        wrong = {**offsets, field: offsets[field] + 8}
        with pytest.raises(RuntimeError, match="does not match"):
            for probe in pylayout.probe_arrays():
                pylayout.verify_array(probe, wrong)


# ---------------------------------------------------------------- bad inputs

X = np.arange(4.0).reshape(2, 2)
EXPECTED = "expected a C-contiguous, aligned float64 array of shape (2, 2)"
BAD_INPUTS = [
    ((X,), TypeError, "tiny: expected 2 input arrays, got 1"),
    ((X, X, X), TypeError, "tiny: expected 2 input arrays, got 3"),
    ((), TypeError, "tiny: expected 2 input arrays, got 0"),
    ((X, [[1.0, 2.0], [3.0, 4.0]]), TypeError, f"input 1: {EXPECTED}, got list"),
    ((None, X), TypeError, f"input 0: {EXPECTED}, got NoneType"),
    ((X, 2.0), TypeError, f"input 1: {EXPECTED}, got float"),
    ((X, np.float64(2.0)), TypeError, f"input 1: {EXPECTED}, got numpy.float64"),
    ((X, memoryview(X)), TypeError, f"input 1: {EXPECTED}, got memoryview"),
    ((X, X.astype(np.float32)), TypeError, f"input 1: {EXPECTED}, got dtype float32"),
    ((X.astype(np.int64), X), TypeError, f"input 0: {EXPECTED}, got dtype int64"),
    ((X, X.astype(">f8")), TypeError, f"input 1: {EXPECTED}, got dtype >f8"),
    ((X, X.astype(object)), TypeError, f"input 1: {EXPECTED}, got dtype object"),
    ((X, X.ravel()), ValueError, f"input 1: {EXPECTED}, got shape (4,)"),
    ((X, X.reshape(1, 2, 2)), ValueError, f"input 1: {EXPECTED}, got shape (1, 2, 2)"),
    ((X, np.ones((2, 3))), ValueError, f"input 1: {EXPECTED}, got shape (2, 3)"),
    ((X, np.array(1.0)), ValueError, f"input 1: {EXPECTED}, got shape ()"),
    ((X, X.T), ValueError, f"input 1: {EXPECTED}, got a non-contiguous or unaligned array"),
    ((np.asfortranarray(X), X), ValueError, "input 0: .* non-contiguous"),
    ((X, np.ones((4, 4))[::2, ::2]), ValueError, "input 1: .* non-contiguous"),
    ((X, np.frombuffer(bytearray(33), np.float64, 4, 1).reshape(2, 2)), ValueError, "input 1: .* unaligned"),
]  # fmt: skip


@pytest.mark.parametrize("args, error, message", BAD_INPUTS)
def test_bad_inputs_raise(tiny_entry, args, error, message) -> None:
    with pytest.raises(error, match=message if ".*" in message else re.escape(message)):
        tiny_entry(*args)


def test_keywords_and_failing_shape_attribute(tiny: CompiledProgram, tiny_entry) -> None:
    with pytest.raises(TypeError, match=r"^tiny\(\) takes no keyword arguments$"):
        tiny_entry(X, y=X)
    seen = []
    entry = tiny.fast_entry([(2, 2), (2, 2)], [(2, 2), (2, 2)], fallback=lambda *a, **k: seen.append((a, k)))
    entry(X, y=X)
    assert len(seen) == 1 and seen[0][0] == (X,) and list(seen[0][1]) == ["y"] and seen[0][1]["y"] is X

    class NoShape(np.ndarray):
        shape = property(lambda self: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        tiny_entry(X, np.ones(4).view(NoShape))


@pytest.mark.parametrize("args, error, message", BAD_INPUTS)
def test_an_entry_with_a_fallback_passes_it_what_it_does_not_take(tiny: CompiledProgram, args, error,
                                                                  message) -> None:  # fmt: skip
    seen = []
    entry = tiny.fast_entry([(2, 2), (2, 2)], [(2, 2), (2, 2)], fallback=lambda *a: seen.append(a) or "fell back")
    arrays = [a for a in args if isinstance(a, np.ndarray)]  # (None's count moves on its own)
    before = [sys.getrefcount(a) for a in arrays]
    assert entry(*args) == "fell back"
    assert len(seen) == 1 and len(seen[0]) == len(args) and all(a is b for a, b in zip(seen[0], args))
    del seen[:]
    assert [sys.getrefcount(a) for a in arrays] == before
    assert entry.__self__.calls() == 0  # only calls that returned the outputs are counted
    total, product = entry(X, X)
    assert np.array_equal(total, X + X) and np.array_equal(product, X * X) and entry.__self__.calls() == 1


def test_a_fallback_s_error_and_an_entry_of_its_own(tiny: CompiledProgram, tiny_entry) -> None:
    def refuse(*args):
        raise LookupError(f"refused {len(args)}")

    entry = tiny.fast_entry([(2, 2), (2, 2)], [(2, 2), (2, 2)], fallback=refuse)
    with pytest.raises(LookupError, match="refused 1"):
        entry(X)
    assert entry is not tiny.fast_entry([(2, 2), (2, 2)], [(2, 2), (2, 2)], fallback=refuse)  # not cached
    with pytest.raises(TypeError, match="expected 2 input arrays"):  # the shared entry has none
        tiny_entry(X)


NASTY = """
import numpy as np
from symgrad.compiler import JitSession
from tests.test_fastcall import sum_and_product, take_rows
s = JitSession()
flat, shaped = (s.compile(sum_and_product(4)).fast_entry(sh) for sh in (None, [(2, 2), (2, 2)]))
gather = s.compile(take_rows(3, 5, 2)).fast_entry()
x = np.ones(4)
class Fake:
    __array_interface__ = dict(shape=(4,), typestr="<f8", data=(0, False), version=3)
huge = np.broadcast_to(np.ones(1), (2**40,))
deep = np.zeros((1,) * 31 + (5,))
bad_args = [(x, Fake()), (x, huge), (x, np.empty((0, 2**40))), (x, np.empty((2**20, 0, 2**20))), (x, deep), (x, deep.ravel()[:0]),
            (x, np.ones(10**6)[::250000]), (x, np.ones(4, "V8")), (x, np.ones(4, "c16")), (x, type(x)),
            (x, np.ndarray), (x, np.ones(4, [("a", "f8")])), (x, np.ones((4, 2))[:, 0]),
            (x, np.ma.masked_array(np.ones(8))[::2]), (x, object())]
for entry in (flat, shaped):
    for args in bad_args:
        try:
            entry(*args)
            print("accepted", entry, [getattr(a, "shape", a) for a in args])
        except (TypeError, ValueError):
            pass
for bad in (np.array([0, 10**18, 1]), np.array([-(2**63), 0, 0])):
    for _ in range(1000):
        try:
            gather(bad, np.ones(10))
        except IndexError:
            pass
print(flat(np.ones(4), np.ma.masked_array(np.ones(4)))[0].tolist(), flat(x, np.matrix(np.ones(4)))[0].tolist())
"""


def test_nasty_inputs_in_a_subprocess() -> None:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(NASTY)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["[2.0, 2.0, 2.0, 2.0] [2.0, 2.0, 2.0, 2.0]"], done.stdout


# ---------------------------------------------------------------- references, leaks, threads


def test_reference_counts_are_stable(tiny_entry) -> None:
    x, y = np.ones((2, 2)), np.ones((2, 2))
    before = sys.getrefcount(x), sys.getrefcount(y)
    for _ in range(10_000):
        a, b = tiny_entry(x, y)
    for _ in range(1_000):
        with pytest.raises(ValueError):
            tiny_entry(x, y.ravel())
        with pytest.raises(TypeError):
            tiny_entry(x, y.astype(np.float32))
    assert (sys.getrefcount(x), sys.getrefcount(y)) == before
    out = tiny_entry(x, y)
    assert sys.getrefcount(out) == 2 and [sys.getrefcount(a) for a in out] == [3, 3]  # tuple, arg, loop name
    a, b = out
    del out
    assert sys.getrefcount(a) == sys.getrefcount(b) == 2


def test_no_leaks_over_many_calls(session: JitSession) -> None:
    gather = session.compile(take_rows(2, 64, 8), name="leak_gather").fast_entry()
    temps = session.compile(exp_twice_through_temp(512, "float64"), name="leak_temp").fast_entry()
    idx, bad, table, x = np.array([1, 2]), np.array([1, 99]), np.ones(512), np.ones(512)

    def calls(n: int) -> None:
        for _ in range(n):
            gather(idx, table)
            temps(x)
            try:
                gather(bad, table)
            except IndexError:
                pass

    calls(1000)
    tracemalloc.start()
    rss = _rss_bytes()
    start, _ = tracemalloc.get_traced_memory()
    calls(100_000)
    end, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert end - start < 100_000  # numpy reports its array data to tracemalloc: no arrays leak
    assert _rss_bytes() - rss < 32 * 2**20  # 4 KB temps (calloc/free) leaking would be 400 MB


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def test_threads_share_entries(session: JitSession) -> None:
    big = session.compile(sum_and_product(1 << 14), name="big")  # large enough to release the GIL
    assert fastcall.entry_spec(big.program, big.address, "big", "s", (None, None)).release_gil
    entries = [big.fast_entry(), session.compile(sum_and_product(4), name="small").fast_entry()]
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(100):
                for entry, n in zip(entries, (1 << 14, 4)):
                    x, y = rng.standard_normal((2, n))
                    a, b = entry(x, y)
                    assert np.array_equal(a, x + y) and np.array_equal(b, x * y)
        except BaseException as error:  # reported in the main thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures


# ---------------------------------------------------------------- timing (printed, not asserted)


def test_print_call_timings(tiny: CompiledProgram, tiny_entry) -> None:
    x, y = np.ones((2, 2)), np.ones((2, 2))
    names = dict(
        entry=tiny_entry, flat=tiny.fast_entry(), tiny=tiny, np=np, x=x, y=y, fx=x.ravel(), fy=y.ravel()
    )
    cases = {
        "fast_entry, shaped": "entry(x, y)",
        "fast_entry, flat": "flat(fx, fy)",
        "__call__": "tiny([fx, fy])",
        "np.add on 2x2": "np.add(x, y)",
        "len(x) (loop floor)": "len(x)",
    }
    n = 100_000
    print("\nper call, 2x2 float64 inputs, 2 outputs (median and best of 3 x 1e5 calls):")
    for name, statement in cases.items():
        runs = sorted(timeit.repeat(statement, number=n, repeat=3, globals=names))
        print(f"  {name:22s} {runs[1] / n * 1e9:7.0f} ns   best {runs[0] / n * 1e9:7.0f} ns")
