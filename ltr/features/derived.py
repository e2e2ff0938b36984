"""Derived features computed from the joined row table, by name.

| name | kind | definition |
|---|---|---|
| ``brand_match`` | numeric | 1 if the product's brand is the customer's ``preferred_brand`` |
| ``category_match`` | numeric | 1 if the product's top category is the customer's ``preferred_category`` |
| ``price_z_in_list`` | numeric | ``(log price - mean) / std`` over the list (group) the row is in |
| ``top_category`` | categorical | first segment of the product's category path |

Each needs certain columns; a missing one raises an error naming it. A missing customer
value (anonymous customer, unseen customer) gives 0 for the match features. Values match
when both are present and equal as strings (``str(v)``).

``price_z_in_list``: log of the price (clipped to 1e-6), standardised with the mean and
the sample standard deviation (ddof 1) of the present prices of the row's list; 0 for a
missing price, a key-less row, and a list whose prices do not vary (or hold one price).

The features are computed from a column table (a DataFrame or a mapping of column name
-> array, see :mod:`ltr.features.columns`) and one group key per row, with numpy:
:func:`derived_columns` serves one request of a ranking service as well as the training
table (:func:`add_derived`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.errors import DataValidationError
from ltr.features.columns import ColumnTable, has_column, numeric_column, text_column


class _Columns:
    """The columns of one table, each read (and converted) once per call."""

    def __init__(self, table: ColumnTable, source: str) -> None:
        self.table, self.source = table, source
        self._text: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._top: np.ndarray | None = None

    def text(self, col: str) -> tuple[np.ndarray, np.ndarray]:
        if col not in self._text:
            self._text[col] = text_column(self.table, col)
        return self._text[col]

    def numeric(self, col: str) -> np.ndarray:
        return numeric_column(self.table, col, self.source)

    def top_category(self) -> np.ndarray:
        if self._top is None:
            self._top = top_category(*self.text("category"))
        return self._top


@dataclass(frozen=True)
class Derived:
    kind: str  # numeric | categorical
    needs: tuple[str, ...]
    fn: Callable[[_Columns, np.ndarray | None], np.ndarray]
    grouped: bool = False  # needs the list key of each row


def _equal(left: np.ndarray, left_missing: np.ndarray | None, right: np.ndarray,
           right_missing: np.ndarray) -> np.ndarray:
    """1.0 where both strings are present and equal, else 0.0 (float32)."""
    same = np.asarray(left == right, dtype=bool) & ~right_missing
    if left_missing is not None:
        same &= ~left_missing
    return same.astype(np.float32)


def _brand_match(cols: _Columns, group: np.ndarray | None) -> np.ndarray:
    return _equal(*cols.text("brand"), *cols.text("preferred_brand"))


def _category_match(cols: _Columns, group: np.ndarray | None) -> np.ndarray:
    return _equal(cols.top_category(), None, *cols.text("preferred_category"))


def _top_category(cols: _Columns, group: np.ndarray | None) -> np.ndarray:
    return cols.top_category()


class _TopSegment(dict):
    """Memo: category path -> its stripped first ``/`` segment ('unknown' when empty)."""

    def __missing__(self, path: str) -> str:
        if len(self) >= _TOP_MEMO_SIZE:
            self.clear()
        top = path.split("/", 1)[0].strip() or "unknown"
        self[path] = top
        return top


_TOP_MEMO_SIZE = 100_000
_TOP = _TopSegment()  # a catalog has few category paths: requests reuse them


def top_category(paths: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """First segment of each ``/``-separated category path (str), stripped; ``'unknown'``
    where missing or empty. Object array of str: the strings of
    :func:`ltr.simulate.catalog.top_category`."""
    out = np.empty(len(paths), dtype=object)
    out[:] = [_TOP[p] for p in paths]
    out[missing] = "unknown"
    return out


def group_codes(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """``(codes, n_groups)``: one code in ``[0, n_groups)`` per row, ``-1`` for a missing
    key (NaN, None, ``pd.NA``, NaT: pandas groupby drops those rows)."""
    keys = np.asarray(keys)
    if keys.dtype.kind in "biuUS" and len(keys):  # sortable, never missing
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        new = np.empty(len(keys), dtype=np.intp)
        new[0] = 0
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
        codes = np.empty(len(keys), dtype=np.intp)
        codes[order] = np.cumsum(new)
        return codes, int(codes[order[-1]]) + 1
    codes, uniques = pd.factorize(keys)  # object (ints, strings, mixed), float, datetime
    return codes, len(uniques)


def group_z(x: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` within each group of ``keys`` (float64): mean and sample
    standard deviation (ddof 1) over the group's non-NaN values, std 1 where it is 0 or
    undefined (one value); 0 where ``x`` is NaN or the key is missing."""
    codes, n_groups = group_codes(keys)
    present = ~np.isnan(x) & (codes >= 0)
    idx = np.where(present, codes, n_groups)  # bin n_groups: the rows left out
    values = np.where(present, x, 0.0)
    # shift each group by one of its values (any: repeated indices keep one of them):
    # a constant group becomes exactly 0 with std 0, and the sums stay small
    shift = np.zeros(n_groups + 1)
    shift[idx] = values
    values -= shift[idx]
    count = np.bincount(idx, minlength=n_groups + 1)
    per = np.maximum(count, 1)
    mean = np.bincount(idx, weights=values, minlength=n_groups + 1) / per
    dev = values - mean[idx]  # 0 for the rows left out (0 in their bin)
    ss = np.bincount(idx, weights=dev * dev, minlength=n_groups + 1)
    std = np.sqrt(ss / np.maximum(count - 1, 1))  # 0 for one value
    z = dev / np.where(std > 0, std, 1.0)[idx]
    return np.where(np.isnan(z), 0.0, z)


def _price_z(cols: _Columns, group: np.ndarray | None) -> np.ndarray:
    if group is None:
        raise DataValidationError(cols.source, "derived feature 'price_z_in_list' needs "
                                  "the group (list) key of each row")
    lp = np.log(np.maximum(cols.numeric("price"), 1e-6))
    if len(group) != len(lp):
        raise DataValidationError(cols.source, f"{len(group)} group keys for {len(lp)} "
                                  "rows (derived feature 'price_z_in_list')")
    return group_z(lp, group).astype(np.float32)


DERIVED: dict[str, Derived] = {
    "brand_match": Derived("numeric", ("brand", "preferred_brand"), _brand_match),
    "category_match": Derived("numeric", ("category", "preferred_category"), _category_match),
    "price_z_in_list": Derived("numeric", ("price",), _price_z, grouped=True),
    "top_category": Derived("categorical", ("category",), _top_category),
}


def derived_columns(table: ColumnTable, names: list[str], group_keys: np.ndarray | None,
                    source: str = "rows") -> dict[str, np.ndarray]:
    """The named derived features of ``table`` (a DataFrame or a mapping of column name ->
    array), one array per name: float32 for numeric ones, object (str) for categorical
    ones. ``group_keys``: the list key of each row, an array of ints, strings or any
    hashable objects (``price_z_in_list`` standardises within a list; ``None`` when no
    named feature needs it)."""
    out: dict[str, np.ndarray] = {}
    cols = _Columns(table, source)
    for name in names:
        spec = DERIVED[name]
        for col in spec.needs:
            if not has_column(table, col):
                raise DataValidationError(source, f"derived feature '{name}' needs it",
                                          column=col)
        out[name] = spec.fn(cols, group_keys)
    return out


def add_derived(df: pd.DataFrame, names: list[str], group: str,
                source: str = "rows") -> pd.DataFrame:
    """Return ``df`` with the named derived columns added; ``group`` names the column
    holding the list key of each row."""
    out = df.copy()
    keys = None
    if group in out.columns:
        keys = out[group].to_numpy()
    else:
        for name in names:
            if DERIVED[name].grouped:
                raise DataValidationError(source, f"derived feature '{name}' needs the list "
                                          "key column", column=group)
    for name, values in derived_columns(out, names, keys, source).items():
        out[name] = values
    return out
