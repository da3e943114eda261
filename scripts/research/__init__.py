"""Research one-offs: the ablations and calibrations behind a setting's chosen value, kept so the measurement
can be repeated (``.venv/bin/python -m scripts.research.NAME`` from the repository root). CI runs none of them;
tests/test_scripts.py tests a few pure parts.
"""
