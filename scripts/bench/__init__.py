"""Benchmarks: speed, memory and recall of qabot's parts, run by hand as ``.venv/bin/python -m scripts.bench.NAME``
from the repository root. tests/test_scripts.py runs a few on tiny inputs so they keep working; CI gates none of their figures.
"""
