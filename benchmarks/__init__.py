"""symgrad's benchmarks: one script per workload of issue 5, run with `python -m benchmarks`.

Every peer runs on one thread: the BLAS/OpenMP/XLA thread counts are pinned here, in the
package's __init__, so they are set before any workload module imports numpy. Run a single
workload as a module (`python -m benchmarks.w2_fused`), not as a file, for the same reason.
These are scripts that print tables, never tests: pytest does not collect them.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
