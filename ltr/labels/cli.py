"""``ltr label --config configs/labels/<name>.yaml``: derive graded labels from a log.

Config keys (YAML; override any with ``--set key.sub=value``):

``data``
    folder with products/customers/impressions (and optional judgements) tables.
``out``
    output folder: labels.parquet, label_config.yaml, report/.
``ground_truth``
    optional folder with the simulator's ``examination.csv``: the estimated position
    bias is compared with it.
``label_judged_pool``
    also label judged (query, product) pairs never shown (they rest on similarity).
``disagreement_threshold``
    gap between normalised click and text signals that counts as a disagreement.
``labels``
    :class:`ltr.labels.config.LabelConfig` keys.
``text``
    :class:`ltr.text.TextConfig` keys (model_name, product_fields, cache_dir, ...).
``window``
    optional ``{split: {history_days, valid_days, test_days}, folds, fold, seed}``: label
    exactly the training window of a training run with these data settings, so that
    ``ltr fit`` can train on the result (``data.labels: <out>``); without it the whole
    log is labelled. The window and its fingerprint go into ``label_config.yaml``.
``engine``
    where the log is checked and aggregated: ``pandas`` (in memory), ``duckdb`` (out of
    core, memory bounded by ``memory_limit``), ``spark`` (Spark SQL, local or a cluster)
    or ``auto`` (default: ``duckdb`` when installed and no ``window`` is set, else
    ``pandas``). The labels are the same (docs/scale.md).
``memory_limit``
    memory cap of the engine, e.g. ``2GB`` (default): DuckDB spills beyond it to a
    temporary folder; for Spark local mode it sets the driver memory.
``spark``
    optional ``{master, conf}`` for ``engine: spark``: the master URL (default
    ``local[N]``, or the one spark-submit sets) and extra Spark settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

TOP_KEYS = {"data", "out", "ground_truth", "label_judged_pool", "disagreement_threshold",
            "labels", "text", "window", "engine", "memory_limit", "spark"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (see docs/labels.md)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set labels.behaviour_weight=0.5")
    parser.add_argument("--engine", choices=["auto", "pandas", "duckdb", "spark"], default=None,
                        help="where the log is checked and aggregated (config key engine; "
                        "docs/scale.md)")


def load_run_config(path: str | Path, overrides: list[str], top_keys: set[str] | None = None,
                    required: tuple[str, ...] = ("data", "out")) -> dict[str, Any]:
    """Read the YAML config, apply dotted overrides, check the top-level keys."""
    top_keys = TOP_KEYS if top_keys is None else top_keys
    from omegaconf import OmegaConf

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
    unknown = sorted(set(raw) - top_keys)
    if unknown:
        raise ConfigError(unknown[0], f"unknown key; known keys: {sorted(top_keys)}")
    for key in required:
        if not raw.get(key):
            raise ConfigError(key, "is required")
    return raw


def run(args: argparse.Namespace) -> int:
    from ltr.labels.run import label_run

    raw = load_run_config(args.config, args.set)
    if getattr(args, "engine", None):
        raw["engine"] = args.engine
    summary = label_run(raw)
    print(summary)
    return 0
