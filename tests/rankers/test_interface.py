"""The common interface: MMoE adapters, references and the benchmark on a tiny log."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from ltr.cli import main as ltr
from ltr.errors import ConfigError, DataValidationError
from ltr.metrics import ndcg
from ltr.rankers.base import NotFittedError, load_ranker, make_ranker
from ltr.training.prepare import prepare
from tests.text.conftest import build_tiny_bert
from tests.training.test_prepare import FEATURES, TASKS


@pytest.fixture(scope="module")
def data(tiny_log_dir, tmp_path_factory):
    model = build_tiny_bert(tmp_path_factory.mktemp("bert"))
    text = {"model_name": str(model), "max_length": 16, "progress": False}
    return prepare(str(tiny_log_dir), TASKS, FEATURES, None, text, folds=3, fold=0,
                   hard_negatives=2, pool_lists=1)


@pytest.mark.parametrize("name,params", [
    ("mmoe", {"max_epochs": 2, "n_experts": 2, "bottom": [16], "expert_hidden": [8]}),
    ("mmoe_tabular", {"max_epochs": 2, "n_experts": 2, "bottom": [16], "expert_hidden": [8]}),
    ("mmoe", {"max_epochs": 1, "n_experts": 2, "bottom": [16], "expert_hidden": [8],
              "trainable_layers": 1}),
    ("ple", {"max_epochs": 1, "bottom": [16], "expert_hidden": [8],
             "backbone_args": {"levels": 2}}),
    ("bm25", {}), ("cosine", {}), ("lexical", {}), ("hybrid", {}),
])
def test_fit_score_save_load_round_trip(name, params, data, tmp_path):
    ranker = make_ranker(name, params)
    with pytest.raises(NotFittedError, match=name):
        ranker.score(data.test, data)
    ranker.fit(data)
    scores = ranker.score(data.pools, data)
    assert scores.shape == data.pools.mask.shape
    assert np.isnan(scores[~data.pools.mask]).all() and np.isfinite(scores[data.pools.mask]).all()
    back = load_ranker(ranker.save(tmp_path / name))
    assert type(back) is type(ranker)
    from ltr.features import Preprocessor

    pre = Preprocessor.load(tmp_path / name / "preprocessor.json")
    assert pre.to_dict() == data.preprocessor.to_dict()
    np.testing.assert_allclose(back.score(data.pools, data), scores, rtol=1e-6, atol=1e-6)
    if params.get("trainable_layers"):  # the fine-tuned encoder went with the weights
        assert (tmp_path / name / "tuned_encoder" / "model.safetensors").exists()
        assert not list((tmp_path / name).rglob("*.bin"))


@pytest.mark.parametrize("name", ["mmoe", "mmoe_tabular"])
def test_mmoe_learns_the_planted_relevance(name, tiny_log_dir):
    """The simulated clicks follow the human grades; trained on the log's derived labels,
    the MMoE must rank the judged pools (of its training queries) far better than random."""
    data = prepare(str(tiny_log_dir), TASKS, FEATURES, hard_negatives=2, pool_lists=2)
    assert data.pools is None  # every judged query is in the log: known-query pools
    pools = data.known_pools
    ranker = make_ranker(name, {"max_epochs": 4, "use_text": False}).fit(data)
    human = pools.labels["human"]
    valid = pools.mask & np.isfinite(human)
    got = ndcg(np.nan_to_num(ranker.score(pools, data)), np.nan_to_num(human), valid).mean
    rng = np.random.default_rng(0)
    rand = np.mean([ndcg(rng.random(human.shape), np.nan_to_num(human), valid).mean
                    for _ in range(20)])
    assert got > rand + 0.05, (got, rand)


def test_bad_inputs(data, tmp_path):
    with pytest.raises(ConfigError, match="model.name"):
        make_ranker("lightgbm")
    with pytest.raises(ConfigError, match="model.params.trainable_layers"):
        make_ranker("mmoe", {"trainable_layers": -1})  # refused at construction
    with pytest.raises(ConfigError, match="model.params.lce_weight"):
        make_ranker("mmoe", {"lce_weight": 1.0})  # LCE trains a tuned encoder: refused at
        # construction (the model section's schema), before any fitting
    ranker = make_ranker("cosine").fit(data)
    folder = ranker.save(tmp_path / "cos")
    manifest = json.loads((folder / "ranker.json").read_text())
    (folder / "ranker.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(DataValidationError, match="format version 99"):
        load_ranker(folder)
    (folder / "ranker.json").write_text(json.dumps(manifest))
    from ltr.rankers.reference import BM25Ranker

    with pytest.raises(DataValidationError, match="holds a 'cosine' ranker, not 'bm25'"):
        BM25Ranker.load(folder)
    with pytest.raises(DataValidationError, match="not a saved ranker"):
        load_ranker(tmp_path)
    narrow = data.test.subset(np.arange(3))
    narrow.numeric = narrow.numeric[..., :-1]
    with pytest.raises(DataValidationError, match="numeric feature columns"):
        ranker.score(narrow, data)


def test_benchmark_command_writes_the_table(tiny_log_dir, tmp_path, capsys):
    cfg = {"data": {"data_dir": str(tiny_log_dir), "features": FEATURES, "folds": 3,
                    "fold": 0, "pool_lists": 1},
           "out": str(tmp_path / "bench"),
           "models": [{"name": "mmoe_tabular", "params": {"max_epochs": 1}},
                      {"name": "bm25"}]}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert ltr(["benchmark", "--config", str(path)]) == 0
    table = pd.read_csv(tmp_path / "bench" / "results.csv")
    # the training labels themselves on the known queries' judged pools: the bar to reach
    assert table["model"].tolist() == ["mmoe_tabular", "bm25", "labels (training)"]
    models = table.iloc[:2]
    for col in ("human_ndcg@10", "known_human_ndcg@10", "mrr@10_click", "auc_click",
                "train_s", "ms_per_100", "engagement_ndcg@10"):
        assert models[col].notna().all(), col
    assert table["known_human_ndcg@10_linear"].notna().all()
    assert (tmp_path / "bench" / "results.png").stat().st_size > 0
    assert (tmp_path / "bench" / "models" / "bm25" / "ranker.json").exists()
    path.write_text(yaml.safe_dump({**cfg, "models": [{"name": "nope"}]}))
    assert ltr(["benchmark", "--config", str(path)]) == 2
    assert "models[0].name" in capsys.readouterr().err


def test_capabilities_are_declared_by_every_registered_kind():
    """Export, sweep and benchmark read these instead of switching on kind names."""
    from ltr.rankers.base import RANKERS, capabilities, ranker_class

    for name in RANKERS:
        caps = capabilities(name)
        assert caps.text in ("embeddings", "optional", "texts", "none"), name
        assert caps.prunable in (None, "lightning", "xgboost"), name
        assert ranker_class(name).param_names() is None or \
            isinstance(ranker_class(name).param_names(), set)
    assert capabilities("ple").multi_task and capabilities("mmoe").multi_task
    assert not capabilities("cosine").trained and capabilities("bm25").text == "texts"
    assert make_ranker("xgboost", {"use_text": False}).reads_embeddings is False
    assert make_ranker("hybrid").reads_embeddings
    assert {"backbone", "backbone_args", "lce_weight", "max_epochs"} <= \
        ranker_class("ple").param_names()


def test_benchmark_without_judgements_reports_engagement_only(tiny_log_dir, tmp_path,
                                                              capsys):
    """Folds and no judgements: it used to exit 1 after saving (KeyError in the plot)."""
    import shutil

    log = tmp_path / "log"
    shutil.copytree(tiny_log_dir, log)
    (log / "judgements.parquet").unlink()
    cfg = {"data": {"data_dir": str(log), "features": FEATURES, "folds": 3, "fold": 0,
                    "pool_lists": 1},
           "out": str(tmp_path / "bench"), "models": [{"name": "bm25"}]}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert ltr(["benchmark", "--config", str(path)]) == 0
    assert "no human judgements" in capsys.readouterr().out
    md = (tmp_path / "bench" / "results.md").read_text()
    assert "no human judgements" in md and "mrr@10_click" in md
    assert (tmp_path / "bench" / "results.png").exists()


@pytest.mark.parametrize("name", ["mmoe", "ple", "cosine", "lexical", "bm25", "hybrid",
                                  "xgboost", "dcnv2"])
def test_unknown_parameters_are_refused_not_ignored(name):
    from ltr.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown parameter") as err:
        make_ranker(name, {"no_such_parameter": 1}, "models[3].name")
    assert err.value.key == "models[3].params.no_such_parameter"
    if name in ("mmoe", "ple", "dcnv2"):  # ranges, named where the config holds them
        with pytest.raises(ConfigError) as err:
            make_ranker(name, {"lr": -0.1}, "models[3].name")
        assert str(err.value) == "config key 'models[3].params.lr': must be > 0, got -0.1"
