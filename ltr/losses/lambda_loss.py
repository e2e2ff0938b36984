r"""NDCG-driven pairwise loss from the LambdaLoss framework (Wang et al., CIKM 2018).

Notation for one list: real items ``i``, labels ``y_i``, scores ``s_i``; ``r_i`` the 1-based
rank of item ``i`` when the real items are sorted by descending *current* score (ties
broken by slot order, as in :mod:`ltr.metrics.ranking`; ranks are not differentiated
through); gain ``g(y) = 2^y - 1``; discount ``D(r) = log2(1 + r)``; ``IDCG@k`` the DCG@k of
the labels sorted descending; normalised gains ``G_i = g(y_i) / IDCG@k``.

The loss sums, over the pairs of real items with different labels (``y_i > y_j``), a
weighted base-2 pairwise logistic loss::

    L_b = sum_{y_i > y_j} w_i * W_ij * log2(1 + exp(-sigma (s_i - s_j)))

    W_ij = (rho_ij + mu * delta_ij) * |G_i - G_j|
    rho_ij   = |1/D(r_i) - 1/D(r_j)|            (1/D(r) := 0 for r > k)
    delta_ij = 1/D(|r_i - r_j|) - 1/D(|r_i - r_j| + 1)

* ``mu = 0`` (default) is the **LambdaRank-style loss**: ``W_ij = |delta NDCG@k_ij|``, the
  change of NDCG@k when items ``i`` and ``j`` swap ranks, so a misordered pair near the
  top weighs more than the same pair near the bottom.
* ``mu > 0`` is **NDCG-Loss2++** of the paper (``mu = 10`` there).

``w_i`` is the per-item weight of the *more relevant* item of the pair (e.g. the inverse
propensity of the clicked item), 1 when not given.

With a cut-off ``k`` only pairs where at least one item ranks in the current top ``k``
count, and ``rho`` uses the truncated discount. A list is included when it has a pair of
real items with different labels (so lists with no positive label, a single item or all
labels equal hold 0 and are left out of the mean); the top-ranked item always forms such a
pair when one exists, so ``k`` never changes which lists are included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ltr.losses._core import Batch, Reduction, finish, prepare, safe_div

_LN2 = math.log(2.0)


def current_ranks(scores: Tensor, mask: Tensor) -> Tensor:
    """``[B, L]`` 1-based ranks by descending score, real items first, ties by slot order.

    Padded slots take the ranks after every real item. No gradient flows through.
    """
    with torch.no_grad():
        s = torch.where(mask, scores, torch.zeros_like(scores))
        by_score = torch.sort(s, dim=1, descending=True, stable=True).indices
        padded_last = torch.sort((~mask).gather(1, by_score).to(torch.uint8), dim=1,
                                 stable=True).indices
        order = by_score.gather(1, padded_last)
        positions = torch.arange(1, s.shape[1] + 1, device=s.device).expand_as(order)
        return torch.empty_like(order).scatter_(1, order, positions)


def _inv_discount(ranks: Tensor, k: int | None, dtype: torch.dtype) -> Tensor:
    inv = 1.0 / torch.log2(1.0 + ranks.to(dtype))
    if k is not None:
        inv = torch.where(ranks <= k, inv, torch.zeros_like(inv))
    return inv


def _pair_weights(b: Batch, k: int | None, mu: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(W, pairs, included)``: ``[B, L, L]`` pair weights (0 off ``pairs``), the pair
    mask and the ``[B]`` included flags."""
    y, m = b.labels, b.mask
    dtype = y.dtype
    with torch.no_grad():
        ranks = current_ranks(b.scores, m)
        width = y.shape[1]
        ideal = torch.sort(y, dim=1, descending=True).values
        positions = torch.arange(1, width + 1, device=y.device).expand_as(ideal)
        idcg = ((torch.exp2(ideal) - 1.0) * _inv_discount(positions, k, dtype)).sum(dim=1)
        gains = safe_div(torch.exp2(y) - 1.0, idcg[:, None].expand_as(y))
        real = m[:, :, None] & m[:, None, :]
        pairs = real & (y[:, :, None] > y[:, None, :])
        included = pairs.flatten(1).any(dim=1)
        if k is not None:
            top = ranks <= k
            pairs = pairs & (top[:, :, None] | top[:, None, :])
        inv = _inv_discount(ranks, k, dtype)
        weight = (inv[:, :, None] - inv[:, None, :]).abs()
        if mu:
            dist = (ranks[:, :, None] - ranks[:, None, :]).abs().clamp_min(1).to(dtype)
            delta = 1.0 / torch.log2(1.0 + dist) - 1.0 / torch.log2(2.0 + dist)
            weight = weight + mu * delta
        weight = weight * (gains[:, :, None] - gains[:, None, :]).abs()
        if b.item_weights is not None:
            weight = weight * b.item_weights[:, :, None]
        weight = torch.where(pairs, weight, torch.zeros_like(weight))
    return weight, pairs, included


def lambda_ndcg(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    k: int | None = None,
    sigma: float = 1.0,
    mu: float = 0.0,
) -> Tensor:
    r"""LambdaLoss NDCG loss: ``|delta NDCG@k|``-weighted pairwise logistic loss.

    ``L_b = sum_{y_i > y_j} w_i (rho_ij + mu delta_ij) |G_i - G_j|
    log2(1 + exp(-sigma (s_i - s_j)))`` with exponential gain ``2^y - 1``, ``log2``
    discount and gains normalised by the list's ideal DCG@k (see the module doc for the
    symbols). ``mu = 0`` (default) is the LambdaRank-style loss, whose pair weight is
    ``|delta NDCG@k|`` of swapping the two items at their current ranks; ``mu = 10`` is
    NDCG-Loss2++ of Wang et al. (2018). Pairs only between real items with different
    labels; per list it is a sum over pairs (not a mean).

    Args:
        k: NDCG cut-off; ``None`` uses the whole list.
        sigma: slope of the pairwise logistic loss.
        mu: weight of the NDCG-Loss2 term ``delta_ij`` (0 = LambdaRank weighting).

    Raises:
        ValueError: ``k`` not a positive integer, ``sigma`` not positive, ``mu`` negative.
    """
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"cut-off k must be a positive integer or None, got {k!r}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    if not (isinstance(mu, (int, float)) and math.isfinite(mu) and mu >= 0):
        raise ValueError(f"mu must be a non-negative number, got {mu!r}")
    b = prepare(scores, labels, mask, weights, reduction)
    weight, pairs, included = _pair_weights(b, k, mu)
    s = b.scores
    diff = s[:, :, None] - s[:, None, :]
    pair_loss = F.softplus(-sigma * diff) / _LN2
    per_pair = torch.where(pairs, weight * pair_loss, torch.zeros_like(pair_loss))
    return finish(per_pair.flatten(1).sum(dim=1), included, b, reduction)
