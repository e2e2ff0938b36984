r"""Behaviour signals per (query, product): debiased rates, empirical-Bayes smoothing,
normalisation, and the combination with text similarity into one score in [0, 1].

**Debiased rates.** With the examination curve :math:`\theta_k` (relative to the top), a
pair shown :math:`n_{k}` times at position :math:`k` has
:math:`E = \sum_k \theta_k n_k` expected examinations; its debiased click rate is
:math:`x / E` (clicks over expected examinations), and likewise for add-to-carts and
purchases. Under the position-based model this estimates the attractiveness
:math:`\gamma_{qd}`.

**Smoothing** (empirical Bayes). Each rate gets a Beta(:math:`\alpha, \beta`) prior fitted
by the method of moments on pairs with at least ``prior_min_evidence`` expected
examinations: with evidence-weighted mean :math:`m` and variance :math:`v`, the
between-pair variance is :math:`v - m(1-m)\,\overline{1/E}`, and
:math:`\alpha + \beta = m(1-m)/v_{between} - 1` (capped at ``prior_strength_max``);
the smoothed rate is :math:`(x + \alpha) / (E + \alpha + \beta)`.
The prior depends on what is known without clicks. The logging policy shows the products
it believes relevant more often, so exposure is evidence, and so is text similarity: pairs
are split into ``prior_exposure_bins`` quantile bins of :math:`E` (never-shown pairs join
the lowest) crossed with ``prior_similarity_bins`` quantile bins of similarity, and each
cell gets its own prior. A pair with little evidence therefore lands near the typical rate
of pairs equally exposed and equally similar to the query; with one global prior, rarely
shown (mostly irrelevant) products would be pulled up to the mean of the often shown ones.

**Normalisation** maps each signal to [0, 1]: percentile within the query
(``query_percentile``: :math:`(\mathrm{rank} - 0.5) / n`, ties averaged), percentile over
all pairs (``global_percentile``), or none (rates as they are, cosine as
:math:`(1 + \cos)/2`).

**Combination.** :math:`b` = weighted mean of the normalised click, add-to-cart and
purchase signals; score :math:`= w\, b + (1 - w)\, s` with :math:`s` the normalised
similarity and :math:`w` = ``behaviour_weight`` for pairs with at least ``min_evidence``
expected examinations, ``low_evidence_weight`` below it (the label leans on text), and 0
for every pair of a query that has no click at all (text only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.labels.config import LabelConfig


@dataclass
class BetaPrior:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


def fit_beta_prior(successes: np.ndarray, trials: np.ndarray, min_trials: float,
                   max_strength: float) -> BetaPrior:
    """Method-of-moments Beta prior for rates ``successes / trials`` (see module docs)."""
    keep = trials >= min_trials
    if keep.sum() < 2:
        keep = trials > 0
    if not keep.any():
        return BetaPrior(1.0, 1.0)
    x, n = successes[keep], trials[keep]
    rate = np.clip(x / n, 0.0, 1.0)
    m = float(np.average(rate, weights=n))
    v = float(np.average((rate - m) ** 2, weights=n))
    noise = m * (1.0 - m) * float(np.mean(1.0 / n))
    between = v - noise
    m = min(max(m, 1e-6), 1 - 1e-6)
    strength = max_strength if between <= 0 else m * (1 - m) / between - 1.0
    strength = float(np.clip(strength, 1.0, max_strength))
    return BetaPrior(m * strength, (1.0 - m) * strength)


def smooth_rate(successes: np.ndarray, trials: np.ndarray, prior: BetaPrior) -> np.ndarray:
    """Posterior mean ``(x + alpha) / (E + alpha + beta)``."""
    return (successes + prior.alpha) / (trials + prior.alpha + prior.beta)


def prior_bins(expected_exams: np.ndarray, similarity: np.ndarray | None,
               exposure_bins: int, similarity_bins: int) -> np.ndarray:
    """Bin id per pair: quantile bin of expected examinations (among shown pairs; never
    shown pairs join the lowest) crossed with the quantile bin of similarity.

    Values are rounded to 9 decimals first: counts summed in another order (the same log
    aggregated by another engine) differ in the last bits, and a quantile edge that falls
    on a tied value would otherwise split the tie between two bins."""
    def qbins(values: np.ndarray, fit_on: np.ndarray, n: int) -> np.ndarray:
        if n <= 1 or len(fit_on) <= n:
            return np.zeros(len(values), dtype=np.int64)
        edges = np.unique(np.quantile(fit_on, np.linspace(0, 1, n + 1)[1:-1]))
        return np.digitize(values, edges)

    e = np.round(np.asarray(expected_exams, dtype=float), 9)
    if similarity is not None:
        similarity = np.round(np.asarray(similarity, dtype=float), 9)
    bins = qbins(e, e[e > 0], exposure_bins)
    if similarity is not None:
        bins = bins * (similarity_bins + 1) + qbins(similarity, similarity, similarity_bins)
    return bins


def smooth_by_bins(successes: np.ndarray, trials: np.ndarray, bins: np.ndarray,
                   min_trials: float, max_strength: float
                   ) -> tuple[np.ndarray, dict[int, BetaPrior]]:
    """Smoothed rates with one empirical-Bayes Beta prior per bin."""
    out = np.empty(len(trials))
    priors: dict[int, BetaPrior] = {}
    for b in np.unique(bins):
        sel = bins == b
        priors[int(b)] = fit_beta_prior(successes[sel], trials[sel], min_trials, max_strength)
        out[sel] = smooth_rate(successes[sel], trials[sel], priors[int(b)])
    return out, priors


def normalise(values: np.ndarray, query: np.ndarray, how: str) -> np.ndarray:
    """Map ``values`` to [0, 1] (see module docs); NaN stays NaN."""
    s = pd.Series(values, dtype=float)
    if how == "query_percentile":
        ranks = s.groupby(query).rank(method="average")
        counts = s.groupby(query).transform("count")
        return ((ranks - 0.5) / counts).to_numpy()
    if how == "global_percentile":
        return ((s.rank(method="average") - 0.5) / s.count()).to_numpy()
    return s.clip(0.0, 1.0).to_numpy()


def behaviour_score(pairs: pd.DataFrame, config: LabelConfig) -> np.ndarray:
    """Weighted mean of the normalised smoothed click / cart / purchase rates."""
    q = pairs["query"].to_numpy()
    weights = {"smoothed_ctr": config.click_weight, "smoothed_cart_rate": config.cart_weight,
               "smoothed_purchase_rate": config.purchase_weight}
    total = sum(weights.values())
    out = np.zeros(len(pairs))
    for col, w in weights.items():
        if w > 0:
            out += w * normalise(pairs[col].to_numpy(), q, config.normalise)
    return out / total


def behaviour_weight(expected_exams: np.ndarray, query_has_click: np.ndarray,
                     config: LabelConfig) -> np.ndarray:
    """Per-pair weight of behaviour against similarity (the minimum-evidence rule)."""
    w = np.where(expected_exams >= config.min_evidence, config.behaviour_weight,
                 config.low_evidence_weight)
    return np.where(query_has_click, w, 0.0)


def to_grades(score: np.ndarray, config: LabelConfig) -> np.ndarray:
    """Cut scores into grades 0..n_grades-1 by global quantiles or fixed thresholds."""
    if config.grading == "thresholds":
        cuts = np.asarray(config.grade_values, dtype=float)
    else:
        cuts = np.quantile(score, np.cumsum(config.grade_values)[:-1])
    return np.digitize(score, cuts, right=False).astype(np.int64)
