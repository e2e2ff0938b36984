from __future__ import annotations

import numpy as np
import pytest
import torch

from ltr.errors import ConfigError
from ltr.text import CachedBottomEncoder


def _grads(enc):
    layers = enc.model.encoder.layer
    return (
        [p.grad for p in enc.model.embeddings.parameters()],
        [[p.grad for p in layer.parameters()] for layer in layers],
    )


@pytest.mark.parametrize("k", [1, 2])
def test_frozen_layers_get_no_gradient_top_layers_do(make_encoder, texts, k):
    enc = make_encoder(trainable_layers=k)
    enc.train()
    enc(**enc.tokenize(texts)).pow(2).sum().backward()
    emb_grads, layer_grads = _grads(enc)
    assert all(g is None for g in emb_grads)
    for i, grads in enumerate(layer_grads):
        if i < 4 - k:
            assert all(g is None for g in grads), f"frozen layer {i} got a gradient"
        else:
            assert all(g is not None and g.abs().sum() > 0 for g in grads), (
                f"top layer {i} got none"
            )
    # frozen modules stay in eval mode (no dropout) while the top trains
    assert not enc.model.embeddings.training and not enc.model.encoder.layer[0].training
    assert enc.model.encoder.layer[-1].training


def test_zero_freezes_all_and_minus_one_trains_all(make_encoder):
    assert not any(p.requires_grad for p in make_encoder(trainable_layers=0).parameters())
    assert all(p.requires_grad for p in make_encoder(trainable_layers=-1).parameters())


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("k", [0, 1, 3, 4])
def test_cached_bottom_equals_the_full_forward_pass(make_encoder, texts, pooling, k):
    enc = make_encoder(trainable_layers=k, pooling=pooling)
    bank = CachedBottomEncoder(enc)
    ids = bank.add_texts(texts)
    bank.eval()
    with torch.no_grad():
        cached = bank(torch.as_tensor(ids))
        full = enc(**enc.tokenize(texts))
    torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-5)
    # also in a different batch composition (other padding width)
    with torch.no_grad():
        torch.testing.assert_close(bank(ids[[2, 0]]), full[[2, 0]], rtol=1e-5, atol=1e-5)


def test_cached_bottom_gradients_equal_the_full_pass(make_encoder, texts):
    enc = make_encoder(trainable_layers=2)
    bank = CachedBottomEncoder(enc)
    ids = bank.add_texts(texts)
    enc.eval()  # dropout off on both paths so the two passes are comparable
    target = torch.linspace(-1, 1, 32)
    (bank(ids) * target).sum().backward()
    cached = [p.grad.clone() for p in enc.parameters() if p.requires_grad]
    enc.zero_grad()
    (enc(**enc.tokenize(texts)) * target).sum().backward()
    full = [p.grad for p in enc.parameters() if p.requires_grad]
    assert len(cached) == len(full) > 0
    for a, b in zip(cached, full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_training_the_top_never_recomputes_the_bottom(make_encoder, texts, count_forward):
    enc = make_encoder(trainable_layers=1)
    bank = CachedBottomEncoder(enc)
    log = [texts[i % len(texts)] for i in range(60)]
    ids = bank.add_texts(log)
    assert ids.shape == (60,) and bank.num_texts == len(texts)
    emb, bottom = count_forward(enc.model.embeddings), count_forward(enc.model.encoder.layer[0])
    top = count_forward(enc.model.encoder.layer[-1])
    opt = torch.optim.SGD([p for p in bank.parameters() if p.requires_grad], lr=0.1)
    bank.train()
    for step in range(3):
        batch = torch.as_tensor(ids[step * 20 : (step + 1) * 20])
        loss = bank(batch).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert emb.calls == 0 and bottom.calls == 0 and top.calls == 3
    bank.add_texts(texts[:3])  # all seen: no bottom pass
    assert emb.calls == 0
    # the top was trained in place: the encoder's full pass follows it
    bank.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            bank(ids[:6]), enc(**enc.tokenize(log[:6])), rtol=1e-5, atol=1e-5
        )


def test_bottom_states_persist(make_encoder, texts, tmp_path, count_forward):
    CachedBottomEncoder(make_encoder(trainable_layers=2), cache_dir=tmp_path).add_texts(texts)
    enc = make_encoder(trainable_layers=2)
    counter = count_forward(enc.model.embeddings)
    bank = CachedBottomEncoder(enc, cache_dir=tmp_path)
    ids = bank.add_texts(texts)
    assert counter.calls == 0 and sorted(set(ids.tolist())) == list(range(len(texts)))
    bank.eval()
    with torch.no_grad():
        torch.testing.assert_close(bank(ids), enc(**enc.tokenize(texts)), rtol=1e-5, atol=1e-5)


def test_misuse_is_reported(make_encoder, texts):
    with pytest.raises(ConfigError, match="text.trainable_layers"):
        CachedBottomEncoder(make_encoder(trainable_layers=-1))
    enc = make_encoder(trainable_layers=1)
    bank = CachedBottomEncoder(enc)
    bank.add_texts(texts[:2])
    with pytest.raises(IndexError, match="add_texts"):
        bank(np.array([5]))
    with torch.no_grad():
        enc.model.encoder.layer[0].output.dense.weight.mul_(2.0)  # a frozen weight changed
    with pytest.raises(RuntimeError, match="frozen layers changed"):
        bank.add_texts(texts)
