#!/usr/bin/env python
"""Evaluate retrieval and answer sentences on SQuAD-format data (e.g. XQuAD), through qabot's public API.

    .venv/bin/python scripts/evaluate.py --de ../shared/eval/xquad-dev/xquad.de.json \\
        [--en ../shared/eval/xquad-dev/xquad.en.json] [--distractors ../shared/corpora/10kgnad-test.csv] ...

The evaluation itself is the package qabot.evaluation (``--help`` lists the options).
"""

import sys

from qabot.evaluation.command import main

if __name__ == "__main__":
    sys.exit(main())
