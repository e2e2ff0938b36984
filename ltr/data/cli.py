"""``ltr summary``: load a search log through the validating loaders and print a summary."""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="folder with products.*, customers.*, impressions.* "
                             "(and optional judgements.*)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from ltr.data.loaders import load_log

    log = load_log(args.data)
    summary = log.summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(format_summary(summary))
    return 0


def format_summary(summary: dict[str, object]) -> str:
    """Human-readable lines of :meth:`SearchLog.summary`."""
    lines = []
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
        lines.append(f"  {key:26s} {value}")
    return "\n".join(lines)
