"""Vector math through glibc's libmvec: which vector variants of the scalar math
functions exist on this host, and the IR annotations that let LLVM's loop
vectoriser call them.

LLVM turns `llvm.sin.f64` and friends into scalar libm calls; its `-vector-library`
option does nothing from llvmlite. Instead each scalar math call in the IR text is
marked with the `vector-function-abi-variant` attribute naming its libmvec
variants (`_ZGVeN8v_sin` ...), which the loop vectoriser uses when it picks that
width; the scalar call stays for remainder iterations and for non-vectorised code.
`vecloop` calls the variants directly (`VectorLibrary.functions`). Pure text and
data: imports only the standard library and `.vecpoly` (`jit.py` loads the library and
resolves the symbols). float32 sin, cos, exp and tanh, and float64 tanh, are symgrad's
own (`.vecpoly`): their variants carry a definition, which `define` puts into each module
that calls them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from . import vecpoly

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
    """One vector function: `lanes` elements of `ty` per call; libmvec's (declared), or
    symgrad's own (`definition`: IR text defining `symbol`, and declaring what it calls)."""

    scalar: str  # the scalar callee as it appears in IR, e.g. llvm.sin.f64 or erff
    symbol: str  # e.g. _ZGVeN8v_sin
    lanes: int
    ty: str  # "f32" | "f64"
    arity: int
    definition: str = ""

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
        """A stable summary (part of code cache keys): the symbols, and a digest of the
        own functions' definitions."""
        variants = [v for _, vs in sorted(self.variants.items()) for v in vs]
        own = "".join(v.definition for v in variants)
        digest = f";{vecpoly.VERSION}:{hashlib.sha256(own.encode()).hexdigest()[:16]}" if own else ""
        return ",".join(v.symbol for v in variants) + digest

    def own(self) -> dict[str, Variant]:
        """symbol -> variant, for the variants symgrad defines itself."""
        return {v.symbol: v for vs in self.variants.values() for v in vs if v.definition}


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


def host_library(features: str, resolve: Callable[[str], int], own: bool = True) -> VectorLibrary | None:
    """The variants that the CPU `features` ("+avx2,-avx512f,...") allow and `resolve`
    finds (an address, 0 when missing), symgrad's own in place of libmvec's where it has
    one (and `own`, and the CPU has FMA: without it, LLVM calls fmaf lane by lane); None
    when there are none."""
    enabled = enabled_features(features)
    own = own and "fma" in enabled
    by_scalar: dict[str, list[Variant]] = {}
    for variant in candidate_variants(enabled):
        if resolve(variant.symbol):
            if own and variant.scalar in vecpoly.FUNCTIONS:
                variant = own_variant(variant)
            by_scalar.setdefault(variant.scalar, []).append(variant)
    if not by_scalar:
        return None
    return VectorLibrary({k: tuple(sorted(v, key=lambda x: x.lanes)) for k, v in by_scalar.items()})


def own_variant(libmvec: Variant) -> Variant:
    """symgrad's own function in place of `libmvec` (same function and width), which it
    calls for inputs beyond its range reduction (sin, cos)."""
    symbol = vecpoly.symbol(libmvec.scalar, libmvec.lanes)
    text = vecpoly.definition(libmvec.scalar, libmvec.lanes, libmvec.symbol)
    return replace(libmvec, symbol=symbol, definition=text)


# ---------------------------------------------------------------- IR text

_CALL = re.compile(r'^(\s*%\S+ = call (double|float) )@"?([\w.]+)"?(\(.*\))$', re.M)
_ATTRIBUTE_GROUP = re.compile(r"#(\d+)")
WRAPPER = "symgrad.vm."  # prefix of the scalar entry to a variant: symgrad.vm.llvm.sin.f64


def annotate(llvm_ir: str, library: VectorLibrary) -> str:
    """Route each scalar math call of `llvm_ir` through the widest libmvec variant.

    A call to `llvm.sin.f64` becomes a call to `symgrad.vm.llvm.sin.f64`, which runs
    `_ZGVeN8v_sin` on a splat of its argument and is marked with that one variant, so
    the loop vectoriser calls it 8 lanes at a time and the remainder iterations (and
    code it does not vectorise) compute the very same function: one input gives one
    value everywhere in the program (ties stay ties). The wrapper is never inlined
    (the vectoriser does not take loops with vector instructions). Declarations and
    wrappers are kept alive and whole through `llvm.compiler.used`.
    """
    groups: dict[str, int] = {}
    first = 1 + max((int(n) for n in _ATTRIBUTE_GROUP.findall(llvm_ir)), default=0)

    def reroute(match: re.Match[str]) -> str:
        prefix, _, scalar, args = match.groups()
        if scalar not in library.variants:
            return match.group(0)
        group = groups.setdefault(scalar, first + len(groups))
        return f'{prefix}@"{WRAPPER}{scalar}"{args} #{group}'

    text = _CALL.sub(reroute, llvm_ir)
    if not groups:
        return llvm_ir
    used = [library.variants[scalar][-1] for scalar in groups]
    lines = [text.rstrip("\n"), ""]
    lines += [v.declaration() for v in used if not v.definition and not _declared(text, v.symbol)]
    lines += [_wrapper(v) for v in used]
    for v in used:
        mapping = f"_ZGV_LLVM_N{v.lanes}{'v' * v.arity}_{WRAPPER}{v.scalar}({v.symbol})"
        lines.append(f'attributes #{groups[v.scalar]} = {{ "vector-function-abi-variant"="{mapping}" }}')
    # kept whole: with an address in use, no interprocedural pass specialises a wrapper to a
    # constant argument (pow(x, 2.0)), which would no longer match its variant's arity
    pointers = [f"ptr @{v.symbol}" for v in used] + [f'ptr @"{WRAPPER}{v.scalar}"' for v in used]
    lines.append(
        f"@llvm.compiler.used = appending global [{len(pointers)} x ptr] [{', '.join(pointers)}], "
        'section "llvm.metadata"'
    )
    return "\n".join(lines) + "\n"


def define(llvm_ir: str, library: VectorLibrary) -> str:
    """`llvm_ir` with the own variants it calls (or declares: vecloop and `annotate` may)
    defined, each once, and what they call declared once."""
    own = library.own()
    found = dict.fromkeys(_REFERENCE.findall(llvm_ir))
    called = [own[s] for s in found if s in own and not _defined(llvm_ir, s)]
    if not called:
        return llvm_ir
    text = _DECLARATION.sub(lambda m: "" if m.group(1) in own else m.group(0), llvm_ir)
    lines = [text.rstrip("\n"), ""]
    for v in called:
        for line in v.definition.splitlines():
            if line.startswith("declare ") and _declared("\n".join(lines), _callee(line)):
                continue  # a fallback that sin and cos share, or that the module calls too
            lines.append(line)
    return "\n".join(lines) + "\n"


_REFERENCE = re.compile(rf'@"?({re.escape(vecpoly.PREFIX)}[\w.]+)"?')
_DECLARATION = re.compile(r'^declare [^\n]*@"?([\w.]+)"?\([^\n]*\n', re.M)


def _callee(declaration: str) -> str:
    return declaration.split("@", 1)[1].split("(", 1)[0].strip('"')


def _defined(llvm_ir: str, symbol: str) -> bool:
    return re.search(rf'^define [^\n]*@"?{re.escape(symbol)}"?\(', llvm_ir, re.M) is not None


def _declared(llvm_ir: str, symbol: str) -> bool:
    return re.search(rf'^declare [^\n]*@"?{re.escape(symbol)}"?\(', llvm_ir, re.M) is not None


def _wrapper(v: Variant) -> str:
    """`ty @symgrad.vm.<scalar>(ty...)`: the variant on splats of the arguments, lane 0."""
    ty, vec = LLVM_TYPES[v.ty], f"<{v.lanes} x {LLVM_TYPES[v.ty]}>"
    params = ", ".join(f"{ty} %a{k}" for k in range(v.arity))
    body = []
    for k in range(v.arity):
        body.append(f"  %i{k} = insertelement {vec} poison, {ty} %a{k}, i64 0")
        body.append(f"  %s{k} = shufflevector {vec} %i{k}, {vec} poison, <{v.lanes} x i32> zeroinitializer")
    args = ", ".join(f"{vec} %s{k}" for k in range(v.arity))
    body.append(f"  %r = call {vec} @{v.symbol}({args})")
    body.append(f"  %e = extractelement {vec} %r, i64 0")
    # aligned spills when an own variant inlined here calls its fallback (as emit.STACK_ALIGN)
    attributes = f"noinline nounwind willreturn memory(none) alignstack({vecpoly.STACK_ALIGN})"
    head = f'define internal {ty} @"{WRAPPER}{v.scalar}"({params}) {attributes} {{'
    return "\n".join([head, *body, f"  ret {ty} %e", "}"])
