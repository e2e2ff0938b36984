r"""Listwise losses: a cross-entropy between a target distribution and softmax(scores).

For list ``b`` with real items ``i``, ``p_i = exp(s_i) / sum_{j real} exp(s_j)``, a target
distribution ``t_i`` over the real items (sums to 1) and per-item weights ``w_i`` (1 when
not given)::

    L_b = - sum_{i real} w_i * t_i * log p_i

Weights are applied to each item's term *after* the target is normalised (so an inverse
propensity weight on the one clicked item of a list does scale the loss; normalising
``w_i y_i`` instead, as rax does, would cancel it). With per-list weights or no weights
the two readings agree.

A list is included when it has a real item with ``y_i > 0``; lists with no positive label
(including empty lists) hold 0 and are left out of the mean.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ltr.losses._core import (
    Batch,
    Reduction,
    finish,
    masked_log_softmax,
    prepare,
    safe_div,
    weighted_item_sum,
)


def _has_positive(b: Batch) -> Tensor:
    return (b.mask & (b.labels > 0)).any(dim=1)


def _cross_entropy(target: Tensor, b: Batch) -> Tensor:
    logp = masked_log_softmax(b.scores, b.mask)
    return -weighted_item_sum(target * logp, b)


def softmax_ce(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Softmax cross-entropy with the labels normalised to sum 1 over the list.

    ``t_i = y_i / sum_{j real} y_j``, ``L_b = -sum_i w_i t_i log softmax(s)_i``.

    For binary labels this is the classic "softmax loss" (Bruch et al., 2019; rax's
    ``softmax_loss``): the mean negative log-probability of the positives. Its minimum is
    the entropy of ``t``, reached when ``softmax(s) = t``. Included: lists with a
    positive label.
    """
    b = prepare(scores, labels, mask, weights, reduction)
    total = b.labels.sum(dim=1, keepdim=True)
    target = safe_div(b.labels, total.expand_as(b.labels))
    return finish(_cross_entropy(target, b), _has_positive(b), b, reduction)


def listnet(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    temperature: float = 1.0,
) -> Tensor:
    r"""ListNet top-1 loss (Cao et al., ICML 2007).

    ``t = softmax(y / T)`` over the list's real items (``T = temperature``),
    ``L_b = -sum_i w_i t_i log softmax(s)_i``: the cross-entropy between the top-one
    probabilities of the labels and of the scores. Unlike :func:`softmax_ce` every item,
    label 0 included, gets target mass ``exp(0) / Z``; a small ``T`` sharpens the target
    towards the best-labelled items. Included: lists with a positive label.

    Raises:
        ValueError: ``temperature`` is not a positive finite number.
    """
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)
            and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    b = prepare(scores, labels, mask, weights, reduction)
    target = masked_log_softmax(b.labels / temperature, b.mask).exp()
    target = torch.where(b.mask, target, torch.zeros_like(target))
    return finish(_cross_entropy(target, b), _has_positive(b), b, reduction)
