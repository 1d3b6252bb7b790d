"""Benchmarks with JSON output (speed and memory are measured here, not asserted in tests)."""
