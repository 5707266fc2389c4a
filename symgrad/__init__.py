"""symgrad: traced tensor code, symbolic gradients, native code through llvmlite.

`import symgrad as torch` gives the eager, torch-style API; `symgrad.inspect`
shows formulas, graphs and LLVM IR; `symgrad.cache_info` the code cache.
"""

from . import ops as _ops
from .autograd import enable_grad, is_grad_enabled, no_grad
from .cache import DEFAULT_CACHE as _DEFAULT_CACHE
from .creation import DoubleTensor, FloatTensor, LongTensor, manual_seed, ones, randn, tensor, zeros
from .dtypes import bool_ as bool  # noqa: A001 - torch.bool
from .dtypes import double, dtype, float, float32, float64, int32, int64, long  # noqa: A004
from .inspection import inspect
from .ops import abs, add, cos, div, exp, log, mean, mul, neg, norm, pow, sin, sqrt, sub, sum
from .ops import tan, tanh
from .printing import get_printoptions, set_printoptions
from .tensor import Size, Tensor, is_tensor

_ops.install_methods()

__version__ = "0.1.0"


def cache_info() -> dict:
    """Code cache statistics: compiles, hits, misses, entries, compile_seconds."""
    return _DEFAULT_CACHE.info()


def clear_cache() -> None:
    """Drop every compiled specialisation and reset the statistics."""
    _DEFAULT_CACHE.clear()
