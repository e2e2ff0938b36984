"""Tables held for row lookups: one numpy array per column and a key index, so that
joining rows onto a catalog, a customer table or a history table is a key lookup and a
``take`` per column, not a DataFrame merge. Training rows and a ranking service's
requests are joined through them alike (:mod:`ltr.features.assemble`).

Keys are matched as text (:func:`key_of`): a catalog of integer ids accepts ``123`` and
``"123"`` alike, and an integral float (an integer id column that picked up a missing
value in a join) matches its integer (``3.0`` -> ``"3"``).
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
    """The text key of an id (see the module docstring)."""
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def keys_of(values: Any) -> np.ndarray:
    """:func:`key_of` of every value of an array (vectorised for integer arrays); a
    missing value (None, NaN, NA) gets the key ``None``, which matches nothing."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(str).astype(object)
    arr = arr.astype(object)
    out = np.full(len(arr), None, dtype=object)
    present = ~pd.isna(arr)
    kind = pd.api.types.infer_dtype(arr, skipna=True)
    if kind == "string":  # already text keys
        out[present] = arr[present]
    elif kind == "integer":
        out[present] = arr[present].astype(np.int64).astype(str)
    else:
        out[present] = [key_of(v) for v in arr[present]]
    return out


def object_array(values: Iterable[Any]) -> np.ndarray:
    """An object array with ``None`` for every missing value (NaN, NA, None)."""
    arr = np.array(list(values), dtype=object) if not isinstance(values, np.ndarray) \
        else values.astype(object)
    if arr.size:
        arr[pd.isna(arr)] = None
    return arr


class ColumnStore:
    """A table as ``{column: array}``: float64 (NaN missing) for ``numeric`` columns,
    object (``None`` missing) for the others, with a row index by ``key`` (one or more
    columns).

    Two ways to find rows: :meth:`rows` (a dictionary lookup per key: a service's
    request of 100 rows) and :meth:`lookup` (vectorised over arrays of keys: millions of
    training rows). Each builds its index on first use."""

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
        self._key_arrays = [keys_of(frame[k].to_numpy(dtype=object)) for k in keys]
        self._dict: dict[Any, int] | None = None
        self._pandas: pd.Index | None = None
        self.n_rows = len(frame)

    def __len__(self) -> int:
        return self.n_rows

    @property
    def index(self) -> dict[Any, int]:
        """``key -> row`` (a tuple of text keys for a compound key)."""
        if self._dict is None:
            labels = self._key_arrays[0].tolist() if len(self.key) == 1 else \
                list(zip(*(a.tolist() for a in self._key_arrays), strict=True))
            self._dict = {k: i for i, k in enumerate(labels)}
        return self._dict

    def rows(self, keys: Iterable[Any]) -> np.ndarray:
        """Row number of each key (already normalised with :func:`key_of`), -1 if absent."""
        get = self.index.get
        return np.fromiter((get(k, -1) for k in keys), dtype=np.int64)

    def lookup(self, *key_arrays: Any) -> np.ndarray:
        """Row number of each key, -1 if absent: one array per key column (raw ids,
        normalised here with :func:`keys_of`), vectorised."""
        if len(key_arrays) != len(self.key):
            raise ValueError(f"{self.source}: {len(key_arrays)} key arrays for key {self.key}")
        if self._pandas is None:
            self._pandas = pd.Index(self._key_arrays[0]) if len(self.key) == 1 else \
                pd.MultiIndex.from_arrays(self._key_arrays)
        wanted = [keys_of(a) for a in key_arrays]
        target = pd.Index(wanted[0]) if len(wanted) == 1 else \
            pd.MultiIndex.from_arrays(wanted)
        if self._pandas.is_unique:
            out = self._pandas.get_indexer(target).astype(np.int64)
        else:  # a duplicated key: its last row, as the dictionary index
            last = ~self._pandas.duplicated(keep="last")
            at = self._pandas[last].get_indexer(target)
            out = np.where(at >= 0, np.flatnonzero(last)[np.maximum(at, 0)], -1)
        missing = np.zeros(len(out), dtype=bool)
        for a in wanted:
            missing |= pd.isna(a)
        out[missing] = -1
        return out

    def gather(self, column: str, rows: np.ndarray) -> np.ndarray:
        """Values of ``column`` at ``rows``; missing (NaN / None) where ``rows`` is -1."""
        values = self.columns[column]
        missing = np.nan if values.dtype.kind == "f" else None
        if not len(values):
            return np.full(len(rows), missing, dtype=values.dtype)
        out = values[np.maximum(rows, 0)]  # fancy indexing: a copy
        out[rows < 0] = missing
        return out
