r"""Multi-gate mixture-of-experts (Ma et al., KDD 2018) for multi-task ranking.

For an input row :math:`x` (tabular encoding, optionally concatenated with text
interaction features), with a shared bottom :math:`h = B(x)`, experts
:math:`f_1..f_E` and, per task :math:`t`, a gate and a tower:

.. math::
    g_t(h) = \mathrm{softmax}(W_t h), \qquad
    y_t = T_t\Big(\sum_{e=1}^{E} g_{t,e}(h)\, f_e(h)\Big)

Each :math:`y_t` is a logit (binary tasks) or a score (graded relevance).

An optional **position tower** (PAL, Guo et al. RecSys 2019, in its additive form) adds
:math:`b(\mathrm{position})` to the click logit during training, so the click tower
learns position-free attractiveness; at inference the term is dropped.
"""

from __future__ import annotations

import torch
from torch import nn

from ltr.errors import ConfigError
from ltr.models.blocks import PositionBias, check_shape, mlp


class MMoE(nn.Module):
    """Shared bottom -> experts -> one gate and one tower per task.

    Args:
        in_dim: width of the input rows.
        tasks: task names, e.g. ``["click", "add_to_cart", "purchase", "relevance"]``.
        bottom: hidden widths of the shared bottom (may be empty).
        n_experts: number of experts (>= 1).
        expert_hidden: hidden widths of each expert; its output width is the last one.
        tower_hidden: hidden widths of each task tower.
        dropout: dropout after each hidden layer.
        position_tower: add a shallow position tower to the click logit in training.
        max_position: positions above it share the last position embedding.
    """

    def __init__(self, in_dim: int, tasks: list[str], bottom: list[int] | None = None,
                 n_experts: int = 4, expert_hidden: list[int] | None = None,
                 tower_hidden: list[int] | None = None, dropout: float = 0.1,
                 position_tower: bool = False, max_position: int = 50) -> None:
        super().__init__()
        bottom = list(bottom or [])
        expert_hidden = list(expert_hidden or [64])
        tower_hidden = list(tower_hidden or [32])
        if not isinstance(n_experts, int) or n_experts < 1:
            raise ConfigError("model.n_experts", f"must be a positive integer, got {n_experts!r}")
        check_shape(bottom, expert_hidden, tower_hidden, dropout)
        self.tasks = list(tasks)
        self.bottom = mlp(in_dim, bottom, dropout)
        d = bottom[-1] if bottom else in_dim
        self.experts = nn.ModuleList(mlp(d, expert_hidden, dropout) for _ in range(n_experts))
        self.gates = nn.ModuleDict({t: nn.Linear(d, n_experts) for t in self.tasks})
        self.towers = nn.ModuleDict({t: mlp(expert_hidden[-1], tower_hidden, dropout, 1)
                                     for t in self.tasks})
        self.position_bias = PositionBias.for_tasks(self.tasks, position_tower, max_position)

    def forward(self, x: torch.Tensor, position: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """``x`` ``[..., in_dim]`` -> ``{task: [...]}``; ``position`` ``[...]`` (1-based, 0
        = unknown) is used only in training and only with a position tower."""
        h = self.bottom(x)
        experts = torch.stack([e(h) for e in self.experts], dim=-2)  # [..., E, D]
        out = {}
        for t in self.tasks:
            gate = torch.softmax(self.gates[t](h), dim=-1).unsqueeze(-1)  # [..., E, 1]
            out[t] = self.towers[t]((gate * experts).sum(dim=-2)).squeeze(-1)
        if self.position_bias is not None:
            out = self.position_bias.add_to(out, position, self.training)
        return out

    def gate_weights(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-task expert weights ``[..., E]`` (for inspection)."""
        h = self.bottom(x)
        return {t: torch.softmax(self.gates[t](h), dim=-1) for t in self.tasks}
