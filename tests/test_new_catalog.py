"""A new shop's catalog without the sample's optional columns runs ``ltr label``,
``ltr fit``, ``ltr benchmark`` and ``ltr export`` with the shipped configs and only the
paths changed."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from ltr.cli import main as ltr
from tests.conftest import ROOT


def test_shipped_configs_run_on_a_catalog_without_the_optional_columns(bare_log_dir,
                                                                       tmp_path, capsys):
    assert "product_class" not in pd.read_parquet(bare_log_dir / "products.parquet")
    # labels: the shipped config names text.product_fields [product_class]
    assert ltr(["label", "--config", str(ROOT / "configs" / "labels" / "wands.yaml"),
                "--set", f"data={bare_log_dir}", "--set", f"out={tmp_path / 'labels'}",
                "--set", "ground_truth=null"]) == 0
    assert "not catalog columns" in capsys.readouterr().out
    # fit: the shipped MMoE config, paths (and one epoch) changed
    run = tmp_path / "fit"
    assert ltr(["fit", "--config", str(ROOT / "configs" / "mmoe.yaml"),
                "--data.data_dir", str(bare_log_dir), "--trainer.max_epochs", "1",
                "--trainer.default_root_dir", str(run),
                "--trainer.logger.init_args.save_dir", str(run)]) == 0
    ckpt = next(run.rglob("*.ckpt"))
    # benchmark: the shipped config, paths changed, two rankers for time
    cfg = yaml.safe_load((ROOT / "configs" / "benchmark.yaml").read_text())
    cfg["data"]["data_dir"] = str(bare_log_dir)
    cfg["out"] = str(tmp_path / "bench")
    cfg["models"] = [{"name": "xgboost", "params": {"n_estimators": 10}}, {"name": "hybrid"}]
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(cfg))
    assert ltr(["benchmark", "--config", str(tmp_path / "bench.yaml")]) == 0
    table = pd.read_csv(tmp_path / "bench" / "results.csv")
    assert table["human_ndcg@10"].notna().any()
    # export: from the checkpoint and from a ranker folder
    for source, out in ((ckpt, tmp_path / "pkg"), (tmp_path / "bench" / "models" / "xgboost",
                                                    tmp_path / "pkg_xgb")):
        assert ltr(["export", "--checkpoint", str(source), "--out", str(out)]) == 0
    from ltr.serving import RankingService

    service = RankingService(tmp_path / "pkg")
    assert "product_class" not in service.schema.product_columns
    ranked = service.rank("grey sofa", service.catalog.columns["product_id"][:5].tolist())
    assert len(ranked.products) == 5


def test_an_explicit_spec_names_every_missing_column_at_once(bare_log_dir):
    from ltr.errors import ConfigError
    from ltr.training.prepare import prepare

    features = {"numeric": ["price", "price_sensitivity"],
                "categorical": ["product_class", "segment"],
                "derived": ["brand_match"]}
    with pytest.raises(ConfigError) as err:
        prepare(str(bare_log_dir), ["click", "relevance"], features)
    msg = str(err.value)
    for col in ("price_sensitivity", "product_class", "segment", "preferred_brand"):
        assert col in msg
    assert "data.features" in msg
