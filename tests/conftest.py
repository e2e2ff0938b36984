"""Shared fixtures: tiny but real tables of the data contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "wands"


@pytest.fixture()
def tiny_tables() -> dict[str, pd.DataFrame]:
    products = pd.DataFrame({
        "product_id": [1, 2, 3, 4],
        "title": ["oak bed", "pine bed", "red sofa", "desk lamp"],
        "category": ["Furniture / Beds", "Furniture / Beds", "Furniture / Sofas", None],
        "brand": ["a", "b", "a", "c"],
        "price": [300.0, 150.0, 800.0, 40.0],
        "rating": [4.5, None, 3.9, 4.8],
        "review_count": [10, 0, 5, 100],
    })
    customers = pd.DataFrame({"customer_id": [7, 8], "segment": ["budget", "premium"]})
    impressions = pd.DataFrame({
        "session_id": [1, 1, 1, 2, 2],
        "timestamp": ["2026-01-01 10:00:00"] * 3 + ["2026-01-02 11:00:00"] * 2,
        "customer_id": [7, 7, 7, 8, 8],
        "query": ["bed", "bed", "bed", "sofa", "sofa"],
        "product_id": [1, 2, 3, 3, 1],
        "position": [1, 2, 3, 1, 2],
        "clicked": [1, 0, 0, 1, 0],
        "added_to_cart": [1, 0, 0, 0, 0],
        "purchased": [1, 0, 0, 0, 0],
    })
    return {"products": products, "customers": customers, "impressions": impressions}


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, fmt: str = "csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False)
        else:
            df.to_parquet(path, index=False)
    return folder


@pytest.fixture(scope="session")
def tiny_log_dir(tmp_path_factory) -> Path:
    """A small simulated log (6 judged WANDS queries, 600 sessions x 10) as a log folder."""
    from ltr.io import read_table
    from ltr.simulate import SimulationConfig, simulate

    out = tmp_path_factory.mktemp("tiny_log")
    judged = read_table(SAMPLE / "judgements.parquet")
    queries = sorted(judged["query"].unique())[:6]
    judged = judged[judged["query"].isin(queries)]
    products = read_table(SAMPLE / "products.parquet")
    products = products[products["product_id"].isin(judged["product_id"])]
    res = simulate(products, SimulationConfig(seed=5, n_sessions=600, list_size=10,
                                              n_customers=80, days=28), judged)
    res.write(out)
    judged.to_parquet(out / "judgements.parquet", index=False)
    return out


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny tensors: OpenMP hand-offs cost more than they save on a busy 2-core runner."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def bare_log_dir(tiny_log_dir, tmp_path_factory) -> Path:
    """The tiny log of another shop: a catalog without ``product_class`` and customers
    with nothing but an id and a tenure (no segment, no preferences)."""
    import shutil

    out = tmp_path_factory.mktemp("bare_log")
    for name in ("impressions.parquet", "judgements.parquet"):
        shutil.copy(tiny_log_dir / name, out / name)
    products = pd.read_parquet(tiny_log_dir / "products.parquet")
    products.drop(columns=["product_class"]).to_parquet(out / "products.parquet", index=False)
    customers = pd.read_parquet(tiny_log_dir / "customers.parquet")
    customers[["customer_id", "tenure_days"]].to_parquet(out / "customers.parquet",
                                                         index=False)
    return out


# the session's model packages (every kind), shared by tests/serving and tests/robustness
from tests.serving.fixtures import packages, serving_data  # noqa: E402, F401
