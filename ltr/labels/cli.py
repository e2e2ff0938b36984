"""``ltr label --config configs/labels/<name>.yaml``: derive graded labels from a log.

The config's schema is :class:`LabelRun` (every key, type, range and default; unknown
keys refused, the culprit named by its dotted key, before any work); override any key
with ``--set key.sub=value``. The reference of every key is docs/configuration.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from ltr.checks import FieldProblem, Range
from ltr.config_schema import Bool, PathStr, Section, Str
from ltr.features.split import Split
from ltr.labels.config import LabelConfig
from ltr.text.config import TextSection

ENGINES = ("auto", "pandas", "duckdb", "spark")


class Window(Section):
    """``window``: the training window of a training run with these data settings."""

    split: Split | None = Field(None, description="`data.split` of the training run "
                                "(`history_days`, `valid_days`, `test_days`)")
    folds: Annotated[int, Range(ge=0, integer=True)] = Field(
        0, description="`data.folds` of the training run (query hold-out)")
    fold: Annotated[int, Range(ge=0, integer=True)] = Field(
        0, description="`data.fold` of the training run")
    seed: Annotated[int, Range(integer=True)] = Field(
        0, description="`data.seed` of the training run")

    def model_post_init(self, context: Any) -> None:
        if self.folds > 1 and self.fold >= self.folds:
            raise FieldProblem("fold", f"must be < window.folds ({self.folds}), got "
                               f"{self.fold}")


class Spark(Section):
    """``spark``: the Spark session of ``engine: spark``."""

    master: Str | None = Field(None, description="master URL (default `local[N]`, or the "
                               "one spark-submit sets)")
    conf: dict[Str, Any] | None = Field(None, description="extra Spark settings")


class LabelRun(Section):
    """The whole ``ltr label`` config."""

    data: PathStr = Field(description="folder with products/customers/impressions (and "
                          "optional judgements) tables")
    out: PathStr = Field(description="output folder: labels.parquet, label_config.yaml, "
                         "report/")
    ground_truth: PathStr | None = Field(
        None, description="optional folder with the simulator's `examination.csv`: the "
        "estimated position bias is compared with it")
    label_judged_pool: Bool = Field(
        True, description="also label judged (query, product) pairs never shown (they rest "
        "on similarity)")
    disagreement_threshold: Annotated[float, Range(ge=0)] = Field(
        0.5, description="gap between normalised click and text signals that counts as a "
        "disagreement")
    labels: LabelConfig | None = Field(None, description="the label rule")
    text: TextSection | None = Field(None, description="the text encoder")
    window: Window | None = Field(
        None, description="label exactly the training window of a training run with these "
        "data settings, so that `ltr fit` can train on the result (`data.labels: <out>`); "
        "without it the whole log is labelled. The window and its fingerprint go into "
        "`label_config.yaml`")
    engine: Literal[ENGINES] = Field(
        "auto", description="where the log is checked and aggregated: `pandas` (in "
        "memory), `duckdb` (out of core, memory bounded by `memory_limit`), `spark` (Spark "
        "SQL, local or a cluster) or `auto` (`duckdb` when installed, else `pandas`). The "
        "labels are the same (docs/scale.md)")
    memory_limit: Str | None = Field(
        None, description="memory cap of the engine, e.g. `2GB` (the default): DuckDB "
        "spills beyond it to a temporary folder; for Spark local mode it sets the driver "
        "memory")
    spark: Spark | None = Field(None, description="`{master, conf}` for `engine: spark`")


TOP_KEYS = set(LabelRun.model_fields)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (see docs/labels.md)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set labels.behaviour_weight=0.5")
    parser.add_argument("--engine", choices=["auto", "pandas", "duckdb", "spark"], default=None,
                        help="where the log is checked and aggregated (config key engine; "
                        "docs/scale.md)")


def load_run_config(path: str | Path, overrides: list[str],
                    schema: type[Section] = LabelRun) -> dict[str, Any]:
    """Read the YAML config, apply dotted overrides, check it against ``schema`` (every
    key, before any work); return the mapping."""
    from omegaconf import OmegaConf

    from ltr.config_schema import validate
    from ltr.errors import ConfigError, DataValidationError

    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:
        raise DataValidationError(str(path), f"cannot be read as YAML: {exc}") from exc
    if not OmegaConf.is_dict(cfg):
        raise DataValidationError(str(path), f"must hold a mapping of keys, not a "
                                  f"{type(OmegaConf.to_container(cfg)).__name__}")
    for item in overrides:
        key, eq, _ = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(item or "--set", "an override is KEY=VALUE, e.g. "
                              "--set labels.behaviour_weight=0.5")
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    except Exception as exc:
        raise ConfigError(" ".join(overrides), f"bad override: {exc}") from exc
    raw = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(raw, dict):
        raise DataValidationError(str(path), "must hold a mapping")
    validate(schema, raw)
    return raw


def run(args: argparse.Namespace) -> int:
    from ltr.labels.run import label_run

    raw = load_run_config(args.config, args.set)
    if getattr(args, "engine", None):
        raw["engine"] = args.engine
    summary = label_run(raw)
    print(summary)
    return 0
