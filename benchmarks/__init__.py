"""Measured performance runs (never timed tests); see benchmarks/README.md."""
