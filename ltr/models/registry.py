"""Multi-task backbones by name: the one place a new one is registered.

A backbone maps rows ``[..., in_dim]`` to one output per task and is built as
``cls(in_dim, tasks, bottom=..., expert_hidden=..., tower_hidden=..., dropout=...,
position_tower=..., **backbone_args)``; it exposes ``towers`` (one ``nn.Sequential`` per
task ending in a ``Linear(..., 1)``, which the Lightning module zero-initialises so that
every output starts at the zero-shot cosine). ``model.backbone`` picks one,
``model.backbone_args`` passes its own arguments.
"""

from __future__ import annotations

import importlib

from torch import nn

from ltr.errors import ConfigError

BACKBONES: dict[str, str] = {
    "mmoe": "ltr.models.mmoe:MMoE",  # args: n_experts
    "ple": "ltr.models.ple:PLE",  # args: n_shared, n_task, levels
}


def build_backbone(name: str, in_dim: int, tasks: list[str], args: dict | None = None,
                   **common) -> nn.Module:
    """The backbone registered as ``name`` (errors name ``model.backbone`` /
    ``model.backbone_args``)."""
    if name not in BACKBONES:
        raise ConfigError("model.backbone", f"unknown backbone {name!r}; choose one of "
                          f"{sorted(BACKBONES)}")
    module, cls = BACKBONES[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls)(in_dim, tasks, **common,
                                                             **(args or {}))
    except TypeError as exc:
        raise ConfigError("model.backbone_args", f"bad arguments for '{name}': {exc}") from exc
