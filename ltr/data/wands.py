"""Reader for the WANDS product-search relevance subset (Chen et al., ECIR 2022; MIT).

Turns the three WANDS TSV files into the library's tables:

* ``product.tsv`` -> products: product_id, title (= product_name), category
  (= category_hierarchy), product_class;
* ``query.tsv`` + ``label.tsv`` -> judgements: query (text), query_id, product_id,
  grade (Exact 2, Partial 1, Irrelevant 0).

Price, brand, rating and review_count are not in WANDS; see
:func:`ltr.simulate.catalog.augment_catalog`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ltr.errors import DataValidationError
from ltr.io import read_table


def _need(df: pd.DataFrame, path: Path, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataValidationError(str(path), f"missing WANDS column(s) {missing}",
                                  column=missing[0])


def load_wands(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(products, judgements)`` from a WANDS folder."""
    directory = Path(directory)
    prod_path, query_path, label_path = (directory / f for f in
                                         ("product.tsv", "query.tsv", "label.tsv"))
    products = read_table(prod_path)
    _need(products, prod_path, ["product_id", "product_name", "category_hierarchy"])
    queries = read_table(query_path)
    _need(queries, query_path, ["query_id", "query"])
    labels = read_table(label_path)
    _need(labels, label_path, ["query_id", "product_id", "grade"])
    products = products.rename(columns={"product_name": "title",
                                        "category_hierarchy": "category"})
    products["title"] = products["title"].fillna("").astype(str)
    cols = ["product_id", "title", "category"] + \
        (["product_class"] if "product_class" in products else [])
    judgements = labels.merge(queries[["query_id", "query"]], on="query_id", how="left")
    if judgements["query"].isna().any():
        bad = judgements.loc[judgements["query"].isna(), "query_id"].unique()[:5].tolist()
        raise DataValidationError(str(label_path), f"query_id(s) {bad} not in {query_path}",
                                  column="query_id")
    judgements = judgements[["query", "query_id", "product_id", "grade"]]
    return products[cols].copy(), judgements
