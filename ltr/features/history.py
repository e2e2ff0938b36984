"""Historical features, computed from a window of the log *before* the rows they describe.

From the history rows only (never the rows being labelled or trained on):

| column | meaning |
|---|---|
| ``hist_pair_impressions`` | times the (query, product) pair was shown |
| ``hist_pair_ctr`` | its click rate per expected examination (position-debiased with the PBM curve of :mod:`ltr.labels.propensity`), smoothed with an empirical-Bayes Beta prior |
| ``hist_pair_cart_rate``, ``hist_pair_purchase_rate`` | its add-to-cart and purchase rates per expected examination, debiased and smoothed the same way |
| ``hist_pair_label`` | the pair's relevance label score in [0, 1] (:func:`ltr.labels.derive_labels`, the same rule as the training labels) computed on the history rows alone |
| ``hist_pair_behaviour`` | the behaviour part of that label alone (debiased, smoothed click, cart and purchase rates as query percentiles) |
| ``hist_product_impressions`` | times the product was shown, any query |
| ``hist_product_ctr``, ``hist_product_cart_rate``, ``hist_product_purchase_rate`` | the product's debiased, smoothed rates over all queries |

Pairs or products absent from the history get NaN, which the preprocessor turns into 0
plus a missing indicator. The maths of debiasing and smoothing is that of
:mod:`ltr.labels.signals`; this module only reuses it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltr.labels.config import LabelConfig
from ltr.labels.pipeline import pair_counts
from ltr.labels.signals import fit_beta_prior, smooth_rate

PAIR_HISTORY_COLUMNS = ["hist_pair_impressions", "hist_pair_ctr", "hist_pair_cart_rate",
                        "hist_pair_purchase_rate", "hist_pair_label", "hist_pair_behaviour"]
PRODUCT_HISTORY_COLUMNS = ["hist_product_impressions", "hist_product_ctr",
                           "hist_product_cart_rate", "hist_product_purchase_rate"]
HISTORY_COLUMNS = PAIR_HISTORY_COLUMNS + PRODUCT_HISTORY_COLUMNS


def _smoothed(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    return smooth_rate(x, e, fit_beta_prior(x, e, min_trials=5.0, max_strength=200.0))


def history_features(history: pd.DataFrame, labels: LabelConfig | None = None,
                     similarity: Any = None, lexical: Any = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(pair_features, product_features)`` from the history window of a log: its rows,
    or their (query, product, position) aggregates (:class:`ltr.labels.aggregate.LogAggregates`,
    the same features).

    ``labels``, ``similarity`` and ``lexical`` (:func:`ltr.labels.derive_labels`'s
    arguments; no similarity: behaviour-only labels) define ``hist_pair_label``, as for the
    training labels."""
    if isinstance(history, pd.DataFrame) and len(history) == 0:  # else rows or aggregates
        return (pd.DataFrame(columns=["query", "product_id", *PAIR_HISTORY_COLUMNS]),
                pd.DataFrame(columns=["product_id", *PRODUCT_HISTORY_COLUMNS]))
    pairs, _, _ = pair_counts(history, LabelConfig(), source="history window")
    e = pairs["expected_exams"].to_numpy(float)
    pair_feats = pd.DataFrame({
        "query": pairs["query"].astype(str),
        "product_id": pairs["product_id"],
        "hist_pair_impressions": pairs["impressions"].astype(float),
        "hist_pair_ctr": _smoothed(pairs["clicks"].to_numpy(float), e),
        "hist_pair_cart_rate": _smoothed(pairs["carts"].to_numpy(float), e),
        "hist_pair_purchase_rate": _smoothed(pairs["purchases"].to_numpy(float), e),
    })
    from ltr.labels.pipeline import derive_labels

    label = derive_labels(history, labels or LabelConfig(), similarity, None,
                          "combined" if similarity is not None else "behaviour_only",
                          source="history window", lexical=lexical).labels
    pair_feats = pair_feats.merge(
        label[["query", "product_id", "score", "behaviour"]]
        .rename(columns={"score": "hist_pair_label", "behaviour": "hist_pair_behaviour"})
        .astype({"query": str}), on=["query", "product_id"], how="left")
    prod = pairs.groupby("product_id").agg(
        impressions=("impressions", "sum"), e=("expected_exams", "sum"), clicks=("clicks", "sum"),
        carts=("carts", "sum"), purchases=("purchases", "sum")).reset_index()
    pe = prod["e"].to_numpy(float)
    product_feats = pd.DataFrame({
        "product_id": prod["product_id"],
        "hist_product_impressions": prod["impressions"].astype(float),
        "hist_product_ctr": _smoothed(prod["clicks"].to_numpy(float), pe),
        "hist_product_cart_rate": _smoothed(prod["carts"].to_numpy(float), pe),
        "hist_product_purchase_rate": _smoothed(prod["purchases"].to_numpy(float), pe),
    })
    return pair_feats, product_feats
