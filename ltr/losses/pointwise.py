r"""Pointwise losses: each item scored on its own, averaged over the real items of its list.

For list ``b`` with ``n_b`` real items, per-item loss ``l(s_i, y_i)`` and per-item weights
``w_i`` (1 when not given)::

    L_b = (1 / n_b) * sum_{i real} w_i * l(s_i, y_i)

A list is included when ``n_b > 0`` (lists whose labels are all 0 are included: for a
pointwise loss the negatives are informative). Lists are then reduced as described in
:mod:`ltr.losses._core` (the batch mean is over lists, so every query counts equally,
as in the metrics).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ltr.losses._core import Reduction, finish, prepare, safe_div, weighted_item_sum


def bce(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Binary cross-entropy with logits (sigmoid cross-entropy).

    ``l(s, y) = -y log sigmoid(s) - (1 - y) log(1 - sigmoid(s))
    = max(s, 0) - s y + log(1 + exp(-|s|))``, averaged over the list's real items:
    ``L_b = (1/n_b) sum_i w_i l(s_i, y_i)``.

    Labels must lie in ``[0, 1]`` (click / add-to-cart / purchase, or soft labels); they
    are used as given, not binarised. Included: lists with at least one real item.
    """
    b = prepare(scores, labels, mask, weights, reduction)
    per_item = F.binary_cross_entropy_with_logits(b.scores, b.labels, reduction="none")
    values = safe_div(weighted_item_sum(per_item, b), b.n_items)
    return finish(values, b.n_items > 0, b, reduction)


def mse(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Mean squared error between scores and (graded) labels.

    ``l(s, y) = (s - y)^2``, averaged over the list's real items:
    ``L_b = (1/n_b) sum_i w_i (s_i - y_i)^2``. Included: lists with at least one real item.
    """
    b = prepare(scores, labels, mask, weights, reduction)
    per_item = (b.scores - b.labels).square()
    values = safe_div(weighted_item_sum(per_item, b), b.n_items)
    return finish(values, b.n_items > 0, b, reduction)
