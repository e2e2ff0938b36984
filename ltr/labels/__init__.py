"""Graded relevance labels from clicks, positions and text similarity, with diagnostics."""

from ltr.labels.config import LabelConfig
from ltr.labels.pipeline import LabelResult, derive_labels, pair_counts, smooth_signals
from ltr.labels.propensity import PositionBias, estimate_position_bias

__all__ = ["LabelConfig", "LabelResult", "PositionBias", "derive_labels",
           "estimate_position_bias", "pair_counts", "smooth_signals"]
