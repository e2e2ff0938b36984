"""Cross-checks of ltr.metrics against independent implementations.

* trec_eval (via ``ir_measures`` / ``pytrec_eval``) for NDCG (linear and exponential gain),
  RR, AP@k and R@k;
* gdeval.pl (via ``ir_measures``, needs ``perl``) for ERR@k and exponential NDCG@k;
* scikit-learn's ``roc_auc_score`` for per-query AUC.

Tie-breaking: trec_eval and gdeval order tied scores by doc id *descending* (string
order); ltr orders them by row position (earlier first). Giving the item in slot ``j``
the doc id ``f"d{L - 1 - j:04d}"`` makes earlier slots have larger ids, so both rules
produce the same ranking and the comparison is exact also on data with many ties.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

ir_measures = pytest.importorskip("ir_measures")
from ir_measures import AP, ERR, RR, Qrel, R, ScoredDoc, nDCG  # noqa: E402

from ltr.metrics import compute_metrics, group_auc  # noqa: E402

Q, L = 150, 12
KS = (1, 3, 5, 10, 20)


def make_batch(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random lists of 1..L items, some with interior padding, labels 0..4."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, L + 1, size=Q)
    mask = np.arange(L)[None, :] < lengths[:, None]
    # shuffle a third of the rows so padding is not always at the end
    for q in range(0, Q, 3):
        mask[q] = rng.permutation(mask[q])
    labels = rng.choice(5, size=(Q, L), p=[0.55, 0.2, 0.12, 0.08, 0.05]).astype(float)
    labels[: Q // 10] = 0.0  # some queries with zero ideal DCG
    # integer scores in 0..2 give heavy ties
    scores = rng.integers(0, 3, size=(Q, L)).astype(float) if ties else rng.normal(size=(Q, L))
    scores[~mask] = rng.normal(size=(~mask).sum()) * 100  # junk in padded slots
    return scores, labels, mask


def to_trec(scores, labels, mask, skip_zero_ideal: bool = False):
    qrels, run = [], []
    width = scores.shape[1]
    for q in range(scores.shape[0]):
        if skip_zero_ideal and not (labels[q][mask[q]] > 0).any():
            continue
        for j in np.flatnonzero(mask[q]):
            doc = f"d{width - 1 - j:04d}"  # earlier slot -> larger id -> wins ties in trec_eval
            qrels.append(Qrel(str(q), doc, int(labels[q, j])))
            run.append(ScoredDoc(str(q), doc, float(scores[q, j])))
    return qrels, run


def by_query(provider, measures, qrels, run) -> dict[tuple[str, str], float]:
    return {(str(m.measure), m.query_id): m.value for m in provider.iter_calc(measures, qrels, run)}


def assert_matches(res, ref: dict, measure: str, transform=lambda v, q: v, atol=1e-9) -> None:
    qs = np.flatnonzero(res.included)
    assert len(qs) > 0
    ours = res.values[qs]
    theirs = np.array([transform(ref[(measure, str(q))], q) for q in qs])
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=0)


@pytest.mark.parametrize("ties", [False, True], ids=["no-ties", "ties"])
def test_against_trec_eval(ties: bool) -> None:
    scores, labels, mask = make_batch(seed=1 + ties, ties=ties)
    qrels, run = to_trec(scores, labels, mask)
    exp_gains = {g: 2**g - 1 for g in range(5)}
    measures = [RR]
    for k in KS:
        measures += [nDCG @ k, nDCG(gains=exp_gains) @ k, AP @ k, R @ k]
    ref = by_query(ir_measures.pytrec_eval, measures, qrels, run)

    spec = [f"{m}@{k}" for k in KS for m in ("ndcg", "mrr", "map", "recall")]
    lin = compute_metrics(scores, labels, mask, spec, gain="linear")
    exp = compute_metrics(scores, labels, mask, spec, gain="exponential")
    ap_all = compute_metrics(scores, labels, mask, [f"map@{k}" for k in KS], ap_denominator="all")
    n_rel = (labels * mask > 0).sum(axis=1)
    for k in KS:
        assert_matches(lin[f"ndcg@{k}"], ref, f"nDCG@{k}")
        assert_matches(exp[f"ndcg@{k}"], ref, str(nDCG(gains=exp_gains) @ k))
        assert_matches(exp[f"recall@{k}"], ref, f"R@{k}")
        # trec_eval's map_cut_k divides by R; ltr's default divides by min(k, R)
        assert_matches(ap_all[f"map@{k}"], ref, f"AP@{k}")
        assert_matches(
            exp[f"map@{k}"], ref, f"AP@{k}", lambda v, q, k=k: v * n_rel[q] / min(k, n_rel[q])
        )
        # trec_eval's recip_rank has no cut-off: RR@k = RR if the first hit is within k
        assert_matches(exp[f"mrr@{k}"], ref, "RR", lambda v, q, k=k: v if v >= 1 / k else 0.0)


@pytest.mark.skipif(shutil.which("perl") is None, reason="gdeval.pl needs perl")
@pytest.mark.parametrize("ties", [False, True], ids=["no-ties", "ties"])
def test_err_and_exp_ndcg_against_gdeval(ties: bool) -> None:
    scores, labels, mask = make_batch(seed=10 + ties, ties=ties)
    # gdeval divides by the ideal DCG without a guard, so leave zero-ideal queries out of it
    qrels, run = to_trec(scores, labels, mask, skip_zero_ideal=True)
    measures = [m for k in (1, 5, 10) for m in (ERR @ k, nDCG(dcg="exp-log2") @ k)]
    ref = by_query(ir_measures.gdeval, measures, qrels, run)
    ours = compute_metrics(
        scores, labels, mask, ["err@1", "err@5", "err@10", "ndcg@1", "ndcg@5", "ndcg@10"],
        gmax=4,  # gdeval's MAX_JUDGMENT
    )
    for k in (1, 5, 10):
        # gdeval prints 5 decimals
        assert_matches(ours[f"err@{k}"], ref, f"ERR@{k}", atol=6e-6)
        assert_matches(ours[f"ndcg@{k}"], ref, f"nDCG(dcg='exp-log2')@{k}", atol=6e-6)


@pytest.mark.parametrize("ties", [False, True], ids=["no-ties", "ties"])
def test_group_auc_against_sklearn(ties: bool) -> None:
    from sklearn.metrics import roc_auc_score

    scores, labels, mask = make_batch(seed=20 + ties, ties=ties)
    binary = (labels > 1).astype(float)
    res = group_auc(scores, binary, mask)
    expected_included = []
    for q in range(Q):
        y, s = binary[q][mask[q]], scores[q][mask[q]]
        if 0 < y.sum() < len(y):
            expected_included.append(q)
            assert res.values[q] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        else:
            assert not res.included[q]
    assert np.flatnonzero(res.included).tolist() == expected_included
    assert res.excluded["single_class"] == Q - len(expected_included)
