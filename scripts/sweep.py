"""Run or resume an Optuna sweep: same as ``ltr sweep``.

Usage::

    .venv/bin/python scripts/sweep.py --config configs/sweeps/xgboost.yaml \
        [--set study.n_trials=50]
"""

from __future__ import annotations

import sys

from ltr.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
