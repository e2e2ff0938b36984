r"""Progressive Layered Extraction (Tang et al., RecSys 2020) for multi-task ranking.

MMoE (:mod:`ltr.models.mmoe`) lets every task mix the same experts, and tasks that pull in
different directions (click vs relevance) fight over them: the *seesaw* effect. PLE keeps,
at each extraction level :math:`l`, ``n_shared`` shared experts :math:`S^l` and
``n_task`` experts :math:`E^l_t` per task. Task :math:`t`'s gate mixes only its own and
the shared experts,

.. math::
    h^{l}_t = \sum_{e \in E^l_t \cup S^l} g^l_{t,e}(h^{l-1}_t)\, e(h^{l-1}_t),
    \qquad g^l_t = \mathrm{softmax}(W^l_t h^{l-1}_t),

and, below the last level, a shared gate mixes *every* expert for the shared input of the
next level, :math:`h^l_s = \sum_{e \in S^l \cup \bigcup_t E^l_t} g^l_{s,e}(h^{l-1}_s)\,
e(h^{l-1}_s)` (the task experts read the task's own input, the shared ones the shared
input; every expert is computed once per level). After ``levels`` levels one tower per
task gives its output. With ``levels=1``
this is the Customized Gate Control (CGC) model of the paper.

Same inputs, outputs and position tower as :class:`ltr.models.mmoe.MMoE`, so the Lightning
module, the losses and the ranking score treat both alike.
"""

from __future__ import annotations

import torch
from torch import nn

from ltr.errors import ConfigError
from ltr.models.blocks import PositionBias, check_shape, mlp


class _Level(nn.Module):
    """One extraction level: task and shared experts, task gates and (below the top) a
    shared gate."""

    def __init__(self, in_dim: int, tasks: list[str], n_shared: int, n_task: int,
                 hidden: list[int], dropout: float, last: bool) -> None:
        super().__init__()
        self.tasks = tasks
        self.shared = nn.ModuleList(mlp(in_dim, hidden, dropout) for _ in range(n_shared))
        self.own = nn.ModuleDict({t: nn.ModuleList(mlp(in_dim, hidden, dropout)
                                                   for _ in range(n_task)) for t in tasks})
        self.gates = nn.ModuleDict({t: nn.Linear(in_dim, n_task + n_shared) for t in tasks})
        self.shared_gate = None if last else nn.Linear(in_dim, n_shared + n_task * len(tasks))

    @staticmethod
    def _mix(gate: nn.Linear, x: torch.Tensor, experts: list[torch.Tensor]) -> torch.Tensor:
        w = torch.softmax(gate(x), dim=-1).unsqueeze(-1)  # [..., E, 1]
        return (w * torch.stack(experts, dim=-2)).sum(dim=-2)

    def forward(self, task_in: dict[str, torch.Tensor], shared_in: torch.Tensor
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        shared = [e(shared_in) for e in self.shared]  # shared experts read the shared input
        own = {t: [e(task_in[t]) for e in self.own[t]] for t in self.tasks}
        out = {t: self._mix(self.gates[t], task_in[t], own[t] + shared) for t in self.tasks}
        shared_out = None
        if self.shared_gate is not None:  # every expert's output, for the next level
            every = shared + [e for t in self.tasks for e in own[t]]
            shared_out = self._mix(self.shared_gate, shared_in, every)
        return out, shared_out


class PLE(nn.Module):
    """Shared bottom -> ``levels`` extraction levels -> one tower per task.

    Args:
        in_dim: width of the input rows; tasks: task names.
        bottom: hidden widths of a shared bottom MLP before the first level (may be empty).
        n_shared, n_task: shared experts, and experts of each task, per level (>= 1).
        levels: extraction levels (1: CGC).
        expert_hidden: hidden widths of each expert; its output width is the last one.
        tower_hidden: hidden widths of each task tower. dropout: after each hidden layer.
        position_tower, max_position: as in :class:`ltr.models.mmoe.MMoE`.
    """

    def __init__(self, in_dim: int, tasks: list[str], bottom: list[int] | None = None,
                 n_shared: int = 2, n_task: int = 1, levels: int = 2,
                 expert_hidden: list[int] | None = None, tower_hidden: list[int] | None = None,
                 dropout: float = 0.1, position_tower: bool = False,
                 max_position: int = 50) -> None:
        super().__init__()
        bottom = list(bottom or [])
        expert_hidden = list(expert_hidden or [64])
        tower_hidden = list(tower_hidden or [32])
        for key, value in (("model.backbone_args.n_shared", n_shared),
                           ("model.backbone_args.n_task", n_task),
                           ("model.backbone_args.levels", levels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(key, f"must be a positive integer, got {value!r}")
        check_shape(bottom, expert_hidden, tower_hidden, dropout)
        self.tasks = list(tasks)
        self.bottom = mlp(in_dim, bottom, dropout)
        d = bottom[-1] if bottom else in_dim
        self.levels = nn.ModuleList()
        for level in range(levels):
            self.levels.append(_Level(d, self.tasks, n_shared, n_task, expert_hidden, dropout,
                                      last=level == levels - 1))
            d = expert_hidden[-1]
        self.towers = nn.ModuleDict({t: mlp(d, tower_hidden, dropout, 1) for t in self.tasks})
        self.position_bias = PositionBias.for_tasks(self.tasks, position_tower, max_position)

    def forward(self, x: torch.Tensor, position: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """``x`` ``[..., in_dim]`` -> ``{task: [...]}`` (position term in training only)."""
        h = self.bottom(x)
        task_in, shared_in = {t: h for t in self.tasks}, h
        for level in self.levels:
            task_in, shared_in = level(task_in, shared_in)
        out = {t: self.towers[t](task_in[t]).squeeze(-1) for t in self.tasks}
        if self.position_bias is not None:
            out = self.position_bias.add_to(out, position, self.training)
        return out
