"""``ltr benchmark --config configs/benchmark.yaml`` (see :mod:`ltr.rankers.benchmark`)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML (see configs/benchmark.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set out=runs/bench2")


def run(args: argparse.Namespace) -> int:
    import torch

    from ltr.labels.cli import load_run_config
    from ltr.rankers.benchmark import BenchmarkRun, run_benchmark

    torch.set_num_threads(1)
    raw = load_run_config(args.config, args.set, BenchmarkRun)
    table = run_benchmark(raw)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
