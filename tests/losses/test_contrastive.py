"""LCE with in-batch negatives against a per-list loop reference.

The reference takes one list at a time, finds its positive and builds the candidate set
with explicit loops over lists and slots (the module docstring's rule), then a plain
log-softmax in float64; it shares no code with ``ltr.losses.contrastive``.
"""

from __future__ import annotations

import math

import pytest
import torch

from ltr.losses.contrastive import lce_loss

NAN = float("nan")


def reference_lce(q, p, labels, mask, query_ids, temperature=0.05) -> float:
    b, n, _ = p.shape
    q = q.double()
    p = p.double()
    total, count = 0.0, 0
    for i in range(b):
        known = [j for j in range(n) if bool(mask[i, j]) and math.isfinite(float(labels[i, j]))]
        if not known:
            continue
        ys = [float(labels[i, j]) for j in known]
        best, worst = max(ys), min(ys)
        if not best > worst:
            continue  # no positive
        pos = next(j for j in known if float(labels[i, j]) == best)  # first among ties
        cands = [(i, pos)]
        for j in known:  # own list: strictly lower labels only
            if float(labels[i, j]) < best:
                cands.append((i, j))
        for o in range(b):  # other lists of other queries: every real slot
            if o == i or int(query_ids[o]) == int(query_ids[i]):
                continue
            for j in range(n):
                if bool(mask[o, j]):
                    cands.append((o, j))
        qn = q[i] / q[i].norm()

        def cos(o, j, qn=qn):
            return float(qn @ (p[o, j] / p[o, j].norm()))

        logits = [cos(o, j) / temperature for o, j in cands]
        m = max(logits)
        lse = m + math.log(sum(math.exp(x - m) for x in logits))
        total += lse - logits[0]
        count += 1
    return total / count if count else 0.0


def case(seed: int = 0, d: int = 6):
    g = torch.Generator().manual_seed(seed)
    b, n = 6, 5
    q = torch.randn(b, d, generator=g)
    p = torch.randn(b, n, d, generator=g)
    labels = torch.tensor([
        [3.0, 1.0, 0.0, 2.0, 0.0],  # plain list, a padded slot below
        [0.0, 2.0, NAN, 1.0, 2.0],  # tie for best (slots 1, 4): slot 4 is no negative; NaN
        [1.0, 0.0, 1.0, 0.0, 0.0],  # same query as list 1; tie at slot 0 / 2
        [1.0, 1.0, 1.0, 1.0, 1.0],  # no positive: ignored (its products still negatives)
        [NAN, 0.0, 4.0, NAN, 0.0],
        [2.0, 0.0, 0.0, 0.0, 0.0],
    ])
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 4] = False
    mask[4, 3:] = False  # padding (slot 4 holds a label that must not count)
    mask[5, 2:] = False
    query_ids = torch.tensor([10, 11, 11, 12, 13, 14])
    return q, p, labels, mask, query_ids


@pytest.mark.parametrize("temperature", [0.05, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_loop_reference(seed: int, temperature: float) -> None:
    q, p, labels, mask, qid = case(seed)
    got = lce_loss(q, p, labels, mask, qid, temperature)
    assert got.dim() == 0
    assert got.item() == pytest.approx(reference_lce(q, p, labels, mask, qid, temperature),
                                       rel=1e-5)


def test_gradient_matches_loop_reference() -> None:
    q, p, labels, mask, qid = case(2)
    q64, p64 = q.double().requires_grad_(True), p.double().requires_grad_(True)
    lce_loss(q64, p64, labels.double(), mask, qid, 0.5).backward()

    # the reference rebuilt in torch (same loops), for autograd
    def ref_torch(q, p):
        b, n, _ = p.shape
        losses = []
        for i in range(b):
            known = [j for j in range(n) if bool(mask[i, j]) and
                     math.isfinite(float(labels[i, j]))]
            ys = [float(labels[i, j]) for j in known]
            if not known or not max(ys) > min(ys):
                continue
            pos = next(j for j in known if float(labels[i, j]) == max(ys))
            cands = [(i, pos)] + [(i, j) for j in known if float(labels[i, j]) < max(ys)] + \
                [(o, j) for o in range(b) if o != i and int(qid[o]) != int(qid[i])
                 for j in range(n) if bool(mask[o, j])]
            qn = q[i] / q[i].norm()
            logits = torch.stack([qn @ (p[o, j] / p[o, j].norm()) for o, j in cands]) / 0.5
            losses.append(torch.logsumexp(logits, 0) - logits[0])
        return torch.stack(losses).mean()

    q2, p2 = q.double().requires_grad_(True), p.double().requires_grad_(True)
    ref_torch(q2, p2).backward()
    torch.testing.assert_close(q64.grad, q2.grad)
    torch.testing.assert_close(p64.grad, p2.grad)
    assert (p64.grad[~mask] == 0).all()  # padded slots get no gradient


def test_hand_case_two_lists() -> None:
    # list 0: q = e1, positive p00 = e1 (cos 1), own negative p01 = e2 (cos 0)
    # list 1: another query, q = e2, positive p10 = e2, its negative p11 = -e2
    # list 0's candidates: p00, p01, p10 (cos 0), p11 (cos 0)
    # list 1's candidates: p10 (cos 1), p11 (cos -1), p00 (cos 0), p01 (cos 1)
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    q = torch.stack([e1, e2])
    p = torch.stack([torch.stack([e1, e2]), torch.stack([e2, -e2])])
    labels = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    t = 1.0
    l0 = -1 + math.log(math.e + 3)
    l1 = -1 + math.log(math.e + math.exp(-1) + 1 + math.e)
    got = lce_loss(q, p, labels, mask, torch.tensor([0, 1]), t)
    assert got.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    # the same query for both lists: no in-batch negatives
    got = lce_loss(q, p, labels, mask, torch.tensor([5, 5]), t)
    l0 = -1 + math.log(math.e + 1)
    l1 = -1 + math.log(math.e + math.exp(-1))
    assert got.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)


def test_tie_for_best_is_not_a_negative() -> None:
    # one list: slots 0 and 1 tie for the best label; slot 0 is the positive, slot 1 is left
    # out, slot 2 is the only negative. Moving slot 1 changes nothing.
    q = torch.tensor([[1.0, 0.0]])
    labels = torch.tensor([[2.0, 2.0, 0.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    base = torch.tensor([[[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])
    moved = base.clone()
    moved[0, 1] = torch.tensor([-3.0, 0.5])
    a = lce_loss(q, base, labels, mask, torch.tensor([0]), 1.0)
    b = lce_loss(q, moved, labels, mask, torch.tensor([0]), 1.0)
    c = math.sqrt(0.5)
    assert a.item() == pytest.approx(-c + math.log(math.exp(c) + 1.0), rel=1e-6)
    assert b.item() == pytest.approx(a.item(), rel=1e-6)


def test_list_without_positive_is_ignored_but_lends_negatives() -> None:
    q, p, labels, mask, qid = case(3)
    full = lce_loss(q, p, labels, mask, qid).item()
    # list 3 (all labels equal) contributes no loss term: dropping its labels to NaN
    # (also no positive) changes nothing
    nan3 = labels.clone()
    nan3[3] = NAN
    assert lce_loss(q, p, nan3, mask, qid).item() == pytest.approx(full, rel=1e-6)
    # but its products are negatives of the other lists: masking them changes the loss
    m3 = mask.clone()
    m3[3] = False
    assert lce_loss(q, p, labels, m3, qid).item() != pytest.approx(full, rel=1e-4)


def test_all_masked_batch_is_zero_with_zero_gradient() -> None:
    q, p, labels, _, qid = case(4)
    for mask, lab in ((torch.zeros(6, 5, dtype=torch.bool), labels),
                      (torch.ones(6, 5, dtype=torch.bool), torch.full_like(labels, NAN)),
                      (torch.ones(6, 5, dtype=torch.bool), torch.ones_like(labels))):
        qq, pp = q.clone().requires_grad_(True), p.clone().requires_grad_(True)
        out = lce_loss(qq, pp, lab, mask, qid)
        assert out.item() == 0.0
        out.backward()
        assert torch.isfinite(qq.grad).all() and (qq.grad == 0).all()
        assert torch.isfinite(pp.grad).all() and (pp.grad == 0).all()


def test_loss_decreases_as_positive_moves_toward_query() -> None:
    q, p, labels, mask, qid = case(5)
    # only list 0 has a positive (slot 0, label 3): the loss is its term alone, while the
    # other lists still lend their products as negatives
    labels = labels.clone()
    labels[1:] = NAN
    values = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        moved = p.clone()
        moved[0, 0] = (1 - t) * p[0, 0] / p[0, 0].norm() + t * q[0] / q[0].norm()
        values.append(lce_loss(q, moved, labels, mask, qid).item())
    assert all(b < a for a, b in zip(values, values[1:], strict=False)), values
    # a small gradient step lowers the loss of the full case
    q, p, labels, mask, qid = case(5)
    pp = p.clone().requires_grad_(True)
    before = lce_loss(q, pp, labels, mask, qid)
    before.backward()
    after = lce_loss(q, p - 1e-3 * pp.grad, labels, mask, qid)
    assert after.item() < before.item()
