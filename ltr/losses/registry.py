"""Losses by name, for configs: ``LOSSES`` and :func:`get_loss`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor

from ltr.errors import ConfigError
from ltr.losses.lambda_loss import lambda_ndcg
from ltr.losses.listwise import listnet, softmax_ce
from ltr.losses.pointwise import bce, mse

LossFn = Callable[..., Tensor]

LOSSES: dict[str, LossFn] = {
    "bce": bce,
    "mse": mse,
    "softmax_ce": softmax_ce,
    "listnet": listnet,
    "lambda_ndcg": lambda_ndcg,
}

# keyword-only parameters every loss shares; they are passed per call, not configured
_CALL_ARGS = frozenset({"weights", "reduction"})


def loss_options(name: str) -> tuple[str, ...]:
    """The configurable options of a registered loss (e.g. ``("k", "sigma", "mu")``)."""
    params = inspect.signature(LOSSES[name]).parameters.values()
    return tuple(
        p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in _CALL_ARGS
    )


def get_loss(name: str, key: str = "loss", **options: Any) -> LossFn:
    """The loss registered as ``name``, with ``options`` bound when given.

    Names are matched case-insensitively after stripping spaces. ``options`` are the
    loss's own keyword-only parameters (e.g. ``get_loss("lambda_ndcg", k=10)``,
    ``get_loss("listnet", temperature=0.5)``); the result keeps the common signature
    ``loss(scores, labels, mask, *, weights=None, reduction="mean")``.

    Raises:
        ConfigError: unknown name (naming ``key``), or an option the loss does not take
            (naming ``key.<option>``).
    """
    canonical = name.strip().lower() if isinstance(name, str) else None
    if canonical not in LOSSES:
        raise ConfigError(key, f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    fn = LOSSES[canonical]
    if not options:
        return fn
    allowed = loss_options(canonical)
    for opt in options:
        if opt not in allowed:
            choices = f"it takes {list(allowed)}" if allowed else "it takes no options"
            raise ConfigError(f"{key}.{opt}", f"loss '{canonical}' has no option '{opt}'; "
                                              f"{choices}")
    return functools.partial(fn, **options)
