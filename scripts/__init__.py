"""Operator, benchmark and research scripts. They import qabot; qabot never imports them.

scripts/NAME.py runs as ``.venv/bin/python scripts/NAME.py``; the benchmarks and research one-offs
are packages run from the repository root as ``.venv/bin/python -m scripts.bench.NAME`` /
``-m scripts.research.NAME`` (so they may import each other and the tests' fakes).
"""
