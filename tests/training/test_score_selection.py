"""Choice of the ranking score's mix of outputs on validation lists
(:func:`ltr.training.score_selection.select_weights`), on constructed lists whose answer is
known; NDCG is recomputed here one list at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ltr.training.score_selection import select_weights


def ndcg_list(score: np.ndarray, target: np.ndarray, k: int = 10) -> float:
    """NDCG@k with exponential gain of one list (ties by slot order), NaN if ideal is 0."""
    order = sorted(range(len(score)), key=lambda i: -score[i])  # stable
    dcg = sum((2.0 ** target[i] - 1) / math.log2(r + 2) for r, i in enumerate(order[:k]))
    ideal = sorted(target, reverse=True)
    idcg = sum((2.0 ** t - 1) / math.log2(r + 2) for r, t in enumerate(ideal[:k]))
    return dcg / idcg if idcg > 0 else float("nan")


def per_list(score, target, valid) -> np.ndarray:
    return np.array([ndcg_list(score[g][valid[g]], target[g][valid[g]])
                     for g in range(len(score))])


def lists(seed: int, g: int = 60, n: int = 10):
    """Graded targets 0..3 and a validity mask with some padding (>= 4 real slots)."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 4, size=(g, n)).astype(float)
    valid = rng.random((g, n)) < 0.85
    valid[:, :4] = True
    target[:, 0] = np.maximum(target[:, 0], 1)  # a non-zero ideal DCG in every list
    return rng, target, valid


def sd(o: np.ndarray, valid: np.ndarray) -> float:
    return float(np.std(o[valid]))


# --------------------------------------------------------------------------- single outputs


def test_perfect_output_is_selected_alone() -> None:
    rng, target, valid = lists(0)
    noise, perfect = rng.normal(size=target.shape), target.copy()
    for reference in ("cosine", None):
        sel = select_weights([noise, perfect], target, valid, ["cosine", "click"],
                             reference=reference)
        assert sel is not None
        assert sel.weights[0] == 0.0
        assert sel.weights[1] == pytest.approx(1.0 / sd(perfect, valid))
        assert sel.ndcg == pytest.approx(1.0)
        assert sel.single["click"] == pytest.approx(1.0)
        assert sel.single["cosine"] == pytest.approx(np.nanmean(per_list(noise, target, valid)))
        assert not sel.kept_reference
        assert sel.lists == 60
        assert sel.describe(["cosine", "click"]).startswith("click=")


def test_reference_kept_with_fewer_than_min_lists() -> None:
    rng, target, valid = lists(1, g=5)
    noise, perfect = rng.normal(size=target.shape), target.copy()
    sel = select_weights([noise, perfect], target, valid, ["cosine", "click"])
    assert sel.kept_reference
    assert sel.lists == 5
    np.testing.assert_allclose(sel.weights, [1.0 / sd(noise, valid), 0.0])
    assert sel.ndcg == pytest.approx(np.mean(per_list(noise, target, valid)))
    # min_lists counts lists with a non-zero ideal: 30 lists but only 29 count
    rng, target, valid = lists(2, g=30)
    target[7] = 0.0
    noise, perfect = rng.normal(size=target.shape), target.copy()
    sel = select_weights([noise, perfect], target, valid, ["cosine", "click"])
    assert sel.kept_reference and sel.lists == 29
    sel = select_weights([noise, perfect], target, valid, ["cosine", "click"], min_lists=29)
    assert not sel.kept_reference
    # no reference among the outputs: no such rule, the search runs
    sel = select_weights([noise, perfect], target, valid, ["cosine", "click"],
                         reference="text_similarity")
    assert not sel.kept_reference and sel.weights[0] == 0.0


def test_ties_among_single_outputs_go_to_the_earlier_name() -> None:
    rng, target, valid = lists(3)
    x = rng.normal(size=target.shape)
    for names in (["p", "q"], ["q", "p"]):
        # the same ranking at two scales: equal NDCG; mixing them changes nothing
        sel = select_weights([x, 2.0 * x], target, valid, names, reference=None)
        assert sel.single[names[0]] == pytest.approx(sel.single[names[1]])
        np.testing.assert_allclose(sel.weights, [1.0 / sd(x, valid), 0.0])
        sel = select_weights([2.0 * x, x], target, valid, names, reference=None)
        np.testing.assert_allclose(sel.weights, [1.0 / sd(2.0 * x, valid), 0.0])


def test_none_when_nothing_valid() -> None:
    rng, target, valid = lists(4, g=8)
    x = rng.normal(size=target.shape)
    assert select_weights([], target, valid, []) is None
    assert select_weights([x], target, np.zeros_like(valid), ["cosine"]) is None
    assert select_weights([x], np.zeros_like(target), valid, ["cosine"]) is None
    # a target that is NaN everywhere reads as 0: nothing to fit either
    assert select_weights([x], np.full_like(target, np.nan), valid, ["cosine"]) is None


# --------------------------------------------------------------------------- mixes


def additive_case(seed: int = 5, g: int = 60):
    """target = a + b, with b a shuffle of a's values (equal standard deviations, so that
    a/sd + b/sd ranks exactly as the target)."""
    rng, _, valid = lists(seed, g=g)
    a = rng.random(valid.shape)
    b = np.zeros_like(a)
    b[valid] = rng.permutation(a[valid])
    b[~valid] = rng.random((~valid).sum())
    return a, b, a + b, valid


def test_mix_adopted_when_clearly_better_on_many_lists() -> None:
    a, b, target, valid = additive_case()
    sel = select_weights([a, b], target, valid, ["cosine", "click"], reference="cosine")
    assert not sel.kept_reference
    assert sel.ndcg == pytest.approx(1.0)
    assert sel.weights[0] == pytest.approx(sel.weights[1])
    assert sel.weights[0] == pytest.approx(1.0 / sd(a, valid))
    mix = sel.weights[0] * a + sel.weights[1] * b
    np.testing.assert_allclose(per_list(mix, target, valid), 1.0)
    d = 1.0 - per_list(a, target, valid)
    assert sel.gain == pytest.approx(d.mean())
    assert sel.gain_se == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)))
    assert sel.gain > 2 * sel.gain_se


def test_reference_kept_unless_better_by_min_se_standard_errors() -> None:
    # reference and a second output are both noisy views of the target; their mix is
    # better on average but not on every list
    rng, target, valid = lists(6, g=40)
    ref = target + rng.normal(0, 1.2, target.shape)
    other = target + rng.normal(0, 1.2, target.shape)
    names = ["cosine", "click"]
    free = select_weights([ref, other], target, valid, names, min_se=0.0)
    assert not free.kept_reference and free.weights[1] > 0 and free.weights[0] > 0
    # the reported gain and its standard error, recomputed list by list
    d = per_list(free.weights[0] * ref + free.weights[1] * other, target, valid) - \
        per_list(ref, target, valid)
    assert free.gain == pytest.approx(d.mean())
    assert free.gain_se == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)))
    assert free.ndcg == pytest.approx(np.mean(per_list(ref, target, valid)) + d.mean())
    assert (d < 0).any() and free.gain > 0
    ratio = free.gain / free.gain_se
    above = select_weights([ref, other], target, valid, names, min_se=ratio * 1.01)
    assert above.kept_reference
    np.testing.assert_allclose(above.weights, [1.0 / sd(ref, valid), 0.0])
    assert above.ndcg == pytest.approx(np.mean(per_list(ref, target, valid)))
    assert above.gain == pytest.approx(free.gain)  # still reported
    below = select_weights([ref, other], target, valid, names, min_se=ratio * 0.99)
    assert not below.kept_reference
    np.testing.assert_allclose(below.weights, free.weights)
    # the reference kept although it is not the best single output
    worse_ref = select_weights([ref, other, target], target, valid, names + ["label"],
                               min_se=1e9)
    assert worse_ref.kept_reference and worse_ref.single["label"] == pytest.approx(1.0)
    np.testing.assert_allclose(worse_ref.weights, [1.0 / sd(ref, valid), 0.0, 0.0])


def test_weights_apply_to_raw_outputs() -> None:
    rng, target, valid = lists(7, g=40)
    ref = target + rng.normal(0, 1.2, target.shape)
    other = target + rng.normal(0, 1.2, target.shape)
    names = ["cosine", "click"]
    base = select_weights([ref, other], target, valid, names, min_se=0.0)
    scaled = select_weights([ref, 10.0 * other], target, valid, names, min_se=0.0)
    assert base.weights[1] > 0
    assert scaled.weights[0] == pytest.approx(base.weights[0])
    assert scaled.weights[1] == pytest.approx(base.weights[1] / 10.0)
    assert scaled.ndcg == pytest.approx(base.ndcg)
    s1 = base.weights[0] * ref + base.weights[1] * other
    s2 = scaled.weights[0] * ref + scaled.weights[1] * (10.0 * other)
    np.testing.assert_allclose(s2, s1, rtol=1e-9)
    np.testing.assert_array_equal(np.argsort(-np.where(valid, s1, -np.inf), axis=1),
                                  np.argsort(-np.where(valid, s2, -np.inf), axis=1))
    # the reported NDCG is that of the raw outputs with the returned weights
    assert base.ndcg == pytest.approx(np.mean(per_list(s1, target, valid)))
