"""A tiny trained model of every kind, exported once per test session (fixtures shared
through tests/conftest.py: the serving and robustness tests use the same packages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.text.conftest import build_tiny_bert

TASKS = ["click", "add_to_cart", "purchase", "relevance"]
# product, customer, history (history labels included), lexical match, neighbour and
# derived columns: every source a request is built from
FEATURES = {"numeric": ["price", "rating", "review_count", "price_sensitivity", "tenure_days",
                        "hist_pair_ctr", "hist_pair_impressions", "hist_pair_label",
                        "hist_product_ctr", "lex_coverage", "nn_label", "nn_coverage",
                        "nn_max_sim"],
            "log1p": ["price", "review_count", "hist_pair_impressions"],
            "categorical": ["brand", "product_class", "segment", "preferred_brand"],
            "derived": ["brand_match", "category_match", "price_z_in_list", "top_category"]}
# without text there are no neighbour features (they compare query embeddings)
TABULAR_FEATURES = {**FEATURES, "numeric": [c for c in FEATURES["numeric"]
                                            if not c.startswith("nn_")]}
SMALL_MMOE = {"max_epochs": 1, "n_experts": 2, "bottom": [16], "expert_hidden": [8],
              "tower_hidden": [4]}
KINDS = {
    "mmoe": SMALL_MMOE,
    "mmoe_tabular": SMALL_MMOE,
    "xgboost": {"n_estimators": 20, "max_depth": 3},
    "dcnv2": {"max_epochs": 1},
    "tabnet": {"max_epochs": 1},
    "ft_transformer": {"max_epochs": 1},
    "bm25": {},
    "cosine": {},
    "lexical": {},
    "hybrid": {},
}


@pytest.fixture(scope="session")
def serving_data(tiny_log_dir, tmp_path_factory):
    """``(data module, prepared data)`` with text from a tiny offline BERT."""
    from ltr.training.datamodule import LtrDataModule

    bert = build_tiny_bert(tmp_path_factory.mktemp("serving_bert"))
    text = {"model_name": str(bert), "max_length": 16, "progress": False,
            "product_fields": ["product_class"]}
    dm = LtrDataModule(data_dir=str(tiny_log_dir), tasks=TASKS, features=FEATURES, text=text,
                       folds=3, fold=0, hard_negatives=2, pool_lists=1)
    return dm, dm.prepared


@pytest.fixture(scope="session")
def packages(serving_data, tmp_path_factory) -> dict[str, tuple[object, Path]]:
    """kind -> (fitted ranker, package folder), exported through ``export_package``."""
    from ltr.rankers.base import make_ranker
    from ltr.serving import export_package

    _, data = serving_data
    root = tmp_path_factory.mktemp("packages")
    out = {}
    for kind, params in KINDS.items():
        ranker = make_ranker(kind, params).fit(data)
        folder = ranker.save(root / "models" / kind)
        out[kind] = (ranker, export_package(folder, root / kind, log=lambda *_: None))
    return out
