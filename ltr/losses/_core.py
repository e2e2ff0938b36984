r"""Shared plumbing of every ranking loss: input checks, masking, weights and reduction.

Every loss in :mod:`ltr.losses` has the one signature
``loss(scores, labels, mask, *, weights=None, reduction="mean", **options)`` and works on
the padded layout of :mod:`ltr.data.groups`:

* ``scores`` ``[B, L]`` float: logits / ranking scores, higher ranks first;
* ``labels`` ``[B, L]``: binary 0/1 or graded ``>= 0`` (any numeric or bool dtype);
* ``mask`` ``[B, L]`` bool: True where a real item sits (``None`` means all real);
* ``weights``: ``None``, per-item ``[B, L]`` or per-list ``[B]`` (told apart by rank).

Masking rule
    Padded slots never influence the value or the gradient, whatever they hold (NaN and
    inf included). Scores, labels and weights are replaced at padded slots with
    ``torch.where`` (never multiplied by the mask, since ``0 * nan = nan``), every
    denominator is guarded, and excluded lists are cut with ``torch.where`` too, so the
    gradient at a padded slot or of an excluded list is exactly 0.

Reduction
    Each loss first computes one value per list, ``l_b`` (``[B]``), and a flag saying
    whether list ``b`` is *included*. Excluded lists hold 0. Then, with per-list weights
    ``v_b`` (1 when not given),

    * ``"none"``: ``[B]`` the values ``v_b l_b`` (0 where excluded);
    * ``"sum"``: ``sum_b v_b l_b``;
    * ``"mean"``: ``sum_b v_b l_b / #included``, and 0 (with a zero gradient) when no list
      is included. Weights scale contributions; they never change which lists count, and
      the mean is not normalised by the weight sum (so inverse propensity weights stay
      unbiased).

Computation happens in at least float32 (half-precision scores are widened), and the
result has that dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


@dataclass(frozen=True)
class Batch:
    """Validated inputs with padded slots neutralised.

    Attributes:
        scores: ``[B, L]`` scores, 0 at padded slots.
        labels: ``[B, L]`` float labels, 0 at padded slots.
        mask: ``[B, L]`` bool.
        item_weights: ``[B, L]`` per-item weights, 0 at padded slots, or None.
        list_weights: ``[B]`` per-list weights, or None.
        n_items: ``[B]`` number of real items per list (float).
    """

    scores: Tensor
    labels: Tensor
    mask: Tensor
    item_weights: Tensor | None
    list_weights: Tensor | None
    n_items: Tensor


def prepare(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    weights: Tensor | None,
    reduction: str,
) -> Batch:
    """Check shapes and the reduction, and neutralise padded slots.

    Raises:
        ValueError: ``scores`` not 2-D, ``labels``/``mask`` of another shape, ``weights``
            neither ``[B]`` nor ``[B, L]``, or an unknown ``reduction``.
        TypeError: ``scores`` is not a floating-point tensor.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    if not isinstance(scores, Tensor) or not scores.is_floating_point():
        raise TypeError("scores must be a floating-point torch.Tensor")
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [lists, items], got shape {tuple(scores.shape)}")
    shape = scores.shape
    if labels.shape != shape:
        raise ValueError(f"labels shape {tuple(labels.shape)} != scores shape {tuple(shape)}")
    if mask is None:
        mask = torch.ones(shape, dtype=torch.bool, device=scores.device)
    elif mask.shape != shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != scores shape {tuple(shape)}")
    mask = mask.to(dtype=torch.bool)
    dtype = torch.promote_types(scores.dtype, torch.float32)
    zero = torch.zeros((), dtype=dtype, device=scores.device)
    s = torch.where(mask, scores.to(dtype), zero)
    y = torch.where(mask, labels.to(dtype), zero)
    item_w: Tensor | None = None
    list_w: Tensor | None = None
    if weights is not None:
        w = weights.to(device=scores.device, dtype=dtype)
        if w.ndim == 2 and w.shape == shape:
            item_w = torch.where(mask, w, zero)
        elif w.ndim == 1 and w.shape[0] == shape[0]:
            list_w = w
        else:
            raise ValueError(
                f"weights must be per-item {list(shape)} or per-list [{shape[0]}], "
                f"got shape {list(w.shape)}"
            )
    n_items = mask.sum(dim=1).to(dtype)
    return Batch(s, y, mask, item_w, list_w, n_items)


def finish(values: Tensor, included: Tensor, batch: Batch, reduction: str) -> Tensor:
    """Zero the excluded lists, apply per-list weights and reduce (see the module doc).

    ``values`` is ``[B]`` and must be finite wherever ``included`` is True; elsewhere it
    may hold anything, provided its backward stays finite under a zero upstream gradient.
    """
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    out = torch.where(included, values, zero)
    if batch.list_weights is not None:
        out = out * torch.where(included, batch.list_weights, zero)
    if reduction == "none":
        return out
    total = out.sum()
    if reduction == "sum":
        return total
    count = included.sum().clamp_min(1).to(values.dtype)
    return total / count


def safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0``, else 0; finite forward and backward."""
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def masked_log_softmax(x: Tensor, mask: Tensor) -> Tensor:
    """``log softmax(x)`` over the real items of each row; 0 at padded slots.

    Padded slots get ``-inf`` before the softmax (so they take no probability mass and
    receive no gradient); a row with no real item is computed over zeros instead, so it
    stays finite (such rows are excluded by the callers).
    """
    row_has_item = mask.any(dim=1, keepdim=True)
    neg_inf = torch.tensor(float("-inf"), dtype=x.dtype, device=x.device)
    fill = torch.where(row_has_item, neg_inf, torch.zeros((), dtype=x.dtype, device=x.device))
    logp = torch.log_softmax(torch.where(mask, x, fill), dim=1)
    return torch.where(mask, logp, torch.zeros((), dtype=x.dtype, device=x.device))


def weighted_item_sum(per_item: Tensor, batch: Batch) -> Tensor:
    """``sum_i w_i x_i`` over the real items of each list (``w_i = 1`` without item weights)."""
    zero = torch.zeros((), dtype=per_item.dtype, device=per_item.device)
    x = torch.where(batch.mask, per_item, zero)
    if batch.item_weights is not None:
        x = x * batch.item_weights
    return x.sum(dim=1)
