r"""Combining per-task losses into one training objective.

Both weightings are ``nn.Module`` s with the same interface, so a multi-task model can hold
either as a submodule (learnable parameters then reach its optimiser):

* ``forward(losses: dict[str, Tensor]) -> Tensor``: the total loss (a scalar). ``losses``
  may hold a subset of the tasks (e.g. a batch without a purchase); a name that is not a
  task raises :class:`~ltr.errors.ConfigError`.
* ``weights() -> dict[str, float]``: the current effective weight of every task, for
  logging.

``FixedWeighting``: ``total = sum_t c_t L_t`` with constant ``c_t >= 0``.

``UncertaintyWeighting`` (Kendall, Gal & Cipolla, CVPR 2018, "Multi-task learning using
uncertainty to weigh losses for scene geometry and semantics"): one learnable
log-variance ``s_t = log sigma_t^2`` per task and::

    total = sum_t exp(-s_t) * L_t + s_t

The paper writes ``1/(2 sigma^2) L + log sigma = 1/2 (exp(-s) L + s)`` for a Gaussian
(regression) likelihood and ``1/sigma^2 L + log sigma = exp(-s) L + s/2`` for a softmax
(classification) one. We use the common form without the 1/2 factors, for every task:
for fixed ``L_t`` it has the same minimiser as the regression form, ``s_t* = log L_t``
(effective weight ``exp(-s_t*) = 1 / L_t``), and differs from it only by an overall
factor 2, i.e. a doubled learning rate; and it treats ranking (classification-like) and
regression tasks alike, so tasks are compared on one scale. ``s_t`` is unconstrained
(``exp(-s)`` is always positive), and the ``+ s_t`` term stops it from growing without
bound; a task whose loss is noisier (larger at convergence) ends with a smaller weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ltr.errors import ConfigError


def _check_tasks(tasks: Sequence[str], key: str) -> list[str]:
    names = list(tasks)
    if not names:
        raise ConfigError(key, "at least one task is needed")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(key, f"task names must be non-empty strings, got {name!r}")
    if len(set(names)) != len(names):
        raise ConfigError(key, f"duplicate task names in {names}")
    return names


def _number(value: object, key: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(key, f"{what} must be finite, got {value!r}")
    return value


class TaskWeighting(nn.Module):
    """Base class: holds the task names and checks the names passed to ``forward``."""

    def __init__(self, tasks: Sequence[str], key: str) -> None:
        super().__init__()
        self.tasks: list[str] = _check_tasks(tasks, key)
        self.key = key
        self._index = {name: i for i, name in enumerate(self.tasks)}

    def _indices(self, losses: Mapping[str, Tensor]) -> list[int]:
        if not losses:
            raise ValueError("losses is empty: pass at least one task loss")
        out = []
        for name in losses:
            if name not in self._index:
                raise ConfigError(f"{self.key}.{name}",
                                  f"unknown task '{name}'; tasks are {self.tasks}")
            out.append(self._index[name])
        return out

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def weights(self) -> dict[str, float]:  # pragma: no cover
        raise NotImplementedError


class FixedWeighting(TaskWeighting):
    """``total = sum_t c_t L_t`` with constant weights ``c_t >= 0``.

    Args:
        weights: ``{task: weight}``. With ``tasks`` given, every name must be one of them
            and tasks not listed get ``default``; without ``tasks`` the tasks are the keys
            of ``weights``.
        tasks: the model's task names.
        default: the weight of a task not in ``weights``.
        key: config key the weights come from, used in error messages
            (``"<key>.<task>"``).

    Raises:
        ConfigError: unknown task name, negative, non-finite or non-numeric weight.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        tasks: Sequence[str] | None = None,
        *,
        default: float = 1.0,
        key: str = "model.task_weights",
    ) -> None:
        super().__init__(list(weights) if tasks is None else tasks, key)
        default = _number(default, key, "the default weight")
        if default < 0:
            raise ConfigError(key, f"the default weight must be >= 0, got {default}")
        coef = dict.fromkeys(self.tasks, default)
        for name, value in weights.items():
            where = f"{key}.{name}"
            if name not in coef:
                raise ConfigError(where, f"unknown task '{name}'; tasks are {self.tasks}")
            value = _number(value, where, "the weight")
            if value < 0:
                raise ConfigError(where, f"the weight must be >= 0, got {value}")
            coef[name] = value
        self._coef = coef

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        """``sum_t c_t L_t`` over the tasks present in ``losses``."""
        self._indices(losses)
        terms = [self._coef[name] * loss.reshape(()) for name, loss in losses.items()]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def weights(self) -> dict[str, float]:
        """``{task: c_t}``."""
        return dict(self._coef)


class UncertaintyWeighting(TaskWeighting):
    r"""Learned homoscedastic-uncertainty weighting (Kendall et al., 2018).

    ``total = sum_t exp(-s_t) L_t + s_t`` with a learnable ``s_t = log sigma_t^2`` per task
    (see the module doc for the dropped 1/2 factor). Only tasks present in ``losses``
    contribute, their ``s_t`` included.

    Args:
        tasks: task names.
        init: initial ``s_t``: one number for all tasks or ``{task: s_t}`` (missing tasks
            start at 0, i.e. weight 1).
        key: config key for error messages.

    Attributes:
        log_vars: ``[T]`` parameter ``s``, in the order of ``tasks``.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        init: float | Mapping[str, float] = 0.0,
        *,
        key: str = "model.task_weights",
    ) -> None:
        super().__init__(tasks, key)
        if isinstance(init, Mapping):
            start = [0.0] * len(self.tasks)
            for name, value in init.items():
                where = f"{key}.{name}"
                if name not in self._index:
                    raise ConfigError(where, f"unknown task '{name}'; tasks are {self.tasks}")
                start[self._index[name]] = _number(value, where, "the initial log-variance")
        else:
            start = [_number(init, key, "the initial log-variance")] * len(self.tasks)
        self.log_vars = nn.Parameter(torch.tensor(start, dtype=torch.float32))

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        """``sum_t exp(-s_t) L_t + s_t`` over the tasks present in ``losses``."""
        idx = self._indices(losses)
        s = self.log_vars[torch.tensor(idx, device=self.log_vars.device)]
        stacked = torch.stack([loss.to(s.dtype).reshape(()) for loss in losses.values()])
        return (torch.exp(-s) * stacked + s).sum()

    def weights(self) -> dict[str, float]:
        """``{task: exp(-s_t)}``, the current effective weights."""
        w = torch.exp(-self.log_vars.detach()).cpu().tolist()
        return dict(zip(self.tasks, w, strict=True))

    def log_variances(self) -> dict[str, float]:
        """``{task: s_t}``."""
        return dict(zip(self.tasks, self.log_vars.detach().cpu().tolist(), strict=True))
