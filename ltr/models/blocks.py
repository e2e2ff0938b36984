"""Small building blocks shared by the neural rankers."""

from __future__ import annotations

import torch
from torch import nn


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
