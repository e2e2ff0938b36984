"""Hostile command lines: every ``ltr`` command, run in-process through
:func:`ltr.cli.main`, ends with a non-zero exit and one line on stderr naming the file,
key or argument at fault, never a traceback."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ltr.cli import main as ltr
from tests.robustness.harness import Case, check_message, params
from tests.training.test_cli import write_config

# Lightning's log handlers keep the stderr capture of the test that imported it; once
# that is closed, logging prints "--- Logging error ---" and a traceback of its own.
# That is the test harness, not the command: cut it out.
LOGGING_ERROR = re.compile(r"--- Logging error ---.*?\nArguments: [^\n]*\n", re.S)


def cli_case(id: str, what: str, argv: Callable[[dict[str, Any]], list[str]],
             names: tuple[str, ...] = (), expect: str = "error",
             before_s: float | None = None) -> Case:
    """``argv(ctx)`` is run; ``error``/``untrained`` want exit != 0 and ``names`` on
    stderr; ``before_s``: the error must come within that many seconds (before the data
    are prepared)."""
    def run(ctx: dict[str, Any], capsys: Any) -> None:
        args = argv(ctx)
        t0 = time.perf_counter()
        try:
            code = ltr(args)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        seconds = time.perf_counter() - t0
        err = LOGGING_ERROR.sub("", capsys.readouterr().err)
        if expect == "accepted":
            assert code == 0, err
            return
        assert code != 0, f"{id}: exit 0 for a bad input"
        check_message(case, err)
        if expect == "untrained":
            assert "no training step" in err or "no completed trial" in err, err
        if before_s is not None:
            assert seconds < before_s, f"{id}: took {seconds:.1f}s before failing"
    case = Case(id, "cli", what, expect, names, run)
    return case


def _file(ctx: dict[str, Any], name: str, text: str) -> str:
    path = ctx["tmp"] / name
    path.write_text(text)
    return str(path)


def _yaml(ctx: dict[str, Any], name: str, value: Any) -> str:
    return _file(ctx, name, yaml.safe_dump(value))


def _label_config(ctx: dict[str, Any], **labels: Any) -> str:
    return _yaml(ctx, "labels.yaml", {"data": str(ctx["log"]), "out": str(ctx["tmp"] / "lab"),
                                      "labels": labels, "text": None})


def _fit_config(ctx: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> str:
    path = write_config(ctx["tmp"], ctx["log"], None)
    cfg = yaml.safe_load(path.read_text())
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _set(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda cfg: cfg[section].update({key: value})


CASES = [
    cli_case("cli-unknown-command", "ltr frobnicate", lambda c: ["frobnicate"],
             ("frobnicate",)),
    cli_case("cli-missing-required-option", "ltr label without --config",
             lambda c: ["label"], ("--config",)),
    cli_case("cli-config-missing", "ltr label --config nowhere.yaml",
             lambda c: ["label", "--config", str(c["tmp"] / "nowhere.yaml")],
             ("nowhere.yaml",)),
    cli_case("cli-config-bad-yaml", "a config with a YAML syntax error",
             lambda c: ["label", "--config", _file(c, "bad.yaml", "data: [unclosed\n")],
             ("bad.yaml",)),
    cli_case("cli-config-not-mapping", "a config holding a list",
             lambda c: ["label", "--config", _file(c, "list.yaml", "- 1\n- 2\n")],
             ("list.yaml",)),
    cli_case("cli-config-unknown-top-key", "ltr label config with 'lables:'",
             lambda c: ["label", "--config", _yaml(c, "typo.yaml", {
                 "data": str(c["log"]), "out": str(c["tmp"] / "o"), "lables": {}})],
             ("lables",)),
    cli_case("cli-set-bad-value", "--set labels.behaviour_weight=abc",
             lambda c: ["label", "--config", _label_config(c), "--set",
                        "labels.behaviour_weight=abc"], ("labels.behaviour_weight",)),
    cli_case("cli-set-malformed", "--set without '='",
             lambda c: ["label", "--config", _label_config(c), "--set", "labels"],
             ("labels",)),
    cli_case("cli-label-data-missing", "ltr label with data: a folder that does not exist",
             lambda c: ["label", "--config", _yaml(c, "l.yaml", {
                 "data": str(c["tmp"] / "no-log"), "out": str(c["tmp"] / "o")})],
             ("no-log",)),
    cli_case("cli-export-checkpoint-missing", "ltr export of a checkpoint that does not "
             "exist", lambda c: ["export", "--checkpoint", str(c["tmp"] / "gone.ckpt"),
                                 "--out", str(c["tmp"] / "pkg")], ("gone.ckpt",)),
    cli_case("cli-export-checkpoint-corrupt", "ltr export of a .ckpt holding garbage",
             lambda c: ["export", "--checkpoint", _file(c, "junk.ckpt", "not a checkpoint"),
                        "--out", str(c["tmp"] / "pkg")], ("junk.ckpt",)),
    cli_case("cli-export-out-exists", "ltr export onto an existing folder without "
             "--overwrite", lambda c: ["export", "--checkpoint", str(c["tmp"]),
                                       "--out", str(c["tmp"])], ("--out",)),
    cli_case("cli-serve-not-a-package", "ltr serve of a folder that is not a package",
             lambda c: ["serve", str(c["tmp"])], ("manifest.json",)),
    cli_case("cli-evaluate-missing-file", "ltr evaluate with label and prediction files "
             "that do not exist", lambda c: ["evaluate", "--predictions", str(c["tmp"] / "p.csv"),
                                     "--labels", str(c["tmp"] / "l.csv"),
                                     "--out", str(c["tmp"] / "r")], ("l.csv",)),
    cli_case("cli-benchmark-data-missing", "ltr benchmark with a data_dir that does not "
             "exist", lambda c: ["benchmark", "--config", _yaml(c, "b.yaml", {
                 "data": {"data_dir": str(c["tmp"] / "no-data")},
                 "models": [{"name": "bm25"}], "out": str(c["tmp"] / "b")})],
             ("no-data",)),
    cli_case("cli-sweep-zero-trials", "ltr sweep with study.n_trials: 0",
             lambda c: ["sweep", "--config", _yaml(c, "s.yaml", {
                 "model": "xgboost", "data": {"data_dir": str(c["log"])},
                 "space": {"max_depth": {"type": "int", "low": 2, "high": 4}},
                 "study": {"n_trials": 0}, "out": str(c["tmp"] / "s")})],
             ("study.n_trials",)),
    cli_case("cli-simulate-catalog-missing", "ltr simulate with a catalog that does not "
             "exist", lambda c: ["simulate", "--catalog", str(c["tmp"] / "cat.parquet"),
                                 "--out", str(c["tmp"] / "sim")], ("cat.parquet",)),
    cli_case("cli-summary-not-a-log", "ltr summary of an empty folder",
             lambda c: ["summary", "--data", str(c["tmp"])], ("products",)),
    cli_case("cli-fit-lr-negative", "ltr fit with model.lr: -0.1: refused before the data "
             "are prepared", lambda c: ["fit", "--config", _fit_config(c, _set(
                 "model", "lr", -0.1))], ("model.lr", "-0.1"), before_s=15),
    cli_case("cli-fit-backbone-unknown", "ltr fit with model.backbone: 'moe2'",
             lambda c: ["fit", "--config", _fit_config(c, _set("model", "backbone", "moe2"))],
             ("model.backbone",), before_s=15),
    cli_case("cli-fit-folds-negative", "ltr fit with data.folds: -1",
             lambda c: ["fit", "--config", _fit_config(c, _set("data", "folds", -1))],
             ("data.folds",), before_s=15),
    cli_case("cli-fit-text-trainable-layers", "ltr fit with data.text.trainable_layers "
             "(model.trainable_layers decides: refused, not ignored)",
             lambda c: ["fit", "--config", _fit_config(c, _set("data", "text", {
                 "trainable_layers": 0}))], ("data.text.trainable_layers",
                                             "model.trainable_layers"), before_s=15),
    cli_case("cli-fit-text-shared-towers", "ltr fit with data.text.shared_towers",
             lambda c: ["fit", "--config", _fit_config(c, _set("data", "text", {
                 "shared_towers": False}))], ("data.text.shared_towers", "model.tuned_tower"),
             before_s=15),
    cli_case("cli-fit-labels-nested-key", "ltr fit with data.labels.n_grades: 1: refused "
             "before the data are prepared",
             lambda c: ["fit", "--config", _fit_config(c, _set("data", "labels", {
                 "n_grades": 1}))], ("data.labels.n_grades",), before_s=15),
    cli_case("cli-fit-distill-unknown-key", "ltr fit with model.distill.round (a typo)",
             lambda c: ["fit", "--config", _fit_config(c, _set("model", "distill", {
                 "round": 2}))], ("model.distill.round",), before_s=15),
    cli_case("cli-label-text-interactions", "ltr label with text.interactions (ltr label "
             "only encodes: refused, not ignored)",
             lambda c: ["label", "--config", _yaml(c, "l.yaml", {
                 "data": str(c["log"]), "out": str(c["tmp"] / "o"),
                 "text": {"interactions": ["cosine"]}})], ("text.interactions",)),
    cli_case("cli-benchmark-model-typo", "ltr benchmark with models[0].param (a typo of "
             "params)", lambda c: ["benchmark", "--config", _yaml(c, "b.yaml", {
                 "data": {"data_dir": str(c["log"])},
                 "models": [{"name": "bm25", "param": {"k1": 1.0}}],
                 "out": str(c["tmp"] / "b")})], ("models[0].param",), before_s=15),
    cli_case("cli-simulate-unknown-key", "ltr simulate --set n_session=5 (a typo)",
             lambda c: ["simulate", "--catalog", str(c["tmp"] / "cat.parquet"),
                        "--set", "n_session=5", "--out", str(c["tmp"] / "sim")],
             ("simulate.n_session",)),
    cli_case("cli-fit-zero-epochs", "ltr fit with trainer.max_epochs: 0",
             lambda c: ["fit", "--config", _fit_config(c, _set("trainer", "max_epochs", 0))],
             ("trainer.max_epochs",), expect="untrained"),
    cli_case("cli-config-reference", "ltr config --print-reference",
             lambda c: ["config", "--print-reference"], expect="accepted"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_cli(case: Case, tiny_log_dir: Path, tmp_path: Path, capsys: Any) -> None:
    case.run({"log": tiny_log_dir, "tmp": tmp_path}, capsys)
