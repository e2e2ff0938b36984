"""scripts/bench_quality.py: the paired summary against the best zero-shot reference (the
benchmark itself is a script, not a timed test; its per-query figures come from
ltr.evaluation.engine, tested in tests/evaluation)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.training.lists import ListData
from tests.scripts.loader import load_script


def _load():
    return load_script("bench_quality")


def _lists(mask: np.ndarray) -> ListData:
    g, n = mask.shape
    products = np.random.default_rng(1).permutation(g * n).reshape(g, n)
    ids = products.astype(object)
    return ListData(keys=np.arange(g), numeric=np.zeros((g, n, 1), np.float32),
                    categorical=np.zeros((g, n, 0), np.int64),
                    query_text=np.arange(g), product_text=products,
                    position=np.zeros((g, n), np.int64), mask=mask,
                    product_id=ids)


def test_summary_compares_every_ranker_with_the_best_zero_shot_reference():
    bench = _load()
    rng = np.random.default_rng(0)
    rows = []
    for q in range(30):
        base = rng.random()
        for ranker, shift in (("cosine", 0.0), ("bm25", -0.1), ("lexical", -0.05),
                              ("mmoe", 0.02)):
            rows.append({"case": "c", "ranker": ranker, "query": str(q),
                         "ndcg@10": base + shift, "ndcg@10_exp": base + shift})
    table = bench.summarise(pd.DataFrame(rows), n_boot=500).set_index("ranker")
    assert (table["best zero-shot"] == "cosine").all()
    assert abs(table.loc["mmoe", "delta"] - 0.02) < 1e-9
    assert table.loc["cosine", "delta"] == 0.0
    assert table.loc["mmoe", "queries"] == 30
