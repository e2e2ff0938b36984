"""The simulator is reproducible and its log shows the effects it was told to put in."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ltr.cli import main as ltr
from ltr.data import load_log
from ltr.errors import ConfigError
from ltr.io import read_table
from ltr.simulate import SimulationConfig, augment_catalog, examination_curve, simulate
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return read_table(SAMPLE / "products.parquet")


@pytest.fixture(scope="module")
def judgements() -> pd.DataFrame:
    return read_table(SAMPLE / "judgements.parquet")


@pytest.fixture(scope="module")
def big_run(catalog, judgements):
    """A large run (300k impressions, ~1 s) for statistical checks."""
    return simulate(catalog, SimulationConfig(seed=3, n_sessions=15_000, n_customers=3000),
                    judgements)


def test_same_seed_same_log_other_seed_other_log(catalog, judgements):
    cfg = SimulationConfig(seed=11, n_sessions=300)
    a = simulate(catalog, cfg, judgements).impressions
    b = simulate(catalog, cfg, judgements).impressions
    pd.testing.assert_frame_equal(a, b)
    c = simulate(catalog, SimulationConfig(seed=12, n_sessions=300), judgements).impressions
    assert not a["product_id"].equals(c["product_id"])


def test_click_rate_by_position_follows_examination_curve(big_run):
    """Under the position-based model, CTR(k) / CTR(1) estimated on the *same* products
    is e_k / e_1. Intervention-style check: restrict to (query, product) pairs shown at
    both positions and compare click rates of the same pairs, within sampling error."""
    imp = big_run.impressions
    curve = examination_curve(big_run.config)
    ctr = imp.groupby("position")["clicked"].mean()
    assert (np.diff(ctr.to_numpy()[:10]) < 0).all(), "CTR must fall with position"
    for k in (2, 3, 5):
        pair = imp[imp["position"].isin([1, k])]
        both = pair.groupby(["query", "product_id"], observed=True)["position"].transform("nunique") == 2
        pair = pair[both]
        # weight each pair equally at both positions: ratio of per-pair mean clicks
        rates = pair.groupby(["query", "product_id", "position"], observed=True)["clicked"].mean()
        rates = rates.unstack("position").dropna()
        counts = pair.groupby(["query", "product_id", "position"], observed=True).size() \
            .unstack("position").loc[rates.index]
        w = (1.0 / (1.0 / counts[1] + 1.0 / counts[k]))
        ratio = (w * rates[k]).sum() / (w * rates[1]).sum()
        expected = curve[k - 1] / curve[0]
        assert abs(ratio - expected) < 0.2 * expected, (k, ratio, expected)


def test_more_relevant_products_get_more_clicks(big_run):
    imp = big_run.impressions.merge(big_run.true_relevance, on=["query", "product_id"])
    # compare at fixed positions so the logging policy's ranking does not confound it
    top = imp[imp["position"] <= 5]
    by_grade = top.groupby("grade")["clicked"].mean()
    assert by_grade[0] < by_grade[1] < by_grade[2], by_grade.to_dict()


def test_customer_preferences_are_visible(big_run, catalog):
    imp = big_run.impressions
    truth = big_run.true_preferences.set_index("customer_id")
    products = catalog.set_index("product_id")
    brand = products.loc[imp["product_id"], "brand"].to_numpy()
    fav = truth.loc[imp["customer_id"], "favourite_brands"].to_numpy()
    match = brand == fav
    assert imp["clicked"][match].mean() > 1.3 * imp["clicked"][~match].mean()

    # price: within a query, sensitive customers click cheaper products than insensitive ones
    price = np.log(products.loc[imp["product_id"], "price"].to_numpy())
    z = pd.Series(price).groupby(imp["query"].to_numpy()).transform(lambda s: (s - s.mean()) / s.std())
    sens = truth.loc[imp["customer_id"], "price_sensitivity"].to_numpy()
    clicked = imp["clicked"].to_numpy() == 1
    cheap_pref_sensitive = z[clicked & (sens > 0.7)].mean()
    cheap_pref_insensitive = z[clicked & (sens < 0.3)].mean()
    assert cheap_pref_sensitive < cheap_pref_insensitive - 0.2

    # observed attributes carry the signal: noisy sensitivity correlates with the truth
    obs = big_run.customers.set_index("customer_id")["price_sensitivity"]
    assert np.corrcoef(obs, truth.loc[obs.index, "price_sensitivity"])[0, 1] > 0.8


def test_funnel_and_contract(big_run):
    imp = big_run.impressions
    assert (imp["added_to_cart"] <= imp["clicked"]).all()
    assert (imp["purchased"] <= imp["added_to_cart"]).all()
    assert imp.groupby("session_id")["position"].apply(lambda p: list(p) == list(range(1, len(p) + 1))).all()
    assert imp["timestamp"].is_monotonic_increasing


def test_synthetic_relevance_without_judgements():
    raw = pd.DataFrame({
        "product_id": np.arange(60), "title": [f"p{i}" for i in range(60)],
        "category": ["A / x"] * 20 + ["A / y"] * 20 + ["B / z"] * 20,
        "product_class": ["x"] * 20 + ["y"] * 20 + ["z"] * 20,
    })
    products = augment_catalog(raw, seed=1)
    assert {"price", "brand", "rating", "review_count"} <= set(products.columns)
    res = simulate(products, SimulationConfig(seed=1, n_sessions=2000, list_size=10,
                                              synthetic_queries=3, synthetic_pool=30))
    rel = res.true_relevance
    assert set(rel["query"]) == {"x", "y", "z"}
    assert set(rel["grade"]) <= {0, 1, 2}
    merged = res.impressions.merge(rel, on=["query", "product_id"])
    assert merged.groupby("grade")["clicked"].mean().is_monotonic_increasing


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match="simulate.list_size"):
        SimulationConfig(list_size=0)
    with pytest.raises(ConfigError, match="simulate.n_sesions"):
        SimulationConfig.from_dict({"n_sesions": 5})
    with pytest.raises(ConfigError, match="simulate.examination"):
        SimulationConfig(list_size=3, examination=[1.0, 0.5])


def test_cli_writes_log_and_ground_truth_that_load_back(tmp_path, capsys):
    out = tmp_path / "sim"
    rc = ltr(["simulate", "--catalog", str(SAMPLE / "products.parquet"),
              "--judgements", str(SAMPLE / "judgements.parquet"),
              "--set", "n_sessions=200", "--set", "exam_eta=0.5", "--out", str(out)])
    assert rc == 0
    log = load_log(out)
    assert log.summary()["sessions"] == 200
    truth = read_table(out / "ground_truth" / "examination.csv")
    np.testing.assert_allclose(truth["examination"], np.arange(1, 21) ** -0.5)
    cfg = json.loads((out / "ground_truth" / "simulation_config.json").read_text())
    assert cfg["exam_eta"] == 0.5 and cfg["n_sessions"] == 200
    rc = ltr(["simulate", "--catalog", str(SAMPLE / "products.parquet"),
              "--set", "list_size=-1", "--out", str(tmp_path / "bad")])
    assert rc == 2
    assert "simulate.list_size" in capsys.readouterr().err
