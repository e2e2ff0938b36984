"""``ltr export`` in steps that keep its peak memory down: from a fitted pipeline the text
step (ONNX encoder, catalog embeddings) runs before the pipeline is loaded, the parity
lists are scored in training before the package is loaded as a service, and replayed
through it in small batches. The package is the one the old order wrote, a parity
mismatch still writes nothing, and export leaves no process-wide setting behind."""

from __future__ import annotations

import gc
import json

import numpy as np
import pyarrow as pa
import pytest
from safetensors.numpy import load_file

import ltr.serving.export as export
from ltr.errors import DataValidationError
from ltr.serving import RankingService, export_package


@pytest.fixture(scope="module")
def cosine(serving_data, tmp_path_factory):
    """A text model (it reads embeddings: encoder, ONNX copy and catalog embeddings) saved
    with its fitted pipeline; ``(ranker, folder)``."""
    from ltr.rankers.base import make_ranker

    _, data = serving_data
    ranker = make_ranker("cosine").fit(data)
    return ranker, ranker.save(tmp_path_factory.mktemp("cosine") / "model")


def _quiet(*_):
    return None


def test_text_step_first_writes_the_same_package(cosine, tmp_path, monkeypatch):
    _, model = cosine
    calls = []
    settings = export._pipeline_settings
    monkeypatch.setattr(export, "_pipeline_settings",
                        lambda *a: calls.append(settings(*a)) or calls[-1])
    first = export_package(model, tmp_path / "first", log=_quiet)
    assert calls and calls[0] is not None  # the text step ran before the pipeline
    monkeypatch.setattr(export, "_pipeline_settings", lambda *a: None)
    after = export_package(model, tmp_path / "after", log=_quiet)  # the old order

    files = json.loads((first / "manifest.json").read_text())["files"]
    assert files.keys() == json.loads((after / "manifest.json").read_text())["files"].keys()
    assert "text/query_encoder.onnx" in files
    for name in ("text/text.json", "features.json", "data.json"):
        assert json.loads((first / name).read_text()) == json.loads((after / name).read_text())
    for name in ("catalog/product_embeddings.safetensors",
                 "text/query_embeddings.safetensors"):
        np.testing.assert_array_equal(load_file(str(first / name))["embeddings"],
                                      load_file(str(after / name))["embeddings"])
    a, b = (json.loads((p / "metrics.json").read_text()) for p in (first, after))
    assert a == b and a["parity"]["pools"]["max_abs_diff"] <= 1e-4
    # the catalog rows and their embeddings line up: a catalog product scores the same
    # through its precomputed row as when sent as a record with its texts (encoded anew)
    service = RankingService(first, use_onnx=False)
    row = service.catalog.columns
    pid = row["product_id"][3]
    record = {"product_id": "new-1", "title": str(row["title"][3]),
              "product_class": str(row["product_class"][3])}
    ranked = service.rank("blue velvet sofa", [pid, record])
    scores = {p.product_id: p.score for p in ranked.products}
    assert scores[pid] == pytest.approx(scores["new-1"], abs=1e-5)


def test_parity_in_small_batches_and_no_settings_left_behind(cosine, tmp_path,
                                                            monkeypatch):
    _, model = cosine
    monkeypatch.setattr(export, "PARITY_BATCH", 2)
    backend = pa.default_memory_pool().backend_name
    folder = export_package(model, tmp_path / "pkg", log=_quiet)
    parity = json.loads((folder / "metrics.json").read_text())["parity"]
    assert parity["test"]["lists"] > 2 * export.PARITY_BATCH  # several batches
    assert parity["test"]["max_abs_diff"] <= 1e-4 and parity["pools"]["max_abs_diff"] <= 1e-4
    assert gc.get_freeze_count() == 0
    assert pa.default_memory_pool().backend_name == backend


@pytest.mark.parametrize("change,message", [
    (lambda v: v + 0.5, "differ from the in-training scores"),
    (lambda v: v[:-1], "other .* products than training"),
])
def test_a_parity_mismatch_writes_nothing(cosine, tmp_path, monkeypatch, change, message):
    _, model = cosine
    expected = export.expected_scores

    def off(*args, **kwargs):
        cases = expected(*args, **kwargs)
        cases[0].expected = {k: change(v) for k, v in cases[0].expected.items()}
        return cases

    monkeypatch.setattr(export, "expected_scores", off)
    with pytest.raises(export.ParityError, match=message):
        export_package(model, tmp_path / "pkg", log=_quiet)
    assert not (tmp_path / "pkg").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pkg.")]


def test_a_catalog_changed_between_the_steps_is_refused(cosine, tmp_path, monkeypatch):
    """The catalog embeddings are written from the catalog read by the text step, the
    catalog table from the one read with the pipeline: they must be the same products in
    the same order."""
    _, model = cosine
    read = export._products
    calls = []

    def shuffled(folder):
        calls.append(folder)
        products = read(folder)
        return products if len(calls) == 1 else products.iloc[::-1]

    monkeypatch.setattr(export, "_products", shuffled)
    with pytest.raises(DataValidationError, match="catalog changed"):
        export_package(model, tmp_path / "pkg", log=_quiet)
    assert not (tmp_path / "pkg").exists()


def test_check_parity_against_a_loaded_package(cosine, serving_data, tmp_path):
    ranker, model = cosine
    _, data = serving_data
    folder = export_package(model, tmp_path / "pkg", parity_lists=5, log=_quiet)
    report = export.check_parity(ranker, data, RankingService(folder), max_lists=5)
    assert report["test"]["lists"] == 5 and report["test"]["max_abs_diff"] <= 1e-4
