"""``ltr sweep --config configs/sweeps/<model>.yaml``: run or resume an Optuna study
(see :mod:`ltr.sweep.study` and ``docs/sweeps.md``)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML (see configs/sweeps/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set study.n_trials=50")


def run(args: argparse.Namespace) -> int:
    import torch

    from ltr.labels.cli import load_run_config
    from ltr.sweep.study import SweepRun, require_completed, run_sweep, trial_states

    torch.set_num_threads(1)
    raw = load_run_config(args.config, args.set, SweepRun)
    study = run_sweep(raw)
    print(f"study '{study.study_name}': {len(study.trials)} trials {trial_states(study)}")
    require_completed(study)
    return 0
