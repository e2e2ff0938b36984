"""Loaders that return validated tables of the data contract (see :mod:`ltr.data.schema`).

Each loader reads CSV/TSV/Parquet, checks required columns and kinds, and applies the
table's own rules; cross-table rules (every shown product is in the catalog, every
customer is known) are checked when the other table is given. Optional columns that are
absent are reported in ``SearchLog.absent_optional`` and never invented.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.checks import Range
from ltr.data.schema import CUSTOMERS, IMPRESSIONS, JUDGEMENTS, PRODUCTS
from ltr.data.validate import coerce_column, offending, require_columns, validate_table
from ltr.errors import DataValidationError
from ltr.io import TABLE_SUFFIXES, read_table

PathLike = str | os.PathLike[str]


# the catalog's value ranges: checked on every catalog table and on every product record a
# ranking request sends (ltr.serving.features)
PRODUCT_RANGES = {"price": Range(gt=0), "rating": Range(ge=1, le=5, optional=True),
                  "review_count": Range(ge=0, optional=True)}


def load_products(path: PathLike, absent: list[str] | None = None) -> pd.DataFrame:
    """Load and validate the product catalog."""
    return check_products(read_table(path), str(path), absent)


def check_products(df: pd.DataFrame, src: str, absent: list[str] | None = None) -> pd.DataFrame:
    """Validate an in-memory catalog (``src`` names it in errors)."""
    df, missing = validate_table(df, PRODUCTS, src)
    for column, rule in PRODUCT_RANGES.items():
        if column in df:
            offending(src, column, ~rule.ok_array(df[column].to_numpy(dtype=float)), df,
                      f"have {column} outside its range: it must be {rule.describe()}")
    if absent is not None:
        absent.extend(missing)
    return df


def load_customers(path: PathLike, absent: list[str] | None = None) -> pd.DataFrame:
    """Load and validate the customer table (customer_id plus any attributes)."""
    df, missing = validate_table(read_table(path), CUSTOMERS, str(path))
    if absent is not None:
        absent.extend(missing)
    return df


def load_impressions(
    path: PathLike,
    products: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Load and validate the search log, sorted by (session_id, position).

    Rules: position >= 1; purchased implies clicked; (session_id, position) unique; one
    query and one customer per session; product_id in ``products`` and customer_id in
    ``customers`` when those are given.
    """
    src = str(path)
    df, _ = validate_table(read_table(path), IMPRESSIONS, src)
    offending(src, "position", df["position"] < 1, df, "have position < 1 (positions are 1-based)")
    offending(src, "purchased", (df["purchased"] == 1) & (df["clicked"] == 0), df,
              "are purchased without a click")
    for col in ("query", "customer_id"):
        n = df.groupby("session_id", sort=False)[col].transform("nunique").to_numpy()
        offending(src, col, n > 1, df, f"belong to sessions with more than one {col}")
    if products is not None:
        _check_known(df, "product_id", products, src, "products")
    if customers is not None:
        _check_known(df, "customer_id", customers, src, "customers")
    return df.sort_values(["session_id", "position"], kind="stable").reset_index(drop=True)


def load_judgements(path: PathLike, products: pd.DataFrame | None = None) -> pd.DataFrame:
    """Load human relevance judgements (query, product_id, grade >= 0).

    A (query, product) pair judged more than once keeps the mean grade, rounded down.
    """
    return check_judgements(read_table(path), str(path), products)


def check_judgements(raw: pd.DataFrame, src: str,
                     products: pd.DataFrame | None = None) -> pd.DataFrame:
    """Validate in-memory judgements (``src`` names them in errors).

    A (query, product) pair judged more than once keeps its mean grade, rounded down.
    """
    require_columns(raw, JUDGEMENTS, src)
    df = raw.reset_index(drop=True).copy()
    for col in JUDGEMENTS.columns:
        df[col.name] = coerce_column(df, col, src)
    offending(src, "grade", df["grade"] < 0, df, "have grade < 0")
    extra = [c for c in df.columns if c not in ("query", "product_id", "grade")]
    agg = {"grade": "mean", **{c: "first" for c in extra}}
    df = df.groupby(["query", "product_id"], as_index=False, sort=False).agg(agg)
    df["grade"] = np.floor(df["grade"]).astype("int64")
    if products is not None:
        _check_known(df, "product_id", products, src, "products")
    return df


def _check_known(df: pd.DataFrame, col: str, ref: pd.DataFrame, src: str, ref_name: str) -> None:
    ids, known = df[col], ref[col]
    if ids.dtype != known.dtype:
        ids, known = ids.astype(str), known.astype(str)
    offending(src, col, ~ids.isin(known).to_numpy(), df, f"are absent from the {ref_name} table")


@dataclass
class SearchLog:
    """A validated search log with its catalog, customers and (optional) judgements."""

    products: pd.DataFrame
    customers: pd.DataFrame
    impressions: pd.DataFrame
    judgements: pd.DataFrame | None = None
    sources: dict[str, str] = field(default_factory=dict)
    absent_optional: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """Headline figures of the log: sizes, rates, and click-through rate by position."""
        imp = self.impressions
        by_pos = imp.groupby("position")["clicked"].mean()
        sessions = imp.groupby("session_id").agg(c=("clicked", "max"), p=("purchased", "max"))
        out: dict[str, object] = {
            "impressions": len(imp),
            "sessions": int(imp["session_id"].nunique()),
            "queries": int(imp["query"].nunique()),
            "customers_in_log": int(imp["customer_id"].nunique()),
            "products_in_catalog": len(self.products),
            "products_shown": int(imp["product_id"].nunique()),
            "click_rate": float(imp["clicked"].mean()),
            "add_to_cart_rate": float(imp["added_to_cart"].mean()),
            "purchase_rate": float(imp["purchased"].mean()),
            "sessions_with_click": float(sessions["c"].mean()),
            "sessions_with_purchase": float(sessions["p"].mean()),
            "time_span": f"{imp['timestamp'].min()} .. {imp['timestamp'].max()}",
            "ctr_by_position": {int(k): round(float(v), 4) for k, v in by_pos.head(10).items()},
            "absent_optional_columns": self.absent_optional,
        }
        if self.judgements is not None:
            out["judged_pairs"] = len(self.judgements)
            out["judged_queries"] = int(self.judgements["query"].nunique())
        return out


def find_table(directory: PathLike, name: str, required: bool = True) -> Path | None:
    """Return ``directory/name.<suffix>`` for the first suffix that exists."""
    directory = Path(directory)
    for suffix in TABLE_SUFFIXES:
        p = directory / f"{name}{suffix}"
        if p.exists():
            return p
    if required:
        raise DataValidationError(
            str(directory), f"no '{name}' table found (looked for {name}.parquet/.csv/.tsv)"
        )
    return None


def load_log(
    directory: PathLike | None = None,
    *,
    products: PathLike | None = None,
    customers: PathLike | None = None,
    impressions: PathLike | None = None,
    judgements: PathLike | None = None,
) -> SearchLog:
    """Load a whole log from a folder (``products.*``, ``customers.*``, ``impressions.*``,
    optional ``judgements.*``) or from explicit paths, checking cross-table rules."""
    paths: dict[str, Path | None] = {
        "products": Path(products) if products else None,
        "customers": Path(customers) if customers else None,
        "impressions": Path(impressions) if impressions else None,
        "judgements": Path(judgements) if judgements else None,
    }
    if directory is not None:
        for name in paths:
            if paths[name] is None:
                paths[name] = find_table(directory, name, required=name != "judgements")
    for name in ("products", "customers", "impressions"):
        if paths[name] is None:
            raise DataValidationError(name, "no path given and no folder to look in")
    absent: dict[str, list[str]] = {"products": [], "customers": []}
    prod = load_products(paths["products"], absent["products"])  # type: ignore[arg-type]
    cust = load_customers(paths["customers"], absent["customers"])  # type: ignore[arg-type]
    imp = load_impressions(paths["impressions"], prod, cust)  # type: ignore[arg-type]
    judg = load_judgements(paths["judgements"], prod) if paths["judgements"] else None
    return SearchLog(
        products=prod, customers=cust, impressions=imp, judgements=judg,
        sources={k: str(v) for k, v in paths.items() if v is not None},
        absent_optional={k: v for k, v in absent.items() if v},
    )
