"""The ``ltr`` command line.

Each sub-command lives in its own module exposing ``configure(parser)`` and
``run(args) -> int``; this file only maps names to modules, importing lazily so that
``ltr simulate`` does not pay for importing transformers.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ltr import __version__
from ltr.errors import LtrError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("ltr.simulate.cli", "simulate a search log over a catalog"),
    "summary": ("ltr.data.cli", "validate a search log and print a summary"),
    "label": ("ltr.labels.cli", "derive graded relevance labels from a log and text"),
    "benchmark": ("ltr.rankers.cli", "fit and compare every ranker on the same split"),
    "evaluate": ("ltr.evaluation.cli", "score predictions against labels and write a report"),
    "sweep": ("ltr.sweep.cli", "run or resume an Optuna study over a ranker"),
    "export": ("ltr.serving.export_cli", "write a trained model as a self-contained package"),
    "serve": ("ltr.serving.http", "serve a model package over HTTP (/rank, /health)"),
    "config": ("ltr.config_reference", "print the reference of every configuration key"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ltr", description=__doc__.splitlines()[0],
        epilog="Training: ltr fit|validate|test|predict --config configs/<model>.yaml "
               "(LightningCLI; `ltr fit --help` lists every option).")
    parser.add_argument("--version", action="version", version=f"ltr {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress lines or bars (before the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).configure(p)
        p.set_defaults(_module=module)
    return parser


LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from ltr.progress import set_quiet

    quiet = "--quiet" in argv[:1] or "-q" in argv[:1]  # `ltr --quiet COMMAND ...`
    set_quiet(quiet)
    if quiet:
        argv = argv[1:]
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from ltr.training.cli import run_lightning

        try:
            return run_lightning(argv)
        except LtrError as exc:
            print(f"ltr {argv[0]}: error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except LtrError as exc:
        print(f"ltr {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
