"""Packaged tables held for per-request lookups: one numpy array per column and a key
index, so that building a request's rows is a dictionary lookup and a ``take`` per
column, not a DataFrame merge.

Keys are matched as text (``str(key)``): a catalog of integer ids accepts ``123`` and
``"123"`` alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (JSON, keys); anything else as it is."""
    return value.item() if hasattr(value, "item") else value


def key_of(value: Any) -> str:
    return str(plain(value))


def object_array(values: Iterable[Any]) -> np.ndarray:
    """An object array with ``None`` for every missing value (NaN, NA, None)."""
    arr = np.array(list(values), dtype=object)
    if arr.size:
        arr[pd.isna(arr)] = None
    return arr


class ColumnStore:
    """A table as ``{column: array}``: float64 (NaN missing) for ``numeric`` columns,
    object (``None`` missing) for the others, with a row index by ``key`` (one or more
    columns)."""

    def __init__(self, frame: pd.DataFrame, key: str | Sequence[str], numeric: Iterable[str],
                 source: str) -> None:
        keys = [key] if isinstance(key, str) else list(key)
        self.source = source
        self.key = keys
        self.numeric = [c for c in frame.columns if c in set(numeric)]
        self.columns: dict[str, np.ndarray] = {}
        for col in frame.columns:
            if col in self.numeric:
                self.columns[col] = pd.to_numeric(frame[col], errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan)
            else:
                self.columns[col] = object_array(frame[col].to_numpy(dtype=object))
        if len(keys) == 1:
            labels = [key_of(v) for v in frame[keys[0]].to_numpy(dtype=object)]
        else:
            labels = list(zip(*(map(key_of, frame[k].to_numpy(dtype=object)) for k in keys),
                              strict=True))
        self.index: dict[Any, int] = {k: i for i, k in enumerate(labels)}
        self.n_rows = len(frame)

    def __len__(self) -> int:
        return self.n_rows

    def rows(self, keys: Iterable[Any]) -> np.ndarray:
        """Row number of each key (already normalised with :func:`key_of`), -1 if absent."""
        get = self.index.get
        return np.fromiter((get(k, -1) for k in keys), dtype=np.int64)

    def gather(self, column: str, rows: np.ndarray) -> np.ndarray:
        """Values of ``column`` at ``rows``; missing (NaN / None) where ``rows`` is -1."""
        values = self.columns[column]
        missing = np.nan if values.dtype.kind == "f" else None
        if not len(values):
            return np.full(len(rows), missing, dtype=values.dtype)
        out = values[np.maximum(rows, 0)]  # fancy indexing: a copy
        out[rows < 0] = missing
        return out
