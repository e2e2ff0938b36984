from __future__ import annotations

import numpy as np
import pytest
import torch

from ltr.errors import ConfigError
from ltr.text import InteractionFeatures, interaction_features, interaction_width, rowwise_cosine


def test_each_feature_and_the_documented_width():
    q = torch.tensor([[1.0, 0.0, 2.0]])
    p = torch.tensor([[2.0, 1.0, -2.0]])
    cos = (1 * 2 + 0 + 2 * -2) / (5**0.5 * 3)
    out = interaction_features(q, p, ["cosine", "product", "abs_diff", "concat"])
    assert (
        out.shape
        == (1, 1 + 3 + 3 + 6)
        == (1, interaction_width(["cosine", "product", "abs_diff", "concat"], 3))
    )
    torch.testing.assert_close(out[0, 0], torch.tensor(cos))
    torch.testing.assert_close(out[0, 1:4], torch.tensor([2.0, 0.0, -4.0]))
    torch.testing.assert_close(out[0, 4:7], torch.tensor([1.0, 1.0, 4.0]))
    torch.testing.assert_close(out[0, 7:], torch.tensor([1.0, 0.0, 2.0, 2.0, 1.0, -2.0]))


def test_module_keeps_config_order_batches_and_backpropagates():
    mod = InteractionFeatures(["abs_diff", "cosine"], dim=4)
    assert mod.output_dim == 5
    q = torch.randn(2, 7, 4, requires_grad=True)
    p = torch.randn(2, 7, 4)
    out = mod(q, p)
    assert out.shape == (2, 7, 5)
    torch.testing.assert_close(out[..., :4], (q - p).abs())
    torch.testing.assert_close(out[..., 4], torch.nn.functional.cosine_similarity(q, p, dim=-1))
    out.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_cosine_of_a_zero_vector_is_zero_not_nan():
    out = interaction_features(torch.zeros(1, 3), torch.ones(1, 3), ["cosine"])
    assert out.item() == 0.0


@pytest.mark.parametrize("names", [["cosine", "dot"], [], ["product", "product"]])
def test_bad_names_raise_config_error_naming_the_key(names):
    with pytest.raises(ConfigError) as err:
        InteractionFeatures(names, dim=4, key="model.text.interactions")
    assert err.value.key == "model.text.interactions"


def test_rowwise_cosine_from_unique_embeddings():
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(7, 8)).astype(np.float32)
    qi, pi = rng.integers(0, 5, size=1000), rng.integers(0, 7, size=1000)
    got = rowwise_cosine(q, qi, p, pi, chunk_size=128)
    expected = torch.nn.functional.cosine_similarity(
        torch.from_numpy(q[qi]), torch.from_numpy(p[pi])
    ).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32
