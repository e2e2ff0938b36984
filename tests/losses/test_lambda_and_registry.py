"""lambda_ndcg's position sensitivity and cut-off, and the loss registry."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from ltr.errors import ConfigError
from ltr.losses import LOSSES, get_loss, lambda_ndcg, listnet, loss_options
from ltr.losses.lambda_loss import current_ranks

# gains 2^y - 1 = [3, 2, 1, 0]: every adjacent pair differs by the same gain, so a swap at
# the top and one at the bottom differ only in where they happen
GRADED = torch.tensor([[math.log2(4), math.log2(3), 1.0, 0.0]])
IDEAL = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
SWAP_TOP = torch.tensor([[3.0, 4.0, 2.0, 1.0]])
SWAP_BOTTOM = torch.tensor([[4.0, 3.0, 1.0, 2.0]])


@pytest.mark.parametrize("mu", [0.0, 10.0])
def test_swap_at_the_top_costs_more_than_at_the_bottom(mu: float) -> None:
    base = lambda_ndcg(IDEAL, GRADED, None, mu=mu)
    top = lambda_ndcg(SWAP_TOP, GRADED, None, mu=mu) - base
    bottom = lambda_ndcg(SWAP_BOTTOM, GRADED, None, mu=mu) - base
    assert top > bottom > 0
    # and the misordered pair is pushed apart harder at the top
    pulls = []
    for scores, (hi, lo) in ((SWAP_TOP, (0, 1)), (SWAP_BOTTOM, (2, 3))):
        x = scores.clone().requires_grad_(True)
        lambda_ndcg(x, GRADED, None, mu=mu).backward()
        assert x.grad[0, hi] < x.grad[0, lo]  # descent raises hi relative to lo
        pulls.append(x.grad[0, lo] - x.grad[0, hi])
    assert pulls[0] > pulls[1]


def test_lambda_pair_weight_is_delta_ndcg() -> None:
    # two relevant items ranked below an irrelevant one: pairs (1, 0) and (2, 0) only
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    labels = torch.tensor([[0.0, 1.0, 1.0]])
    # pairs: (1, 0) at ranks 2 vs 1 and (2, 0) at ranks 3 vs 1; IDCG = 1 + 1/log2(3)
    idcg = 1 + 1 / math.log2(3)
    d21 = (1 - 1 / math.log2(3)) / idcg
    d31 = (1 - 0.5) / idcg
    expected = d21 * math.log2(1 + math.e) + d31 * math.log2(1 + math.exp(2))
    assert lambda_ndcg(scores, labels, None).item() == pytest.approx(expected, rel=1e-6)


def test_cut_off_ignores_pairs_below_k() -> None:
    # relevant item at rank 3; with k=2 its pair with rank 4 is below the cut-off
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    labels = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    for k, moves in ((None, True), (2, False), (3, True)):
        x = scores.clone().requires_grad_(True)
        lambda_ndcg(x, labels, None, k=k).backward()
        assert bool(x.grad[0, 3] != 0) is moves
        assert x.grad[0, 2] < 0


def test_k_larger_than_the_list_is_the_whole_list() -> None:
    scores = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[2.0, 0, 1, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 3, 1]])
    torch.testing.assert_close(lambda_ndcg(scores, labels, None, k=50),
                               lambda_ndcg(scores, labels, None))


def test_lists_without_pairs_are_excluded() -> None:
    scores = torch.tensor([[1.0, 2.0], [0.5, 0.1], [0.3, 0.2]])
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 2.0]])  # lists 1, 2: all labels equal
    per_list = lambda_ndcg(scores, labels, None, reduction="none")
    assert per_list[1] == 0 and per_list[2] == 0
    torch.testing.assert_close(lambda_ndcg(scores, labels, None), per_list[0])


def test_current_ranks() -> None:
    scores = torch.tensor([[0.1, 0.5, float("nan"), 0.5, -1.0]])
    mask = torch.tensor([[True, True, False, True, True]])
    # 0.5 (slot 1) before the tied 0.5 (slot 3), padded slot last
    assert current_ranks(scores, mask).tolist() == [[3, 1, 5, 2, 4]]
    # a real -inf score still ranks before padding
    scores = torch.tensor([[float("-inf"), float("nan"), 0.0]])
    mask = torch.tensor([[True, False, True]])
    assert current_ranks(scores, mask).tolist() == [[2, 3, 1]]


# ----------------------------------------------------------------------------- registry


def test_registry_names() -> None:
    assert set(LOSSES) == {"bce", "mse", "softmax_ce", "listnet", "lambda_ndcg"}
    for name, fn in LOSSES.items():
        assert get_loss(name) is fn
        assert fn.__doc__ and "``" in fn.__doc__  # every loss documents its formula
    assert get_loss("  LambdA_NDCG ") is lambda_ndcg


def test_unknown_loss_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        get_loss("ranknet", key="model.tasks.click.loss")
    err = info.value
    assert err.key == "model.tasks.click.loss"
    assert str(err).startswith("config key 'model.tasks.click.loss': unknown loss 'ranknet'")
    for name in LOSSES:
        assert name in str(err)
    with pytest.raises(ConfigError, match="config key 'loss': unknown loss"):
        get_loss("nope")
    with pytest.raises(ConfigError, match="unknown loss None"):
        get_loss(None)  # type: ignore[arg-type]


def test_get_loss_binds_options() -> None:
    scores = torch.tensor([[2.0, 1.0, 3.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 2.0, 0.0]])
    fn = get_loss("lambda_ndcg", k=2, mu=10.0)
    assert isinstance(fn, functools.partial)
    torch.testing.assert_close(fn(scores, labels, None), lambda_ndcg(scores, labels, None, k=2,
                                                                     mu=10.0))
    torch.testing.assert_close(get_loss("listnet", temperature=0.5)(scores, labels, None),
                               listnet(scores, labels, None, temperature=0.5))
    assert loss_options("lambda_ndcg") == ("k", "sigma", "mu")
    assert loss_options("bce") == ()
    with pytest.raises(ConfigError) as info:
        get_loss("listnet", key="loss", temp=0.5)
    assert info.value.key == "loss.temp" and "temperature" in str(info.value)
    with pytest.raises(ConfigError, match="takes no options"):
        get_loss("bce", reduction="sum")
