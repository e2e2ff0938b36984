"""Fixed hand-computed values and a cross-check against per-list Python loop implementations.

The loop references below take one list at a time, drop its padded slots by boolean
indexing and compute the loss the obvious way (``torch.nn.functional`` and plain Python
``math``), in float64; they share no code with ``ltr.losses``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ltr.losses import bce, lambda_ndcg, listnet, mse, softmax_ce

LOG2_3 = math.log2(3)


# ----------------------------------------------------------------------------- hand values

S3 = torch.tensor([[2.0, 1.0, 3.0]])
Y3 = torch.tensor([[1.0, 0.0, 0.0]])
M3 = torch.ones(1, 3, dtype=torch.bool)


def _sp(x: float) -> float:
    return math.log1p(math.exp(x))


def test_bce_hand_value() -> None:
    # -log sig(2) - log(1 - sig(1)) - log(1 - sig(3)) = sp(-2) + sp(1) + sp(3), mean over 3
    expected = (_sp(-2) + _sp(1) + _sp(3)) / 3
    assert bce(S3, Y3, M3).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(4.488777 / 3, rel=1e-6)  # rax docstring (sum)


def test_mse_hand_value() -> None:
    assert mse(S3, Y3, M3).item() == pytest.approx((1 + 1 + 9) / 3)


def test_softmax_ce_hand_value() -> None:
    # -log(e^2 / (e^2 + e + e^3)); 1.4076059 in rax's docstring
    expected = -2 + math.log(math.exp(2) + math.e + math.exp(3))
    assert softmax_ce(S3, Y3, M3).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(1.4076059, rel=1e-6)
    # graded labels [2, 0, 1]: target [2/3, 0, 1/3]
    lse = math.log(math.exp(2) + math.e + math.exp(3))
    y = torch.tensor([[2.0, 0.0, 1.0]])
    assert softmax_ce(S3, y, M3).item() == pytest.approx(
        -(2 / 3) * (2 - lse) - (1 / 3) * (3 - lse), rel=1e-6
    )


def test_listnet_hand_value() -> None:
    y = torch.tensor([[2.0, 0.0, 1.0]])
    lse = math.log(math.exp(2) + math.e + math.exp(3))
    for temp in (1.0, 0.5):
        z = math.exp(2 / temp) + 1 + math.exp(1 / temp)
        t = [math.exp(2 / temp) / z, 1 / z, math.exp(1 / temp) / z]
        expected = -(t[0] * (2 - lse) + t[1] * (1 - lse) + t[2] * (3 - lse))
        assert listnet(S3, y, M3, temperature=temp).item() == pytest.approx(expected, rel=1e-6)


def test_lambda_ndcg_hand_value() -> None:
    # ranks by score: item2 (3) -> 1, item0 (2) -> 2, item1 (1) -> 3; IDCG = 1, G = [1, 0, 0]
    # pair (0, 1): |1/log2(3) - 1/log2(4)| * log2(1 + e^-(2-1))
    # pair (0, 2): |1/log2(3) - 1/log2(2)| * log2(1 + e^-(2-3))
    expected = (1 / LOG2_3 - 0.5) * math.log2(1 + math.exp(-1)) + (1 - 1 / LOG2_3) * math.log2(
        1 + math.e
    )
    assert lambda_ndcg(S3, Y3, M3).item() == pytest.approx(expected, rel=1e-6)
    # k = 1: only pairs touching rank 1 (item 2); discounts beyond rank 1 are 0
    # pair (0, 2): |0 - 1| * log2(1 + e^1); pair (0, 1) has both ranks > 1
    assert lambda_ndcg(S3, Y3, M3, k=1).item() == pytest.approx(math.log2(1 + math.e), rel=1e-6)
    # NDCG-Loss2++ adds mu * delta_ij, delta = 1/log2(1+d) - 1/log2(2+d), d = |r_i - r_j|
    d1 = 1 - 1 / LOG2_3  # d = 1 (ranks 2, 3)
    expected_pp = (1 / LOG2_3 - 0.5 + 10 * d1) * math.log2(1 + math.exp(-1)) + (
        1 - 1 / LOG2_3 + 10 * d1
    ) * math.log2(1 + math.e)
    assert lambda_ndcg(S3, Y3, M3, mu=10.0).item() == pytest.approx(expected_pp, rel=1e-6)


def test_lambda_ndcg_graded_hand_value() -> None:
    # two items in the right order, labels 2 and 1: G = [3, 1] / IDCG, IDCG = 3 + 1/log2(3)
    s = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([[2.0, 1.0]])
    idcg = 3 + 1 / LOG2_3
    expected = (2 / idcg) * (1 - 1 / LOG2_3) * math.log2(1 + math.exp(-1))
    assert lambda_ndcg(s, y, None).item() == pytest.approx(expected, rel=1e-6)
    # sigma scales the score difference
    expected_sigma = (2 / idcg) * (1 - 1 / LOG2_3) * math.log2(1 + math.exp(-2))
    assert lambda_ndcg(s, y, None, sigma=2.0).item() == pytest.approx(expected_sigma, rel=1e-6)


# ----------------------------------------------------------------------------- loop references


def ref_bce(s, y, w):
    return F.binary_cross_entropy_with_logits(s, y, weight=w, reduction="mean")


def ref_mse(s, y, w):
    return (w * (s - y) ** 2).mean()


def ref_softmax_ce(s, y, w):
    if not (y > 0).any():
        return None
    if torch.all(w == 1):
        return F.cross_entropy(s[None], (y / y.sum())[None])
    return -(w * (y / y.sum()) * torch.log_softmax(s, 0)).sum()


def ref_listnet(s, y, w, temperature=1.0):
    if not (y > 0).any():
        return None
    t = torch.softmax(y / temperature, 0)
    return -(w * t * torch.log_softmax(s, 0)).sum()


def ref_lambda(s, y, w, k=None, sigma=1.0, mu=0.0):
    n = len(s)
    sl, yl, wl = s.tolist(), y.tolist(), w.tolist()
    if len(set(yl)) < 2:
        return None
    order = sorted(range(n), key=lambda i: -sl[i])  # stable: ties keep slot order
    rank = {item: pos + 1 for pos, item in enumerate(order)}
    kk = n if k is None else k

    def inv_disc(r: int) -> float:
        return 1 / math.log2(1 + r) if r <= kk else 0.0

    ideal = sorted(yl, reverse=True)
    idcg = sum((2 ** ideal[p] - 1) * inv_disc(p + 1) for p in range(n))
    total = s.sum() * 0
    for i in range(n):
        for j in range(n):
            if yl[i] <= yl[j] or (rank[i] > kk and rank[j] > kk):
                continue
            g = abs(2 ** yl[i] - 2 ** yl[j]) / idcg
            d = abs(rank[i] - rank[j])
            delta = 1 / math.log2(1 + d) - 1 / math.log2(2 + d)
            weight = wl[i] * (abs(inv_disc(rank[i]) - inv_disc(rank[j])) + mu * delta) * g
            total = total + weight * torch.log2(1 + torch.exp(-sigma * (s[i] - s[j])))
    return total


def reference(fn, scores, labels, mask, weights=None, reduction="mean", **opts):
    """Per-list loop: drop padded slots, compute, then weight per list and reduce."""
    values, included = [], 0
    for b in range(scores.shape[0]):
        m = mask[b]
        s = scores[b][m].double()
        y = labels[b][m].double()
        w = torch.ones_like(s)
        v = 1.0
        if weights is not None and weights.ndim == 2:
            w = weights[b][m].double()
        elif weights is not None:
            v = float(weights[b])
        val = fn(s, y, w, **opts) if len(s) else None
        if val is None:
            values.append(scores.new_zeros((), dtype=torch.float64))
        else:
            values.append(v * val)
            included += 1
    out = torch.stack(values)
    if reduction == "none":
        return out
    if reduction == "sum":
        return out.sum()
    return out.sum() / max(included, 1)


CASES = [
    (bce, ref_bce, {}),
    (mse, ref_mse, {}),
    (softmax_ce, ref_softmax_ce, {}),
    (listnet, ref_listnet, {}),
    (listnet, ref_listnet, {"temperature": 0.3}),
    (lambda_ndcg, ref_lambda, {}),
    (lambda_ndcg, ref_lambda, {"k": 3}),
    (lambda_ndcg, ref_lambda, {"mu": 10.0, "sigma": 0.5}),
    (lambda_ndcg, ref_lambda, {"k": 2, "mu": 10.0}),
]
IDS = ["bce", "mse", "softmax_ce", "listnet", "listnet_t0.3", "lambda", "lambda_k3",
       "lambda_pp", "lambda_pp_k2"]


def random_batch(seed: int, binary: bool):
    g = torch.Generator().manual_seed(seed)
    b, n = 7, 6
    scores = torch.randn(b, n, generator=g, dtype=torch.float64) * 2
    if binary:
        labels = (torch.rand(b, n, generator=g) < 0.35).double()
    else:
        labels = torch.randint(0, 4, (b, n), generator=g).double()
    mask = torch.rand(b, n, generator=g) < 0.75  # interleaved padding
    mask[0] = True
    mask[1] = False  # an empty list
    mask[2, :] = torch.tensor([True, False, True, False, False, False])
    labels[3] = 0.0  # a list without positives
    scores = torch.where(mask, scores, torch.tensor(float("nan"), dtype=torch.float64))
    item_w = torch.rand(b, n, generator=g, dtype=torch.float64) * 3
    list_w = torch.rand(b, generator=g, dtype=torch.float64) * 3
    return scores, labels, mask, item_w, list_w


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighting", ["none", "item", "list"])
@pytest.mark.parametrize(("fn", "ref", "opts"), CASES, ids=IDS)
def test_matches_loop_reference(fn, ref, opts, weighting, seed) -> None:
    binary = fn is bce or seed == 0
    scores, labels, mask, item_w, list_w = random_batch(seed, binary)
    if fn is bce and not binary:
        labels = labels / 3
    weights = {"none": None, "item": item_w, "list": list_w}[weighting]
    for reduction in ("mean", "sum", "none"):
        x = scores.clone().requires_grad_(True)
        got = fn(x, labels, mask, weights=weights, reduction=reduction, **opts)
        x_ref = scores.clone().requires_grad_(True)
        want = reference(ref, x_ref, labels, mask, weights, reduction, **opts)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
        got.sum().backward()
        want.sum().backward()
        ref_grad = torch.where(mask, x_ref.grad, torch.zeros_like(x_ref.grad))
        torch.testing.assert_close(x.grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_lambda_ties_follow_slot_order() -> None:
    # all scores tied: ranks are slot order, as in ltr.metrics
    s = torch.zeros(1, 4, dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 0.0, 2.0]], dtype=torch.float64)
    got = lambda_ndcg(s, y, None)
    want = reference(ref_lambda, s, y, torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(got, want)
