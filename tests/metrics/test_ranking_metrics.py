"""Hand-computed cases, the tie rule, exclusion, padding, torch inputs and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ltr.errors import ConfigError
from ltr.metrics import (
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

LOG3 = math.log2(3)

# one query, 4 items; scores rank them in row order: labels in ranked order = [0, 1, 2, 0]
S1 = np.array([[3.0, 2.0, 1.0, 0.0]])
Y1 = np.array([[0.0, 1.0, 2.0, 0.0]])


def test_ndcg_hand_computed_exponential_and_linear() -> None:
    # exponential: DCG@3 = 0 + (2^1-1)/log2(3) + (2^2-1)/log2(4); IDCG@3 = 3/1 + 1/log2(3)
    expected = (1 / LOG3 + 3 / 2) / (3 + 1 / LOG3)
    assert ndcg(S1, Y1, k=3).mean == pytest.approx(expected)
    # linear: DCG@3 = 1/log2(3) + 2/2; IDCG@3 = 2 + 1/log2(3)
    assert ndcg(S1, Y1, k=3, gain="linear").mean == pytest.approx((1 / LOG3 + 1) / (2 + 1 / LOG3))
    # k=1: the top item has label 0
    assert ndcg(S1, Y1, k=1).mean == 0.0
    # perfect ranking scores 1 at every cut-off
    for k in (1, 2, 4, None):
        assert ndcg(Y1, Y1, k=k).mean == pytest.approx(1.0)


def test_binary_metrics_hand_computed() -> None:
    assert mrr(S1, Y1, k=3).mean == 0.5
    assert mrr(S1, Y1, k=1).mean == 0.0  # first relevant at rank 2 > k
    # relevant at ranks 2 and 3: P@2 = 1/2, P@3 = 2/3; R = 2
    assert average_precision(S1, Y1, k=3).mean == pytest.approx((1 / 2 + 2 / 3) / 2)
    # k=2: only rank 2 counts; D = min(2, R=2) = 2 (also R)
    assert average_precision(S1, Y1, k=2).mean == pytest.approx(0.25)
    # R = 3 > k = 2: "min" divides by 2, "all" by 3
    y = np.array([[1.0, 1.0, 0.0, 1.0]])
    assert average_precision(S1, y, k=2).mean == pytest.approx(1.0)
    assert average_precision(S1, y, k=2, denominator="all").mean == pytest.approx(2 / 3)
    assert recall(S1, Y1, k=2).mean == 0.5
    assert recall(S1, Y1, k=3).mean == 1.0
    assert recall(S1, y, k=None).mean == 1.0


def test_err_hand_computed() -> None:
    # gmax = 2: R = (2^g - 1)/4 -> [0, 1/4, 3/4, 0]
    expected = 0 + (1 / 2) * (1 / 4) + (1 / 3) * (3 / 4) * (1 - 1 / 4)
    assert err(S1, Y1, k=3, gmax=2).mean == pytest.approx(expected)
    assert err(S1, Y1, k=3).mean == pytest.approx(expected)  # default gmax = largest label
    # gmax = 4: R = [0, 1/16, 3/16, 0]
    expected4 = (1 / 2) * (1 / 16) + (1 / 3) * (3 / 16) * (15 / 16)
    assert err(S1, Y1, k=10, gmax=4).mean == pytest.approx(expected4)
    # two items at the top grade: R = 15/16 each; the second is reached with prob. 1/16
    assert err(np.array([[1.0, 0.0]]), np.array([[4.0, 4.0]]), gmax=4).mean == pytest.approx(
        15 / 16 + (1 / 2) * (15 / 16) * (1 / 16)
    )
    with pytest.raises(ValueError, match="gmax"):
        err(S1, Y1, gmax=1)


def test_group_auc_hand_computed() -> None:
    # positives score 2 and 1, negatives 3 and 0: each positive beats one negative -> 2/4
    assert group_auc(S1, Y1).mean == 0.5
    # a tie between a positive and a negative counts one half
    s = np.array([[1.0, 1.0, 0.0]])
    y = np.array([[1.0, 0.0, 0.0]])
    assert group_auc(s, y).mean == pytest.approx((0.5 + 1.0) / 2)
    assert group_auc(np.array([[0.0, 1.0, 2.0]]), np.array([[0.0, 0.0, 1.0]])).mean == 1.0


def test_ties_are_broken_by_row_order() -> None:
    """Documented rule: among equal scores the earlier slot ranks higher (stable sort)."""
    s = np.array([[1.0, 2.0, 2.0, 1.0, 2.0]])
    r = rank_lists(s, np.zeros_like(s))
    assert r.order[0].tolist() == [1, 2, 4, 0, 3]
    # all tied: the ranking is the row order, so moving the relevant item changes results
    flat = np.zeros((1, 4))
    assert mrr(flat, np.array([[1.0, 0, 0, 0]])).mean == 1.0
    assert mrr(flat, np.array([[0, 0, 0, 1.0]])).mean == 0.25
    assert ndcg(flat, np.array([[0, 0, 1.0, 0]]), k=2).mean == 0.0
    # -0.0 and 0.0 tie; -inf ranks after finite scores but before padding
    s = np.array([[0.0, -0.0, -np.inf, 5.0, 9.0]])
    m = np.array([[True, True, True, True, False]])
    assert rank_lists(s, np.zeros_like(s), m).order[0].tolist() == [3, 0, 1, 2, 4]


def test_ties_are_identical_for_numpy_and_torch() -> None:
    s = np.array([[1.0, 1.0, 1.0], [0.5, 0.5, 0.7]])
    y = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
    a = compute_metrics(s, y, spec=["ndcg@2", "mrr@2"])
    b = compute_metrics(torch.tensor(s), torch.tensor(y), spec=["ndcg@2", "mrr@2"])
    for key in a:
        np.testing.assert_array_equal(a[key].values, b[key].values)
    assert a["mrr@2"].values.tolist() == [0.5, 0.5]


def test_zero_ideal_queries_are_excluded_by_default_and_counted() -> None:
    s = np.array([[0.3, 0.2], [0.1, 0.9], [0.5, 0.4]])
    y = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    for fn in (ndcg, mrr, average_precision, recall, err):
        res = fn(s, y, k=2)
        assert res.included.tolist() == [True, False, True]
        assert res.excluded == {"empty": 0, "zero_ideal": 1}
        assert res.n_excluded == 1 and res.n_included == 2
        kept = fn(s, y, k=2, exclude_zero_ideal=False)
        assert kept.included.tolist() == [True, True, True]
        assert kept.values[1] == 0.0 and kept.excluded["zero_ideal"] == 0
        assert kept.mean == pytest.approx(res.values.sum() / 3)
    assert ndcg(s, y, k=2).mean == pytest.approx((1.0 + 1 / LOG3) / 2)


def test_all_masked_queries_give_no_nan() -> None:
    s = np.array([[0.3, 0.2], [np.nan, np.nan], [0.5, 0.4]])  # NaN only in padded slots
    y = np.array([[1.0, 0.0], [-1.0, 3.0], [1.0, 1.0]])  # bad labels only in padded slots
    m = np.array([[True, True], [False, False], [True, True]])
    spec = ["ndcg@1", "ndcg", "mrr@2", "map@2", "recall@1", "err@2", "auc"]
    for res in compute_metrics(s, y, m, spec).values():
        assert not np.isnan(res.values).any(), res.name
        assert not res.included[1] and res.excluded["empty"] == 1
        assert not math.isnan(res.mean)
    # no query left at all: the mean is NaN (nothing to average), values are still 0
    res = ndcg(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3), bool))
    assert math.isnan(res.mean) and res.values.tolist() == [0.0, 0.0]
    assert res.excluded == {"empty": 2, "zero_ideal": 0}
    assert ndcg(np.zeros((0, 5)), np.zeros((0, 5))).n_included == 0


ALL = ["ndcg@1", "ndcg@3", "ndcg", "mrr@3", "map@3", "map", "recall@2", "err@3", "auc"]


def _random(seed: int, q: int = 60, width: int = 8, ties: bool = True):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 4, (q, width)).astype(float) if ties else rng.normal(size=(q, width))
    y = rng.choice(4, size=(q, width), p=[0.6, 0.2, 0.1, 0.1]).astype(float)
    m = np.arange(width)[None] < rng.integers(0, width + 1, q)[:, None]
    return s, y, m


@pytest.mark.parametrize("gain", ["exponential", "linear"])
def test_padding_never_changes_results(gain: str) -> None:
    s, y, m = _random(0)
    base = compute_metrics(s, y, m, ALL, gain=gain, gmax=3)
    rng = np.random.default_rng(1)
    # 1) extra padded columns at the end holding junk (NaN and huge scores, odd labels)
    extra = 5
    s2 = np.concatenate([s, rng.choice([np.nan, 1e9, -1e9], (len(s), extra))], axis=1)
    y2 = np.concatenate([y, rng.choice([-2.0, np.nan, 7.0], (len(s), extra))], axis=1)
    m2 = np.concatenate([m, np.zeros((len(s), extra), bool)], axis=1)
    # 2) padding interleaved between real items (row order of real items kept)
    width = s.shape[1] * 2
    s3 = np.full((len(s), width), 1e9)
    y3 = np.full((len(s), width), 9.0)
    m3 = np.zeros((len(s), width), bool)
    s3[:, 1::2], y3[:, 1::2], m3[:, 1::2] = s, y, m
    for s_, y_, m_ in ((s2, y2, m2), (s3, y3, m3)):
        other = compute_metrics(s_, y_, m_, ALL, gain=gain, gmax=3)
        for key in ALL:
            np.testing.assert_allclose(other[key].values, base[key].values, atol=1e-12)
            np.testing.assert_array_equal(other[key].included, base[key].included)
            assert other[key].excluded == base[key].excluded


def test_cutoff_longer_than_list_equals_full_list() -> None:
    s, y, m = _random(2)
    full = compute_metrics(s, y, m, ["ndcg", "mrr", "map", "recall", "err"])
    long = compute_metrics(s, y, m, ["ndcg@50", "mrr@50", "map@50", "recall@50", "err@50"])
    for a, b in zip(full.values(), long.values(), strict=True):
        np.testing.assert_allclose(a.values, b.values)
    assert list(long) == ["ndcg@50", "mrr@50", "map@50", "recall@50", "err@50"]
    assert list(compute_metrics(s, y, m, [" NDCG@3", "Auc"])) == ["ndcg@3", "auc"]


def test_compute_metrics_matches_single_functions() -> None:
    s, y, m = _random(3, ties=False)
    res = compute_metrics(s, y, m, ["ndcg@3", "mrr@3", "map@3", "recall@2", "err@3", "auc"])
    singles = [
        ndcg(s, y, m, k=3), mrr(s, y, m, k=3), average_precision(s, y, m, k=3),
        recall(s, y, m, k=2), err(s, y, m, k=3), group_auc(s, y, m),
    ]
    for (key, a), b in zip(res.items(), singles, strict=True):
        assert a.name == b.name == key
        np.testing.assert_array_equal(a.values, b.values)
        assert a.mean == b.mean
    # a RankedLists can be reused
    r = rank_lists(s, y, m)
    np.testing.assert_array_equal(ndcg(r, k=3).values, singles[0].values)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_torch_path_matches_numpy_path(dtype: torch.dtype) -> None:
    s, y, m = _random(4, ties=False)
    ts = torch.tensor(s, dtype=dtype)
    ty, tm = torch.tensor(y, dtype=torch.float32), torch.tensor(m)
    # the numpy reference sees exactly the scores the tensor holds (ties included)
    ref = compute_metrics(ts.float().numpy(), y, m, ALL, gmax=3)
    out = compute_metrics(ts, ty, tm, ALL, gmax=3)
    for key in ALL:
        np.testing.assert_allclose(out[key].values, ref[key].values, atol=1e-12)
        assert isinstance(out[key].mean, float)
        assert out[key].mean == pytest.approx(ref[key].mean)
    # gradients attached: detached transparently
    g = torch.tensor(s, requires_grad=True)
    assert float(ndcg(g, ty, tm)) == pytest.approx(ndcg(s, y, m).mean)


def test_scores_that_are_ints_and_lists_are_accepted() -> None:
    assert ndcg([[3, 2, 1]], [[0, 1, 2]], k=3).mean == ndcg(
        np.array([[3.0, 2.0, 1.0]]), np.array([[0.0, 1.0, 2.0]]), k=3
    ).mean


def test_bad_input_is_rejected() -> None:
    s, y = np.array([[0.1, np.nan]]), np.array([[1.0, 0.0]])
    with pytest.raises(ValueError, match=r"NaN.*\[0, 1\]"):
        ndcg(s, y)
    with pytest.raises(ValueError, match="labels must be >= 0"):
        ndcg(np.array([[0.1, 0.2]]), np.array([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="labels must be >= 0"):
        ndcg(np.array([[0.1, 0.2]]), np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="shape"):
        ndcg(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="shape"):
        ndcg(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="2-D"):
        ndcg(np.zeros(3), np.zeros(3))
    for k in (0, -1, 2.5):
        with pytest.raises(ValueError, match="cut-off"):
            ndcg(np.zeros((1, 3)), np.ones((1, 3)), k=k)
    with pytest.raises(ValueError, match="gain"):
        ndcg(np.zeros((1, 3)), np.ones((1, 3)), gain="log")
    with pytest.raises(ValueError, match="denominator"):
        average_precision(np.zeros((1, 3)), np.ones((1, 3)), denominator="r")


def test_parse_metric() -> None:
    assert parse_metric("NDCG@10") == ("ndcg", 10)
    assert parse_metric("mrr") == ("mrr", None)
    assert parse_metric(" auc ") == ("auc", None)
    for bad in ("ndcg@0", "auc@5", "precision@5", "ndcg@x", ""):
        with pytest.raises(ConfigError):
            parse_metric(bad)


def test_ndcg_is_vectorised() -> None:
    """Loose guard (10x the 50 ms target of scripts/bench_metrics.py) against a Python loop
    over queries creeping in; the benchmark script measures the real figure."""
    import time

    rng = np.random.default_rng(0)
    s = rng.normal(size=(8000, 40))
    y = rng.integers(0, 5, size=(8000, 40)).astype(float)
    ndcg(s, y, k=10)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ndcg(s, y, k=10)
        times.append(time.perf_counter() - t0)
    assert min(times) < 0.5
