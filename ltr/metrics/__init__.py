"""Ranking metrics shared by every model, sweep and report (see :mod:`ltr.metrics.ranking`)."""

from ltr.metrics.ranking import (
    METRIC_NAMES,
    MetricResult,
    RankedLists,
    average_precision,
    compute_metrics,
    err,
    group_auc,
    mrr,
    ndcg,
    parse_metric,
    rank_lists,
    recall,
)
from ltr.metrics.ties import neutral_order, reorder, tie_keys

__all__ = [
    "METRIC_NAMES",
    "MetricResult",
    "RankedLists",
    "average_precision",
    "compute_metrics",
    "err",
    "group_auc",
    "mrr",
    "ndcg",
    "parse_metric",
    "neutral_order",
    "rank_lists",
    "recall",
    "reorder",
    "tie_keys",
]
