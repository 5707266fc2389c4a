"""symgrad: traced tensor code, symbolic gradients, native code through llvmlite.

`import symgrad as torch` gives the eager, torch-style API; `symgrad.inspect`
shows formulas, graphs and LLVM IR; `symgrad.cache_info` the code cache.
"""

import builtins

from . import autograd, methods, nn, optim, testing
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled, inference_mode
from .cache import DEFAULT_CACHE as _DEFAULT_CACHE
from .creation import (DoubleTensor, FloatTensor, LongTensor, arange, as_tensor, device, empty,
                       empty_like, eye, from_numpy, full, full_like, linspace, manual_seed, ones,
                       ones_like, rand, rand_like, randint, randn, randn_like, tensor, zeros,
                       zeros_like)  # fmt: skip
from .dtypes import bool_ as bool  # noqa: A001 - torch.bool
from .dtypes import double, dtype, float, float32, float64, int32, int64, long  # noqa: A004
from .discrete import (all, any, argsort, bitwise_and, bitwise_not, bitwise_or, bitwise_xor,
                       floor_divide, logical_and, logical_not, logical_or, logical_xor, nonzero,
                       remainder, sort, topk)  # fmt: skip
from .index_ops import gather, index_select, masked_select
from .linalg import bmm, dot, einsum, matmul, mm, mv, outer
from .ops import (abs, acos, add, allclose, equal, isclose, asin, atan, atan2, ceil, clamp, cos, cosh, div, eq, erf, exp,
                  exp2, expm1, floor, ge, gt, isfinite, isinf, isnan, le, lerp, log, log1p, log2,
                  log10, lt, maximum, minimum, mul, nan_to_num, ne, neg, pow, reciprocal, relu,
                  round, rsqrt, sigmoid, sign, sin, sinh, sqrt, square, sub, tan, tanh, trunc,
                  )  # fmt: skip
from .discrete import where
from .printing import get_printoptions, set_printoptions
from .reductions import (amax, amin, argmax, argmin, cumsum, logsumexp, max, mean, min, norm, prod,
                         std, sum, var)  # fmt: skip
from .reductions import log_softmax, softmax
from .shape_ops import (cat, chunk, clone, flatten, flip, narrow, permute, reshape, split, squeeze,
                        stack, transpose, unsqueeze)  # fmt: skip
from .tensor import Size, Tensor, is_tensor
from .trace import TraceError
from . import gradient as _gradient
from . import transforms as _transforms
from .gradient import set_eager_compile_threshold
from .transforms import compile, grad, hessian, jacobian, jvp, value_and_grad, vjp  # noqa: A004

methods.install()

clip = clamp
concat = concatenate = cat
divide, multiply, subtract, true_divide = div, mul, sub, div
negative = neg
t = methods.shape_ops.t

__version__ = "0.1.0"


def cache_info() -> dict:
    """Code cache statistics: compiles, hits, misses, entries, evictions, limit, compile_seconds
    (eager backward plans and compiled functions together), and the disk cache's when in use;
    interpreted: eager backward passes run by the numpy interpreter (a structure's first pass:
    see set_eager_compile_threshold); by_tape: eager backward passes that found their compiled
    plan by the ops recorded, without building the graph's nodes (also counted as hits)."""
    for f in list(_transforms.LIVE):
        f._settle_fast_calls()
    info = _DEFAULT_CACHE.info()
    info["entries"] += builtins.sum(len(f.entries) for f in list(_transforms.LIVE))
    info["evictions"] += builtins.sum(f.evictions for f in list(_transforms.LIVE))
    info["interpreted"] = _gradient.INTERPRETED[0]
    info["by_tape"] = _gradient.BY_TAPE[0]
    return info


def clear_cache(disk: bool = False) -> None:
    """Drop every compiled specialisation (eager backward plans and those of every transform)
    and reset the statistics; with disk=True also delete the object code cached on disk
    (the cache files in symgrad.cache.disk_cache_dir(), nothing else there)."""
    _DEFAULT_CACHE.clear(disk=disk)
    for f in list(_transforms.LIVE):
        f.clear()


def set_cache_limit(entries: int) -> None:
    """Keep at most `entries` compiled specialisations in memory: in the eager backward cache,
    and per transform (default 1024). The least recently used are evicted; their machine code
    is freed once nothing holds them. The disk cache is bounded by $SYMGRAD_CACHE_MAX_BYTES."""
    _DEFAULT_CACHE.set_limit(entries)
    for f in list(_transforms.LIVE):
        f.trim()


_LAZY = {"inspect": "inspection", "from_sympy": "sympy_io", "to_sympy": "sympy_io"}


def elementwise(fn=None, *, name=None):  # noqa: ANN001 - symgrad.sympy_io.elementwise's signature
    """Define an elementwise op from a sympy expression (see symgrad.sympy_io.elementwise);
    a function here, not the submodule of that name, which sympy would be imported with."""
    from .sympy_io import elementwise as define

    return define(fn, name=name)


def __getattr__(name: str) -> object:
    """inspect, from_sympy, to_sympy: imported on first use, with sympy
    (which `import symgrad` does not load)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symgrad' has no attribute {name!r}")


def numel(t_: Tensor) -> int:
    return t_.numel()


def is_floating_point(t_: Tensor) -> bool:
    return t_.dtype.is_floating_point
