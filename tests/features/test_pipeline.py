"""The fitted feature pipeline round-trips: what export reads equals what training held."""

from __future__ import annotations

import numpy as np
import pytest

from ltr.errors import DataValidationError
from ltr.features.pipeline import FittedPipeline
from ltr.training.prepare import prepare

TASKS = ["click", "purchase", "relevance"]
FEATURES = {"numeric": ["price", "rating", "hist_pair_ctr", "hist_pair_label"],
            "categorical": ["brand", "product_class", "segment"]}


@pytest.fixture(scope="module")
def prepared(tiny_log_dir):
    return prepare(str(tiny_log_dir), TASKS, FEATURES, folds=3, fold=0, pool_lists=1)


def test_pipeline_round_trips(prepared, tmp_path):
    fitted = FittedPipeline.from_prepared(prepared, max_lists=5)
    loaded = FittedPipeline.load(fitted.save(tmp_path / "pipeline"))
    assert loaded.preprocessor.to_dict() == prepared.preprocessor.to_dict()
    assert loaded.tasks == TASKS and loaded.query_texts == list(prepared.query_texts)
    assert loaded.data_dir == fitted.data_dir and loaded.lexical_fields == fitted.lexical_fields
    for a, b in zip(fitted.history, loaded.history, strict=True):
        assert a.reset_index(drop=True).equals(b)
    assert set(loaded.sample) == set(fitted.sample)
    for name, lists in fitted.sample.items():
        other = loaded.sample[name]
        assert len(other) == len(lists) <= 5
        for key in ("numeric", "categorical", "mask", "product_text", "position"):
            np.testing.assert_array_equal(getattr(other, key), getattr(lists, key))
        assert set(other.labels) == set(lists.labels)
        for label, values in lists.labels.items():
            np.testing.assert_array_equal(other.labels[label], values)
        np.testing.assert_array_equal(other.warm, lists.warm)


def test_sample_products_are_remapped_to_the_sample(prepared):
    fitted = FittedPipeline.from_prepared(prepared, max_lists=3)
    view = fitted.as_data()
    for name, lists in fitted.sample.items():
        slots = lists.product_text[lists.mask]
        assert slots.max() < len(view.product_ids), name
        # the remapped text index names the same product as the slot's product id
        got = [view.product_ids[i] for i in slots]
        assert got == list(lists.product_id[lists.mask]), name


def test_a_pipeline_of_another_format_is_refused(prepared, tmp_path):
    folder = FittedPipeline.from_prepared(prepared, max_lists=2).save(tmp_path / "p")
    meta = (folder / "pipeline.json").read_text().replace('"format_version": 1',
                                                          '"format_version": 99')
    (folder / "pipeline.json").write_text(meta)
    with pytest.raises(DataValidationError, match="format_version"):
        FittedPipeline.load(folder)
    (folder / "pipeline.json").write_text(meta.replace('"format_version": 99',
                                                       '"format_version": 1'))
    (folder / "arrays.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(DataValidationError, match="arrays.safetensors"):
        FittedPipeline.load(folder)


def test_a_failed_save_leaves_the_old_pipeline_whole(prepared, tmp_path, monkeypatch):
    fitted = FittedPipeline.from_prepared(prepared, max_lists=2)
    folder = fitted.save(tmp_path / "pipeline")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    import safetensors.numpy

    def fail(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", fail)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(folder)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    FittedPipeline.load(folder)  # still whole
    assert [p.name for p in tmp_path.iterdir()] == ["pipeline"]  # no temporaries left
