"""One evaluation engine: every metric of a ranker's scores on padded lists, computed one
way for validation reports, test, ``ltr benchmark``, ``ltr sweep``, the ``metrics.json`` of
a model package and the benchmark scripts.

:func:`evaluate_lists` reads which labels the lists carry and computes what applies,
always after putting each list's slots in the neutral tie order
(:mod:`ltr.metrics.ties`):

| labels | metrics (``prefix`` + name) |
|---|---|
| ``relevance`` (derived grade) | ``ndcg@5``, ``ndcg@10`` (2^g - 1 gain) |
| ``click``, ``add_to_cart``, ``purchase`` (sessions) | ``engagement_ndcg@5``, ``engagement_ndcg@10`` (grade 0 none, 1 click, 2 add-to-cart, 3 purchase); ``mrr@10_<task>``, ``auc_<task>`` (group AUC) |
| ``human`` (judged pools) | ``human_ndcg@5``, ``human_ndcg@10``, ``human_ndcg@10_linear`` |
| ``label`` (the training labels, on known-query pools) | ``labels_human_ndcg@5/@10/@10_linear``: the labels themselves ranked against the human grades, the bar a model trained on them should reach |

:func:`per_list` gives one metric's per-list values (paired comparisons);
:func:`describe_missing` says which families could not be computed (e.g. no judgements:
engagement metrics only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltr.metrics import MetricResult, group_auc, mrr, ndcg, neutral_order, reorder
from ltr.training.lists import ListData, engagement_grade

BINARY = ("click", "add_to_cart", "purchase")


def neutral(scores: np.ndarray, lists: ListData
            ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(scores, mask, labels)`` with each list's slots in the neutral tie order."""
    order = neutral_order(lists.tie_key, lists.mask)
    s, m = reorder(order, np.asarray(scores, dtype=np.float64), lists.mask)
    labels = {k: reorder(order, v)[0] for k, v in lists.labels.items()}
    return s, m, labels


def array_results(scores: np.ndarray, mask: np.ndarray, labels: dict[str, np.ndarray]
                  ) -> dict[str, MetricResult]:
    """:func:`results` for arrays already in the neutral tie order (``labels``: task name,
    ``human`` or ``label`` -> ``[G, L]``), e.g. a batch of the Lightning module."""
    out: dict[str, MetricResult] = {}
    s = np.nan_to_num(scores)
    if "relevance" in labels and np.isfinite(labels["relevance"][mask]).any():
        rel = labels["relevance"]
        valid = mask & np.isfinite(rel)
        for k in (5, 10):
            out[f"ndcg@{k}"] = ndcg(s, np.nan_to_num(rel), valid, k=k)
    behaviour = {t: labels[t] for t in BINARY if t in labels}
    if behaviour:
        engagement = engagement_grade(behaviour, mask.shape)
        valid = mask & np.isfinite(engagement)
        if valid.any():
            for k in (5, 10):
                out[f"engagement_ndcg@{k}"] = ndcg(s, np.nan_to_num(engagement), valid, k=k)
        for task, y in behaviour.items():
            valid = mask & np.isfinite(y)
            if valid.any():
                out[f"mrr@10_{task}"] = mrr(s, np.nan_to_num(y), valid, k=10)
                out[f"auc_{task}"] = group_auc(s, np.nan_to_num(y), valid)
    if "human" in labels:
        human = labels["human"]
        valid = mask & np.isfinite(human)
        if valid.any():
            h = np.nan_to_num(human)
            for name, score in (("human_", s), ("labels_human_", _label_scores(labels))):
                if score is None:
                    continue
                out[f"{name}ndcg@5"] = ndcg(score, h, valid, k=5)
                out[f"{name}ndcg@10"] = ndcg(score, h, valid, k=10)
                out[f"{name}ndcg@10_linear"] = ndcg(score, h, valid, k=10, gain="linear")
    return out


def _label_scores(labels: dict[str, np.ndarray]) -> np.ndarray | None:
    lab = labels.get("label")
    return None if lab is None else np.where(np.isfinite(lab), lab, -1.0)


def results(scores: np.ndarray, lists: ListData) -> dict[str, MetricResult]:
    """Every applicable metric as a :class:`~ltr.metrics.MetricResult` (per-list values,
    which lists were included): for accumulating over batches or paired tests."""
    return array_results(*neutral(scores, lists))


def evaluate_lists(scores: np.ndarray, lists: ListData, prefix: str = "") -> dict[str, float]:
    """The mean of every applicable metric (module docstring), names with ``prefix``."""
    return {f"{prefix}{k}": float(r.mean) for k, r in results(scores, lists).items()}


def per_list(scores: np.ndarray, lists: ListData, metric: str) -> np.ndarray:
    """``[G]`` values of one metric of :func:`evaluate_lists` (NaN for lists it leaves
    out, e.g. a zero ideal DCG)."""
    r = results(scores, lists).get(metric)
    if r is None:
        return np.full(len(lists), np.nan)
    return np.where(r.included, r.values, np.nan)


def describe_missing(metrics: dict[str, Any]) -> list[str]:
    """Lines saying which metric families a set of results lacks, and why."""
    lines = []
    if not any("human_" in k for k in metrics):
        lines.append("no human judgements in the data folder: no NDCG against human grades "
                     "(engagement and derived-label metrics only)")
    if not any(k.startswith(("mrr@", "engagement")) or "/mrr@" in k for k in metrics):
        lines.append("no sessions with clicks to evaluate: no engagement metrics")
    return lines
