"""Task weighting: fixed weights and learned uncertainty weighting."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ltr.errors import ConfigError
from ltr.losses import FixedWeighting, TaskWeighting, UncertaintyWeighting


def test_fixed_weighting_total_and_weights() -> None:
    fw = FixedWeighting({"click": 1.0, "purchase": 3.0})
    assert isinstance(fw, TaskWeighting) and isinstance(fw, nn.Module)
    assert fw.tasks == ["click", "purchase"]
    click = torch.tensor(0.5, requires_grad=True)
    total = fw({"click": click, "purchase": torch.tensor(2.0)})
    assert total.item() == pytest.approx(0.5 + 6.0)
    total.backward()
    assert click.grad.item() == 1.0
    assert fw.weights() == {"click": 1.0, "purchase": 3.0}
    # a subset of the tasks (a batch without purchases)
    assert fw({"purchase": torch.tensor(1.0)}).item() == 3.0


def test_fixed_weighting_defaults_for_unlisted_tasks() -> None:
    fw = FixedWeighting({"purchase": 2}, tasks=["click", "cart", "purchase"], default=0.5)
    assert fw.weights() == {"click": 0.5, "cart": 0.5, "purchase": 2.0}
    fw0 = FixedWeighting({"click": 0.0}, tasks=["click", "cart"])
    assert fw0.weights() == {"click": 0.0, "cart": 1.0}


def test_fixed_weighting_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        FixedWeighting({"click": 1.0, "clik": 1.0}, tasks=["click", "purchase"])
    assert info.value.key == "model.task_weights.clik"
    assert "unknown task 'clik'" in str(info.value) and "purchase" in str(info.value)
    with pytest.raises(ConfigError) as info:
        FixedWeighting({"click": -0.1})
    assert info.value.key == "model.task_weights.click" and ">= 0" in str(info.value)
    with pytest.raises(ConfigError, match="config key 'train.w.cart'"):
        FixedWeighting({"cart": float("nan")}, key="train.w")
    with pytest.raises(ConfigError, match="must be a number"):
        FixedWeighting({"cart": "1"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="must be a number"):
        FixedWeighting({"cart": True})
    with pytest.raises(ConfigError, match="at least one task"):
        FixedWeighting({})
    with pytest.raises(ConfigError, match="default"):
        FixedWeighting({"a": 1.0}, default=-1.0)
    fw = FixedWeighting({"click": 1.0})
    with pytest.raises(ConfigError) as info:
        fw({"purchase": torch.tensor(1.0)})
    assert info.value.key == "model.task_weights.purchase"


def test_uncertainty_weighting_formula() -> None:
    uw = UncertaintyWeighting(["click", "purchase"], init={"purchase": math.log(4.0)})
    assert [n for n, _ in uw.named_parameters()] == ["log_vars"]
    assert uw.weights() == pytest.approx({"click": 1.0, "purchase": 0.25})
    assert uw.log_variances() == pytest.approx({"click": 0.0, "purchase": math.log(4.0)})
    losses = {"click": torch.tensor(2.0), "purchase": torch.tensor(8.0)}
    total = uw(losses)
    assert total.item() == pytest.approx(2.0 + 0.0 + 8.0 / 4 + math.log(4.0))
    total.backward()
    # d/ds (e^-s L + s) = 1 - e^-s L
    torch.testing.assert_close(uw.log_vars.grad, torch.tensor([1 - 2.0, 1 - 2.0]))
    # a subset leaves the other task's log-variance alone
    uw.log_vars.grad = None
    uw({"click": torch.tensor(3.0)}).backward()
    assert uw.log_vars.grad[1] == 0
    assert UncertaintyWeighting(["a", "b"], init=1.0).weights() == pytest.approx(
        {"a": math.exp(-1), "b": math.exp(-1)})


def test_uncertainty_weighting_errors() -> None:
    with pytest.raises(ConfigError, match="duplicate"):
        UncertaintyWeighting(["click", "click"])
    with pytest.raises(ConfigError) as info:
        UncertaintyWeighting(["click"], init={"cart": 0.0})
    assert info.value.key == "model.task_weights.cart"
    uw = UncertaintyWeighting(["click"])
    with pytest.raises(ConfigError) as info:
        uw({"cart": torch.tensor(1.0)})
    assert info.value.key == "model.task_weights.cart"
    with pytest.raises(ValueError, match="empty"):
        uw({})


def test_uncertainty_weighting_learns_a_smaller_weight_for_the_noisier_task() -> None:
    # two regression tasks on the same inputs; the "noisy" task's targets carry 10x the noise,
    # so its loss stays ~100x larger and its learned weight exp(-s) ends far smaller
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    w_true = torch.randn(4, 2, generator=g)
    clean = x @ w_true[:, 0] + 0.1 * torch.randn(256, generator=g)
    noisy = x @ w_true[:, 1] + 1.0 * torch.randn(256, generator=g)
    model = nn.Linear(4, 2)
    uw = UncertaintyWeighting(["clean", "noisy"])
    opt = torch.optim.Adam([*model.parameters(), *uw.parameters()], lr=0.05)
    for _ in range(300):
        pred = model(x)
        losses = {"clean": (pred[:, 0] - clean).square().mean(),
                  "noisy": (pred[:, 1] - noisy).square().mean()}
        opt.zero_grad()
        uw(losses).backward()
        opt.step()
    w = uw.weights()
    assert w["clean"] > 10 * w["noisy"]
    # at the optimum exp(-s_t) = 1 / L_t
    assert w["noisy"] == pytest.approx(1 / losses["noisy"].item(), rel=0.2)
    assert w["noisy"] < 1.0 < w["clean"]
