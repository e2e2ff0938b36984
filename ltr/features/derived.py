"""Derived features computed from the joined row table, by name.

| name | kind | definition |
|---|---|---|
| ``brand_match`` | numeric | 1 if the product's brand is the customer's ``preferred_brand`` |
| ``category_match`` | numeric | 1 if the product's top category is the customer's ``preferred_category`` |
| ``price_z_in_list`` | numeric | ``(log price - mean) / std`` over the list (group) the row is in |
| ``top_category`` | categorical | first segment of the product's category path |

Each needs certain columns; a missing one raises an error naming it. A missing customer
value (anonymous customer, unseen customer) gives 0 for the match features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.errors import DataValidationError


@dataclass(frozen=True)
class Derived:
    kind: str  # numeric | categorical
    needs: tuple[str, ...]
    fn: Callable[[pd.DataFrame, str], np.ndarray]


def _match(a: str, b: str) -> Callable[[pd.DataFrame, str], np.ndarray]:
    def fn(df: pd.DataFrame, group: str) -> np.ndarray:
        left, right = df[a].astype("string"), df[b].astype("string")
        return (left == right).fillna(False).to_numpy(dtype=np.float32)

    return fn


def _top_category(df: pd.DataFrame, group: str) -> np.ndarray:
    from ltr.simulate.catalog import top_category

    return top_category(df["category"]).to_numpy()


def _price_z(df: pd.DataFrame, group: str) -> np.ndarray:
    lp = np.log(df["price"].astype(float).clip(lower=1e-6))
    g = lp.groupby(df[group].to_numpy())
    std = g.transform("std").fillna(0.0).to_numpy()
    z = (lp.to_numpy() - g.transform("mean").to_numpy()) / np.where(std > 0, std, 1.0)
    return np.nan_to_num(z).astype(np.float32)


def _category_match(df: pd.DataFrame, group: str) -> np.ndarray:
    from ltr.simulate.catalog import top_category

    top = top_category(df["category"]).astype("string")
    return (top == df["preferred_category"].astype("string")).fillna(False).to_numpy(np.float32)


DERIVED: dict[str, Derived] = {
    "brand_match": Derived("numeric", ("brand", "preferred_brand"),
                           _match("brand", "preferred_brand")),
    "category_match": Derived("numeric", ("category", "preferred_category"), _category_match),
    "price_z_in_list": Derived("numeric", ("price",), _price_z),
    "top_category": Derived("categorical", ("category",), _top_category),
}


def add_derived(df: pd.DataFrame, names: list[str], group: str,
                source: str = "rows") -> pd.DataFrame:
    """Return ``df`` with the named derived columns added."""
    out = df.copy()
    for name in names:
        spec = DERIVED[name]
        for col in spec.needs:
            if col not in out:
                raise DataValidationError(source, f"derived feature '{name}' needs it",
                                          column=col)
        out[name] = spec.fn(out, group)
    return out
