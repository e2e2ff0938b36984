"""Candidate pools and their true relevance, from human judgements or a synthetic model.

With judgements (query, product_id, grade), each query's candidates are its judged
products and the true relevance is ``r = grade / max_grade`` in [0, 1].

Without judgements the **synthetic model** is used: the ``synthetic_queries`` most common
product classes become queries (query text = the class name, lower-cased); a query's pool
holds up to half of ``synthetic_pool`` products of its class (grade 2), up to a quarter
from the same top-level category (grade 1), and the rest drawn from the whole catalog
(grade 0 unless they happen to be of the class).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.errors import DataValidationError
from ltr.simulate.config import SimulationConfig


def judged_candidates(judgements: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Candidates from human grades: columns query, product_id, grade, relevance."""
    if judgements.empty:
        raise DataValidationError("judgements", "is empty: no query has a candidate")
    known = judgements["product_id"].isin(products["product_id"])
    cand = judgements.loc[known, ["query", "product_id", "grade"]].copy()
    max_grade = max(int(cand["grade"].max()), 1)
    cand["relevance"] = cand["grade"] / max_grade
    return cand.reset_index(drop=True)


def synthetic_candidates(products: pd.DataFrame, config: SimulationConfig,
                         rng: np.random.Generator, class_column: str = "product_class"
                         ) -> pd.DataFrame:
    """Candidates from the documented synthetic relevance model (no judgements)."""
    if class_column in products:
        klass = products[class_column].astype("string")
    else:
        klass = products["category"].astype("string").str.split("/").str[-1].str.strip()
    klass = klass.fillna("").astype(str)
    top = products["category"].astype("string").str.split("/").str[0].str.strip() \
        .fillna("").astype(str)
    counts = klass[klass != ""].value_counts()
    counts = counts[counts >= 3]
    if counts.empty:
        raise DataValidationError(
            "products", f"synthetic relevance needs classes with >= 3 products in "
            f"'{class_column}' or 'category'", column=class_column)
    pid = products["product_id"].to_numpy()
    klass_a, top_a = klass.to_numpy(), top.to_numpy()
    frames = []
    for name in counts.index[: config.synthetic_queries]:
        same = np.flatnonzero(klass_a == name)
        top_name = pd.Series(top_a[same]).mode().iloc[0]
        near = np.flatnonzero((top_a == top_name) & (klass_a != name))
        pool = config.synthetic_pool
        take_same = rng.permutation(same)[: pool // 2]
        take_near = rng.permutation(near)[: pool // 4]
        rest = pool - len(take_same) - len(take_near)
        others = rng.choice(len(products), size=min(rest, len(products)), replace=False)
        idx = np.unique(np.concatenate([take_same, take_near, others]))
        grade = np.where(klass_a[idx] == name, 2, np.where(top_a[idx] == top_name, 1, 0))
        frames.append(pd.DataFrame({"query": name.lower(), "product_id": pid[idx],
                                    "grade": grade}))
    cand = pd.concat(frames, ignore_index=True)
    cand["relevance"] = cand["grade"] / 2.0
    return cand
