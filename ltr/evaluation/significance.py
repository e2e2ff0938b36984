r"""Paired significance tests over queries: is model A's mean metric different from B's?

Both tests work on the per-query differences ``d_q = a_q - b_q`` of the ``n`` queries both
models are evaluated on, and are two-sided. p-values are not corrected for testing several
metrics or models.

Paired bootstrap (Efron & Tibshirani 1993, ch. 16; the form used in IR by Sakai 2006)
    Draw ``B`` resamples of the ``n`` queries with replacement. Under H0 (mean difference
    0) the differences are centred, ``d0 = d - mean(d)``, and
    ``p = (1 + #{b : |mean(d0*_b)| >= |mean(d)|}) / (B + 1)``.
    The confidence interval is the percentile interval of ``mean(d*_b)`` (uncentred).
    Resamples are drawn from ``seed``, so for the same ``n`` every metric and model is
    tested on the same resampled query sets.

Paired t-test
    ``t = mean(d) / (sd(d) / sqrt(n))`` with ``n - 1`` degrees of freedom (``scipy.stats``);
    the interval is ``mean(d) +- t_{1-alpha/2, n-1} sd(d) / sqrt(n)``. When all
    differences are equal, ``p = 1`` if they are 0 and ``0`` otherwise.

With fewer than 2 queries there is no test: ``p`` and the interval are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

TestName = Literal["bootstrap", "ttest"]
TESTS = ("bootstrap", "ttest")


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired test of ``a`` against ``b`` (``delta = mean(a - b)``)."""

    test: str
    n: int
    delta: float
    p_value: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "test": self.test, "n": self.n, "delta": self.delta, "p_value": self.p_value,
            "ci_low": self.ci_low, "ci_high": self.ci_high,
        }


def _diffs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values must be 1-D of equal length, got {a.shape} and {b.shape}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("paired values contain NaN")
    return a - b


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    chunk_elements: int = 4_000_000,
) -> PairedTest:
    """Two-sided paired bootstrap test of ``mean(a - b) = 0`` (see the module docstring)."""
    d = _diffs(a, b)
    n = len(d)
    delta = float(d.mean()) if n else float("nan")
    if n < 2:
        return PairedTest("bootstrap", n, delta, float("nan"), float("nan"), float("nan"))
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, chunk_elements // n)
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = d[idx].mean(axis=1)
    # centred statistic; a small tolerance keeps exact ties (e.g. all d equal) counted
    extreme = np.abs(means - delta) >= abs(delta) - 1e-12 * max(1.0, abs(delta))
    p = (1.0 + extreme.sum()) / (n_resamples + 1.0)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return PairedTest("bootstrap", n, delta, float(min(p, 1.0)), float(lo), float(hi))


def paired_ttest(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> PairedTest:
    """Two-sided paired t-test of ``mean(a - b) = 0`` (see the module docstring)."""
    from scipy import stats

    d = _diffs(a, b)
    n = len(d)
    delta = float(d.mean()) if n else float("nan")
    if n < 2:
        return PairedTest("ttest", n, delta, float("nan"), float("nan"), float("nan"))
    sd = float(d.std(ddof=1))
    if sd == 0.0 or not math.isfinite(sd):
        p = 1.0 if delta == 0.0 else 0.0
        return PairedTest("ttest", n, delta, p, delta, delta)
    se = sd / math.sqrt(n)
    t = delta / se
    p = float(2.0 * stats.t.sf(abs(t), df=n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * se
    return PairedTest("ttest", n, delta, p, delta - half, delta + half)


def paired_test(
    a: np.ndarray, b: np.ndarray, test: TestName = "bootstrap", *,
    n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95,
) -> PairedTest:
    """Dispatch to :func:`paired_bootstrap` or :func:`paired_ttest`."""
    if test == "bootstrap":
        return paired_bootstrap(a, b, n_resamples=n_resamples, seed=seed, confidence=confidence)
    if test == "ttest":
        return paired_ttest(a, b, confidence=confidence)
    raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
