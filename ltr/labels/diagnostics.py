r"""How far derived labels agree with human judgements, and where signals disagree.

Agreement, for each label variant (behaviour only, similarity only, combined):

* **Spearman** rank correlation between the label score and the human grade, over all
  judged pairs, and its mean within queries (what a ranker cares about).
* **Weighted Cohen's kappa** (quadratic weights
  :math:`w_{ij} = (i-j)^2/(K-1)^2`, :math:`\kappa = 1 - \sum w O / \sum w E`) between the
  human grade and the derived score *cut to the human scale by quantile matching*: the
  share of each derived level equals the share of that human grade, so only the order
  of the scores is compared, not the calibration of two different scales.
* the **confusion matrix** of derived grade (0..n_grades-1) against human grade;
* **NDCG@10** (exponential gain) of each query's judged pool ranked by the label score,
  against the human grades: how good a ranker the labels themselves are.

Disagreement: pairs with enough evidence whose normalised behaviour signal and
normalised similarity differ by more than a threshold, exported with query length,
top-level category and mean position, since systematic disagreement is where labels go
wrong.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ltr.data.groups import pad_groups
from ltr.metrics import ndcg


def weighted_kappa(a: np.ndarray, b: np.ndarray, n_levels: int | None = None) -> float:
    """Quadratic-weighted Cohen's kappa between two integer ratings 0..K-1."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    k = int(n_levels or max(a.max(), b.max()) + 1)
    observed = np.zeros((k, k))
    np.add.at(observed, (a, b), 1.0)
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    i, j = np.indices((k, k))
    w = (i - j) ** 2 / max(k - 1, 1) ** 2
    denom = (w * expected).sum()
    return float(1.0 - (w * observed).sum() / denom) if denom > 0 else float("nan")


def quantile_match(score: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cut ``score`` into the levels of ``reference`` with the same share per level."""
    levels, counts = np.unique(reference, return_counts=True)
    order = np.argsort(score, kind="stable")
    out = np.empty(len(score), dtype=np.int64)
    out[order] = np.repeat(levels, counts)
    return out


def ndcg_by_query(query: np.ndarray, score: np.ndarray, grade: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over queries of the pool ranked by ``score`` against ``grade``."""
    g = pad_groups(query)
    return float(ndcg(g.gather(score.astype(float)), g.gather(grade.astype(float)), g.mask,
                      k=k).mean)


def agreement(labels: pd.DataFrame, judgements: pd.DataFrame) -> dict[str, object]:
    """Agreement of one label table (query, product_id, score, grade) with human grades."""
    m = labels[["query", "product_id", "score", "grade"]].merge(
        judgements[["query", "product_id", "grade"]].rename(columns={"grade": "human"}),
        on=["query", "product_id"], how="inner")
    if m.empty:
        return {"pairs": 0}
    human = m["human"].to_numpy()
    score = m["score"].to_numpy(float)
    per_query = m.groupby("query")[["score", "human"]].apply(
        lambda d: spearmanr(d["score"], d["human"])[0] if d["human"].nunique() > 1 else np.nan)
    n_h = int(human.max()) + 1
    confusion = pd.crosstab(m["grade"].rename("derived"), m["human"].rename("human"))
    return {
        "pairs": len(m),
        "queries": int(m["query"].nunique()),
        "spearman": float(spearmanr(score, human)[0]),
        "spearman_within_query": float(np.nanmean(per_query.to_numpy(float))),
        "weighted_kappa": weighted_kappa(quantile_match(score, human), human, n_h),
        "ndcg@10": ndcg_by_query(m["query"].to_numpy(), score, human),
        "confusion": confusion,
    }


def disagreements(labels: pd.DataFrame, products: pd.DataFrame | None = None,
                  threshold: float = 0.5, min_evidence: float = 2.0,
                  normalise: str = "query_percentile") -> pd.DataFrame:
    """Pairs where behaviour and text similarity disagree by more than ``threshold``.

    Both signals are compared on the normalised [0, 1] scale; ``direction`` says which
    one is higher. Adds query length (words), top-level category and mean position.
    """
    from ltr.labels.signals import normalise as norm

    df = labels[labels["expected_exams"] >= min_evidence].copy()
    if df.empty or df["similarity"].isna().all():
        return df.assign(gap=[], direction=[])
    sim = norm(df["similarity"].to_numpy(float), df["query"].to_numpy(), normalise)
    df["similarity_norm"] = sim
    df["gap"] = df["behaviour"].to_numpy() - sim
    df = df[np.abs(df["gap"]) > threshold].copy()
    df["direction"] = np.where(df["gap"] > 0, "clicks_higher", "text_higher")
    df["query_words"] = df["query"].astype(str).str.split().str.len()
    if products is not None and "category" in products:
        from ltr.simulate.catalog import top_category

        cat = products.set_index("product_id")["category"]
        df["top_category"] = top_category(cat.reindex(df["product_id"]).reset_index(drop=True)
                                          ).to_numpy()
    return df.sort_values("gap", key=np.abs, ascending=False).reset_index(drop=True)


def disagreement_stats(dis: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Descriptive statistics of disagreeing pairs against all pairs with evidence."""
    rows = []
    for name, df in (("all pairs", labels), ("clicks higher", dis[dis.get("direction") ==
                                                                "clicks_higher"]),
                     ("text higher", dis[dis.get("direction") == "text_higher"])):
        if len(df) == 0:
            rows.append({"set": name, "pairs": 0})
            continue
        rows.append({
            "set": name, "pairs": len(df),
            "mean_query_words": float(df["query"].astype(str).str.split().str.len().mean()),
            "mean_position": float(df["mean_position"].mean()),
            "mean_impressions": float(df["impressions"].mean()),
        })
    return pd.DataFrame(rows)
