"""Backbones by name: the one place a new one is registered.

Two kinds, both built and trained by :class:`~ltr.training.module.LtrModule`
(``model.backbone`` picks one, ``model.backbone_args`` passes its own arguments):

* **multi-task** (:data:`BACKBONES`): maps rows ``[..., in_dim]`` (the module's tabular
  encoding and text features) to one output per task and is built as
  ``cls(in_dim, tasks, bottom=..., expert_hidden=..., tower_hidden=..., dropout=...,
  position_tower=..., **backbone_args)``; it exposes ``towers`` (one ``nn.Sequential`` per
  task ending in a ``Linear(..., 1)``, which the Lightning module zero-initialises so that
  every output starts at the zero-shot cosine).
* **single-score** (:data:`SCORERS`): a row scorer with its own categorical embeddings,
  ``forward(numeric [N, F], categorical [N, C]) -> [N]``, built as
  ``cls(n_numeric, cardinalities, **backbone_args, config_key=...)``; the module trains
  its one score on the relevance task (the DCN-V2, TabNet and FT-Transformer baselines,
  :mod:`ltr.rankers.neural`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from torch import nn

from ltr.errors import ConfigError

BACKBONES: dict[str, str] = {
    "mmoe": "ltr.models.mmoe:MMoE",  # args: n_experts
    "ple": "ltr.models.ple:PLE",  # args: n_shared, n_task, levels
}
SCORERS: dict[str, str] = {
    "dcnv2": "ltr.models.dcnv2:DCNV2",
    "tabnet": "ltr.models.tabular_backbones:TabNetScorer",
    "ft_transformer": "ltr.models.tabular_backbones:FTTransformerScorer",
}


def _load(spec: str) -> type[nn.Module]:
    """The class of a ``"module:Class"`` registry entry."""
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)


def build_backbone(name: str, in_dim: int, tasks: list[str], args: dict | None = None,
                   **common: Any) -> nn.Module:
    """The multi-task backbone registered as ``name`` (errors name ``model.backbone`` /
    ``model.backbone_args``)."""
    if name not in BACKBONES:
        raise ConfigError("model.backbone", f"{name!r} is not a multi-task backbone; choose "
                          f"one of {sorted(BACKBONES)}")
    try:
        return _load(BACKBONES[name])(in_dim, tasks, **common, **(args or {}))
    except TypeError as exc:
        raise ConfigError("model.backbone_args", f"bad arguments for '{name}': {exc}") from exc


def build_scorer(name: str, n_numeric: int, cardinalities: Sequence[int],
                 args: dict | None = None, config_key: str = "model.backbone_args"
                 ) -> nn.Module:
    """The single-score backbone registered as ``name``; errors name ``config_key``."""
    if name not in SCORERS:
        raise ConfigError("model.backbone", f"{name!r} is not a single-score backbone; "
                          f"choose one of {sorted(SCORERS)}")
    try:
        return _load(SCORERS[name])(n_numeric, list(cardinalities), **(args or {}),
                                    config_key=config_key)
    except TypeError as exc:
        raise ConfigError(config_key, f"bad arguments for '{name}': {exc}") from exc
