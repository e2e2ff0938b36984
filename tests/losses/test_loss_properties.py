"""Properties every registered loss must have (parameterised over ``LOSSES``, as rax's
``losses_test.py``): padding invariance, empty and label-free batches, weights, reductions,
gradient sanity and input checks."""

from __future__ import annotations

import math

import pytest
import torch

from ltr.losses import LOSSES, REDUCTIONS, lambda_ndcg

NAMES = sorted(LOSSES)
LISTWISE = {"softmax_ce", "listnet", "lambda_ndcg"}
NAN = float("nan")
INF = float("inf")


def batch(seed: int = 0, b: int = 4, n: int = 5):
    """Scores, binary labels (every list has a positive and a negative), a mask with
    interleaved padding, per-item and per-list weights."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, n, generator=g)
    labels = (torch.rand(b, n, generator=g) < 0.4).float()
    labels[:, 0] = 1.0
    labels[:, 1] = 0.0
    mask = torch.rand(b, n, generator=g) < 0.8
    mask[:, :2] = True
    item_w = torch.rand(b, n, generator=g) + 0.5
    list_w = torch.rand(b, generator=g) + 0.5
    return scores, labels, mask, item_w, list_w


def value_and_grad(fn, scores, labels, mask, **kw):
    x = scores.clone().requires_grad_(True)
    out = fn(x, labels, mask, **kw)
    out.sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("weighting", ["none", "item", "list"])
@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name: str, weighting: str) -> None:
    fn = LOSSES[name]
    scores, labels, mask, item_w, list_w = batch()
    b, n = scores.shape
    w = {"none": None, "item": item_w, "list": list_w}[weighting]
    # garbage in the slots that are already padded
    garbage = torch.tensor([NAN, INF, -INF, 1e30, -1e30])
    dirty = torch.where(mask, scores, garbage[torch.arange(n) % 5])
    for reduction in REDUCTIONS:
        base_v, base_g = value_and_grad(fn, scores, labels, mask, weights=w, reduction=reduction)
        v, g = value_and_grad(fn, dirty, labels, mask, weights=w, reduction=reduction)
        torch.testing.assert_close(v, base_v)
        torch.testing.assert_close(g, base_g)
        assert torch.isfinite(g).all() and (g[~mask] == 0).all()

        # insert 3 new padded slots (front, middle, end) holding NaN/inf scores, labels, weights
        cols = [0, 3, n]
        extra = len(cols)
        wide = n + extra
        keep = torch.ones(wide, dtype=torch.bool)
        for c, k in zip(cols, range(extra), strict=True):
            keep[c + k] = False
        big_s = torch.full((b, wide), NAN)
        big_s[:, ~keep] = torch.tensor([NAN, INF, -INF])
        big_s[:, keep] = dirty
        big_y = torch.full((b, wide), NAN)
        big_y[:, keep] = labels
        big_m = torch.zeros(b, wide, dtype=torch.bool)
        big_m[:, keep] = mask
        big_w = w
        if weighting == "item":
            big_w = torch.full((b, wide), NAN)
            big_w[:, keep] = item_w
        v2, g2 = value_and_grad(fn, big_s, big_y, big_m, weights=big_w, reduction=reduction)
        torch.testing.assert_close(v2, base_v)
        torch.testing.assert_close(g2[:, keep], base_g)
        assert (g2[:, ~keep] == 0).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_masked_batch_is_zero_with_zero_grad(name: str, reduction: str) -> None:
    scores = torch.full((3, 4), NAN)
    scores[0, 0] = INF
    labels = torch.ones(3, 4)
    mask = torch.zeros(3, 4, dtype=torch.bool)
    for weights in (None, torch.full((3, 4), NAN), torch.full((3,), NAN)):
        x = scores.clone().requires_grad_(True)
        out = LOSSES[name](x, labels, mask, weights=weights, reduction=reduction)
        assert out.requires_grad  # a trainer can still call backward()
        assert torch.equal(out.detach(), torch.zeros_like(out))
        out.sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x.grad))


@pytest.mark.parametrize("name", NAMES)
def test_zero_width_batch(name: str) -> None:
    x = torch.zeros(2, 0, requires_grad=True)
    out = LOSSES[name](x, torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool))
    out.backward()
    assert out.item() == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_all_zero_labels_no_nan(name: str) -> None:
    scores, _, mask, item_w, _ = batch()
    labels = torch.zeros_like(scores)
    for weights in (None, item_w):
        for reduction in REDUCTIONS:
            v, g = value_and_grad(LOSSES[name], scores, labels, mask, weights=weights,
                                  reduction=reduction)
            assert torch.isfinite(v).all() and torch.isfinite(g).all()
            if name in LISTWISE:  # no positive label: every list excluded
                assert (v == 0).all() and (g == 0).all()
            else:  # pointwise: negatives are informative
                assert (v > 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_excluded_lists_leave_the_mean(name: str) -> None:
    scores, labels, mask, _, _ = batch()
    fn = LOSSES[name]
    alone = fn(scores[:2], labels[:2], mask[:2])
    # append an empty list and (for listwise losses) a list with no positive label
    s = torch.cat([scores[:2], torch.full((2, 5), NAN)])
    s[3] = torch.randn(5)
    y = torch.cat([labels[:2], torch.zeros(2, 5)])
    m = torch.cat([mask[:2], torch.zeros(1, 5, dtype=torch.bool), torch.ones(1, 5, dtype=torch.bool)])
    per_list = fn(s, y, m, reduction="none")
    assert per_list[2] == 0
    if name in LISTWISE:
        assert per_list[3] == 0
        torch.testing.assert_close(fn(s, y, m), alone)
    else:
        torch.testing.assert_close(fn(s, y, m), (alone * 2 + per_list[3]) / 3)


@pytest.mark.parametrize("name", NAMES)
def test_reductions(name: str) -> None:
    scores, labels, mask, _, _ = batch(seed=3)
    fn = LOSSES[name]
    none = fn(scores, labels, mask, reduction="none")
    assert none.shape == (scores.shape[0],)
    torch.testing.assert_close(fn(scores, labels, mask, reduction="sum"), none.sum())
    torch.testing.assert_close(fn(scores, labels, mask, reduction="mean"), none.mean())
    torch.testing.assert_close(fn(scores, labels, mask), none.mean())  # default is "mean"


@pytest.mark.parametrize("name", NAMES)
def test_per_list_weights_equal_broadcast_item_weights(name: str) -> None:
    scores, labels, mask, item_w, list_w = batch(seed=4)
    fn = LOSSES[name]
    for reduction in REDUCTIONS:
        per_list = fn(scores, labels, mask, weights=list_w, reduction=reduction)
        per_item = fn(scores, labels, mask, weights=list_w[:, None].expand_as(scores),
                      reduction=reduction)
        torch.testing.assert_close(per_list, per_item)
    none = fn(scores, labels, mask, reduction="none")
    torch.testing.assert_close(fn(scores, labels, mask, weights=list_w, reduction="none"),
                               none * list_w)
    # the mean divides by the number of lists, not by the weight sum
    torch.testing.assert_close(fn(scores, labels, mask, weights=list_w),
                               (none * list_w).sum() / len(list_w))
    # unit weights change nothing; per-item weights do change the value
    torch.testing.assert_close(fn(scores, labels, mask, weights=torch.ones_like(scores)),
                               fn(scores, labels, mask))
    assert not torch.allclose(fn(scores, labels, mask, weights=item_w), fn(scores, labels, mask))


@pytest.mark.parametrize("name", NAMES)
def test_weights_never_change_which_lists_count(name: str) -> None:
    scores, labels, mask, item_w, _ = batch(seed=7)
    fn = LOSSES[name]
    item_w[0] = 0.0  # list 0: every item weighs 0, but the list still counts in the mean
    none = fn(scores, labels, mask, weights=item_w, reduction="none")
    assert none[0] == 0
    torch.testing.assert_close(fn(scores, labels, mask, weights=item_w), none.sum() / 4)


@pytest.mark.parametrize("name", NAMES)
def test_sgd_step_lowers_loss_and_promotes_the_relevant_item(name: str) -> None:
    fn = LOSSES[name]
    scores = torch.tensor([[0.5, 0.2, -0.1, 0.3, 7.0]], requires_grad=True)
    labels = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0]])
    mask = torch.tensor([[True, True, True, True, False]])
    before = fn(scores, labels, mask)
    before.backward()
    with torch.no_grad():
        stepped = scores - 0.1 * scores.grad
    after = fn(stepped, labels, mask)
    assert after < before
    # the relevant item (slot 1) gains on every irrelevant one
    gap_before = scores[0, 1] - scores[0, [0, 2, 3]]
    gap_after = stepped[0, 1] - stepped[0, [0, 2, 3]]
    assert (gap_after > gap_before).all()
    assert scores.grad[0, 1] < 0 and scores.grad[0, 4] == 0


@pytest.mark.parametrize("name", NAMES)
def test_dtypes(name: str) -> None:
    scores, labels, mask, _, _ = batch(seed=5)
    fn = LOSSES[name]
    ref = fn(scores, labels, mask)
    assert ref.dtype == torch.float32
    # int and bool labels, a uint8 mask
    torch.testing.assert_close(fn(scores, labels.long(), mask.to(torch.uint8)), ref)
    torch.testing.assert_close(fn(scores, labels.bool(), mask), ref)
    # half-precision scores are computed in float32
    half = fn(scores.bfloat16(), labels, mask)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, ref, rtol=0.05, atol=0.05)
    assert fn(scores.double(), labels, mask).dtype == torch.float64


@pytest.mark.parametrize("name", NAMES)
def test_bad_input(name: str) -> None:
    fn = LOSSES[name]
    s, y, m = torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="reduction"):
        fn(s, y, m, reduction="avg")
    with pytest.raises(ValueError, match="labels shape"):
        fn(s, torch.zeros(2, 4), m)
    with pytest.raises(ValueError, match="mask shape"):
        fn(s, y, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="2-D"):
        fn(torch.zeros(3), torch.zeros(3), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="weights"):
        fn(s, y, m, weights=torch.ones(3))
    with pytest.raises(ValueError, match="weights"):
        fn(s, y, m, weights=torch.ones(2, 3, 1))
    with pytest.raises(TypeError, match="floating"):
        fn(s.long(), y, m)
    with pytest.raises(TypeError):
        fn(s, y, m, torch.ones(2))  # weights are keyword-only


def test_option_checks() -> None:
    s, y = torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]])
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="cut-off"):
            lambda_ndcg(s, y, None, k=k)
    with pytest.raises(ValueError, match="sigma"):
        lambda_ndcg(s, y, None, sigma=0.0)
    with pytest.raises(ValueError, match="mu"):
        lambda_ndcg(s, y, None, mu=-1.0)
    for t in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="temperature"):
            LOSSES["listnet"](s, y, None, temperature=t)


def test_mask_none_means_all_real() -> None:
    scores, labels, _, _, _ = batch(seed=6)
    full = torch.ones_like(scores, dtype=torch.bool)
    for name in NAMES:
        torch.testing.assert_close(LOSSES[name](scores, labels, None),
                                   LOSSES[name](scores, labels, full))
