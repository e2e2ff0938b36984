from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ltr.errors import DataValidationError
from ltr.text import EmbeddingStore, unique_texts
from ltr.text.hashing import text_keys


def test_unique_texts_inverse_is_row_aligned():
    rows = np.array(["b", "a", "b", "c", "a", "b"], dtype=object)
    uniques, inverse = unique_texts(rows)
    assert uniques == ["b", "a", "c"]
    assert [uniques[i] for i in inverse] == rows.tolist()


def test_missing_texts_are_named_not_encoded():
    with pytest.raises(DataValidationError) as err:
        unique_texts(["a", None, "b", float("nan"), 3], source="queries")
    assert "queries" in str(err.value) and err.value.rows == [1, 3, 4]


def test_encode_texts_deduplicates_and_aligns_rows(make_encoder, texts, count_forward):
    enc = make_encoder()
    counter = count_forward(enc.model.embeddings)
    log = [texts[i] for i in np.random.default_rng(0).integers(0, len(texts), size=500)]
    out = enc.encode_texts(log)
    assert counter.texts == len(set(log))  # each unique text through the model once
    assert out.embeddings.shape == (len(set(log)), 32) and out.inverse.shape == (500,)
    direct = enc.encode_unique(log[:20])
    np.testing.assert_allclose(out.rows()[:20], direct, rtol=1e-5, atol=1e-6)
    assert enc.last_stats.rows == 500 and enc.last_stats.encoded == len(set(log))


def test_seen_texts_cause_no_second_forward_pass(make_encoder, texts, count_forward):
    enc = make_encoder()
    first = enc.encode_texts(texts[:4])
    counter = count_forward(enc.model.embeddings)
    again = enc.encode_texts(texts[:4] * 3)
    assert counter.calls == 0 and enc.last_stats.cache_hits == 4
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    enc.encode_texts(texts)  # two new texts among six
    assert counter.texts == 2 and enc.last_stats.encoded == 2


def test_cache_persists_across_runs_without_pickle(make_encoder, texts, tmp_path, count_forward):
    cache = tmp_path / "cache"
    first = make_encoder(cache_dir=cache).encode_texts(texts)
    files = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert files and all(f.endswith((".safetensors", ".json")) for f in files)
    assert not any(f.endswith(".tmp") for f in files)

    enc = make_encoder(cache_dir=cache)  # a new process would see exactly this
    counter = count_forward(enc.model.embeddings)
    second = enc.encode_texts(list(reversed(texts)))
    assert counter.calls == 0 and enc.last_stats.cache_hits == len(texts)
    order = [first.texts.index(t) for t in second.texts]
    np.testing.assert_array_equal(second.embeddings, first.embeddings[order])


def test_cache_is_keyed_by_weights_and_settings(make_encoder, texts, tmp_path):
    cache = tmp_path / "cache"
    base = make_encoder(cache_dir=cache)
    base.encode_texts(texts)
    cls = make_encoder(cache_dir=cache, pooling="cls")
    cls.encode_texts(texts)
    assert cls.last_stats.cache_hits == 0  # other pooling: other namespace
    changed = make_encoder(cache_dir=cache)
    with torch.no_grad():
        changed.model.encoder.layer[-1].output.dense.bias.add_(0.5)
    out = changed.encode_texts(texts)
    assert changed.last_stats.cache_hits == 0  # other weights: never stale vectors
    np.testing.assert_allclose(
        out.embeddings, changed.encode_unique(out.texts), rtol=1e-5, atol=1e-6
    )
    assert len({p.parent.name for p in cache.rglob("part-*.safetensors")}) == 3


def test_store_ragged_entries_flush_compact_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    keys = text_keys(["a", "b", "c"])
    lengths = np.array([2, 1, 3])
    values = rng.normal(size=(6, 4)).astype(np.float32)
    store = EmbeddingStore(tmp_path, {"layer": 2}, dim=4)
    pos = store.add(keys, values, lengths)
    assert pos.tolist() == [0, 1, 2]
    again = store.add(keys[:1], np.zeros((5, 4), np.float32), np.array([5]))  # already there: kept
    assert again.tolist() == [0]
    got, got_len = store.get_ragged(np.array([2, 0]))
    assert got_len.tolist() == [3, 2]
    np.testing.assert_array_equal(got, np.concatenate([values[3:6], values[0:2]]))
    store.flush()
    store.add(text_keys(["d"]), np.ones((1, 4), np.float32))
    store.flush()
    assert len(list(store.directory.glob("part-*.safetensors"))) == 2
    store.compact()
    assert len(list(store.directory.glob("part-*.safetensors"))) == 1
    reloaded = EmbeddingStore(tmp_path, {"layer": 2}, dim=4)
    assert len(reloaded) == 4 and reloaded.lookup(text_keys(["c", "x"])).tolist() == [2, -1]
    np.testing.assert_array_equal(reloaded.get_ragged(np.array([2]))[0], values[3:6])
    with pytest.raises(ValueError, match="more than one row"):
        reloaded.get_fixed(np.array([0]))
    assert EmbeddingStore(tmp_path, {"layer": 3}, dim=4).lookup(keys).tolist() == [-1, -1, -1]


def test_damaged_part_is_skipped_with_a_warning(tmp_path):
    store = EmbeddingStore(tmp_path, {"x": 1}, dim=2)
    store.add(text_keys(["a"]), np.ones((1, 2), np.float32))
    store.flush()
    (store.directory / "part-99999999999999999999-1-deadbeef.safetensors").write_bytes(b"garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reloaded = EmbeddingStore(tmp_path, {"x": 1}, dim=2)
    assert len(reloaded) == 1 and any("skipping" in str(w.message) for w in caught)


def test_progress_bar_on_request(make_encoder, texts, capsys):
    loud, quiet = make_encoder(progress=True), make_encoder(progress=False)
    loud.progress_delay = 0.0  # the default 1 s delay would hide a bar this short
    capsys.readouterr()
    loud.encode_texts(texts)
    assert "text" in capsys.readouterr().err
    quiet.encode_texts(texts)
    assert capsys.readouterr().err == ""
