from __future__ import annotations

import numpy as np
import pytest
import torch

from ltr.errors import ConfigError
from ltr.text import cls_pool, mean_pool, pool


def test_mean_pool_ignores_padding_whatever_it_holds():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    out = mean_pool(hidden, mask)
    assert out.shape == (3, 8)
    for b in range(3):
        n = int(mask[b].sum())
        torch.testing.assert_close(out[b], hidden[b, :n].mean(dim=0))
    junk = hidden.clone()
    junk[mask == 0] = 1e6
    torch.testing.assert_close(mean_pool(junk, mask), out)


def test_mean_pool_of_an_empty_mask_is_zero_not_nan():
    out = mean_pool(torch.ones(1, 3, 4), torch.zeros(1, 3))
    assert torch.equal(out, torch.zeros(1, 4))


def test_cls_pool_takes_the_first_token():
    hidden = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    assert torch.equal(cls_pool(hidden), hidden[:, 0])


def test_normalize_gives_unit_vectors_and_unknown_mode_names_the_key():
    hidden, mask = torch.randn(4, 6, 8), torch.ones(4, 6)
    assert torch.allclose(pool(hidden, mask, "mean", normalize=True).norm(dim=-1), torch.ones(4))
    with pytest.raises(ConfigError, match="text.pooling"):
        pool(hidden, mask, "max")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_encoder_shapes_and_padding_invariance(make_encoder, texts, pooling):
    enc = make_encoder(pooling=pooling)
    batch = enc.encode_unique(texts)
    assert batch.shape == (len(texts), 32) and batch.dtype == np.float32
    alone = np.stack([enc.encode_unique([t])[0] for t in texts])  # no padding at all
    np.testing.assert_allclose(batch, alone, rtol=1e-5, atol=1e-5)
    tok = enc.tokenize(texts)
    assert tok["input_ids"].shape == tok["attention_mask"].shape
    assert (tok["attention_mask"].sum(dim=1) < tok["input_ids"].shape[1]).any()  # padding present


def test_mean_pooling_matches_the_formula_on_model_states(make_encoder, texts):
    enc = make_encoder(pooling="mean")
    tok = enc.tokenize(texts)
    with torch.no_grad():
        hidden = enc.model(**tok).last_hidden_state
        mask = tok["attention_mask"].unsqueeze(-1).float()
        expected = (hidden * mask).sum(1) / mask.sum(1)
        torch.testing.assert_close(enc(**tok), expected)


def test_max_length_truncates(make_encoder):
    enc = make_encoder(max_length=4)
    long = " ".join(["oak"] * 20)
    tok = enc.tokenize([long])
    assert tok["input_ids"].shape == (1, 4)
    np.testing.assert_allclose(
        enc.encode_unique([long]), enc.encode_unique(["oak oak"]), rtol=1e-5, atol=1e-6
    )
