"""Benchmarks, run by ``python -m bench`` (or ``./build.sh bench``)."""
