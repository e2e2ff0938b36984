"""Ranking losses every neural ranker trains with, and multi-task loss weighting.

Every loss has one signature (as google/rax), so they are interchangeable by name::

    loss(scores, labels, mask, *, weights=None, reduction="mean", **options) -> Tensor

on padded query groups (``[B, L]``, see :mod:`ltr.data.groups`); masking, weights and
reduction are described in :mod:`ltr.losses._core` and ``docs/losses.md``.

=============== ========= ==========================================================
name            kind      per-list value ``L_b``
=============== ========= ==========================================================
``bce``         pointwise ``mean_i w_i BCEWithLogits(s_i, y_i)``
``mse``         pointwise ``mean_i w_i (s_i - y_i)^2``
``softmax_ce``  listwise  ``-sum_i w_i (y_i / sum_j y_j) log softmax(s)_i``
``listnet``     listwise  ``-sum_i w_i softmax(y / T)_i log softmax(s)_i``
``lambda_ndcg`` pairwise  ``sum_{y_i > y_j} w_i |dNDCG@k_ij| log2(1 + e^{-sigma(s_i - s_j)})``
=============== ========= ==========================================================
"""

from ltr.losses._core import REDUCTIONS, Reduction
from ltr.losses.lambda_loss import lambda_ndcg
from ltr.losses.listwise import listnet, softmax_ce
from ltr.losses.pointwise import bce, mse
from ltr.losses.registry import LOSSES, LossFn, get_loss, loss_options
from ltr.losses.weighting import FixedWeighting, TaskWeighting, UncertaintyWeighting

__all__ = [
    "LOSSES",
    "REDUCTIONS",
    "FixedWeighting",
    "LossFn",
    "Reduction",
    "TaskWeighting",
    "UncertaintyWeighting",
    "bce",
    "get_loss",
    "lambda_ndcg",
    "listnet",
    "loss_options",
    "mse",
    "softmax_ce",
]
