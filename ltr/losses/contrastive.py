r"""Localized Contrastive Estimation (Gao, Dai & Callan, ECIR 2021) with in-batch negatives,
for training a text encoder on the lists of a batch.

For list :math:`b` with query embedding :math:`q_b` and product embeddings
:math:`p_{b1}..p_{bL}` (unit-normalised), graded labels :math:`y_{bi}`: the *positive*
:math:`i^+_b = \arg\max_i y_{bi}` (the first, in slot order, among ties) counts only when
:math:`y_{bi^+} > \min_i y_{bi}` (the list has something better than something else). Its
*negatives* are the products of the same list with a lower label (the hard negatives of
the query's own candidate pool, or of its retriever) and every product of the other lists
of the batch whose query differs (in-batch negatives). Products of the same list with a
label as high as the positive's are left out: they are not negatives. Then

.. math::
    \mathcal{L}_b = -\log \frac{\exp(\cos(q_b, p_{bi^+}) / \tau)}
                              {\sum_{j \in \{i^+_b\} \cup N_b} \exp(\cos(q_b, p_j) / \tau)}

averaged over the lists that have a positive (0 when none has).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def lce_loss(q: Tensor, p: Tensor, labels: Tensor, mask: Tensor, query_ids: Tensor,
             temperature: float = 0.05) -> Tensor:
    """LCE with in-batch negatives (see the module docstring).

    Args:
        q: ``[B, d]`` query embeddings; p: ``[B, L, d]`` product embeddings.
        labels: ``[B, L]`` graded labels (NaN: unknown, never a positive or own negative).
        mask: ``[B, L]`` real slots; query_ids: ``[B]`` query of each list (lists of the
            same query are never each other's negatives).
        temperature: :math:`\tau`.
    """
    b, l_, _ = p.shape
    known = mask & torch.isfinite(labels)
    y = torch.where(known, labels, torch.full_like(labels, -float("inf")))
    best, pos = y.max(dim=1)
    worst = torch.where(known, labels, torch.full_like(labels, float("inf"))).min(dim=1).values
    has = torch.isfinite(best) & (best > worst)
    if not bool(has.any()):
        return q.sum() * 0.0 + p.sum() * 0.0
    qn = F.normalize(q, dim=-1)
    p = torch.where(mask.unsqueeze(-1), p, torch.zeros_like(p))  # padding may hold NaN
    pn = F.normalize(p, dim=-1).reshape(b * l_, -1)
    logits = qn @ pn.T / temperature  # [B, B * L]
    col_list = torch.arange(b, device=q.device).repeat_interleave(l_)  # list of each column
    own = col_list[None, :] == torch.arange(b, device=q.device)[:, None]
    same_query = query_ids[col_list][None, :] == query_ids[:, None]
    y_flat = y.reshape(-1)
    target = torch.arange(b, device=q.device) * l_ + pos
    exclude = ~mask.reshape(-1)[None, :] | (same_query & ~own) | \
        (own & ((y_flat[None, :] >= best[:, None]) | ~known.reshape(-1)[None, :]))
    exclude[torch.arange(b, device=q.device), target] = False
    logits = logits.masked_fill(exclude, -float("inf"))
    return F.cross_entropy(logits[has], target[has])
