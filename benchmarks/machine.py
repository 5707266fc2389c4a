"""The machine the benchmarks ran on: CPU model, cores, library versions, and two limits
measured in the same run: memory bandwidth (large numpy copy and sum) and the float64
matmul rate of numpy's BLAS on one thread (1024^3). Run: `python -m benchmarks.machine`.
"""

from __future__ import annotations

import os
import platform

import numpy as np

from benchmarks.common import median_time, versions

BIG = 1 << 25  # 32 Mi float64 = 256 MiB per array: far beyond any cache


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bandwidth() -> dict[str, float]:
    """GB/s of a read-only pass (sum) and of a copy (read + write counted)."""
    src = np.random.default_rng(0).random(BIG)
    dst = np.empty_like(src)
    read = median_time(np.sum, src, repeats=5)
    copy = median_time(np.copyto, dst, src, repeats=5)
    return {"sum": src.nbytes / read / 1e9, "copy": 2 * src.nbytes / copy / 1e9}


def matmul_rate(n: int = 1024) -> float:
    """GFLOP/s of an n^3 float64 matmul through numpy (its bundled BLAS, one thread)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)), rng.random((n, n))
    out = np.empty((n, n))
    return 2 * n**3 / median_time(np.matmul, a, b, out, repeats=5) / 1e9


def describe() -> dict:
    """Everything RESULTS.md states about the machine, measured now."""
    flags = cpu_flags()
    simd = [f for f in ("avx2", "avx512f", "fma") if f in flags]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "simd": ", ".join(simd) or "unknown",
        "platform": platform.platform(),
        "versions": versions(),
        "bandwidth": bandwidth(),
        "matmul_gflops": matmul_rate(),
        "threads": {v: os.environ.get(v, "unset") for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }


def markdown(info: dict) -> str:
    bw = info["bandwidth"]
    vers = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return "\n".join([
        "### Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores ({info['simd']}); {info['platform']}",
        f"- memory bandwidth: {bw['sum']:.1f} GB/s read (numpy sum of 256 MiB), "
        f"{bw['copy']:.1f} GB/s copy (read + write, 256 MiB)",
        f"- matmul: {info['matmul_gflops']:.1f} GFLOP/s (numpy float64 1024^3, one BLAS thread)",
        f"- threads: every peer on one thread ({', '.join(f'{k}={v}' for k, v in info['threads'].items())},"
        " torch.set_num_threads(1), XLA eigen multithreading off)",
        f"- versions: {vers}",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    print(markdown(describe()))
