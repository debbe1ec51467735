"""Benchmark harness for rnngeom: ``python -m benchmarks`` (see benchmarks/README.md)."""
