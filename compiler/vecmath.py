"""Vector math through glibc's libmvec: which vector variants of the scalar math
functions exist on this host, and the IR annotations that let LLVM's loop
vectoriser call them.

LLVM turns `llvm.sin.f64` and friends into scalar libm calls; its `-vector-library`
option does nothing from llvmlite. Instead each scalar math call in the IR text is
marked with the `vector-function-abi-variant` attribute naming its libmvec
variants (`_ZGVeN8v_sin` ...), which the loop vectoriser uses when it picks that
width; the scalar call stays for remainder iterations and for non-vectorised code.
`vecloop` calls the variants directly (`VectorLibrary.functions`). Pure text and
data: imports only the standard library (`jit.py` loads the library and resolves
the symbols).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

LIBRARY = "libmvec.so.1"

# Scalar callee as emitted (without the .f32/.f64 suffix or the f of float libm
# names) -> (libmvec base name, arity). The llvm.* ones are intrinsics; erf, log1p
# and expm1 are plain libm calls (LLVM 22 has no intrinsic for them).
FUNCTIONS: dict[str, tuple[str, int]] = {
    **{f"llvm.{name}": (name, 1) for name in (
        "exp", "log", "sin", "cos", "tan", "tanh", "asin", "acos", "atan",
        "sinh", "cosh", "exp2", "log2", "log10")},
    "llvm.pow": ("pow", 2),
    "llvm.atan2": ("atan2", 2),
    **{name: (name, 1) for name in ("erf", "log1p", "expm1")},
}  # fmt: skip

# x86-64 vector function ABI: ISA letter -> CPU feature it needs, widest first.
# Lanes per ISA: b = SSE (128-bit), c = AVX and d = AVX2 (256), e = AVX-512 (512).
ISAS = (("e", "avx512f", 512), ("d", "avx2", 256), ("c", "avx", 256), ("b", "sse2", 128))
ELEMENT_BITS = {"f32": 32, "f64": 64}
LLVM_TYPES = {"f32": "float", "f64": "double"}


@dataclass(frozen=True)
class Variant:
    """One libmvec function: `lanes` elements of `ty` per call."""

    scalar: str  # the scalar callee as it appears in IR, e.g. llvm.sin.f64 or erff
    symbol: str  # e.g. _ZGVeN8v_sin
    lanes: int
    ty: str  # "f32" | "f64"
    arity: int

    def declaration(self) -> str:
        vec = f"<{self.lanes} x {LLVM_TYPES[self.ty]}>"
        return f"declare {vec} @{self.symbol}({', '.join([vec] * self.arity)}) nounwind"

    def mapping(self) -> str:
        return f"_ZGV_LLVM_N{self.lanes}{'v' * self.arity}_{self.scalar}({self.symbol})"


@dataclass(frozen=True)
class VectorLibrary:
    """The libmvec variants usable on this host, per scalar callee name."""

    variants: dict[str, tuple[Variant, ...]]

    def functions(self) -> dict[tuple[str, int], str]:
        """(scalar callee, lanes) -> libmvec symbol, for code that calls them directly."""
        return {(v.scalar, v.lanes): v.symbol for vs in self.variants.values() for v in vs}

    def describe(self) -> str:
        """A stable summary (part of code cache keys)."""
        return ",".join(v.symbol for vs in sorted(self.variants.items()) for v in vs[1])


def scalar_name(callee: str, ty: str) -> str:
    """The IR callee name for `callee` at element type ty (llvm.sin.f32, erff, ...)."""
    if callee.startswith("llvm."):
        return f"{callee}.{ty}"
    return callee + ("f" if ty == "f32" else "")


def candidate_variants(features: set[str]) -> list[Variant]:
    """Every libmvec variant the CPU features allow, one per (function, type, width)."""
    found: list[Variant] = []
    for callee, (base, arity) in FUNCTIONS.items():
        for ty, bits in ELEMENT_BITS.items():
            widths: set[int] = set()
            for isa, feature, width in ISAS:
                if feature in features and width not in widths:
                    widths.add(width)
                    lanes = width // bits
                    suffix = "f" if ty == "f32" else ""
                    symbol = f"_ZGV{isa}N{lanes}{'v' * arity}_{base}{suffix}"
                    found.append(Variant(scalar_name(callee, ty), symbol, lanes, ty, arity))
    return found


def enabled_features(features: str) -> set[str]:
    """{"avx2", ...} from LLVM's feature string "+avx2,-avx512f,..."."""
    return {f[1:] for f in features.split(",") if f.startswith("+")}


def vector_lanes(features: str) -> dict[str, int]:
    """Lanes per float dtype in the widest vector registers the CPU has."""
    enabled = enabled_features(features)
    bits = next((width for _, feature, width in ISAS if feature in enabled), 0)
    return {"float32": bits // 32, "float64": bits // 64}


def host_library(features: str, resolve: Callable[[str], int]) -> VectorLibrary | None:
    """The variants that the CPU `features` ("+avx2,-avx512f,...") allow and `resolve`
    finds (an address, 0 when missing); None when there are none."""
    enabled = enabled_features(features)
    by_scalar: dict[str, list[Variant]] = {}
    for variant in candidate_variants(enabled):
        if resolve(variant.symbol):
            by_scalar.setdefault(variant.scalar, []).append(variant)
    if not by_scalar:
        return None
    return VectorLibrary({k: tuple(sorted(v, key=lambda x: x.lanes)) for k, v in by_scalar.items()})


# ---------------------------------------------------------------- IR text

_CALL = re.compile(r'^(\s*%\S+ = call (?:double|float) @"?([\w.]+)"?\(.*\))$', re.M)
_ATTRIBUTE_GROUP = re.compile(r"#(\d+)")


def annotate(llvm_ir: str, library: VectorLibrary) -> str:
    """Mark each scalar math call of `llvm_ir` with its libmvec variants and declare them.

    The declarations are kept alive through `llvm.compiler.used` (otherwise global
    optimisation deletes them before the vectoriser looks for them).
    """
    groups: dict[str, int] = {}
    first = 1 + max((int(n) for n in _ATTRIBUTE_GROUP.findall(llvm_ir)), default=0)

    def mark(match: re.Match[str]) -> str:
        variants = library.variants.get(match.group(2))
        if not variants:
            return match.group(1)
        group = groups.setdefault(match.group(2), first + len(groups))
        return f"{match.group(1)} #{group}"

    text = _CALL.sub(mark, llvm_ir)
    if not groups:
        return llvm_ir
    used = [v for scalar in groups for v in library.variants[scalar]]
    lines = [text.rstrip("\n"), ""]
    lines += [v.declaration() for v in used]
    for scalar, group in groups.items():
        mappings = ",".join(v.mapping() for v in library.variants[scalar])
        lines.append(f'attributes #{group} = {{ "vector-function-abi-variant"="{mappings}" }}')
    pointers = ", ".join(f"ptr @{v.symbol}" for v in used)
    lines.append(
        f'@llvm.compiler.used = appending global [{len(used)} x ptr] [{pointers}], section "llvm.metadata"'
    )
    return "\n".join(lines) + "\n"
