"""PLE: shapes, expert routing and config errors."""

from __future__ import annotations

import pytest
import torch

from ltr.errors import ConfigError
from ltr.models.ple import PLE


def test_shapes_levels_and_position_tower():
    torch.manual_seed(0)
    tasks = ["click", "add_to_cart", "relevance"]
    for levels in (1, 2, 3):
        m = PLE(12, tasks, [16], n_shared=2, n_task=2, levels=levels, expert_hidden=[8],
                tower_hidden=[4], dropout=0.0, position_tower=True)
        x = torch.randn(4, 7, 12)
        out = m(x)
        assert set(out) == set(tasks) and all(v.shape == (4, 7) for v in out.values())
        # the lowest levels have a shared gate over every expert, the top one has none
        assert m.levels[-1].shared_gate is None
        assert all(lv.shared_gate.out_features == 2 + 2 * len(tasks) for lv in m.levels[:-1])
    m.train()
    pos = torch.randint(1, 20, (4, 7))
    with_pos = m(x, pos)["click"]
    m.eval()
    assert not torch.allclose(with_pos, m(x, pos)["click"])  # position term in training only


def test_a_task_reads_only_its_own_and_the_shared_experts():
    """Zero one task's experts out: the other task's output must not move (one level)."""
    torch.manual_seed(0)
    m = PLE(6, ["click", "relevance"], [], n_shared=1, n_task=1, levels=1,
            expert_hidden=[4], tower_hidden=[3], dropout=0.0).eval()
    x = torch.randn(5, 6)
    before = m(x)
    with torch.no_grad():
        for p in m.levels[0].own["click"].parameters():
            p.add_(torch.randn_like(p))
    after = m(x)
    assert torch.allclose(before["relevance"], after["relevance"])
    assert not torch.allclose(before["click"], after["click"])


@pytest.mark.parametrize("kwargs,key", [({"n_shared": 0}, "model.backbone_args.n_shared"),
                                        ({"levels": 0}, "model.backbone_args.levels"),
                                        ({"n_task": True}, "model.backbone_args.n_task"),
                                        ({"expert_hidden": [0]}, "model.expert_hidden"),
                                        ({"dropout": 1.0}, "model.dropout")])
def test_bad_shapes_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        PLE(4, ["click"], **kwargs)
