"""This process's CPython and numpy facts that native entry points rely on.

Owns the struct offsets (checked against live objects once, at import) and the
C-API addresses (numpy's API table, CPython and libc functions, exception types)
baked into `.entry_ir`'s IR; `layout()` returns them or says what did not match.
Imports numpy and ctypes only.
"""

from __future__ import annotations

import ctypes
import importlib
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

# Offsets this module assumes (CPython 3.x and numpy 1.x/2.x on 64-bit hosts); each is
# checked against live objects by `_verify_layout` before any of them reaches IR.
ASSUMED = dict(
    ob_type=8, tp_name=24,  # PyObject.ob_type, PyTypeObject.tp_name
    data=16, nd=24, dimensions=32, strides=40, descr=56, flags=64,  # PyArrayObject_fields
    byteorder=26, type_num=28,  # PyArray_Descr
    c_contiguous=0x0001, aligned=0x0100,  # NPY_ARRAY_* flag bits
)  # fmt: skip
NUMPY_API = {"PyArray_GetNDArrayCVersion": 0, "PyArray_Type": 2, "PyArray_DescrFromType": 45,
             "PyArray_Zeros": 183, "PyArray_Empty": 184}  # fmt: skip
NUMPY_ABI_VERSIONS = (0x01000009, 0x02000000)  # numpy 1.x and 2.x: the indices above hold in both
CPYTHON_API = (
    "PyErr_Format", "PyErr_NoMemory", "PyType_IsSubtype", "PyObject_GetAttrString",
    "Py_DecRef", "PyTuple_New", "PyTuple_SetItem", "PyEval_SaveThread", "PyEval_RestoreThread",
    "PyObject_Vectorcall",
)  # fmt: skip
LIBC_API = ("calloc", "free")
EXCEPTIONS = {e.__name__: e for e in (TypeError, ValueError, IndexError, RuntimeError)}


@dataclass(frozen=True)
class Layout:
    """Verified offsets and the addresses the entry code calls or compares with."""

    offsets: dict[str, int]
    foreign_byteorder: int  # ord of a non-native dtype's byteorder char (">" on little-endian hosts)
    addresses: dict[str, int]


class MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]  # fmt: skip


def _word(address: int) -> int:
    return ctypes.c_ssize_t.from_address(address).value


def _int(address: int) -> int:
    return ctypes.c_int.from_address(address).value


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"fast entry: {what} does not match this process; use the Python call path")


def probe_arrays() -> list[np.ndarray]:
    unaligned = np.frombuffer(bytearray(8 * 5 + 1), np.float64, count=5, offset=1)
    return [np.zeros(3), np.arange(12.0).reshape(3, 4)[:, ::2], np.empty((2, 3), np.float32).T,
            np.zeros(0), np.array(5, np.int64), np.zeros((2, 1, 3), ">f8"), unaligned,
            np.ones((4, 4), np.int64)[1:3]]  # fmt: skip


def verify_array(a: np.ndarray, o: dict[str, int]) -> None:
    base = id(a)
    _check(_word(base + o["ob_type"]) == id(np.ndarray), "PyObject.ob_type")
    _check(_word(base + o["data"]) == a.__array_interface__["data"][0], "PyArrayObject.data")
    _check(_int(base + o["nd"]) == a.ndim, "PyArrayObject.nd")
    dims, strides = _word(base + o["dimensions"]), _word(base + o["strides"])
    _check(tuple(_word(dims + 8 * i) for i in range(a.ndim)) == a.shape, "PyArrayObject.dimensions")
    _check(tuple(_word(strides + 8 * i) for i in range(a.ndim)) == a.strides, "PyArrayObject.strides")
    _check(_word(base + o["descr"]) == id(a.dtype), "PyArrayObject.descr")
    flags = _int(base + o["flags"])
    _check(flags == a.flags.num, "PyArrayObject.flags")
    _check(bool(flags & o["c_contiguous"]) == a.flags.c_contiguous, "NPY_ARRAY_C_CONTIGUOUS")
    _check(bool(flags & o["aligned"]) == a.flags.aligned, "NPY_ARRAY_ALIGNED")
    descr = id(a.dtype)
    _check(_int(descr + o["type_num"]) == a.dtype.num, "PyArray_Descr.type_num")
    _check(ctypes.c_char.from_address(descr + o["byteorder"]).value == a.dtype.byteorder.encode(),
           "PyArray_Descr.byteorder")  # fmt: skip


def _verify_objects(o: dict[str, int]) -> None:
    _check(ctypes.sizeof(ctypes.c_void_p) == ctypes.sizeof(ctypes.c_ssize_t) == 8, "64-bit pointers")
    _check(ctypes.sizeof(ctypes.c_int) == 4 and sys.maxsize == 2**63 - 1, "C int and Py_ssize_t sizes")
    for obj in (1.5, [], "s", np.float64(1)):  # type: ignore[var-annotated]
        _check(_word(id(obj) + o["ob_type"]) == id(type(obj)), "PyObject.ob_type")
    for tp in (list, np.ndarray):
        name = ctypes.c_char_p.from_address(id(tp) + o["tp_name"]).value
        _check(name is not None and name.decode().endswith(tp.__name__), "PyTypeObject.tp_name")
    _check(ctypes.sizeof(MethodDef) == 32, "PyMethodDef size")
    method = MethodDef.from_address(_word(id(len) + 16))  # PyCFunctionObject.m_ml
    _check(method.ml_name == b"len" and method.ml_flags == 0x0008, "PyMethodDef layout")  # METH_O


def python_function(name: str, restype: Any, *argtypes: Any) -> Any:
    """A private ctypes binding of a C-API function (ctypes.pythonapi's shared ones stay untouched)."""
    return ctypes.PYFUNCTYPE(restype, *argtypes)((name, ctypes.pythonapi))


def _numpy_api() -> dict[str, int]:
    try:
        multiarray = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # numpy 1.x
        multiarray = importlib.import_module("numpy.core._multiarray_umath")
    capsule = multiarray._ARRAY_API
    capsule_name = python_function("PyCapsule_GetName", ctypes.c_char_p, ctypes.py_object)
    get_pointer = python_function("PyCapsule_GetPointer", ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)
    entries = (ctypes.c_void_p * 256).from_address(get_pointer(capsule, capsule_name(capsule)))
    return {name: entries[k] or 0 for name, k in NUMPY_API.items()}


def _verify_numpy_api(addresses: dict[str, int]) -> None:
    """Call the table entries once (holding the GIL): right index, signature and result.

    Entry 0 (the ABI version) is the same in every numpy, so it is asked first; the
    other entries are only called when the ABI is one whose table layout is known.
    """
    abi = ctypes.PYFUNCTYPE(ctypes.c_uint)(addresses.pop("PyArray_GetNDArrayCVersion"))()
    _check(abi in NUMPY_ABI_VERSIONS, f"numpy C-API ABI version {abi:#x}")
    _check(addresses["PyArray_Type"] == id(np.ndarray), "numpy C-API table (PyArray_Type)")
    descr_from_type = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_int)(addresses["PyArray_DescrFromType"])
    new_descr = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_int)(addresses["PyArray_DescrFromType"])
    maker = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
    for dtype in map(np.dtype, ("float32", "float64", "int64")):
        _check(descr_from_type(dtype.num) is dtype, "PyArray_DescrFromType")
        dims = (ctypes.c_ssize_t * 2)(2, 3)
        for name in ("PyArray_Zeros", "PyArray_Empty"):  # (nd, dims, descr, fortran)
            made = maker(addresses[name])(2, ctypes.addressof(dims), new_descr(dtype.num), 0)  # descr stolen
            _check(type(made) is np.ndarray and made.shape == (2, 3) and made.dtype == dtype
                   and made.flags.c_contiguous and made.flags.owndata, name)  # fmt: skip
            _check(name != "PyArray_Zeros" or not made.any(), name)


def _verify_layout() -> Layout:
    _check(sys.byteorder == "little", "a little-endian host")
    offsets = dict(ASSUMED)
    _verify_objects(offsets)
    for array in probe_arrays():
        verify_array(array, offsets)
    addresses = _numpy_api()
    _verify_numpy_api(addresses)
    libc = ctypes.CDLL(None)
    for name in CPYTHON_API:
        addresses[name] = ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value or 0
    for name in LIBC_API:
        addresses[name] = ctypes.cast(getattr(libc, name), ctypes.c_void_p).value or 0
    for name, error in EXCEPTIONS.items():
        exported = ctypes.c_void_p.in_dll(ctypes.pythonapi, f"PyExc_{name}").value
        _check(exported == id(error), f"PyExc_{name}")
        addresses[name] = id(error)
    _check(all(addresses.values()), "C-API symbol lookup")
    return Layout(offsets, ord(">"), addresses)


def layout() -> Layout:
    """The verified layout, or RuntimeError saying what did not match (checked once per process)."""
    if isinstance(_LAYOUT, Layout):
        return _LAYOUT
    raise RuntimeError(str(_LAYOUT))


try:
    _LAYOUT: Layout | Exception = _verify_layout()
except Exception as failure:  # any surprise means: no fast entry, never a guess
    _LAYOUT = failure
