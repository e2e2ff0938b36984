"""``ltr label`` end to end on a slice of the sample log, with a tiny offline BERT."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from ltr.cli import main as ltr
from ltr.io import read_table
from tests.conftest import SAMPLE
from tests.text.conftest import build_tiny_bert


@pytest.fixture(scope="module")
def small_log(tmp_path_factory):
    """Five queries of the sample log, written as a log folder."""
    out = tmp_path_factory.mktemp("log")
    imp = read_table(SAMPLE / "impressions.parquet")
    judged = read_table(SAMPLE / "judgements.parquet")
    queries = sorted(judged["query"].unique())[:5]
    imp = imp[imp["query"].astype(str).isin(queries)]
    judged = judged[judged["query"].isin(queries)]
    products = read_table(SAMPLE / "products.parquet")
    products = products[products["product_id"].isin(judged["product_id"])]
    for name, df in (("impressions", imp), ("judgements", judged), ("products", products),
                     ("customers", read_table(SAMPLE / "customers.parquet"))):
        df.to_parquet(out / f"{name}.parquet", index=False)
    return out


def _config(tmp_path, small_log, model_dir, **labels):
    cfg = {"data": str(small_log), "out": str(tmp_path / "labels"),
           "ground_truth": str(SAMPLE / "ground_truth"),
           "labels": labels,
           "text": {"model_name": str(model_dir), "product_fields": ["product_class"],
                    "max_length": 32, "progress": False,
                    "cache_dir": str(tmp_path / "cache")}}
    path = tmp_path / "labels.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_label_cli_writes_labels_config_and_report(tmp_path, small_log, capsys):
    model = build_tiny_bert(tmp_path / "bert")
    cfg = _config(tmp_path, small_log, model)
    assert ltr(["label", "--config", str(cfg), "--set", "labels.behaviour_weight=0.8"]) == 0
    out = capsys.readouterr().out
    assert "agreement with human grades" in out and "combined" in out
    folder = tmp_path / "labels"
    labels = pd.read_parquet(folder / "labels.parquet")
    assert labels["grade"].between(0, 4).all() and labels["score"].notna().all()
    saved = yaml.safe_load((folder / "label_config.yaml").read_text())
    assert saved["labels"]["behaviour_weight"] == 0.8  # the override is traceable
    assert saved["text"]["model_name"] == str(model)
    report = folder / "report"
    for name in ("label_distribution.png", "propensity.png", "signal_correlations.png",
                 "report.md", "agreement.csv", "confusion.csv", "disagreements.parquet"):
        assert (report / name).stat().st_size > 0, name
    summary = json.loads((report / "summary.json").read_text())
    assert {a["labels"] for a in summary["agreement"]} == {"combined", "behaviour_only",
                                                          "similarity_only"}
    assert summary["position_bias"]["identifiable"]


def test_label_cli_bad_config_names_key_and_writes_nothing(tmp_path, small_log, capsys):
    cfg = _config(tmp_path, small_log, tmp_path / "no-such-model")
    assert ltr(["label", "--config", str(cfg), "--set", "labels.normalise=zscore"]) == 2
    assert "labels.normalise" in capsys.readouterr().err
    assert ltr(["label", "--config", str(cfg)]) == 2
    assert "text.model_name" in capsys.readouterr().err
    assert not (tmp_path / "labels").exists()
    cfg.write_text("data: x\nout: y\nlabelz: {}\n")
    assert ltr(["label", "--config", str(cfg)]) == 2
    assert "labelz" in capsys.readouterr().err


def test_label_folder_of_a_training_window_is_what_fit_trains_on(tiny_log_dir, tmp_path):
    """`ltr label` with a window writes labels + fingerprint; prepare trains on them when
    the fingerprint is its own training window's, and refuses another window's, naming
    both."""
    import numpy as np
    import yaml

    from ltr.cli import main as ltr
    from ltr.errors import ConfigError
    from ltr.training.prepare import prepare

    cfg = {"data": str(tiny_log_dir), "out": str(tmp_path / "labels"),
           "window": {"folds": 3, "fold": 1, "seed": 0},
           "labels": {"lexical_weight": 0.0}}
    path = tmp_path / "labels.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert ltr(["label", "--config", str(path)]) == 0
    written = yaml.safe_load((tmp_path / "labels" / "label_config.yaml").read_text())
    assert written["window"]["fold"] == 1 and len(written["fingerprint"]) == 32
    tasks = ["click", "relevance"]
    feats = {"numeric": ["price"], "categorical": [], "derived": []}
    text = {"progress": False}  # the label config's text: the default encoder
    own = prepare(str(tiny_log_dir), tasks, feats, labels=str(tmp_path / "labels"),
                  text=text, folds=3, fold=1, pool_lists=1)
    derived = prepare(str(tiny_log_dir), tasks, feats, labels={"lexical_weight": 0.0},
                      text=text, folds=3, fold=1, pool_lists=1)
    # same window, same rule: the same training targets
    np.testing.assert_array_equal(own.train.labels["relevance"],
                                  derived.train.labels["relevance"])
    assert any("fingerprint" in n for n in own.info["notes"])
    with pytest.raises(ConfigError, match="fold 1 of 3.*fold 2 of 3"):
        prepare(str(tiny_log_dir), tasks, feats, labels=str(tmp_path / "labels"), folds=3,
                fold=2)
