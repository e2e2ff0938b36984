"""The label pipeline: log -> aggregates -> position bias -> smoothed, debiased rates ->
combination with text similarity -> graded labels. See :mod:`ltr.labels.signals` for the
maths of each step and :class:`~ltr.labels.config.LabelConfig` for every knob.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ltr.errors import ConfigError, DataValidationError
from ltr.labels.aggregate import aggregate_log
from ltr.labels.config import LabelConfig
from ltr.labels.propensity import PositionBias, estimate_position_bias
from ltr.labels.signals import (
    BetaPrior,
    behaviour_score,
    behaviour_weight,
    normalise,
    prior_bins,
    smooth_by_bins,
    to_grades,
)
from ltr.text.lexical import calibrate_lexical_weight, hybrid_similarity

# (queries, product_ids) -> cosine similarity per pair
SimilarityFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
VARIANTS = ("combined", "behaviour_only", "similarity_only")


@dataclass
class LabelResult:
    """Labels and everything behind them."""

    labels: pd.DataFrame
    position_bias: PositionBias
    priors: dict[str, dict[int, BetaPrior]]  # per signal, one prior per prior cell
    config: LabelConfig
    notes: list[str] = field(default_factory=list)
    lexical_weight: float = 0.0  # the coverage weight in the similarity (calibrated or set)
    lexical_curve: dict[float, float] = field(default_factory=dict)  # calibration NDCG@10


def pair_counts(impressions: pd.DataFrame, config: LabelConfig,
                extra_pairs: pd.DataFrame | None = None, source: str = "impressions"
                ) -> tuple[pd.DataFrame, PositionBias, list[str]]:
    """Per-pair counts and expected examinations under the estimated position bias.

    ``extra_pairs`` (query, product_id) never shown are added with zero counts."""
    notes: list[str] = []
    agg = aggregate_log(impressions, source)
    if config.position_bias == "pbm_em":
        bias = estimate_position_bias(agg, max_iter=config.em_max_iter)
    else:
        shown = np.bincount(agg.cell_position - 1, weights=agg.cell_impressions,
                            minlength=agg.n_positions)
        bias = PositionBias(np.where(shown > 0, 1.0, np.nan), np.zeros(len(agg.pairs)), 0,
                            True, False, "position bias switched off (labels.position_bias=none)")
    if not bias.identifiable or config.position_bias == "none":
        notes.append(bias.note)
    theta = np.nan_to_num(bias.examination, nan=1.0)
    pairs = agg.pairs.copy()
    pairs["expected_exams"] = np.bincount(
        agg.cell_pair, weights=theta[agg.cell_position - 1] * agg.cell_impressions,
        minlength=len(pairs))
    if extra_pairs is not None and len(extra_pairs):
        extra = extra_pairs[["query", "product_id"]].drop_duplicates().astype({"query": str})
        if extra["product_id"].dtype != pairs["product_id"].dtype:
            raise DataValidationError("judgements", "product_id type differs from the log's "
                                      f"({extra['product_id'].dtype} vs "
                                      f"{pairs['product_id'].dtype})", column="product_id")
        new = extra.merge(pairs[["query", "product_id"]], how="left", indicator=True)
        new = new[new["_merge"] == "left_only"].drop(columns="_merge")
        if len(new):
            new = new.assign(impressions=0, clicks=0, carts=0, purchases=0,
                             mean_position=np.nan, expected_exams=0.0)
            pairs = pd.concat([pairs, new], ignore_index=True)
    return pairs, bias, notes


def smooth_signals(pairs: pd.DataFrame, config: LabelConfig,
                   similarity: np.ndarray | None = None) -> dict[str, dict[int, BetaPrior]]:
    """Add debiased and smoothed click / cart / purchase rates to ``pairs`` (in place);
    return the fitted priors per signal and prior cell."""
    e = pairs["expected_exams"].to_numpy(float)
    bins = prior_bins(e, similarity, config.prior_exposure_bins, config.prior_similarity_bins)
    priors: dict[str, dict[int, BetaPrior]] = {}
    for count, name in (("clicks", "ctr"), ("carts", "cart_rate"), ("purchases", "purchase_rate")):
        x = pairs[count].to_numpy(float)
        pairs[f"debiased_{name}"] = np.where(e > 0, x / np.maximum(e, 1e-12), np.nan)
        pairs[f"smoothed_{name}"], priors[name] = smooth_by_bins(
            x, e, bins, config.prior_min_evidence, config.prior_strength_max)
    return priors


def derive_labels(impressions: pd.DataFrame, config: LabelConfig | None = None,
                  similarity: SimilarityFn | np.ndarray | None = None,
                  extra_pairs: pd.DataFrame | None = None, variant: str = "combined",
                  source: str = "impressions",
                  lexical: SimilarityFn | np.ndarray | None = None) -> LabelResult:
    """Graded labels for every (query, product) pair of the log (and ``extra_pairs``).

    Args:
        impressions: a validated log (:func:`ltr.data.load_impressions`).
        config: label parameters.
        similarity: query-product cosine, either a function of (queries, product_ids) or
            an array aligned with the pairs as :func:`pair_counts` orders them; required
            unless ``variant`` is ``behaviour_only``.
        extra_pairs: (query, product_id) pairs to label even if never shown, e.g. a
            judged pool or a retrieval candidate set.
        variant: ``combined`` (the default rule), ``behaviour_only`` (clicks, carts and
            purchases only: w = 1, priors by exposure alone) or ``similarity_only``
            (w = 0). The latter two exist for diagnostics.
        lexical: query-term coverage per pair (a function like ``similarity`` or an
            aligned array, :func:`ltr.text.lexical.coverage`); with it the similarity is
            ``cosine + w * coverage`` (``config.lexical_weight``; ``auto``: calibrated,
            :func:`calibrate_similarity`).
    """
    config = config or LabelConfig()
    if variant not in VARIANTS:
        raise ConfigError("labels.variant", f"must be one of {VARIANTS}, got {variant!r}")
    pairs, bias, notes = pair_counts(impressions, config, extra_pairs, source)
    q = pairs["query"].to_numpy()

    sim = None
    if variant != "behaviour_only":
        if similarity is None:
            raise ConfigError("text.model_name",
                              f"label variant '{variant}' needs a text similarity; none was given")
        sim = _per_pair(similarity, pairs, "similarity")
    lexical_weight, curve = 0.0, {}
    if sim is not None and lexical is not None:
        cover = _per_pair(lexical, pairs, "lexical coverage")
        lexical_weight, curve = calibrate_similarity(pairs, sim, cover, config)
        pairs["cosine"], pairs["coverage"] = sim, cover
        sim = hybrid_similarity(sim, cover, lexical_weight)
    pairs["similarity"] = np.nan if sim is None else sim
    priors = smooth_signals(pairs, config, sim)
    pairs["behaviour"] = behaviour_score(pairs, config)

    query_clicks = pairs.groupby("query")["clicks"].transform("sum").to_numpy()
    if variant == "behaviour_only":
        weight, sim_norm = np.ones(len(pairs)), np.zeros(len(pairs))
    else:
        sim_norm = normalise(sim if config.normalise != "none" else
                             (1.0 + sim) / (2.0 + lexical_weight), q, config.normalise)
        weight = np.zeros(len(pairs)) if variant == "similarity_only" else \
            behaviour_weight(pairs["expected_exams"].to_numpy(float), query_clicks > 0, config)
    if variant == "combined":
        no_click = pairs.loc[query_clicks == 0, "query"].nunique()
        if no_click:
            notes.append(f"{no_click} quer{'y' if no_click == 1 else 'ies'} had no click at "
                         "all: their labels rest on text similarity alone")
        low = int((pairs["expected_exams"] < config.min_evidence).sum())
        if low:
            notes.append(f"{low} of {len(pairs)} pairs had fewer than {config.min_evidence} "
                         f"expected examinations: behaviour weight {config.low_evidence_weight} "
                         f"instead of {config.behaviour_weight}")
    pairs["behaviour_weight"] = weight
    pairs["score"] = weight * pairs["behaviour"].to_numpy() + (1.0 - weight) * sim_norm
    pairs["grade"] = to_grades(pairs["score"].to_numpy(), config)
    cols = ["query", "product_id", "grade", "score", "behaviour", "similarity",
            "behaviour_weight", "impressions", "clicks", "carts", "purchases", "mean_position",
            "expected_exams", "debiased_ctr", "smoothed_ctr", "debiased_cart_rate",
            "smoothed_cart_rate", "debiased_purchase_rate", "smoothed_purchase_rate"]
    cols += [c for c in ("cosine", "coverage") if c in pairs]
    labels = pairs[cols].sort_values(["query", "score"], ascending=[True, False],
                                     kind="stable").reset_index(drop=True)
    if curve:
        notes.append(f"text similarity = cosine + {lexical_weight:g} x query-term coverage "
                     "(weight calibrated on well-observed pairs' clicks: " +
                     ", ".join(f"{w:g}: {v:.4f}" for w, v in curve.items()) + ")")
    return LabelResult(labels, bias, priors, config, notes, lexical_weight, curve)


def _per_pair(fn: SimilarityFn | np.ndarray, pairs: pd.DataFrame, name: str) -> np.ndarray:
    values = fn(pairs["query"].to_numpy(), pairs["product_id"].to_numpy()) if callable(fn) \
        else np.asarray(fn, dtype=float)
    values = np.asarray(values, dtype=float)
    if values.shape != (len(pairs),) or not np.isfinite(values).all():
        raise DataValidationError(name, f"must be {len(pairs)} finite values, one per pair; "
                                  f"got shape {values.shape}")
    return values


def calibrate_similarity(pairs: pd.DataFrame, cosine: np.ndarray, cover: np.ndarray,
                         config: LabelConfig) -> tuple[float, dict[float, float]]:
    """The coverage weight of the similarity: ``config.lexical_weight`` if it is a number,
    else the weight whose similarity best ranks, within each query that has clicks, the
    pairs with at least ``min_evidence`` expected examinations by their behaviour score
    (computed with exposure-only priors, so that no similarity enters the target)."""
    if config.lexical_weight != "auto":
        return float(config.lexical_weight), {}
    observed = pairs[["query", "expected_exams", "clicks", "carts", "purchases"]].copy()
    smooth_signals(observed, config, None)
    target = behaviour_score(observed, config)
    clicked = pairs.groupby("query")["clicks"].transform("sum").to_numpy() > 0
    keep = clicked & (pairs["expected_exams"].to_numpy(float) >= config.min_evidence)
    return calibrate_lexical_weight(pairs["query"].to_numpy()[keep], cosine[keep],
                                    cover[keep], np.asarray(target)[keep])
