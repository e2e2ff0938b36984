"""The one evaluation engine: which metrics apply to which lists, neutral ties, and the
same figure whoever asks (benchmark, export, sweep, the Lightning module's test)."""

from __future__ import annotations

import numpy as np
import pytest

from ltr.evaluation.engine import describe_missing, evaluate_lists, per_list
from ltr.metrics import ndcg, neutral_order, reorder
from ltr.training.lists import ListData


def _lists(labels: dict[str, np.ndarray], products: np.ndarray) -> ListData:
    g, n = products.shape
    return ListData(keys=np.arange(g), numeric=np.zeros((g, n, 1), np.float32),
                    categorical=np.zeros((g, n, 0), np.int64), query_text=np.arange(g),
                    product_text=np.zeros((g, n), np.int64), position=np.zeros((g, n), np.int64),
                    mask=np.ones((g, n), bool), product_id=products.astype(object),
                    labels=labels)


def test_sessions_pools_and_known_pools_get_their_metrics():
    rng = np.random.default_rng(0)
    products = rng.permutation(60).reshape(6, 10)
    clicks = (rng.random((6, 10)) < 0.3).astype(np.float32)
    sessions = _lists({"click": clicks, "relevance": rng.integers(0, 5, (6, 10)).astype(float)},
                      products)
    got = evaluate_lists(rng.random((6, 10)), sessions)
    assert {"ndcg@10", "engagement_ndcg@10", "mrr@10_click", "auc_click"} <= set(got)
    assert not any("human" in k for k in got)
    human = rng.integers(0, 3, (6, 10)).astype(float)
    known = _lists({"human": human, "label": human + rng.random((6, 10))}, products)
    got = evaluate_lists(rng.random((6, 10)), known, "known_")
    assert {"known_human_ndcg@10", "known_human_ndcg@10_linear",
            "known_labels_human_ndcg@10"} <= set(got)
    # the labels' own figure: the labels ranked against the human grades
    order = neutral_order(known.tie_key, known.mask)
    lab, h, m = reorder(order, known.labels["label"], human, known.mask)
    assert got["known_labels_human_ndcg@10"] == pytest.approx(ndcg(lab, h, m, k=10).mean)


def test_ties_never_follow_the_stored_order():
    products = np.arange(200 * 10).reshape(200, 10)
    human = np.zeros((200, 10))
    human[:, 0] = 2  # stored best-first
    pools = _lists({"human": human}, products)
    flat = np.zeros((200, 10))
    assert evaluate_lists(flat, pools)["human_ndcg@10"] < 0.6
    per = per_list(flat, pools, "human_ndcg@10")
    assert per.shape == (200,) and np.isfinite(per).all()
    assert np.isnan(per_list(flat, pools, "mrr@10_click")).all()  # not applicable


def test_without_judgements_a_line_says_so():
    lines = describe_missing({"mrr@10_click": 0.3, "engagement_ndcg@10": 0.2})
    assert len(lines) == 1 and "no human judgements" in lines[0]
    assert describe_missing({"human_ndcg@10": 0.8, "mrr@10_click": 0.3}) == []
