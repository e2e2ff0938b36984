"""``ltr export`` from a Lightning checkpoint of ``ltr fit``, through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ltr.cli import main as ltr
from tests.serving.conftest import FEATURES, TASKS
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


def test_export_refuses_a_finetuned_encoder_checkpoint(tmp_path):
    import torch

    ckpt = tmp_path / "ft.ckpt"
    torch.save({"hyper_parameters": {"trainable_layers": 2}, "state_dict": {}}, ckpt)
    from ltr.errors import ConfigError
    from ltr.rankers.mmoe import from_lightning_checkpoint

    with pytest.raises(ConfigError, match="fine-tunes the text encoder"):
        from_lightning_checkpoint(ckpt)
