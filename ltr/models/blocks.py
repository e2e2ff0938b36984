"""Small building blocks shared by the neural rankers."""

from __future__ import annotations

import torch
from torch import nn

from ltr.errors import ConfigError


def mlp(in_dim: int, hidden: list[int], dropout: float = 0.0, out_dim: int | None = None,
        activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """``Linear -> activation -> dropout`` per hidden width, then an optional output layer."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), activation()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = h
    if out_dim is not None:
        layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def check_shape(bottom: list[int], expert_hidden: list[int], tower_hidden: list[int],
                dropout: float) -> None:
    """The layer widths and dropout every multi-task backbone takes (``model.<key>``)."""
    for key, widths in (("model.bottom", bottom), ("model.expert_hidden", expert_hidden),
                        ("model.tower_hidden", tower_hidden)):
        if any(not isinstance(w, int) or w < 1 for w in widths):
            raise ConfigError(key, f"widths must be positive integers, got {widths}")
    if not expert_hidden:
        raise ConfigError("model.expert_hidden", "needs at least one layer")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError("model.dropout", f"must be in [0, 1), got {dropout}")


class PositionBias(nn.Sequential):
    r"""The position tower (PAL, Guo et al. RecSys 2019, additive form): a shallow
    embedding of the position whose output :math:`b(\mathrm{position})` is added to the
    click logit in training only, so the click tower learns position-free
    attractiveness. Positions above ``max_position`` share its embedding; 0 = unknown."""

    def __init__(self, max_position: int = 50) -> None:
        super().__init__(nn.Embedding(max_position + 1, 8), nn.ReLU(), nn.Linear(8, 1))
        self.max_position = max_position

    @classmethod
    def for_tasks(cls, tasks: list[str], enabled: bool, max_position: int
                  ) -> PositionBias | None:
        """The tower when ``enabled`` (it needs the click task), else None."""
        if not enabled:
            return None
        if "click" not in tasks:
            raise ConfigError("model.position_tower", "needs the 'click' task")
        return cls(max_position)

    def add_to(self, out: dict[str, torch.Tensor], position: torch.Tensor | None,
               training: bool) -> dict[str, torch.Tensor]:
        """``out`` with the position term on ``click`` (training with positions only)."""
        if training and position is not None:
            pos = position.clamp(0, self.max_position).long()
            out["click"] = out["click"] + self(pos).squeeze(-1)
        return out


class TabularEncoder(nn.Module):
    """Numeric features and categorical embeddings, concatenated: ``[..., F]`` and
    ``[..., C]`` -> ``[..., F + sum(emb_dim_c)]``.

    Embedding width per column: ``min(max_dim, round(1.6 * cardinality ** 0.56))`` (the
    fastai rule of thumb) unless ``emb_dim`` fixes it. Index 0 (missing) and 1 (unknown)
    are ordinary learned rows.
    """

    def __init__(self, n_numeric: int, cardinalities: list[int], emb_dim: int | None = None,
                 max_dim: int = 16) -> None:
        super().__init__()
        dims = [emb_dim or min(max_dim, max(2, round(1.6 * c ** 0.56))) for c in cardinalities]
        self.embeddings = nn.ModuleList(nn.Embedding(c, d) for c, d in
                                        zip(cardinalities, dims, strict=True))
        self.n_numeric = n_numeric
        self.out_dim = n_numeric + sum(dims)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        parts = [numeric]
        parts += [emb(categorical[..., j]) for j, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=-1)
