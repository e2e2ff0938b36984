import pytest
import torch

from ltr.errors import ConfigError
from ltr.models.blocks import TabularEncoder
from ltr.models.mmoe import MMoE


def test_shapes_gates_and_position_tower():
    torch.manual_seed(0)
    m = MMoE(12, ["click", "relevance"], bottom=[16], n_experts=3, expert_hidden=[8],
             tower_hidden=[4], dropout=0.0, position_tower=True)
    x = torch.randn(2, 5, 12)
    pos = torch.arange(1, 6).repeat(2, 1)
    m.eval()
    out = m(x, pos)
    assert set(out) == {"click", "relevance"} and out["click"].shape == (2, 5)
    gates = m.gate_weights(x)
    torch.testing.assert_close(gates["click"].sum(-1), torch.ones(2, 5))
    # the position term is added in training only
    m.train()
    train_out = m(x, pos)
    bias = m.position_bias(pos).squeeze(-1)
    torch.testing.assert_close(train_out["click"], out["click"] + bias)
    torch.testing.assert_close(train_out["relevance"], out["relevance"])


def test_bad_shapes_name_the_key():
    with pytest.raises(ConfigError, match="model.n_experts"):
        MMoE(4, ["click"], n_experts=-1)
    with pytest.raises(ConfigError, match="model.expert_hidden"):
        MMoE(4, ["click"], expert_hidden=[0])
    with pytest.raises(ConfigError, match="model.position_tower"):
        MMoE(4, ["relevance"], position_tower=True)


def test_tabular_encoder_width():
    enc = TabularEncoder(3, [5, 100], max_dim=16)
    out = enc(torch.zeros(2, 4, 3), torch.zeros(2, 4, 2, dtype=torch.long))
    assert out.shape == (2, 4, enc.out_dim) and enc.out_dim == 3 + 4 + 16  # 1.6 * 5**0.56 -> 4
