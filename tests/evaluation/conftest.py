from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def make_labels(n_queries: int = 40, seed: int = 0) -> pd.DataFrame:
    """Queries of 2..9 products with a graded and three binary labels."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n_queries):
        for j in range(int(rng.integers(2, 10))):
            grade = int(rng.choice(5, p=[0.45, 0.25, 0.15, 0.1, 0.05]))
            clicked = int(grade >= 2 or rng.random() < 0.05)
            cart = int(clicked and rng.random() < 0.5)
            rows.append((f"q{q:03d}", 1000 + 17 * j + q, grade, clicked, cart, int(cart and j % 2)))
    return pd.DataFrame(
        rows, columns=["query_id", "product_id", "grade", "clicked", "added_to_cart", "purchased"]
    )


def make_predictions(labels: pd.DataFrame, noise: float, seed: int) -> pd.DataFrame:
    """Scores = grade + noise (continuous, no ties), rows shuffled."""
    rng = np.random.default_rng(seed)
    df = labels[["query_id", "product_id"]].copy()
    df["score"] = labels["grade"].to_numpy() + rng.normal(0, noise, len(df))
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    labels = make_labels()
    paths = {"labels": tmp_path / "labels.csv", "good": tmp_path / "good.csv",
             "weak": tmp_path / "weak.parquet"}
    labels.to_csv(paths["labels"], index=False)
    make_predictions(labels, 0.3, 1).to_csv(paths["good"], index=False)
    make_predictions(labels, 3.0, 2).to_parquet(paths["weak"])
    return paths


@pytest.fixture
def labels_df() -> pd.DataFrame:
    return make_labels()


@pytest.fixture
def predictions_for():
    """``predictions_for(labels, noise, seed)`` -> a shuffled predictions frame."""
    return make_predictions
