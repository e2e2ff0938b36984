r"""Position bias estimated from the log itself: the position-based click model (PBM) fitted
by expectation-maximisation (Wang et al., WSDM 2018, "Position Bias Estimation for
Unbiased Learning to Rank in Personal Search"; Chuklin et al. 2015).

Model: a product ``d`` shown for query ``q`` at position ``k`` is clicked iff it is examined
and attractive, independently:

.. math::  P(C = 1 \mid q, d, k) = \theta_k \, \gamma_{qd}

EM over the hidden pair (E, R), with ``n`` impressions and ``c`` clicks per
(pair, position) cell and ``u = n - c`` non-clicks:

.. math::
    P(E{=}1, R{=}0 \mid C{=}0) = \frac{\theta_k (1-\gamma)}{1-\theta_k\gamma}, \qquad
    P(E{=}0, R{=}1 \mid C{=}0) = \frac{(1-\theta_k)\gamma}{1-\theta_k\gamma}

.. math::
    \theta_k \leftarrow \frac{\sum_{cells@k} c + u\,P(E{=}1,R{=}0 \mid C{=}0)}{\sum_{cells@k} n},
    \qquad
    \gamma_{qd} \leftarrow \frac{\sum_{cells\ of\ qd} c + u\,P(E{=}0,R{=}1 \mid C{=}0)}{\sum n}

The product ``theta * gamma`` is identified but not the scale, so the returned curve is
normalised to ``theta_1 = 1`` (examination *relative to the top position*), and
``gamma`` is rescaled to match (``gamma * theta_1``, clipped to 1).

Identifiability: the curve is only learnt from products that were shown at more than
one position. If every impression has the same position, or no (query, product) pair was
ever shown at two positions, position bias cannot be estimated: the estimator returns a
flat curve (``theta_k = 1``, i.e. no debiasing) and says why in ``PositionBias.note``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltr.labels.aggregate import LogAggregates


@dataclass
class PositionBias:
    examination: np.ndarray  # [n_positions] theta_k / theta_1; NaN for positions never shown
    attractiveness: np.ndarray  # [n_pairs] gamma_qd on the same scale
    iterations: int
    converged: bool
    identifiable: bool
    note: str = ""

    def curve(self) -> dict[int, float]:
        return {k + 1: float(v) for k, v in enumerate(self.examination) if np.isfinite(v)}


def estimate_position_bias(agg: LogAggregates, max_iter: int = 1000, tol: float = 1e-6,
                           eps: float = 1e-9) -> PositionBias:
    """Fit the PBM by EM on the aggregated cells of a log (see module docstring).

    Stops when no examination probability moves by more than ``tol`` in an iteration
    (per-pair attractiveness of rarely shown pairs keeps drifting long after the curve
    has settled) or after ``max_iter`` iterations.
    """
    n_pos, n_pairs = agg.n_positions, len(agg.pairs)
    k = agg.cell_position - 1
    j = agg.cell_pair
    n, c = agg.cell_impressions, agg.cell_clicks
    u = n - c
    shown = np.bincount(k, weights=n, minlength=n_pos)
    pair_n = np.bincount(j, weights=n, minlength=n_pairs)

    positions_seen = np.flatnonzero(shown > 0)
    positions_per_pair = np.bincount(j, minlength=n_pairs)  # cells per pair = positions seen
    movers = positions_per_pair > 1
    if len(positions_seen) < 2 or not movers.any():
        reason = ("every impression is at the same position" if len(positions_seen) < 2
                  else "no (query, product) pair was shown at more than one position")
        theta = np.where(shown > 0, 1.0, np.nan)
        gamma = np.bincount(j, weights=c, minlength=n_pairs) / np.maximum(pair_n, eps)
        return PositionBias(theta, gamma, 0, True, False,
                            f"position bias not identifiable: {reason}; using a flat "
                            "examination curve (no debiasing)")

    ctr_k = np.bincount(k, weights=c, minlength=n_pos) / np.maximum(shown, eps)
    theta = np.clip(ctr_k / max(ctr_k[positions_seen[0]], eps), 1e-3, 1.0)
    gamma = np.clip(np.bincount(j, weights=c, minlength=n_pairs) / np.maximum(pair_n, eps),
                    1e-3, 1 - 1e-3)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - iteration count is reported
        t, g = theta[k], gamma[j]
        denom = np.maximum(1.0 - t * g, eps)
        exam_not_rel = u * t * (1.0 - g) / denom
        rel_not_exam = u * (1.0 - t) * g / denom
        new_theta = np.bincount(k, weights=c + exam_not_rel, minlength=n_pos) / np.maximum(shown, eps)
        new_gamma = np.bincount(j, weights=c + rel_not_exam, minlength=n_pairs) / np.maximum(pair_n, eps)
        new_theta = np.clip(new_theta, 1e-6, 1.0)
        new_gamma = np.clip(new_gamma, 1e-6, 1.0 - 1e-6)
        delta = float(np.abs(new_theta - theta).max())  # the curve is what we report
        theta, gamma = new_theta, new_gamma
        if delta < tol:
            converged = True
            break
    top = theta[positions_seen[0]]
    examination = np.where(shown > 0, theta / top, np.nan)
    return PositionBias(examination, np.clip(gamma * top, 0.0, 1.0), it, converged, True,
                        f"PBM fitted by EM on {int(movers.sum())} pairs shown at several positions")
