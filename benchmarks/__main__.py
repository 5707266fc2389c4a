"""`python -m benchmarks`: run every workload and write benchmarks/RESULTS.md (see run.py)."""

from benchmarks.run import main

main()
