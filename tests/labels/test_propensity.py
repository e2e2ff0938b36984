"""Position-bias estimation: recovers the simulator's curve; says so when it cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.errors import DataValidationError
from ltr.io import read_table
from ltr.labels.aggregate import aggregate_log
from ltr.labels.propensity import estimate_position_bias
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def sample_log() -> pd.DataFrame:
    return read_table(SAMPLE / "impressions.parquet")


def test_aggregates_match_pandas(sample_log):
    agg = aggregate_log(sample_log)
    ref = sample_log.groupby(["query", "product_id"], observed=True).agg(
        impressions=("clicked", "size"), clicks=("clicked", "sum"),
        carts=("added_to_cart", "sum"), purchases=("purchased", "sum"),
        mean_position=("position", "mean")).reset_index()
    got = agg.pairs.astype({"query": str}).merge(ref.astype({"query": str}),
                                                 on=["query", "product_id"])
    assert len(got) == len(ref) == len(agg.pairs)
    for col in ("impressions", "clicks", "carts", "purchases", "mean_position"):
        np.testing.assert_allclose(got[f"{col}_x"], got[f"{col}_y"])
    assert agg.cell_impressions.sum() == len(sample_log)


def test_em_recovers_true_examination_on_sample_log(sample_log):
    truth = read_table(SAMPLE / "ground_truth" / "examination.csv")["examination"].to_numpy()
    bias = estimate_position_bias(aggregate_log(sample_log))
    assert bias.identifiable and bias.converged
    rel_err = np.abs(bias.examination[:10] / (truth[:10] / truth[0]) - 1)
    assert rel_err.max() < 0.10, rel_err


def test_hand_made_pbm_two_positions():
    """Two products, each shown 10,000 times at positions 1 and 2, gamma 0.8 and 0.4,
    theta_2 = 0.5: expected click counts are exact, so EM must find theta_2 = 0.5."""
    rows = []
    for pid, gamma in ((1, 0.8), (2, 0.4)):
        for pos, theta in ((1, 1.0), (2, 0.5)):
            n, c = 10_000, int(round(10_000 * gamma * theta))
            rows += [(pid, pos, 1)] * c + [(pid, pos, 0)] * (n - c)
    df = pd.DataFrame(rows, columns=["product_id", "position", "clicked"])
    df["query"] = "q"
    df["added_to_cart"] = 0
    df["purchased"] = 0
    bias = estimate_position_bias(aggregate_log(df), max_iter=5000, tol=1e-10)
    assert bias.examination[1] == pytest.approx(0.5, abs=0.01)
    gamma = dict(zip(aggregate_log(df).pairs["product_id"], bias.attractiveness, strict=True))
    assert gamma[1] / gamma[2] == pytest.approx(2.0, rel=0.02)


def test_single_position_is_not_identifiable(sample_log):
    top = sample_log[sample_log["position"] == 1]
    bias = estimate_position_bias(aggregate_log(top))
    assert not bias.identifiable
    assert "every impression is at the same position" in bias.note
    assert bias.examination[0] == 1.0 and np.isfinite(bias.attractiveness).all()


def test_no_pair_moves_is_not_identifiable():
    df = pd.DataFrame({"query": ["q"] * 4, "product_id": [1, 2, 1, 2], "position": [1, 2, 1, 2],
                       "clicked": [1, 0, 0, 1], "added_to_cart": 0, "purchased": 0})
    bias = estimate_position_bias(aggregate_log(df))
    assert not bias.identifiable and "more than one position" in bias.note


def test_empty_log_is_an_error():
    empty = pd.DataFrame(columns=["query", "product_id", "position", "clicked",
                                  "added_to_cart", "purchased"])
    with pytest.raises(DataValidationError, match="impressions.parquet: is empty"):
        aggregate_log(empty, "impressions.parquet")
