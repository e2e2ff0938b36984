r"""Ranking metrics over padded, masked query groups, vectorised (no Python loop over queries).

Every function takes the layout shared by the models (see :mod:`ltr.data.groups`):

* ``scores`` ``[Q, L]``: model scores, higher ranks first;
* ``labels`` ``[Q, L]``: non-negative relevance labels (graded or binary);
* ``mask`` ``[Q, L]`` bool: True where a real item sits (``None`` means all real).

NumPy arrays, torch tensors (any device; detached and copied to host memory) and nested
lists are accepted. Each metric returns a :class:`MetricResult` with one value per query,
which queries were included, the mean over included queries and the count of excluded
queries by reason.

Ranking and ties
    Each query's real items are ranked by descending score. **Ties are broken by row
    order**: among equal scores the item that comes first in its row (lower slot index)
    ranks higher, i.e. a stable sort on descending score. Padded slots always rank after
    every real item, whatever they hold, so padding never changes a result. (``ltr
    evaluate`` lays each query out in ascending product-id order, so there ties fall to
    the smaller product id.) Group AUC does not rank: there a tie counts one half.

Relevance
    Graded metrics (NDCG, ERR) use the label value ``rel``. Binary metrics (MRR, MAP,
    Recall, AUC) count an item as relevant when ``rel > 0``. ``R`` is the number of
    relevant real items of a query, ``n`` the number of real items, ``rel_i`` the label at
    rank ``i`` (1-based) and ``[x]`` is 1 when ``x`` holds, else 0.

Exclusion
    Queries with no real item (fully masked rows) are always excluded. Queries whose ideal
    DCG is zero (no item with ``rel > 0``, so ``R = 0``) are excluded by default
    (``exclude_zero_ideal=True``); with ``False`` they are included with value 0. Group
    AUC always excludes queries with no positive or no negative item (it is undefined
    there). Excluded queries hold 0.0 in ``values`` (never NaN), are False in
    ``included`` and are counted in ``excluded``; ``mean`` is over included queries and is
    NaN only when no query is included.

Formulas (cut-off ``k``; ``k=None`` means the whole list; ``K = min(k, n)``)
    * ``DCG@k = sum_{i<=K} gain(rel_i) / log2(i + 1)``, ``gain(r) = 2^r - 1``
      (``gain="exponential"``) or ``r`` (``"linear"``);
      ``NDCG@k = DCG@k / IDCG@k`` with ``IDCG@k`` the DCG of the labels sorted descending.
    * ``RR@k = 1 / (rank of the first relevant item)`` if it is within the top ``k``,
      else 0; MRR@k is the mean of RR@k.
    * ``AP@k = sum_{i<=K} P@i * [rel_i > 0] / D`` with ``P@i = (#relevant in top i) / i``
      and ``D = min(k, R)`` (``denominator="min"``, so a perfect ranking scores 1) or
      ``D = R`` (``"all"``, as trec_eval's ``map_cut_k``); MAP@k is the mean of AP@k.
    * ``Recall@k = (#relevant in top k) / R``.
    * ``ERR@k = sum_{i<=K} (1/i) * R_i * prod_{j<i} (1 - R_j)`` with
      ``R_i = (2^rel_i - 1) / 2^gmax`` (Chapelle et al., 2009 cascade model).
    * ``AUC = (sum_{p pos, q neg} [s_p > s_q] + 0.5 [s_p = s_q]) / (P * N)`` per query
      (Mann-Whitney U over average ranks); the reported mean is unweighted over queries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from ltr.errors import ConfigError

Gain = Literal["exponential", "linear"]
APDenominator = Literal["min", "all"]

METRIC_NAMES = ("ndcg", "mrr", "map", "recall", "err", "auc")
_SPEC_RE = re.compile(r"^\s*([a-z]+)\s*(?:@\s*(\d+))?\s*$")


@dataclass(frozen=True)
class MetricResult:
    """One metric over a batch of queries.

    Attributes:
        name: e.g. ``"ndcg@10"``.
        values: ``[Q]`` float64 per-query values; 0.0 where the query is excluded.
        included: ``[Q]`` bool, True where the query counts towards ``mean``.
        excluded: number of excluded queries by reason (``"empty"``, ``"zero_ideal"``,
            ``"single_class"``); every reason the metric can apply is listed, even at 0.
        mean: mean of ``values[included]``; NaN only when no query is included.
    """

    name: str
    values: np.ndarray
    included: np.ndarray
    excluded: dict[str, int] = field(default_factory=dict)
    mean: float = float("nan")

    @property
    def n_included(self) -> int:
        return int(self.included.sum())

    @property
    def n_excluded(self) -> int:
        return int(sum(self.excluded.values()))

    def __float__(self) -> float:
        return self.mean


def _to_numpy(x: Any) -> np.ndarray:
    """NumPy view of an array-like; torch tensors are detached and moved to the CPU."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch.Tensor, without importing torch
        x = x.detach()
        if str(x.dtype) in ("torch.float16", "torch.bfloat16"):
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def _first_bad(bad: np.ndarray) -> tuple[int, int]:
    q, j = np.argwhere(bad)[0]
    return int(q), int(j)


class RankedLists:
    """Scores, labels and mask of a batch, ranked once and shared by every metric.

    Build with :func:`rank_lists`. ``labels`` is ``[Q, L]`` in ranked order (best first,
    padded slots last holding 0); ``ideal`` is the labels sorted descending.
    """

    def __init__(self, scores: Any, labels: Any, mask: Any = None) -> None:
        s = _to_numpy(scores)
        y = _to_numpy(labels)
        if s.ndim != 2:
            raise ValueError(f"scores must be 2-D [queries, list], got shape {s.shape}")
        if y.shape != s.shape:
            raise ValueError(f"labels shape {y.shape} != scores shape {s.shape}")
        if mask is None:
            m = np.ones(s.shape, dtype=bool)
        else:
            m = _to_numpy(mask)
            if m.shape != s.shape:
                raise ValueError(f"mask shape {m.shape} != scores shape {s.shape}")
            m = m.astype(bool, copy=False)
        if not np.issubdtype(s.dtype, np.floating):
            s = s.astype(np.float64)
        y = y.astype(np.float64, copy=False)
        if np.isnan(s).any() and (np.isnan(s) & m).any():
            q, j = _first_bad(np.isnan(s) & m)
            raise ValueError(f"scores contain NaN at real (unmasked) slots, first at [{q}, {j}]")
        bad_y = ~(y >= 0)  # catches NaN too
        if bad_y.any() and (bad_y & m).any():
            q, j = _first_bad(bad_y & m)
            raise ValueError(
                f"labels must be >= 0 and not NaN at real slots; [{q}, {j}] is {y[q, j]!r}"
            )
        self.mask = m
        self._scores = s
        self._labels = np.where(m, y, 0.0)
        # Stable ascending sort of -score == descending score with ties kept in row order.
        # Padded slots get NaN, which NumPy sorts after everything (even -inf scores).
        self.order = np.argsort(np.where(m, -s, np.nan), axis=1, kind="stable")
        self.labels = np.take_along_axis(self._labels, self.order, axis=1)
        self.n_items = m.sum(axis=1)
        self.n_relevant = (self._labels > 0).sum(axis=1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.order.shape  # type: ignore[return-value]

    @cached_property
    def ideal(self) -> np.ndarray:
        """``[Q, L]`` labels sorted descending (the ideal ranking)."""
        return np.sort(self._labels, axis=1)[:, ::-1]

    @cached_property
    def scores(self) -> np.ndarray:
        """``[Q, L]`` scores in ranked order; NaN at padded slots (which come last)."""
        ranked = np.take_along_axis(self._scores, self.order, axis=1).astype(np.float64)
        ranked[np.arange(ranked.shape[1]) >= self.n_items[:, None]] = np.nan
        return ranked

    @cached_property
    def max_label(self) -> float:
        return float(self._labels.max()) if self._labels.size else 0.0

    def _cut(self, k: int | None) -> int:
        width = self.shape[1]
        if k is None:
            return width
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"cut-off k must be a positive integer or None, got {k!r}")
        return min(int(k), width)


def rank_lists(scores: Any, labels: Any, mask: Any = None) -> RankedLists:
    """Validate and rank a batch once; pass the result to several metrics.

    Raises:
        ValueError: shapes differ, a real slot has a NaN score, or a negative/NaN label.
    """
    return RankedLists(scores, labels, mask)


def _finish(
    name: str,
    values: np.ndarray,
    r: RankedLists,
    exclude_zero_ideal: bool,
    undefined: np.ndarray | None = None,
) -> MetricResult:
    empty = r.n_items == 0
    excluded = {"empty": int(empty.sum())}
    drop = empty
    if undefined is not None:  # AUC: no positive or no negative item
        single = undefined & ~empty
        excluded["single_class"] = int(single.sum())
        drop = drop | single
    else:
        zero = (r.n_relevant == 0) & ~empty
        excluded["zero_ideal"] = int(zero.sum()) if exclude_zero_ideal else 0
        if exclude_zero_ideal:
            drop = drop | zero
    included = ~drop
    values = np.where(included, values, 0.0)
    n = int(included.sum())
    mean = float(values.sum() / n) if n else float("nan")
    return MetricResult(name=name, values=values, included=included, excluded=excluded, mean=mean)


def _name(base: str, k: int | None) -> str:
    return base if k is None else f"{base}@{k}"


def _discount(width: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, width + 2, dtype=np.float64))


def _gain(rel: np.ndarray, gain: str) -> np.ndarray:
    if gain == "exponential":
        return np.exp2(rel) - 1.0
    if gain == "linear":
        return rel
    raise ValueError(f"gain must be 'exponential' or 'linear', got {gain!r}")


def _ndcg(r: RankedLists, k: int | None, gain: Gain, exclude_zero_ideal: bool) -> MetricResult:
    kk = r._cut(k)
    disc = _discount(kk)
    dcg = _gain(r.labels[:, :kk], gain) @ disc
    idcg = _gain(r.ideal[:, :kk], gain) @ disc
    values = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
    return _finish(_name("ndcg", k), values, r, exclude_zero_ideal)


def _mrr(r: RankedLists, k: int | None, exclude_zero_ideal: bool) -> MetricResult:
    kk = r._cut(k)
    rel = r.labels[:, :kk] > 0
    first = rel.argmax(axis=1)
    values = np.where(rel.any(axis=1), 1.0 / (first + 1.0), 0.0)
    return _finish(_name("mrr", k), values, r, exclude_zero_ideal)


def _ap(
    r: RankedLists, k: int | None, denominator: APDenominator, exclude_zero_ideal: bool
) -> MetricResult:
    kk = r._cut(k)
    rel = (r.labels[:, :kk] > 0).astype(np.float64)
    precision = np.cumsum(rel, axis=1) / np.arange(1, kk + 1)
    num = (precision * rel).sum(axis=1)
    if denominator == "min":
        den = np.minimum(r.n_relevant, kk)  # kk = min(k, L) and R <= L, so min(kk, R) = min(k, R)
    elif denominator == "all":
        den = r.n_relevant
    else:
        raise ValueError(f"denominator must be 'min' or 'all', got {denominator!r}")
    den = den.astype(np.float64)
    values = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return _finish(_name("map", k), values, r, exclude_zero_ideal)


def _recall(r: RankedLists, k: int | None, exclude_zero_ideal: bool) -> MetricResult:
    kk = r._cut(k)
    hits = (r.labels[:, :kk] > 0).sum(axis=1).astype(np.float64)
    den = r.n_relevant.astype(np.float64)
    values = np.divide(hits, den, out=np.zeros_like(hits), where=den > 0)
    return _finish(_name("recall", k), values, r, exclude_zero_ideal)


def _err(
    r: RankedLists, k: int | None, gmax: float | None, exclude_zero_ideal: bool
) -> MetricResult:
    kk = r._cut(k)
    top = max(r.max_label, 0.0)
    if gmax is None:
        gmax = top
    elif gmax < top:
        raise ValueError(f"ERR gmax={gmax} is below the largest label {top}")
    stop = (np.exp2(r.labels[:, :kk]) - 1.0) / np.exp2(gmax)
    reach = np.cumprod(1.0 - stop, axis=1)
    reach = np.concatenate([np.ones((reach.shape[0], 1)), reach[:, :-1]], axis=1)
    values = (stop * reach) @ (1.0 / np.arange(1, kk + 1))
    return _finish(_name("err", k), values, r, exclude_zero_ideal)


def _auc(r: RankedLists) -> MetricResult:
    s = r.scores  # descending, padded slots NaN (never equal to anything)
    q, width = s.shape
    n = r.n_items
    if width == 0:
        values = np.zeros(q)
        return _finish("auc", values, r, True, undefined=np.ones(q, dtype=bool))
    j = np.arange(width)
    real = j < n[:, None]
    new_group = np.ones(s.shape, dtype=bool)
    new_group[:, 1:] = s[:, 1:] != s[:, :-1]
    ends_group = np.ones(s.shape, dtype=bool)
    ends_group[:, :-1] = s[:, :-1] != s[:, 1:]
    first = np.maximum.accumulate(np.where(new_group, j, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends_group, j, width - 1)[:, ::-1], axis=1)[:, ::-1]
    rank_desc = (first + last) / 2.0 + 1.0  # average 1-based rank among ties
    rank_asc = n[:, None] + 1.0 - rank_desc
    pos = (r.labels > 0) & real
    n_pos = pos.sum(axis=1).astype(np.float64)
    n_neg = n - n_pos
    u = np.where(pos, rank_asc, 0.0).sum(axis=1) - n_pos * (n_pos + 1.0) / 2.0
    den = n_pos * n_neg
    values = np.divide(u, den, out=np.zeros_like(u), where=den > 0)
    return _finish("auc", values, r, True, undefined=den == 0)


def _ranked(scores: Any, labels: Any, mask: Any) -> RankedLists:
    return scores if isinstance(scores, RankedLists) else RankedLists(scores, labels, mask)


def ndcg(
    scores: Any,
    labels: Any = None,
    mask: Any = None,
    k: int | None = 10,
    gain: Gain = "exponential",
    exclude_zero_ideal: bool = True,
) -> MetricResult:
    """NDCG@k: ``DCG@k / IDCG@k``, ``DCG@k = sum_{i<=min(k,n)} gain(rel_i) / log2(i+1)``.

    ``gain="exponential"`` uses ``2^rel - 1`` (Burges et al.), ``"linear"`` uses ``rel``
    (trec_eval's ``ndcg_cut``). ``scores`` may also be a :class:`RankedLists`.
    """
    return _ndcg(_ranked(scores, labels, mask), k, gain, exclude_zero_ideal)


def mrr(
    scores: Any,
    labels: Any = None,
    mask: Any = None,
    k: int | None = 10,
    exclude_zero_ideal: bool = True,
) -> MetricResult:
    """MRR@k: mean over queries of ``1 / rank`` of the first item with ``rel > 0``, 0 when
    none is in the top ``k``."""
    return _mrr(_ranked(scores, labels, mask), k, exclude_zero_ideal)


def average_precision(
    scores: Any,
    labels: Any = None,
    mask: Any = None,
    k: int | None = 10,
    denominator: APDenominator = "min",
    exclude_zero_ideal: bool = True,
) -> MetricResult:
    """AP@k per query (its mean is MAP@k): ``sum_{i<=k} P@i [rel_i > 0] / D``.

    ``D = min(k, R)`` by default, so a perfect ranking scores 1; ``denominator="all"`` uses
    ``D = R`` (trec_eval's ``map_cut_k``). The two agree when ``R <= k``.
    """
    return _ap(_ranked(scores, labels, mask), k, denominator, exclude_zero_ideal)


def recall(
    scores: Any,
    labels: Any = None,
    mask: Any = None,
    k: int | None = 10,
    exclude_zero_ideal: bool = True,
) -> MetricResult:
    """Recall@k: ``(#items with rel > 0 in the top k) / R``."""
    return _recall(_ranked(scores, labels, mask), k, exclude_zero_ideal)


def err(
    scores: Any,
    labels: Any = None,
    mask: Any = None,
    k: int | None = 10,
    gmax: float | None = None,
    exclude_zero_ideal: bool = True,
) -> MetricResult:
    """ERR@k (Chapelle cascade): ``sum_{i<=k} (1/i) R_i prod_{j<i}(1 - R_j)``,
    ``R_i = (2^rel_i - 1) / 2^gmax``.

    ``gmax`` is the largest grade the scale allows. The default ``None`` takes the largest
    real label in this batch, which makes ERR depend on the batch; pass it explicitly
    (e.g. 4 for a 0-4 scale, 1 for binary labels) for comparable numbers.
    """
    return _err(_ranked(scores, labels, mask), k, gmax, exclude_zero_ideal)


def group_auc(scores: Any, labels: Any = None, mask: Any = None) -> MetricResult:
    """Per-query ROC AUC for binary relevance (``rel > 0`` positive); tied scores count 1/2.

    Queries with no positive or no negative item are excluded (``"single_class"``). The
    mean is unweighted over queries (the impression-weighted "GAUC" can be computed from
    ``values`` and the list lengths).
    """
    return _auc(_ranked(scores, labels, mask))


def parse_metric(spec: str) -> tuple[str, int | None]:
    """``"ndcg@10" -> ("ndcg", 10)``, ``"auc" -> ("auc", None)``.

    Raises:
        ConfigError: unknown metric name, a cut-off on AUC, or a cut-off below 1.
    """
    m = _SPEC_RE.match(spec.lower())
    if m is None or m.group(1) not in METRIC_NAMES:
        raise ConfigError("metrics", f"unknown metric '{spec}'; expected one of "
                          f"{', '.join(METRIC_NAMES)}, optionally with @k (e.g. ndcg@10)")
    name, k = m.group(1), (int(m.group(2)) if m.group(2) is not None else None)
    if name == "auc" and k is not None:
        raise ConfigError("metrics", f"'{spec}': AUC takes no cut-off")
    if k is not None and k < 1:
        raise ConfigError("metrics", f"'{spec}': the cut-off must be at least 1")
    return name, k


def compute_metrics(
    scores: Any,
    labels: Any = None,
    mask: Any = None,
    spec: Sequence[str] = ("ndcg@10",),
    *,
    gain: Gain = "exponential",
    exclude_zero_ideal: bool = True,
    gmax: float | None = None,
    ap_denominator: APDenominator = "min",
) -> dict[str, MetricResult]:
    """Evaluate several metrics, sorting each query once.

    Args:
        spec: metric names such as ``["ndcg@10", "mrr@10", "map@10", "recall@20",
            "err@10", "auc"]``; without ``@k`` a metric uses the whole list.
        gain, exclude_zero_ideal, gmax, ap_denominator: passed to the metrics above.

    Returns:
        ``{name: MetricResult}`` in the order given, keyed by the canonical name
        (``"NDCG@10"`` -> ``"ndcg@10"``).
    """
    parsed = [(_name(name, k), name, k) for name, k in map(parse_metric, spec)]
    r = _ranked(scores, labels, mask)
    out: dict[str, MetricResult] = {}
    for key, name, k in parsed:
        if name == "ndcg":
            res = _ndcg(r, k, gain, exclude_zero_ideal)
        elif name == "mrr":
            res = _mrr(r, k, exclude_zero_ideal)
        elif name == "map":
            res = _ap(r, k, ap_denominator, exclude_zero_ideal)
        elif name == "recall":
            res = _recall(r, k, exclude_zero_ideal)
        elif name == "err":
            res = _err(r, k, gmax, exclude_zero_ideal)
        else:
            res = _auc(r)
        out[key] = res
    return out
